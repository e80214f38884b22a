/* engine/index/blocks.c -- block hashes of known files, for sampling disk
 * images (Garfinkel and McCarrin, DFRWS 2015; NPS hashdb's rules for
 * non-probative blocks). Additive: its own LMDB table "blocks" (created by
 * the first imt_index_add_blocks; an index without it opens as before and
 * its format version is unchanged):
 *   key 8 bytes   a block's key (imt_block_key)  -> list id, file id, block
 *                                                    index (3 x u32, LE)
 *   key 9 bytes   'F', list id, file id (BE)     -> size u64, md5[16],
 *                                                    sha1[20], blocks u32,
 *                                                    stored u32, name
 * A blockset holds 16 bytes per kept block in memory until it is written. */
#include "index.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCKS_DB "blocks"

static const char *const verdict_names[IMT_BLOCK__COUNT] = {
    "probative", "few-values", "ramp", "low-entropy", "repeating", "shared"};

const char *imt_block_verdict_name(imt_block_verdict v)
{
    return (unsigned)v < IMT_BLOCK__COUNT ? verdict_names[v] : "unknown";
}

static uint64_t word(const uint8_t *p, int w)
{
    uint64_t v = 0;
    for (int i = 0; i < w; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Words of w bytes rising or falling by one constant step (mod 2^(8w)). */
static int is_ramp(const uint8_t *b, int w)
{
    uint64_t mask = w == 8 ? ~0ull : ((1ull << (8 * w)) - 1);
    uint64_t step = (word(b + w, w) - word(b, w)) & mask;
    for (int i = 2 * w; i + w <= IMT_BLOCK_SIZE; i += w)
        if (((word(b + i, w) - word(b + i - w, w)) & mask) != step) return 0;
    return 1;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

imt_block_verdict imt_block_classify(const uint8_t *b)
{
    unsigned hist[256] = {0};
    for (int i = 0; i < IMT_BLOCK_SIZE; i++) hist[b[i]]++;
    int distinct = 0;
    double h = 0.0;
    for (int v = 0; v < 256; v++) {
        if (!hist[v]) continue;
        distinct++;
        double p = (double)hist[v] / IMT_BLOCK_SIZE;
        h -= p * log2(p);
    }
    if (distinct < 16) return IMT_BLOCK_FEW_VALUES;
    if (is_ramp(b, 2) || is_ramp(b, 4) || is_ramp(b, 8)) return IMT_BLOCK_RAMP;
    if (h < 5.0) return IMT_BLOCK_LOW_ENTROPY;
    uint32_t w[IMT_BLOCK_SIZE / 4];
    memcpy(w, b, sizeof w);
    qsort(w, IMT_BLOCK_SIZE / 4, sizeof w[0], u32_cmp);
    int dw = 1;
    for (int i = 1; i < IMT_BLOCK_SIZE / 4; i++) dw += w[i] != w[i - 1];
    if (dw < 64) return IMT_BLOCK_REPEATING;
    return IMT_BLOCK_PROBATIVE;
}

uint64_t imt_block_key(const uint8_t *b)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!EVP_Digest(b, IMT_BLOCK_SIZE, md, &len, EVP_md5(), NULL) || len < 8) return 0;
    uint64_t k = 0;
    for (int i = 0; i < 8; i++) k = k << 8 | md[i];
    return k;
}

/* ---- gathering --------------------------------------------------------- */
typedef struct bkey {
    uint64_t key;
    uint32_t file, block;
} bkey;

typedef struct bfile {
    uint32_t id;
    uint64_t size;
    uint8_t md5[16], sha1[20];
    uint32_t blocks, stored;
    char *name;
} bfile;

struct imt_blockset {
    bkey *k;
    size_t n, cap;
    bfile *f;
    size_t nf, capf;
    imt_blockset_stats st;
};

imt_err imt_blockset_create(imt_blockset **out)
{
    if (!out) return IMT_E_INVALID;
    *out = imt__calloc(1, sizeof **out);
    return *out ? IMT_OK : IMT_E_NOMEM;
}

void imt_blockset_free(imt_blockset *bs)
{
    if (!bs) return;
    for (size_t i = 0; i < bs->nf; i++) imt__free(bs->f[i].name);
    imt__free(bs->f);
    imt__free(bs->k);
    imt__free(bs);
}

static imt_err grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return IMT_OK;
    size_t nc = *cap ? *cap * 2 : 256, bytes;
    while (nc < need) nc *= 2;
    if (!imt__mul_ok(nc, elem, &bytes)) return IMT_E_NOMEM;
    void *np = imt__realloc(*p, bytes);
    if (!np) return IMT_E_NOMEM;
    *p = np;
    *cap = nc;
    return IMT_OK;
}

