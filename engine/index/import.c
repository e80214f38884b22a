/* engine/index/import.c -- imt_index_import: a list is read into the sink
 * in batches bounded by the memory budget (records + a string arena; bad
 * records rejected or skipped); each batch is merged into the index inside
 * ONE LMDB write transaction, begun with the first batch (writer.c): on
 * any error, crash or SIGKILL nothing of it is visible. In-list repeats
 * are merged (writer.c). New PDQ hashes go to the delta segment
 * (scanned linearly); when it grows past imt__idx_delta_max it becomes a
 * compacted level, merged with the smaller levels (compact.c: the
 * cascade), in the same transaction; on request all levels become one. */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Above this many delta hashes an import compacts (auto mode). A query
 * scans the delta linearly: 64k hashes = 2 MiB, about 0.1 ms per query. */
uint32_t imt__idx_delta_max = 65536u;

static imt_err file_sha256(imt__idx_sink *s, int fd, char out[65])
{
    imt_err err = IMT_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = imt__malloc(1 << 20);
    if (!md || !buf) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    if (lseek(fd, 0, SEEK_SET) < 0) {
        err = imt__idx_sink_fail(s, IMT_E_IO, "cannot seek: %s", strerror(errno));
        goto cleanup;
    }
    for (;;) {
        ssize_t r = read(fd, buf, 1 << 20);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            err = imt__idx_sink_fail(s, IMT_E_IO, "read error: %s", strerror(errno));
            goto cleanup;
        }
        if (r == 0) break;
        EVP_DigestUpdate(md, buf, (size_t)r);
    }
    unsigned char dg[32];
    unsigned dn;
    EVP_DigestFinal_ex(md, dg, &dn);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", dg[i]);
cleanup:
    EVP_MD_CTX_free(md);
    imt__free(buf);
    return err;
}

void imt_import_opts_init(imt_import_opts *o)
{
    memset(o, 0, sizeof *o);
    o->known_good = -1;
    o->category = -1;
    o->compact = -1;
}

/* The lists of an export's inventory, with the options over them: they name
 * one list, so they apply only to an export of one. */
static imt_err inventory_lists(imt__idx_sink *s, const imt_import_opts *o, imt__idx_list_meta **out,
                               size_t *nout)
{
    int over = (o->name && *o->name) || (o->version && *o->version) || (o->scheme && *o->scheme) ||
               o->policy || o->known_good >= 0 || o->category >= 0 || o->import_time;
    if (over && s->nlists > 1) {
        imt__idx_set_err(s->idx, "%s: an export of %zu lists: --name, --version, --scheme, "
                    "--category, --known-good/--known-bad and policies name one list",
                    s->path, s->nlists);
        return IMT_E_INVALID;
    }
    imt__idx_list_meta *m = s->lists;
    if (s->nlists == 1) {
        char msg[160];
        int redefault = (o->scheme && *o->scheme) || o->known_good >= 0;
        if (o->name && *o->name) snprintf(m->name, sizeof m->name, "%s", o->name);
        if (o->version && *o->version) snprintf(m->version, sizeof m->version, "%s", o->version);
        if (o->scheme && *o->scheme) snprintf(m->scheme, sizeof m->scheme, "%s", o->scheme);
        if (o->known_good >= 0) m->known_good = o->known_good;
        if (o->import_time) m->import_time = o->import_time;
        char base[IDX_POLICY_MAX];
        snprintf(base, sizeof base, "%s",
                 redefault ? imt__idx_policy_default(m->scheme, m->known_good) : m->policy);
        if (imt__idx_policy_resolve(base, o->policy, m->policy, sizeof m->policy, msg, sizeof msg) !=
            IMT_OK) {
            imt__idx_set_err(s->idx, "category policy: %s", msg);
            return IMT_E_INVALID;
        }
    }
    /* a copy: the sink keeps its inventory to check later records' slots */
    *out = imt__malloc(s->nlists * sizeof **out);
    if (!*out) return IMT_E_NOMEM;
    memcpy(*out, s->lists, s->nlists * sizeof **out);
    *nout = s->nlists;
    return IMT_OK;
}

