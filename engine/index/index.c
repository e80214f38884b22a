/* engine/index/index.c -- opening an index and its snapshot: the list
 * inventory and identity, the content check, and the handle's getters
 * (records and header: meta.c; the search view: view.c). */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAP_SIZE (64ull << 30)

const char *imt_index_last_error(const imt_index *idx)
{
    return idx ? idx->err : "";
}

const char *imt_hash_kind_name(imt_hash_kind k)
{
    switch (k) {
    case IMT_KIND_PDQ: return "pdq";
    case IMT_KIND_MD5: return "md5";
    case IMT_KIND_SHA1: return "sha1";
    case IMT_KIND_SHA256: return "sha256";
    case IMT_KIND_VPDQ: return "vpdq";
    }
    return "unknown";
}

void imt_index_opts_init(imt_index_opts *o)
{
    memset(o, 0, sizeof *o);
    o->read_only = 1;
}


/* ---- lists and identity ----------------------------------------------- */
static imt_err decode_list(const uint8_t *p, size_t len, imt_list_info *li, char **strs)
{
    if (len < 24) return IMT_E_INDEX_CORRUPT;
    li->id = imt__idx_get_u32(p);
    li->known_good = p[4];
    int64_t t;
    uint64_t n;
    memcpy(&t, p + 8, 8);
    memcpy(&n, p + 16, 8);
    li->import_time = t;
    li->entries = n;
    const char *s = (const char *)p + 24;
    size_t left = len - 24;
    /* the policy is the sixth string since format 3; a list without one
     * (written by format 2) has its scheme's default */
    const char **fields[6] = {&li->name, &li->version, &li->format, &li->file_sha256,
                              &li->scheme, &li->policy};
    for (int i = 0; i < 6; i++) {
        if (i == 5 && !left) {
            li->policy = imt__idx_policy_default(li->scheme, li->known_good);
            strs[i] = NULL;
            break;
        }
        const char *z = memchr(s, 0, left);
        if (!z) return IMT_E_INDEX_CORRUPT;
        *fields[i] = s;
        strs[i] = (char *)s;
        left -= (size_t)(z - s) + 1;
        s = z + 1;
    }
    if (left || !imt__idx_policy_valid(li->policy)) return IMT_E_INDEX_CORRUPT;
    return IMT_OK;
}

static imt_err load_lists(imt_index *idx, MDB_txn *txn, EVP_MD_CTX *md)
{
    imt_err err = IMT_OK;
    MDB_cursor *cur = NULL;
    MDB_val k, d;
    size_t n = 0, bytes = 0;
    int rc = mdb_cursor_open(txn, idx->db_lists, &cur);
    if (rc) return imt__idx_mdb_err(idx, rc, "reading the lists");
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        n++;
        bytes += d.mv_size;
    }
    if (rc != MDB_NOTFOUND) {
        err = imt__idx_mdb_err(idx, rc, "reading the lists");
        goto cleanup;
    }
    idx->lists = imt__calloc(n ? n : 1, sizeof *idx->lists);
    idx->listbuf = imt__malloc(bytes ? bytes : 1);
    if (!idx->lists || !idx->listbuf) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    size_t i = 0, o = 0;
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0 && i < n;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT), i++) {
        memcpy(idx->listbuf + o, d.mv_data, d.mv_size);
        char *strs[6];
        if (decode_list((uint8_t *)idx->listbuf + o, d.mv_size, &idx->lists[i], strs) != IMT_OK ||
            k.mv_size != 4 || imt__idx_get_be32(k.mv_data) != idx->lists[i].id) {
            imt__idx_set_err(idx, "%s: list record %zu is malformed", idx->path, i);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
        if (md) EVP_DigestUpdate(md, d.mv_data, d.mv_size);
        o += d.mv_size;
    }
    idx->nlists = i;
cleanup:
    mdb_cursor_close(cur);
    return err;
}