imt_err imt_blockset_add_fd(imt_blockset *bs, uint32_t file_id, const char *name, int fd,
                            uint64_t size, const uint8_t md5[16], const uint8_t sha1[20])
{
    if (!bs || fd < 0 || !md5 || !sha1) return IMT_E_INVALID;
    imt_err err = IMT_OK;
    uint8_t *buf = imt__malloc(IMT_BLOCK_SIZE);
    if (!buf) return IMT_E_NOMEM;
    IMT_TRY(grow((void **)&bs->f, &bs->capf, bs->nf + 1, sizeof *bs->f));
    bfile *f = &bs->f[bs->nf];
    memset(f, 0, sizeof *f);
    f->id = file_id;
    f->size = size;
    memcpy(f->md5, md5, 16);
    memcpy(f->sha1, sha1, 20);
    f->name = imt__strdup(name ? name : "");
    if (!f->name) { err = IMT_E_NOMEM; goto cleanup; }
    size_t k0 = bs->n;
    uint64_t nb = size / IMT_BLOCK_SIZE;
    for (uint64_t i = 0; i < nb; i++) {
        size_t got = 0;
        while (got < IMT_BLOCK_SIZE) {
            ssize_t r = pread(fd, buf + got, IMT_BLOCK_SIZE - got,
                              (off_t)(i * IMT_BLOCK_SIZE + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got < IMT_BLOCK_SIZE) {
            bs->n = k0;
            imt__free(f->name);
            err = IMT_E_IO;
            goto cleanup;
        }
        imt_block_verdict v = imt_block_classify(buf);
        if (v != IMT_BLOCK_PROBATIVE) {
            bs->st.dropped[v]++;
            continue;
        }
        IMT_TRY(grow((void **)&bs->k, &bs->cap, bs->n + 1, sizeof *bs->k));
        bs->k[bs->n++] = (bkey){imt_block_key(buf), file_id, (uint32_t)i};
    }
    f->blocks = (uint32_t)nb;
    bs->nf++;
    bs->st.files++;
    bs->st.blocks += nb;
cleanup:
    imt__free(buf);
    return err;
}

static int bkey_cmp(const void *a, const void *b)
{
    const bkey *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    return x->block < y->block ? -1 : x->block > y->block;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static int file_cmp(const void *a, const void *b)
{
    uint32_t x = ((const bfile *)a)->id, y = ((const bfile *)b)->id;
    return x < y ? -1 : x > y;
}

imt_err imt_index_add_blocks(imt_index *idx, imt_blockset *bs, uint32_t list_id,
                             imt_blockset_stats *stats)
{
    imt_err err = IMT_OK;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    uint8_t *val = NULL;
    if (!idx || !bs) return IMT_E_INVALID;
    IMT_TRY(imt__idx_writable(idx));
    /* Keys held by more than one known file say nothing about which:
     * dropped. Copies of one file (the same MD5) are one file here, and
     * several places in one file keep the first. */
    if (bs->n > 1) qsort(bs->k, bs->n, sizeof *bs->k, bkey_cmp);
    qsort(bs->f, bs->nf, sizeof *bs->f, file_cmp);
    size_t out = 0;
    for (size_t i = 0; i < bs->n;) {
        size_t j = i + 1;
        int shared = 0;
        while (j < bs->n && bs->k[j].key == bs->k[i].key) {
            if (bs->k[j].file != bs->k[i].file) {
                bfile a = {.id = bs->k[i].file}, b = {.id = bs->k[j].file};
                const bfile *fa = bsearch(&a, bs->f, bs->nf, sizeof *bs->f, file_cmp);
                const bfile *fb = bsearch(&b, bs->f, bs->nf, sizeof *bs->f, file_cmp);
                if (!fa || !fb || memcmp(fa->md5, fb->md5, 16) != 0) shared = 1;
            }
            j++;
        }
        if (shared) bs->st.dropped[IMT_BLOCK_SHARED] += j - i;
        else {
            bs->k[out++] = bs->k[i];
            bs->st.repeats += j - i - 1;
        }
        i = j;
    }
    bs->n = out;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc) { err = imt__idx_mdb_err(idx, rc, "starting the block write"); goto cleanup; }
    rc = mdb_dbi_open(txn, BLOCKS_DB, MDB_CREATE, &dbi);
    if (rc) { err = imt__idx_mdb_err(idx, rc, "opening the blocks table"); goto cleanup; }
    for (size_t i = 0; i < bs->n; i++) {
        uint8_t k[8], v[12];
        put_be64(k, bs->k[i].key);
        put_le32(v, list_id);
        put_le32(v + 4, bs->k[i].file);
        put_le32(v + 8, bs->k[i].block);
        MDB_val mk = {8, k}, mv = {12, v};
        /* a key stored by an earlier import keeps its first place */
        rc = mdb_put(txn, dbi, &mk, &mv, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            bs->st.dropped[IMT_BLOCK_SHARED]++;
            continue;
        }
        if (rc) { err = imt__idx_mdb_err(idx, rc, "writing a block"); goto cleanup; }
        bs->st.stored++;
        bfile key = {.id = bs->k[i].file};
        bfile *f = bsearch(&key, bs->f, bs->nf, sizeof *bs->f, file_cmp);
        if (f) f->stored++;
    }
    for (size_t i = 0; i < bs->nf; i++) {
        const bfile *f = &bs->f[i];
        size_t nl = strlen(f->name), vl = 8 + 16 + 20 + 4 + 4 + nl;
        uint8_t k[9];
        k[0] = 'F';
        put_be32(k + 1, list_id);
        put_be32(k + 5, f->id);
        imt__free(val);
        val = imt__malloc(vl);
        if (!val) { err = IMT_E_NOMEM; goto cleanup; }
        for (int b = 0; b < 8; b++) val[b] = (uint8_t)(f->size >> (8 * b));
        memcpy(val + 8, f->md5, 16);
        memcpy(val + 24, f->sha1, 20);
        put_le32(val + 44, f->blocks);
        put_le32(val + 48, f->stored);
        memcpy(val + 52, f->name, nl);
        MDB_val mk = {9, k}, mv = {vl, val};
        rc = mdb_put(txn, dbi, &mk, &mv, 0);
        if (rc) { err = imt__idx_mdb_err(idx, rc, "writing a block file"); goto cleanup; }
    }
    MDB_stat ms;
    if (mdb_stat(txn, dbi, &ms) == 0) {
        bs->st.db_bytes = (uint64_t)ms.ms_psize *
                          (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages);
        bs->st.bytes_per_block = ms.ms_entries ? (double)bs->st.db_bytes / (double)ms.ms_entries : 0;
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) { err = imt__idx_mdb_err(idx, rc, "committing the blocks"); goto cleanup; }
cleanup:
    if (txn) mdb_txn_abort(txn);
    imt__free(val);
    if (stats) *stats = bs->st;
    return err;
}

/* ---- reading ----------------------------------------------------------- */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

struct imt_block_reader {
    imt_index *idx;
    MDB_txn *txn;
    MDB_dbi dbi;
    char *name;
};

imt_err imt_block_reader_open(imt_block_reader **out, imt_index *idx)
{
    if (!out || !idx) return IMT_E_INVALID;
    *out = NULL;
    imt_block_reader *r = imt__calloc(1, sizeof *r);
    if (!r) return IMT_E_NOMEM;
    r->idx = idx;
    /* The table handle is made the environment's first, in a transaction
     * of its own committed at once (under a lock): LMDB 0.9 leaks the name
     * of a handle that two open transactions both open first. */
    pthread_mutex_lock(&open_lock);
    MDB_txn *t0 = NULL;
    MDB_dbi d0;
    int rc = mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &t0);
    if (!rc) {
        rc = mdb_dbi_open(t0, BLOCKS_DB, 0, &d0);
        if (rc) mdb_txn_abort(t0);
        else rc = mdb_txn_commit(t0);
    }
    pthread_mutex_unlock(&open_lock);
    if (rc) {
        imt__free(r);
        if (rc == MDB_NOTFOUND) {
            imt__idx_set_err(idx, "%s: the index holds no block hashes (index import-files "
                             "--blocks)", idx->path);
            return IMT_E_NOT_FOUND;
        }
        return imt__idx_mdb_err(idx, rc, "opening the blocks table");
    }
    rc = mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &r->txn);
    if (rc) {
        imt_err e = imt__idx_mdb_err(idx, rc, "reading the blocks");
        imt__free(r);
        return e;
    }
    rc = mdb_dbi_open(r->txn, BLOCKS_DB, 0, &r->dbi);
    if (rc) {
        mdb_txn_abort(r->txn);
        imt__free(r);
        if (rc == MDB_NOTFOUND) {
            imt__idx_set_err(idx, "%s: the index holds no block hashes (index import-files "
                             "--blocks)", idx->path);
            return IMT_E_NOT_FOUND;
        }
        return imt__idx_mdb_err(idx, rc, "opening the blocks table");
    }
    *out = r;
    return IMT_OK;
}