/* One import: what the batches share. */
typedef struct imp {
    imt_index *idx;
    const imt_import_opts *o;
    const char *path;
    imt__idx_format f;
    const char *sha;
    imt__idx_writer w;
    int begun;
    imt__idx_list_meta *metas;
    size_t nmeta;
    uint64_t *per_slot;
    uint32_t list_id;
    uint64_t merge_bad;          /* bad records the merge found */
    int parsed;                  /* the parse ended: this batch is the last */
    imt_import_stats *st;
    int fd;                      /* the list (text and JSON parsers read it in order) */
    uint64_t fsize, ndig;        /* its size; digests in the batches so far */
    uint64_t budget;
} imp;

#define STAGE(c, name) do { if ((c)->o->stage) (c)->o->stage((c)->o->progress_opaque, name); } while (0)

/* The lists to create (the export's inventory, or one from the options)
 * and the write transaction. Format and version are set after the parse. */
static imt_err imp_begin(imp *c, imt__idx_sink *s)
{
    imt_err err = IMT_OK;
    const imt_import_opts *o = c->o;
    char pmsg[160];
    if (s->nlists) {
        IMT_TRY(inventory_lists(s, o, &c->metas, &c->nmeta));
    } else {
        c->metas = imt__calloc(1, sizeof *c->metas);
        if (!c->metas) return IMT_E_NOMEM;
        c->nmeta = 1;
        imt__idx_list_meta *m = &c->metas[0];
        if (o->name && *o->name) snprintf(m->name, sizeof m->name, "%s", o->name);
        else {
            const char *b = strrchr(c->path, '/');
            snprintf(m->name, sizeof m->name, "%s", b ? b + 1 : c->path);
        }
        snprintf(m->file_sha256, sizeof m->file_sha256, "%s", c->sha);
        snprintf(m->scheme, sizeof m->scheme, "%s",
                 o->scheme && *o->scheme ? o->scheme : (c->f == IF_VICS ? "projectvic" : "custom"));
        m->import_time = o->import_time ? o->import_time : (int64_t)time(NULL);
        m->known_good = o->known_good >= 0 ? o->known_good : (c->f == IF_NSRL);
        if (imt__idx_policy_resolve(imt__idx_policy_default(m->scheme, m->known_good), o->policy, m->policy,
                               sizeof m->policy, pmsg, sizeof pmsg) != IMT_OK) {
            imt__idx_set_err(c->idx, "category policy: %s", pmsg);
            return IMT_E_INVALID;
        }
    }
    c->per_slot = imt__calloc(c->nmeta, sizeof *c->per_slot);
    if (!c->per_slot) return IMT_E_NOMEM;
    imt__idx_snapshot_end(c->idx);
    c->begun = 1;
    IMT_TRY(imt__idx_writer_begin(c->idx, &c->w));
    STAGE(c, "begin");
    if (!o->again) IMT_TRY(imt__idx_writer_check_new(&c->w, c->metas, c->nmeta, c->path));
    c->list_id = c->w.h.next_list;
    if ((uint64_t)c->w.h.next_list + c->nmeta > UINT32_MAX) {
        imt__idx_set_err(c->idx, "%s: too many lists", c->idx->path);
        return IMT_E_TOO_LARGE;
    }
    c->w.h.next_list += (uint32_t)c->nmeta;
cleanup:
    return err;
}