static imt_err compute_identity(imt_index *idx, MDB_txn *txn)
{
    imt_err err = IMT_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md) return IMT_E_NOMEM;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        err = IMT_E_INTERNAL;
        goto cleanup;
    }
    /* the header minus nothing: it holds the format, counts, generation and
     * the checksum of the compacted segment */
    EVP_DigestUpdate(md, "imgtriage-index-identity-1", 26);
    EVP_DigestUpdate(md, &idx->hdr, sizeof idx->hdr);
    /* and the delta checksum (absent in an index no build with it wrote) */
    if (idx->has_delta_sum) EVP_DigestUpdate(md, idx->delta_sum, 32);
    /* and the levels beyond 0, with their checksums (format 5; none before,
     * so an older index keeps its identity) */
    if (idx->levels.count)
        EVP_DigestUpdate(md, idx->levels.l, (size_t)idx->levels.count * sizeof idx->levels.l[0]);
    IMT_TRY(load_lists(idx, txn, md));
    unsigned char dg[32];
    unsigned dn = 0;
    if (EVP_DigestFinal_ex(md, dg, &dn) != 1) {
        err = IMT_E_INTERNAL;
        goto cleanup;
    }
    for (int i = 0; i < 32; i++) snprintf(idx->identity + 2 * i, 3, "%02x", dg[i]);
cleanup:
    EVP_MD_CTX_free(md);
    return err;
}

/* ---- the cursors' read transactions -------------------------------------
 * A cursor needs a read transaction of its own (one per thread), and one
 * begun when the cursor opens sees the newest commit, not the handle's
 * snapshot: an import or `index compact` committed in another process
 * between the handle's open (seconds at 30M, with the page check) and a
 * cursor's open made the cursor refuse (IMT_E_INDEX_CHANGED) and `index
 * query` or a scan fail at its start. So the handle begins the cursors'
 * transactions together with its own, checks that they all got the same
 * snapshot (else begins them all again), and keeps them in a pool: a
 * cursor takes one and gives it back when it closes. A process with more
 * cursors than the pool begins more (and may then be told the index
 * changed, as before). */
static int pool_size(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 4) n = 4;
    return n > IDX_TXN_POOL ? IDX_TXN_POOL : (int)n;
}

static void pool_drain(imt_index *idx)
{
    pthread_mutex_lock(&idx->pool_mu);
    while (idx->npool > 0) mdb_txn_abort(idx->pool[--idx->npool]);
    pthread_mutex_unlock(&idx->pool_mu);
}

/* Begin the pool's transactions; 0 if they all have the snapshot of rtxn,
 * 1 if a commit came between (the pool is then emptied), -1 on an LMDB
 * error (the pool keeps what it got: fewer pooled cursors, not a failure). */
static int pool_fill(imt_index *idx)
{
    int want = pool_size(), r = 0;
    pthread_mutex_lock(&idx->pool_mu);
    while (idx->npool < want) {
        MDB_txn *t;
        if (mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &t) != 0) {
            r = -1;
            break;
        }
        if (mdb_txn_id(t) != idx->snap_txnid) {
            mdb_txn_abort(t);
            r = 1;
            break;
        }
        idx->pool[idx->npool++] = t;
    }
    pthread_mutex_unlock(&idx->pool_mu);
    if (r == 1) pool_drain(idx);
    return r;
}

MDB_txn *imt__idx_txn_take(imt_index *idx)
{
    MDB_txn *t = NULL;
    pthread_mutex_lock(&idx->pool_mu);
    if (idx->npool > 0) t = idx->pool[--idx->npool];
    pthread_mutex_unlock(&idx->pool_mu);
    return t;
}

/* Back into the pool if it reads the handle's snapshot and there is room;
 * else ended. */