void imt_block_reader_close(imt_block_reader *r)
{
    if (!r) return;
    if (r->txn) mdb_txn_abort(r->txn);
    imt__free(r->name);
    imt__free(r);
}

imt_err imt_block_lookup(imt_block_reader *r, uint64_t key, imt_block_hit *hit, int *found)
{
    if (!r || !hit || !found) return IMT_E_INVALID;
    uint8_t k[8];
    put_be64(k, key);
    MDB_val mk = {8, k}, mv;
    int rc = mdb_get(r->txn, r->dbi, &mk, &mv);
    *found = 0;
    if (rc == MDB_NOTFOUND) return IMT_OK;
    if (rc) return imt__idx_mdb_err(r->idx, rc, "looking up a block");
    if (mv.mv_size != 12) return IMT_E_INDEX_CORRUPT;
    const uint8_t *v = mv.mv_data;
    hit->list_id = get_le32(v);
    hit->file_id = get_le32(v + 4);
    hit->block = get_le32(v + 8);
    *found = 1;
    return IMT_OK;
}

imt_err imt_block_file_get(imt_block_reader *r, uint32_t list_id, uint32_t file_id,
                           imt_block_file *out)
{
    if (!r || !out) return IMT_E_INVALID;
    uint8_t k[9];
    k[0] = 'F';
    put_be32(k + 1, list_id);
    put_be32(k + 5, file_id);
    MDB_val mk = {9, k}, mv;
    int rc = mdb_get(r->txn, r->dbi, &mk, &mv);
    if (rc == MDB_NOTFOUND) return IMT_E_NOT_FOUND;
    if (rc) return imt__idx_mdb_err(r->idx, rc, "reading a block file");
    if (mv.mv_size < 52) return IMT_E_INDEX_CORRUPT;
    const uint8_t *v = mv.mv_data;
    memset(out, 0, sizeof *out);
    out->list_id = list_id;
    out->file_id = file_id;
    for (int b = 0; b < 8; b++) out->size |= (uint64_t)v[b] << (8 * b);
    memcpy(out->md5, v + 8, 16);
    memcpy(out->sha1, v + 24, 20);
    out->blocks = get_le32(v + 44);
    out->stored = get_le32(v + 48);
    imt__free(r->name);
    r->name = imt__malloc(mv.mv_size - 52 + 1);
    if (!r->name) return IMT_E_NOMEM;
    memcpy(r->name, v + 52, mv.mv_size - 52);
    r->name[mv.mv_size - 52] = '\0';
    out->name = r->name;
    return IMT_OK;
}

imt_err imt_block_reader_counts(imt_block_reader *r, uint64_t *files, uint64_t *blocks)
{
    if (!r) return IMT_E_INVALID;
    MDB_cursor *c;
    uint64_t nf = 0, nb = 0;
    int rc = mdb_cursor_open(r->txn, r->dbi, &c);
    if (rc) return imt__idx_mdb_err(r->idx, rc, "counting the blocks");
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size == 8) nb++;
        else nf++;
    }
    mdb_cursor_close(c);
    if (files) *files = nf;
    if (blocks) *blocks = nb;
    return IMT_OK;
}