/* Merge the sink's batch into the write transaction (begun on the first). */
static imt_err imp_flush(void *opaque, imt__idx_sink *s)
{
    imt_err err = IMT_OK;
    imp *c = opaque;
    if (!s->n) return IMT_OK;
    if (!c->begun) IMT_TRY(imp_begin(c, s));
    uint64_t bad0 = s->bad;
    IMT_TRY(imt__idx_writer_merge(&c->w, s, c->list_id, c->metas, c->nmeta, c->per_slot, c->st));
    c->merge_bad += s->bad - bad0;
    /* the digests the list holds, from the part read so far, for the
     * filter of the runs (runs.c; at the first run): 0 when the parser
     * does not read the descriptor (NSRL: SQLite does) */
    for (size_t i = 0; i < s->n; i++) c->ndig += (uint64_t)__builtin_popcount(s->recs[i].kinds & ~KB_PDQ);
    off_t pos = c->fd >= 0 ? lseek(c->fd, 0, SEEK_CUR) : -1;
    c->w.est_digests = pos > 0 && c->fsize > (uint64_t)pos
                           ? (uint64_t)((double)c->ndig * (double)c->fsize / (double)pos * 1.25) : 0;
    c->w.bloom_cap = c->budget / 4;
    /* a batch before the last one: its digests go to a sorted run */
    IMT_TRY(imt__idx_writer_digests(&c->w, s, !c->parsed));
    IMT_TRY(imt__idx_writer_delta(&c->w));
    c->st->batches++;
cleanup:
    return err;
}