void imt__idx_txn_give(imt_index *idx, MDB_txn *txn)
{
    if (!txn) return;
    pthread_mutex_lock(&idx->pool_mu);
    if (idx->rtxn && mdb_txn_id(txn) == idx->snap_txnid && idx->npool < IDX_TXN_POOL) {
        idx->pool[idx->npool++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&idx->pool_mu);
    if (txn) mdb_txn_abort(txn);
}

void imt__idx_snapshot_end(imt_index *idx)
{
    pool_drain(idx);
    imt__idx_view_free(&idx->view);
    imt__free(idx->lists);
    imt__free(idx->listbuf);
    idx->lists = NULL;
    idx->listbuf = NULL;
    idx->nlists = 0;
    if (idx->rtxn) mdb_txn_abort(idx->rtxn);
    idx->rtxn = NULL;
}

imt_err imt__idx_unchanged(const imt_index *idx)
{
    if (!idx->nolock) return IMT_OK;
    MDB_envinfo ei;
    /* reads the meta pages in the shared map: the last committed txnid */
    if (mdb_env_info(idx->env, &ei) != 0) return IMT_E_DB;
    return ei.me_last_txnid == idx->snap_txnid ? IMT_OK : IMT_E_INDEX_CHANGED;
}

/* madvise [p, p+len) (page-aligned outwards). */
static void advise(const void *p, size_t len, int advice)
{
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || !len) return;
    uintptr_t a = (uintptr_t)p & ~((uintptr_t)pg - 1);
    (void)madvise((void *)a, len + ((uintptr_t)p - a), advice);
}

static void advise_arrays(const imt__idx_seg *v, int advice)
{
    if (!v->n) return;
    advise(v->pdq, (size_t)v->n * 32, advice);
    advise(v->ent, (size_t)v->n * 4, advice);
    for (int t = 0; t < v->m; t++)
        advise(v->off[t], ((((size_t)1 << v->bits[t]) + 1) + v->n) * 4, advice);
}

/* Bring a level's arrays into memory before the first query. The map is
 * MDB_NORDAHEAD (MADV_RANDOM: right for the queries' random accesses), so
 * a sequential pass over a cold index would fault in one page at a time:
 * 19 s instead of 2.7 s for the arrays of a 10M index (bench_index,
 * evicted from the page cache). So: read the ranges as a sequence, then
 * give them back LMDB's advice. MADV_HUGEPAGE first: where the file
 * system caches files in large folios (ext4 from Linux 6.16, XFS), the
 * read brings them in as 2 MiB pages mapped whole, and the queries' random
 * probes into hundreds of MB of tables stop missing the TLB on every
 * access (bench_index, 10M, r = 31: 190k instead of 300k cycles a query
 * for level 0 on a VM). Elsewhere the advice changes nothing; the B-trees
 * (entry records, digests) keep small pages, since a 2 MiB read per
 * random lookup would slow cold digest queries. */
static void prefault_arrays(const imt__idx_seg *v)
{
#ifdef MADV_HUGEPAGE
    advise_arrays(v, MADV_HUGEPAGE);
#endif
    advise_arrays(v, MADV_SEQUENTIAL);
    advise_arrays(v, IDX_MADV_POPULATE_READ);
    advise_arrays(v, MADV_RANDOM);
}

/* Open-time content check: the arrays every PDQ query searches (the
 * compacted hashes, their entry ids and MIH tables, and the delta chunks)
 * against the sums in the header, which the identity covers. So a flipped
 * bit there fails the open instead of silently changing answers, and the
 * identity a report records stands for the bytes searched. One sequential
 * read, which also brings a cold index into the page cache. The B-trees
 * (entry records, digest tables) are not covered: `verify` checks them. */
static imt_err check_content(imt_index *idx)
{
    imt_err err = IMT_OK;
    const imt__idx_view *v = &idx->view;
    uint8_t sum[32];
    if (imt__idx_vcache_content(idx)) {
        /* the record: these arrays matched these sums when this machine
         * read them, and the file is unchanged since; bring them into
         * the page cache as the check would have (no SHA-256) */
        for (int s = 0; s < v->nseg; s++) {
            const imt__idx_seg *g = &v->seg[s];
            if (!g->n) continue;
            prefault_arrays(g);
        }
        idx->content_verified = 1;
        return IMT_OK;
    }
    for (int s = 0; s < v->nseg; s++) {
        const imt__idx_seg *g = &v->seg[s];
        if (!g->n) continue;
        prefault_arrays(g);
        IMT_TRY(imt__idx_seg_sum(g, sum));
        if (memcmp(sum, s ? idx->levels.l[s - 1].sum : idx->hdr.main_sum, 32) != 0) {
            imt__idx_set_err(idx, "%s: compacted PDQ level %d (hashes, entry ids or MIH tables) "
                        "does not match its checksum: the index is damaged "
                        "('imgtriage index verify' names the first problem)", idx->path, s);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
    }
    IMT_TRY(imt__idx_delta_sum(v, sum));
    if (idx->has_delta_sum) {
        if (memcmp(sum, idx->delta_sum, 32) != 0) {
            imt__idx_set_err(idx, "%s: the delta PDQ segment (hashes or entry ids) does not match "
                        "its checksum: the index is damaged ('imgtriage index verify' names "
                        "the first problem)", idx->path);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
    } else if (v->delta_n) {
        /* written by a build before the delta checksum: the compacted
         * segment was checked, the delta cannot be (the next import seals
         * it); say "not verified" */
        goto cleanup;
    }
    idx->content_verified = 1;
    idx->verified_at = (int64_t)time(NULL);
cleanup:
    return err;
}

imt_err imt__idx_snapshot_begin(imt_index *idx)
{
    imt_err err = IMT_OK;
    /* the handle's transaction and the cursors' on one snapshot: a commit
     * between them (microseconds) means beginning them all again */
    for (int attempt = 0;; attempt++) {
        int rc = mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &idx->rtxn);
        if (rc) return imt__idx_mdb_err(idx, rc, "starting a read transaction");
        idx->snap_txnid = mdb_txn_id(idx->rtxn);
        if (pool_fill(idx) != 1 || attempt == 3) break;
        mdb_txn_abort(idx->rtxn);
        idx->rtxn = NULL;
    }
    IMT_TRY(imt__idx_read_header(idx, idx->rtxn, &idx->hdr));
    IMT_TRY(imt__idx_read_delta_sum(idx, idx->rtxn, idx->delta_sum, &idx->has_delta_sum));
    IMT_TRY(imt__idx_read_levels(idx, idx->rtxn, &idx->hdr, &idx->levels));
    IMT_TRY(compute_identity(idx, idx->rtxn));
    IMT_TRY(imt__idx_view_load(idx, idx->rtxn, &idx->hdr, &idx->levels, &idx->view));
    idx->content_verified = 0;
    idx->vc_content = 0;
    idx->verified_at = 0;
    if (idx->check_content) IMT_TRY(check_content(idx));
    if (imt__idx_unchanged(idx) != IMT_OK) {
        imt__idx_set_err(idx, "%s: the index changed while it was being opened (it is read "
                    "without a lock: no write access to lock.mdb)", idx->path);
        err = IMT_E_INDEX_CHANGED;
    }
cleanup:
    if (err != IMT_OK) imt__idx_snapshot_end(idx);
    return err;
}

/* ---- open / close ------------------------------------------------------ */
static imt_err open_dbis(imt_index *idx, MDB_txn *txn, unsigned flags)
{
    struct { const char *name; MDB_dbi *dbi; } t[] = {
        {"meta", &idx->db_meta},     {"lists", &idx->db_lists}, {"entries", &idx->db_entries},
        {"md5", &idx->db_md5},       {"sha1", &idx->db_sha1},   {"sha256", &idx->db_sha256},
        {"seg", &idx->db_seg},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int rc = mdb_dbi_open(txn, t[i].name, flags, t[i].dbi);
        if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
            imt__idx_set_err(idx, "%s: not an imgtriage index (no '%s' table)", idx->path, t[i].name);
            return IMT_E_INDEX_FORMAT;
        }
        if (rc) return imt__idx_mdb_err(idx, rc, "opening the tables");
    }
    /* the membership classes: absent in a format 2/3 index opened read-only
     * (it has no compact entries); a writable open creates the table */
    int rc = mdb_dbi_open(txn, "cls", flags, &idx->db_cls);
    if (rc && rc != MDB_NOTFOUND) return imt__idx_mdb_err(idx, rc, "opening the tables");
    idx->has_cls = rc == 0;
    static const char *dn[3] = {"md5+", "sha1+", "sha256+"};
    idx->has_dplus = 1;
    for (int k = 0; k < 3; k++) {
        rc = mdb_dbi_open(txn, dn[k], flags, &idx->db_dplus[k]);
        if (rc && rc != MDB_NOTFOUND) return imt__idx_mdb_err(idx, rc, "opening the tables");
        if (rc) idx->has_dplus = 0;
    }
    return imt__idx_video_dbis(idx, txn, flags);
}