imt_err imt_index_import(imt_index *idx, const char *path, const imt_import_opts *opts,
                         imt_import_stats *stats)
{
    imt_err err = IMT_OK;
    imt_import_opts o;
    imt_import_stats st;
    imt__idx_sink s;
    imp c;
    imt__idx_videos vids = {0};
    int fd = -1;
    char sha[65] = {0}, fmtname[24] = {0}, policy[IDX_POLICY_MAX], pmsg[160];
    memset(&s, 0, sizeof s);
    memset(&st, 0, sizeof st);
    memset(&c, 0, sizeof c);
    if (!idx || !path) return IMT_E_INVALID;
    if (opts) o = *opts;
    else imt_import_opts_init(&o);
    err = imt__idx_writable(idx);
    if (err) return err;
    idx->err[0] = '\0';
    uint64_t budget = o.memory_budget ? o.memory_budget : IMT_IMPORT_MEMORY_DEFAULT;
    if (budget < IMT_IMPORT_MEMORY_MIN) {
        imt__idx_set_err(idx, "an import memory budget of %llu bytes: at least %llu",
                    (unsigned long long)budget, (unsigned long long)IMT_IMPORT_MEMORY_MIN);
        return IMT_E_INVALID;
    }
    {
        /* the list record's fields have fixed sizes: refuse, never cut */
        imt__idx_list_meta *lm = NULL;
        const struct { const char *what, *v; size_t cap; } f[3] = {
            {"list name", o.name, sizeof lm->name},
            {"list version", o.version, sizeof lm->version},
            {"category scheme", o.scheme, sizeof lm->scheme}};
        for (int i = 0; i < 3; i++)
            if (f[i].v && strlen(f[i].v) >= f[i].cap) {
                imt__idx_set_err(idx, "a %s of %zu bytes: at most %zu", f[i].what, strlen(f[i].v),
                                 f[i].cap - 1);
                return IMT_E_INVALID;
            }
    }
    c.idx = idx;
    c.fd = -1;
    c.budget = budget;
    c.o = &o;
    c.path = path;
    c.sha = sha;
    c.st = &st;
    s.idx = idx;
    s.err = idx->err;
    s.errcap = sizeof idx->err;
    s.path = path;
    s.skip_bad = o.skip_bad;
    s.def_cat = o.category;
    s.progress = o.progress;
    s.progress_opaque = o.progress_opaque;
    /* a quarter for the batch's records; the merge's arrays (digest keys,
     * the batch table) take about as much again */
    s.batch_bytes = (size_t)(budget / 4 < SIZE_MAX ? budget / 4 : SIZE_MAX);
    s.flush = imp_flush;
    s.flush_opaque = &c;
    imt__idx_format f = IF_AUTO;
    if (o.format && *o.format && !imt__idx_format_by_name(o.format, &f)) {
        imt__idx_set_err(idx, "unknown format '%s'", o.format);
        err = IMT_E_INVALID;
        goto cleanup;
    }
    /* the policy is checked before the file is read (a typo costs nothing),
     * and resolved over its default once the format is known */
    if (imt__idx_policy_resolve(imt__idx_policy_default(NULL, 0), o.policy, policy, sizeof policy, pmsg,
                           sizeof pmsg) != IMT_OK) {
        imt__idx_set_err(idx, "category policy: %s", pmsg);
        err = IMT_E_INVALID;
        goto cleanup;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        imt__idx_set_err(idx, "%s: %s", path, strerror(errno));
        err = errno == ENOENT ? IMT_E_NOT_FOUND : IMT_E_IO;
        goto cleanup;
    }
    struct stat sb;
    int is_dir = fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode) && (f == IF_AUTO || f == IF_VPDQ);
    if (is_dir) f = IF_VPDQ; /* a folder of vPDQ hash files: one list of videos */
    else if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        imt__idx_set_err(idx, "%s: not a regular file", path);
        err = IMT_E_IO;
        goto cleanup;
    }
    if (!is_dir && sb.st_size == 0) {
        imt__idx_set_err(idx, "%s: the file is empty", path);
        err = IMT_E_EMPTY;
        goto cleanup;
    }
    c.fd = is_dir ? -1 : fd; /* a folder of vPDQ files: no progress estimate */
    c.fsize = (uint64_t)sb.st_size;
    if (is_dir) IMT_TRY(imt__idx_vpdq_dir_sha256(&s, path, sha));
    else IMT_TRY(file_sha256(&s, fd, sha));
    if (f == IF_AUTO && !is_dir && imt__idx_vpdq_sniff(fd)) f = IF_VPDQ;
    if (!is_dir) IMT_TRY(imt__idx_detect(&s, fd, &f)); /* detect.c: AUTO stays only for blank text */
    c.f = f;
    if (!is_dir && lseek(fd, 0, SEEK_SET) < 0) {
        err = imt__idx_sink_fail(&s, IMT_E_IO, "cannot seek: %s", strerror(errno));
        goto cleanup;
    }
    imt_err perr;
    if (f == IF_VPDQ) {
        perr = imt__idx_parse_vpdq(&s, path, is_dir ? -1 : fd, o.video_id, &vids);
        snprintf(fmtname, sizeof fmtname, "vpdq");
    } else if (f == IF_NSRL) {
        perr = imt__idx_parse_nsrl(&s, path);
        snprintf(fmtname, sizeof fmtname, "nsrl-rdsv3");
    } else if (f == IF_VICS || f == IF_JSONL) {
        perr = imt__idx_parse_vics(&s, fd, f, fmtname, sizeof fmtname);
    } else {
        imt__idx_format actual = f;
        perr = imt__idx_parse_text(&s, fd, f, &actual);
        snprintf(fmtname, sizeof fmtname, "%s", imt__idx_format_name(actual));
    }
    if (perr != IMT_OK) {
        /* the parser stopped at a bad line (or a batch's merge failed): a
         * conflicting duplicate before that line wins */
        if (s.n && !s.flush_failed) {
            char saved[512];
            memcpy(saved, idx->err, sizeof saved);
            imt_err d = imp_flush(&c, &s);
            if (d == IMT_E_DUPLICATE) err = d;
            else {
                memcpy(idx->err, saved, sizeof saved);
                err = perr;
            }
        } else err = perr;
        goto cleanup;
    }
    STAGE(&c, "parsed");
    uint64_t good = s.total;
    c.parsed = 1;
    IMT_TRY(imp_flush(&c, &s));
    if (c.begun) {
        uint64_t folded;
        IMT_TRY(imt__idx_writer_runs(&c.w));
        /* the digest deltas into their tables when past a sixteenth (or
         * on --compact; never with --no-compact) */
        if (o.compact != 0) IMT_TRY(imt__idx_fold_digests(&c.w, o.compact > 0, &folded));
    }
    if (!c.begun || good == c.merge_bad) {
        if (s.bad) imt__idx_set_err(idx, "%s: no valid record (%llu bad)", path, (unsigned long long)s.bad);
        else imt__idx_set_err(idx, "%s: the list holds no hash", path);
        err = IMT_E_EMPTY;
        goto cleanup;
    }
    st.records = good - c.merge_bad;
    st.bad = s.bad;
    memcpy(st.bad_examples, s.examples, sizeof st.bad_examples);
    snprintf(st.format, sizeof st.format, "%s", fmtname);
    if (!s.nlists) {
        imt__idx_list_meta *m = &c.metas[0];
        snprintf(m->version, sizeof m->version, "%s", o.version && *o.version ? o.version : s.version);
        snprintf(m->format, sizeof m->format, "%s", fmtname);
    }
    imt__idx_writer *w = &c.w;
    STAGE(&c, "entries");
    STAGE(&c, "digests");
    STAGE(&c, "delta");
    int do_compact = o.compact > 0 || (o.compact < 0 && w->h.delta_n > imt__idx_delta_max) ||
                     (o.compact < 0 && w->h.delta_n > 4096 && w->h.main_n == 0);
    if (do_compact && (w->h.delta_n || o.compact > 0)) {
        IMT_TRY(imt__idx_compact(w, o.compact > 0, &st.pdq_written));
        st.compacted = 1;
        STAGE(&c, "compact");
    }
    for (size_t i = 0; i < c.nmeta; i++) {
        const imt__idx_list_meta *m = &c.metas[i];
        if (s.nlists && !s.bad && c.per_slot[i] != m->entries) {
            imt__idx_set_err(idx, "%s: list %u of the export says it has %llu entries, %llu name it",
                        path, (unsigned)m->src_id, (unsigned long long)m->entries,
                        (unsigned long long)c.per_slot[i]);
            err = IMT_E_PARSE;
            goto cleanup;
        }
        imt_list_info li;
        memset(&li, 0, sizeof li);
        li.id = c.list_id + (uint32_t)i;
        li.name = m->name;
        li.version = m->version;
        li.format = m->format;
        li.file_sha256 = m->file_sha256;
        li.scheme = m->scheme;
        li.import_time = m->import_time;
        li.known_good = m->known_good;
        li.policy = m->policy;
        li.entries = c.per_slot[i];
        IMT_TRY(imt__idx_writer_list(w, &li));
    }
    if (f == IF_VPDQ) IMT_TRY(imt__idx_video_write(w->txn, idx, &vids, c.list_id, o.category));
    IMT_TRY(imt__idx_writer_commit(idx, w, o.stage, o.progress_opaque));
    st.list_id = c.list_id; /* committed: non-zero tells the caller so */
    st.lists = (uint32_t)c.nmeta;
    STAGE(&c, "done");
cleanup:
    imt__idx_writer_free(&c.w);
    if (c.begun) {
        /* re-read the handle's snapshot; after a commit, a failure here
         * must not read as "nothing imported" */
        imt_err e2 = imt__idx_snapshot_begin(idx);
        if (e2 != IMT_OK && st.list_id)
            imt__idx_set_err(idx, "%s: imported as list %u (committed), but re-reading the index "
                        "failed (%s): close and reopen it", path, (unsigned)st.list_id,
                        imt_strerror(e2));
        if (err == IMT_OK) err = e2;
    }
    if (fd >= 0) close(fd);
    imt__idx_sink_free(&s);
    imt__idx_videos_free(&vids);
    imt__free(c.metas);
    imt__free(c.per_slot);
    if (stats) *stats = st;
    return err;
}