/* Can this process register as a reader? LMDB records readers in
 * lock.mdb, so that a writer never recycles a page a reader may still read,
 * and a reader must open that file for writing (LMDB creates it if absent).
 * A shared index may not allow it: root-owned with files 0644, a read-only
 * folder without lock.mdb, read-only media. Such an index is opened with
 * MDB_NOLOCK instead: it reads the same snapshot, but a writer cannot see
 * it, so imt__idx_unchanged() turns any later commit into IMT_E_INDEX_CHANGED.
 * 1: open without a lock; 0: LMDB can use the lock (or will report why not). */
static int lock_unwritable(const char *path)
{
    size_t n = strlen(path) + 16;
    char *lock = imt__malloc(n);
    if (!lock) return 0;
    snprintf(lock, n, "%s/lock.mdb", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    int e = errno;
    imt__free(lock);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return e == EACCES || e == EPERM || e == EROFS;
}

/* Why the calling thread's last imt_index_open failed (the handle is gone). */
static char *imt__open_error_buf(void)
{
    static _Thread_local char buf[512];
    return buf;
}

const char *imt_index_open_error(void)
{
    return imt__open_error_buf();
}

static imt_err open_once(imt_index **out, const char *path, const imt_index_opts *opts);

/* A writer committing while this opens can change data.mdb between the
 * page check and LMDB's open, or (without a lock) during the snapshot's
 * reads: nothing was answered yet, so open again, a few times. */
imt_err imt_index_open(imt_index **out, const char *path, const imt_index_opts *opts)
{
    imt_err err = IMT_E_INDEX_CHANGED;
    for (int i = 0; i < 8 && err == IMT_E_INDEX_CHANGED; i++) {
        if (i) usleep(1000u << (i < 6 ? i : 6));
        err = open_once(out, path, opts);
    }
    return err;
}

static imt_err open_once(imt_index **out, const char *path, const imt_index_opts *opts)
{
    imt_err err = IMT_OK;
    imt_index_opts o;
    imt_index *idx = NULL;
    MDB_txn *txn = NULL;
    char *data = NULL;
    if (!out || !path) return IMT_E_INVALID;
    *out = NULL;
    if (opts) o = *opts;
    else imt_index_opts_init(&o);
    if (o.create && o.read_only) return IMT_E_INVALID;
    idx = imt__calloc(1, sizeof *idx);
    if (!idx) return IMT_E_NOMEM;
    if (pthread_mutex_init(&idx->pool_mu, NULL) != 0) {
        imt__free(idx);
        return IMT_E_NOMEM;
    }
    idx->read_only = o.read_only != 0;
    idx->check_content = !o.skip_content_check;
    /* read-only: key the file for the verified-state record (vcache.c),
     * and use a record unless asked for the full check */
    int use_record = !idx->read_only ? 0 : o.full_check || !imt__idx_vcache_enabled() ? 1 : 2;
    idx->path = imt__strdup(path);
    size_t dl = strlen(path) + 16;
    data = imt__malloc(dl);
    if (!idx->path || !data) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    snprintf(data, dl, "%s/data.mdb", path);
    struct stat st;
    int fresh = 0;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT || !o.create) {
            imt__idx_set_err(idx, "%s: %s", path, strerror(errno));
            err = errno == ENOENT ? IMT_E_NOT_FOUND : IMT_E_IO;
            goto cleanup;
        }
        if (mkdir(path, 0777) != 0) {
            imt__idx_set_err(idx, "%s: cannot create the directory: %s", path, strerror(errno));
            err = IMT_E_IO;
            goto cleanup;
        }
        fresh = 1;
    } else if (!S_ISDIR(st.st_mode)) {
        imt__idx_set_err(idx, "%s: not an imgtriage index (not a directory)", path);
        err = IMT_E_INDEX_FORMAT;
        goto cleanup;
    } else if (stat(data, &st) != 0) {
        if (!o.create) {
            imt__idx_set_err(idx, "%s: not an imgtriage index (no data.mdb)", path);
            err = IMT_E_INDEX_FORMAT;
            goto cleanup;
        }
        fresh = 1;
    } else if (o.create && o.exclusive) {
        imt__idx_set_err(idx, "%s: an index exists there already", path);
        err = IMT_E_EXISTS;
        goto cleanup;
    }
    imt__idx_pagecheck_info pci;
    memset(&pci, 0, sizeof pci);
    if (!fresh) {
        /* LMDB 0.9 trusts the page numbers, offsets and sizes in the file
         * and would fault (SIGBUS, SIGSEGV) or abort on a damaged one:
         * check every page it can reach before it maps the file. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        idx->vc_check_ns = (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
        IMT_TRY(imt__idx_pagecheck_ex(path, !idx->read_only, use_record, &pci, idx->err,
                                      sizeof idx->err));
        idx->pages_read = pci.pages_read;
        idx->vc_use = use_record && !pci.empty;
        idx->vc_pages = pci.from_record;
        idx->vkey = pci.key;
        idx->vrec = pci.rec;
    }
    int rc = mdb_env_create(&idx->env);
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "creating the environment");
        goto cleanup;
    }
    mdb_env_set_maxdbs(idx->env, 16); /* room for additive tables (blocks.c: "blocks"; video.c:
                                         "videos", "vframes") */
    mdb_env_set_maxreaders(idx->env, 1022);
    if (!idx->read_only || o.map_size)
        mdb_env_set_mapsize(idx->env, (size_t)(o.map_size ? o.map_size : DEFAULT_MAP_SIZE));
    else if (!fresh && !pci.empty)
        /* read-only: the file is all there is to map (the meta page's map
         * size is not trusted; LMDB raises it to what its pages need) */
        mdb_env_set_mapsize(idx->env, (size_t)pci.file_size);
    if (idx->read_only && !fresh) idx->nolock = lock_unwritable(path);
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | (idx->read_only ? MDB_RDONLY : 0) |
                     (idx->nolock ? MDB_NOLOCK : 0);
    rc = mdb_env_open(idx->env, path, flags, 0666);
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "opening");
        if (rc == EACCES) err = IMT_E_IO;
        goto cleanup;
    }
    MDB_envinfo ei;
    MDB_stat es;
    if (mdb_env_info(idx->env, &ei) != 0 || mdb_env_stat(idx->env, &es) != 0) {
        imt__idx_set_err(idx, "%s: cannot read the environment's parameters", path);
        err = IMT_E_DB;
        goto cleanup;
    }
    if (!fresh && !pci.empty && (es.ms_psize != pci.psize || (uint64_t)ei.me_last_pgno != pci.last_pgno)) {
        /* the file changed between the check and mdb_env_open */
        imt__idx_set_err(idx, "%s: data.mdb changed while it was being opened (a writer "
                    "committed; tried again 8 times)", path);
        err = IMT_E_INDEX_CHANGED;
        goto cleanup;
    }
    int dead = 0;
    mdb_reader_check(idx->env, &dead);
    rc = mdb_txn_begin(idx->env, NULL, idx->read_only ? MDB_RDONLY : 0, &txn);
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "starting a transaction");
        goto cleanup;
    }
    IMT_TRY(open_dbis(idx, txn, idx->read_only ? 0 : MDB_CREATE));
    if (!idx->read_only) {
        MDB_val k = {6, (void *)"header"}, d;
        rc = mdb_get(txn, idx->db_meta, &k, &d);
        if (rc == MDB_NOTFOUND) {
            MDB_stat ms;
            mdb_stat(txn, idx->db_entries, &ms);
            if (!fresh && ms.ms_entries) {
                imt__idx_set_err(idx, "%s: not an imgtriage index (data but no header)", path);
                err = IMT_E_INDEX_FORMAT;
                goto cleanup;
            }
            imt__idx_header h;
            memset(&h, 0, sizeof h);
            memcpy(h.magic, IDX_MAGIC, 8);
            h.format = IDX_FORMAT_VERSION;
            h.created = (int64_t)time(NULL);
            h.next_list = 1;
            snprintf(h.tool, sizeof h.tool, "imgtriage %s", IMT_VERSION_STRING);
            IMT_TRY(imt__idx_write_header(idx, txn, &h, NULL));
        } else if (rc) {
            err = imt__idx_mdb_err(idx, rc, "reading the header");
            goto cleanup;
        }
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "committing");
        goto cleanup;
    }
    IMT_TRY(imt__idx_snapshot_begin(idx));
    if (idx->vc_use) imt__idx_vcache_after_open(idx, data);
    *out = idx;
    idx = NULL;
cleanup:
    if (txn) mdb_txn_abort(txn);
    imt__free(data);
    if (idx) {
        snprintf(imt__open_error_buf(), 512, "%s", idx->err);
        imt_index_close(idx);
    } else {
        imt__open_error_buf()[0] = '\0';
    }
    return err;
}

void imt_index_close(imt_index *idx)
{
    if (!idx) return;
    imt__idx_snapshot_end(idx);
    if (idx->env) mdb_env_close(idx->env);
    pthread_mutex_destroy(&idx->pool_mu);
    imt__free(idx->path);
    imt__free(idx);
}

size_t imt_index_list_count(const imt_index *idx)
{
    return idx ? idx->nlists : 0;
}

imt_err imt_index_list_get(const imt_index *idx, size_t i, imt_list_info *out)
{
    if (!idx || !out || i >= idx->nlists) return IMT_E_INVALID;
    *out = idx->lists[i];
    return IMT_OK;
}

const char *imt_disposition_name(imt_disposition d)
{
    switch (d) {
    case IMT_DISP_ALERT: return "alert";
    case IMT_DISP_INFO: return "info";
    case IMT_DISP_IGNORE: return "ignore";
    }
    return "alert";
}

/* The lists are few (one per import): a linear search. A membership of a
 * list not in the inventory alerts (verify reports it). */
size_t imt__idx_list_find(const imt_list_info *l, size_t n, uint32_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l[mid].id == id) return mid;
        if (l[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return n;
}

imt_disposition imt__idx_disposition(const imt_index *idx, uint32_t list, int32_t cat)
{
    size_t i = imt__idx_list_find(idx->lists, idx->nlists, list);
    if (i == idx->nlists) return IMT_DISP_ALERT; /* an unknown list never clears */
    return imt__idx_policy_eval(idx->lists[i].policy, cat);
}

imt_err imt_index_identity(const imt_index *idx, char out[65])
{
    if (!idx || !out) return IMT_E_INVALID;
    memcpy(out, idx->identity, 65);
    return IMT_OK;
}

imt_err imt_index_stats_get(const imt_index *idx, imt_index_stats *s)
{
    if (!idx || !s) return IMT_E_INVALID;
    memset(s, 0, sizeof *s);
    const imt__idx_header *h = &idx->hdr;
    s->format_version = h->format;
    s->tool_version = h->tool;
    s->created = h->created;
    s->generation = h->generation;
    s->entries = h->next_entry;
    s->pdq = h->n_pdq;
    s->md5 = h->n_md5;
    s->sha1 = h->n_sha1;
    s->sha256 = h->n_sha256;
    s->memberships = h->n_members;
    s->pdq_main = h->main_n;
    s->pdq_delta = h->delta_n;
    s->pdq_level[0] = h->main_n;
    s->pdq_levels = h->main_n ? 1 : 0;
    for (uint32_t l = 0; l < idx->levels.count; l++) {
        s->pdq_level[l + 1] = idx->levels.l[l].n;
        s->pdq_main += idx->levels.l[l].n;
        s->pdq_levels = (int)l + 2;
    }
    s->mih_tables = (int)h->mih_m;
    for (uint32_t t = 0; t < h->mih_m; t++) s->mih_bits[t] = h->mih_bits[t];
    s->content_verified = idx->content_verified;
    s->content_from_record = idx->vc_content;
    s->verified_at = idx->content_verified ? idx->verified_at : 0;
    s->pages_from_record = idx->vc_pages;
    s->open_pages_read = idx->pages_read;
    size_t pl = strlen(idx->path) + 16;
    char buf[4096];
    if (pl < sizeof buf) {
        snprintf(buf, sizeof buf, "%s/data.mdb", idx->path);
        struct stat st;
        if (stat(buf, &st) == 0) s->file_bytes = (uint64_t)st.st_size;
    }
    return IMT_OK;
}
