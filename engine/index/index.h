/* engine/index/index.h -- internals of the known-hash index (docs/INDEX.md
 * describes the on-disk layout and the search). */
#ifndef IMT_INDEX_H
#define IMT_INDEX_H

#include "common/common.h"

#include <lmdb.h>
#include <pthread.h>

/* ---- on-disk constants ------------------------------------------------- */
/* 3: list records end with their category policy (policy.c). Format 2
 * (no policy: the scheme's default) is read, and upgraded by a write.
 * 4: digest-only entries stored by kind (a digest's value holds the entry
 * id and a membership class, no entry record: see IDX_DIG_COMPACT); a
 * format 2 or 3 index is a format 4 index without such entries, so it is
 * read, and a write upgrades it. Older builds refuse format 4.
 * 5: the compacted PDQ hashes may be in several MIH segments ("levels",
 * below): level 0 is format 4's compacted segment, levels 1.. are described
 * by the meta record "levels". A format 2-4 index is a format 5 index with
 * no level beyond 0, so it is read as it is, and a write upgrades it (and
 * writes "levels"). Older builds refuse format 5: they would not search
 * the levels. */
#define IDX_FORMAT_VERSION 5u
#define IDX_FORMAT_MIN 2u
#define IDX_MAGIC "IMTINDEX"
#define IDX_MAX_TABLES 32
#define IDX_TXN_POOL 64 /* read transactions kept for cursors, at most */
#define IDX_DELTA_CHUNK 65536u      /* PDQ records per delta chunk */
#define IDX_MAX_ENTRIES 0xFFFFFFF0u /* entry ids and positions are uint32 */
/* Zero bytes before each array of the compacted segment ("pdq", "ent",
 * "mihNN"). A large LMDB value sits on overflow pages and begins 16 bytes
 * (LMDB's page header) after a page boundary of the map; 16 + 48 puts the
 * arrays on a 64-byte boundary, so no 32-byte hash straddles two cache
 * lines: half of them did at an offset of 16, and a candidate's hash is a
 * random access, so that cost one cache miss in three. Correctness never
 * depends on the alignment (a small value in a leaf page has none). */
#define IDX_SEG_LEAD 48u

/* Levels of compacted PDQ segments (an LSM-style cascade; docs/INDEX.md,
 * "Adding lists"). Level 0 is the oldest and largest (the keys "pdq",
 * "ent", "mihNN" of format 4); levels 1..count ("1.pdq", "1.ent",
 * "1.mihNN", ...) are each at least IDX_LEVEL_FACTOR times smaller than
 * the one before. When the delta overflows, it and the smaller levels
 * that are not IDX_LEVEL_FACTOR times its size are rebuilt as one level:
 * a hash is rewritten about IDX_LEVEL_FACTOR times per level it climbs,
 * never the whole index for a small delta (unless the levels above it
 * have grown to a FACTOR-th of level 0). */
#define IDX_MAX_LEVELS 8            /* levels beyond 0 */
#define IDX_LEVEL_FACTOR 8u
/* One level's description in the meta record "levels": hashes, MIH
 * tables and widths, SHA-256 of its arrays (as main_sum for level 0). */
typedef struct imt__idx_level {
    uint32_t n;
    uint32_t m;
    uint8_t bits[32];
    uint8_t sum[32];
} imt__idx_level;
_Static_assert(sizeof(imt__idx_level) == 72, "a level's record is 72 bytes");
/* The record "levels": count (u32 LE), then count imt__idx_level (72
 * bytes each, little-endian). Present in every format 5 index. */
typedef struct imt__idx_levels {
    uint32_t count;
    imt__idx_level l[IDX_MAX_LEVELS];
} imt__idx_levels;
/* Delta hashes above which an import compacts (auto mode): the delta
 * becomes a level. A variable so that tests can make levels from small
 * lists (import.c; 65,536 by default). */
extern uint32_t imt__idx_delta_max;

/* A digest's value in the md5/sha1/sha256 tables: the entry id (u32), 4
 * bytes, for an entry with a record in "entries"; or 8 bytes, the entry id
 * and a membership class id (u32 LE each), for a COMPACT entry: a
 * digest-only entry of one kind, quality unknown, with one membership
 * without an external id, whose list, category and label are the class's
 * record in "cls". A compact entry has no record in "entries" (it costs
 * its digest's key and value only). A later record that changes it
 * (another list, another hash) writes its record and turns the value into
 * 4 bytes ("promotion"). */
#define IDX_DIG_COMPACT 8u
#define IDX_CLS_NONE UINT32_MAX
/* Classes one import may create (its digest-only records with more
 * distinct (list, category, label) triples get entry records). */
#define IDX_MAX_CLASSES 65536u

/* Kinds held by an entry (bit set in its record). */
#define KB_PDQ 1u
#define KB_MD5 2u
#define KB_SHA1 4u
#define KB_SHA256 8u

/* The header record ("meta"/"header"), little-endian fixed layout. */
typedef struct imt__idx_header {
    char magic[8];
    uint32_t format;
    uint32_t mih_m;          /* tables of the compacted segment; 0 if empty */
    int64_t created;
    uint64_t generation;
    uint32_t next_list;      /* next list id (ids start at 1) */
    uint32_t next_entry;     /* next entry id (ids start at 0) */
    uint32_t main_n;         /* PDQ hashes in the compacted segment */
    uint32_t delta_n;        /* PDQ hashes in the delta segment */
    uint64_t n_pdq, n_md5, n_sha1, n_sha256, n_members;
    uint8_t mih_bits[IDX_MAX_TABLES];
    char tool[32];           /* imgtriage version that created the index */
    uint8_t main_sum[32];    /* SHA-256 over the compacted arrays and tables */
} imt__idx_header;

/* One compacted segment (a level) of a search view. */
typedef struct imt__idx_seg {
    uint32_t n;
    const uint8_t *pdq;          /* n x 32 bytes */
    const uint32_t *ent;         /* n entry ids */
    int m;                       /* MIH tables */
    int bits[IDX_MAX_TABLES];
    int start[IDX_MAX_TABLES];   /* first bit of each substring */
    const uint32_t *off[IDX_MAX_TABLES]; /* 2^bits + 1 offsets */
    const uint32_t *ids[IDX_MAX_TABLES]; /* n positions, by bucket */
} imt__idx_seg;

/* The search view of a snapshot: zero-copy pointers into the map (or copies
 * when LMDB stored a small value unaligned). */
typedef struct imt__idx_view {
    int nseg;                    /* 1 + levels beyond 0 */
    imt__idx_seg seg[IDX_MAX_LEVELS + 1]; /* seg[0]: level 0 (n may be 0) */
    uint64_t compacted;          /* hashes in all levels */
    uint32_t delta_n;
    size_t nchunks;
    const uint8_t **dpdq;        /* per chunk: count x 32 bytes */
    const uint8_t **dent;        /* per chunk: count x uint32 (unaligned) */
    uint32_t *dcount;
    void **owned;                /* copies to free */
    size_t nowned;
} imt__idx_view;

/* The verified-state record's key and record (vcache.c, below). */
typedef struct imt__idx_vkey {
    uint64_t dev, ino, size;
    int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
    uint64_t txnid, last_pgno;   /* of the meta page LMDB reads */
    uint32_t psize, pad;
    uint8_t structure[32];       /* SHA-256 of the meta pages, every branch page and
                                    the leaves of the main DB and one-page tables */
} imt__idx_vkey;
typedef struct imt__idx_vrec {
    char magic[8];               /* "IMTVREC1" */
    imt__idx_vkey key;
    int64_t pages_at;            /* Unix seconds: the full page check */
    int64_t content_at;          /* ... the content check (0: none recorded) */
    uint32_t content_ok, pad2;   /* the searched arrays matched the checksums that */
    char identity[72];           /* ... this index identity (hex, NUL) covers */
    uint8_t check[32];           /* SHA-256 of the bytes above */
} imt__idx_vrec;

struct imt_index {
    MDB_env *env;
    MDB_dbi db_meta, db_lists, db_entries, db_md5, db_sha1, db_sha256, db_seg;
    MDB_dbi db_cls;              /* membership classes (format 4) */
    int has_cls;                 /* 0: a read-only format 2/3 index has none */
    MDB_dbi db_dplus[3];         /* the digest deltas "md5+", "sha1+", "sha256+" */
    int has_dplus;               /* 0: a read-only format 2/3 index has none */
    MDB_dbi db_videos, db_vframes; /* known videos (video.c); has_videos: present */
    int has_videos;
    MDB_txn *rtxn;               /* the handle's snapshot (NULL while writing) */
    size_t snap_txnid;           /* its LMDB transaction id */
    int read_only;
    int nolock;                  /* opened without lock.mdb (index.c: lock_unwritable) */
    int check_content;           /* check the searched arrays at snapshot begin */
    int content_verified;        /* the snapshot's arrays matched their sums */
    int has_delta_sum;           /* the snapshot has a "dsum" meta record */
    uint8_t delta_sum[32];       /* ... holding this */
    char *path;
    imt__idx_header hdr;
    imt__idx_levels levels;      /* levels beyond 0 (count 0 before format 5) */
    imt__idx_view view;
    imt_list_info *lists;        /* strings point into listbuf */
    size_t nlists;
    char *listbuf;
    char identity[65];
    /* the verified-state record (vcache.c), read-only opens only */
    int vc_use;                  /* the open computed vkey: it may store a record */
    int vc_pages;                /* 1: the leaves were taken from vrec, not read */
    int vc_content;              /* 1: content_verified rests on vrec */
    int64_t vc_check_ns;         /* CLOCK_REALTIME when the page check began */
    int64_t verified_at;         /* Unix s: the content check content_verified rests on */
    uint64_t pages_read;         /* pages the open's page check read */
    int vc_stored;               /* this open stored a record */
    imt__idx_vkey vkey;
    imt__idx_vrec vrec;
    int open_cursors;            /* atomic */
    /* Read transactions on the handle's snapshot for the cursors
     * (index.c: the pool): begun with rtxn, taken by imt_cursor_open and
     * given back by imt_cursor_close, so every cursor reads the snapshot
     * the handle's identity names, whatever another process commits. */
    MDB_txn *pool[IDX_TXN_POOL];
    int npool;
    pthread_mutex_t pool_mu;
    char err[512];
};

/* A per-thread hit while searching. */
typedef struct imt__idx_hit {
    uint32_t entry;
    uint16_t dist;
    uint8_t variant;
    uint8_t pad;
    uint32_t query;
} imt__idx_hit;

struct imt_cursor {
    imt_index *idx;
    MDB_txn *txn;
    imt_search_method method;
    imt__idx_hit *hits;
    size_t nhits, caphits;
    imt_match *matches;
    size_t capmatches;
    imt_membership *mem;
    size_t capmem;
    uint32_t *tmp;               /* scan output scratch */
    uint16_t *tmpd;
    const struct imt__idx_kernels *kern; /* distance kernels, chosen at open (scan.c) */
    struct probe *probe;         /* MIH probing scratch (query.c) */
    /* the MIH plan (query.c: build_plan): per radius, the radius of each
     * table (-1: not probed) and the expected cost, to choose MIH or scan */
    int8_t (*plan)[IDX_MAX_TABLES]; /* per level: [257][m], level s at plan + 257 s */
    double *mih_cost;               /* per level: [257], in scanned-hash units */
    struct imt__idx_vq *vq;           /* video query scratch and results (video.c) */
    void (*vq_free)(struct imt__idx_vq *); /* set with vq (close frees through it) */
    struct imt__idx_entry *ents;      /* decoded records of the current results */
    size_t capents;
    uint8_t *synth;              /* a compact entry's record, made by a digest query */
    size_t capsynth, nsynth;
    uint32_t synth_id;           /* its entry id; synth_on while it is current */
    int synth_on;
    imt_query_counters cnt;
};

/* ---- category policy (policy.c) ---------------------------------------- */
#define IDX_POLICY_MAX 512 /* bytes of a stored policy text, NUL included */
/* The default policy of a scheme (canonical text, static). */
const char *imt__idx_policy_default(const char *scheme, int known_good);
/* base with the terms of over (may be NULL) painted over it, in canonical
 * form into out; IMT_E_INVALID with the reason in msg. */
imt_err imt__idx_policy_resolve(const char *base, const char *over, char *out, size_t cap,
                           char *msg, size_t msgcap);
/* Non-zero when text is a complete policy in canonical form. */
int imt__idx_policy_valid(const char *text);
/* The disposition of category cat (-1: none) under a policy text; ALERT
 * for anything the text does not cover. */
imt_disposition imt__idx_policy_eval(const char *text, int32_t cat);

/* ---- parsed list records --------------------------------------------- */
typedef struct imt__idx_rec {
    uint8_t kinds;
    int8_t quality;              /* -1: unknown */
    int32_t category;            /* of imt__idx_sink_add's one membership */
    uint64_t line;
    uint8_t pdq[32], md5[16], sha1[20], sha256[32]; /* of kinds only */
} imt__idx_rec;                       /* a parser's record (the sink keeps less) */

typedef struct imt__idx_sink imt__idx_sink;

/* A list an import creates. One, from the options, unless the input is an
 * export carrying its index's list inventory (imt__idx_sink_add_list). */
typedef struct imt__idx_list_meta {
    char name[512], version[256], format[24], scheme[64], file_sha256[65];
    char policy[IDX_POLICY_MAX];
    int known_good;
    int64_t import_time;
    uint32_t src_id;             /* the list's id in the exported index */
    uint64_t entries;            /* memberships the export says it has */
} imt__idx_list_meta;

/* One membership of a record: slot is the list's index among those added
 * with imt__idx_sink_add_list (0 without an inventory). */
typedef struct imt__idx_member_in {
    uint32_t slot;
    int32_t category;
    const char *label, *ext;
} imt__idx_member_in;

/* A parser hands records and bad lines to the sink. add() copies strings.
 * bad() records a bad record; it returns IMT_OK to go on (skip_bad) or the
 * error to stop with. Both set the sink's error text. */
imt_err imt__idx_sink_add(imt__idx_sink *s, const imt__idx_rec *r, const char *label,
                     const char *ext);
/* Longest label or external id (file name, MediaID) a membership keeps: a
 * longer one is a bad record (parse), never cut. */
#define IDX_MAX_STR 65534u
/* A record with n (1..65535) memberships, in their order. */
imt_err imt__idx_sink_add_members(imt__idx_sink *s, const imt__idx_rec *r, size_t n, const imt__idx_member_in *m);
/* Declare the next list of an export's inventory (slots 0, 1, ... in
 * order); IMT_E_TOO_LARGE past IDX_MAX_LISTS. */
#define IDX_MAX_LISTS 4096
imt_err imt__idx_sink_add_list(imt__idx_sink *s, const imt__idx_list_meta *m);
imt_err imt__idx_sink_bad(imt__idx_sink *s, uint64_t line, imt_err e, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* A fatal error not tied to a record (I/O, SQLite): always stops. */
imt_err imt__idx_sink_fail(imt__idx_sink *s, imt_err e, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The same for a fatal error at a line: "file:line: reason". */
imt_err imt__idx_sink_fail_at(imt__idx_sink *s, uint64_t line, imt_err e, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 4, 5)))
#endif
    ;
const char *imt__idx_sink_path(const imt__idx_sink *s);
void imt__idx_sink_set_version(imt__idx_sink *s, const char *version);


/* ---- import internals ----------------------------------------------------
 * Files and calls, one way (no cycles):
 *   import.c -> detect.c, parse*.c, dedup.c, writer.c, compact.c, sink.c
 *   parse*.c -> sink.c, detect.c        (never the writer: fuzzable alone)
 *   detect.c, dedup.c -> sink.c
 *   compact.c -> writer.c;  writer.c -> dedup.c, sink.c
 * The sink's fields are read by dedup/writer/import; parsers use only the
 * functions above. */

/* A stored record: only the hashes of the kinds it has, in the sink's hash
 * bytes at `hash`, in the order PDQ, MD5, SHA-1, SHA-256. */
typedef struct imt__idx_srec {
    uint64_t line;
    uint64_t hash;
    uint32_t mem;                /* first membership in the sink */
    uint16_t nmem;
    uint8_t kinds;
    int8_t quality;
} imt__idx_srec;

/* A stored membership: list slot, category, string arena offsets. */
typedef struct imt__idx_smem {
    uint32_t slot;
    int32_t category;
    uint32_t label, ext;
} imt__idx_smem;

struct imt__idx_sink {
    imt_index *idx;              /* the importer's (the sink never calls it) */
    char *err;                   /* where error text goes: the index's */
    size_t errcap;
    const char *path;
    imt__idx_srec *recs;
    size_t n, cap;
    uint8_t *hb;                 /* hash bytes */
    size_t nhb, caphb;
    imt__idx_smem *mem;
    size_t nmem, capmem;
    imt__idx_list_meta *lists;        /* an export's inventory; NULL: none */
    size_t nlists;
    char *str;                   /* string arena; offset 0 is "" */
    size_t nstr, capstr;
    uint32_t last_label, last_ext;
    int skip_bad;
    int32_t def_cat;
    uint64_t bad;
    char examples[IMT_IMPORT_BAD_EXAMPLES][256];
    char version[256];
    void (*progress)(void *, uint64_t);
    void *progress_opaque;
    /* Bounded memory: when the batch's buffers (records, hash bytes,
     * memberships, strings; their allocated capacity) reach batch_bytes,
     * flush(flush_opaque, s) takes the batch (the importer merges it into
     * its write transaction) and imt__idx_sink_reset empties it. A pointer,
     * not a call: the sink stays below the writer. NULL: never. */
    imt_err (*flush)(void *, imt__idx_sink *);
    void *flush_opaque;
    size_t batch_bytes;
    int flush_failed;            /* the error came from flush */
    uint64_t total;              /* records added, every batch */
};

void imt__idx_sink_free(imt__idx_sink *s);
/* Empty the batch (records, memberships, strings), keeping the buffers;
 * the list inventory, counters and error state stay. */
void imt__idx_sink_reset(imt__idx_sink *s);
/* Bytes the batch's buffers hold allocated. */
size_t imt__idx_sink_bytes(const imt__idx_sink *s);
/* The hash of kind (KB_*, one bit) of r and its length; NULL if r has none.
 * Inline: the sort and the merge call it several times per record. */
static inline const uint8_t *imt__idx_srec_hash(const imt__idx_sink *s, const imt__idx_srec *r, unsigned kind,
                                           size_t *len)
{
    /* bytes before kind k's hash: the lengths of the lower kinds present */
    static const uint8_t klen[4] = {32, 16, 20, 32};
    unsigned k = (unsigned)__builtin_ctz(kind), below = r->kinds & (kind - 1u);
    *len = klen[k & 3];
    if (!(r->kinds & kind)) return NULL;
    size_t off = ((below & KB_PDQ) ? 32u : 0u) + ((below & KB_MD5) ? 16u : 0u) +
                 ((below & KB_SHA1) ? 20u : 0u);
    return s->hb + r->hash + off;
}
/* The string at arena offset off ("" for 0). */
const char *imt__idx_sink_str(const imt__idx_sink *s, uint32_t off);

/* dedup.c: (first 8 bytes of a hash, record) pairs, sorted by the whole
 * hash then record index; in-list duplicates. */
typedef struct imt__idx_kv {
    uint64_t key;
    uint32_t idx;
    uint32_t pad;                /* free for the caller (the writer: entry id) */
} imt__idx_kv;
uint64_t imt__idx_key64(const uint8_t *h);
imt_err imt__idx_sort_by_hash(const imt__idx_sink *s, unsigned kind, imt__idx_kv *a, size_t n);


/* writer.c: one LMDB write transaction of an import or a compaction. */
typedef struct imt__idx_buf {
    uint8_t *p;
    size_t n, cap;
} imt__idx_buf;
typedef struct imt__idx_pdq_ent {
    uint8_t pdq[32];
    uint32_t entry;
} imt__idx_pdq_ent;
typedef struct imt__idx_writer {
    imt_index *idx;
    MDB_txn *txn;
    imt__idx_header h;
    imt__idx_levels lv;               /* levels beyond 0, as the header: written at commit */
    imt__idx_view v;                  /* the write txn's view before this import */
    imt__idx_pdq_ent *delta_old;      /* existing delta, sorted by hash */
    size_t ndelta_old;
    imt__idx_pdq_ent *newpdq;         /* PDQ hashes to add to the delta */
    size_t nnew, capnew;
    imt__idx_kv *dig[3];              /* new digest keys -> entry: md5, sha1, sha256 */
    size_t ndig[3];
    imt__idx_buf rec, mem;
    /* the hashes the current batch indexed, not yet in the digest tables
     * or the delta: open addressing, (record index + 1, entry id) */
    imt__idx_kv *bt;
    size_t btcap;
    int delta_loaded;            /* delta_old read (first batch) */
    /* digest runs: with more than one batch, each batch's new digests,
     * sorted, go to an unnamed temporary file (key bytes + entry id, u32
     * LE), merged into the tables in key order at the end */
    int *runs[3];
    size_t nruns[3];
    /* so that a batch need not read every earlier run (quadratic in the
     * batches): each run's record count and every IMT__IDX_RUN_STRIDE-th
     * key, and one blocked Bloom filter of
     * every digest in a run; a batch reads only the blocks of runs that
     * may hold a digest the filter does not rule out */
    struct imt__idx_run_meta *rmeta[3];
    uint64_t *bloom;                  /* 8 words (one cache line) a block */
    size_t bloom_blocks;
    uint64_t est_digests;             /* digests the list is expected to hold (import.c; 0: unknown) */
    uint64_t bloom_cap;               /* most bytes the filter may take */
    /* compact entries (IDX_DIG_COMPACT) */
    uint32_t *cls_of;                 /* per batch record: the class of the compact
                                       * entry it made, IDX_CLS_NONE if none */
    size_t capcls_of;
    struct imt__idx_cls *cls;         /* this import's classes, open addressing */
    size_t ncls, capcls;
    uint32_t next_cls;
    uint32_t first_new;               /* the first entry id this transaction makes */
    uint8_t *prom;                    /* bit id - first_new: a compact entry this
                                       * transaction made and then promoted */
    size_t capprom;                   /* bytes */
    uint8_t *synth;                   /* a compact entry's record (load_old) */
    size_t capsynth;
} imt__idx_writer;
/* Has this transaction promoted compact entry id (made by it)? */
static inline int imt__idx_promoted(const imt__idx_writer *w, uint32_t id)
{
    if (id < w->first_new) return 0;
    size_t b = id - w->first_new;
    return b / 8 < w->capprom && (w->prom[b / 8] >> (b & 7)) & 1;
}
/* The value a new digest of entry `entry` gets: its class unless
 * promoted since. */
static inline uint32_t imt__idx_value_cls(const imt__idx_writer *w, uint32_t entry, uint32_t cls)
{
    return cls != IDX_CLS_NONE && imt__idx_promoted(w, entry) ? IDX_CLS_NONE : cls;
}
/* IMT_OK if idx may be written now, else IMT_E_READONLY or IMT_E_BUSY. */
imt_err imt__idx_writable(imt_index *idx);
imt_err imt__idx_writer_begin(imt_index *idx, imt__idx_writer *w);
/* Write the header and commit; stage (if any) hears "commit" just before. */
imt_err imt__idx_writer_commit(imt_index *idx, imt__idx_writer *w, void (*stage)(void *, const char *),
                          void *opaque);
void imt__idx_writer_free(imt__idx_writer *w);
/* IMT_E_DUPLICATE when a list's file SHA-256 is on a list already. */
imt_err imt__idx_writer_check_new(imt__idx_writer *w, const imt__idx_list_meta *m, size_t nm, const char *path);
/* Merge every record of the batch s into entries (lists first_list +
 * slot, metas[slot] their policies); counts new memberships per slot. A
 * record repeating an earlier record of the same list (every hash held by
 * the entry that already names the list) is merged into that membership
 * (st->duplicates; another category or label: st->conflicts, the most
 * severe disposition kept); one holding a hash of such an entry and
 * another hash is a bad record (duplicate). Records are seen in order,
 * earlier batches included, so batching changes no result. */
imt_err imt__idx_writer_merge(imt__idx_writer *w, imt__idx_sink *s, uint32_t first_list,
                         const imt__idx_list_meta *metas, size_t nmeta, uint64_t *per_slot,
                         imt_import_stats *st);
/* Write the batch's new digests (sorted) and its new PDQ hashes (to the
 * delta; kept sorted in delta_old for later batches), then forget them. */
imt_err imt__idx_writer_digests(imt__idx_writer *w, const imt__idx_sink *s, int spill);
/* ---- runs.c: the sorted digest runs of a batched import ---------------- */
extern const size_t imt__idx_dig_len[3];   /* MD5, SHA-1, SHA-256 */
static inline MDB_dbi imt__idx_dig_dbi(const imt_index *idx, int k)
{
    return k == 0 ? idx->db_md5 : k == 1 ? idx->db_sha1 : idx->db_sha256;
}
/* Digest tables in two parts (format 4): the main table of kind k, written
 * in key order by appends (full pages), and its delta ("md5+", ...), which
 * takes an import's new digests when the main table is not empty: random
 * inserts split full pages, so they go to a small table, and an import
 * costs time and pages proportional to its list, not to the index. A key
 * is in one of the two. When the delta passes a sixteenth of the main
 * table (or on --compact) the two are merged into the main table by
 * appends (imt__idx_fold_digests). */
static inline MDB_dbi imt__idx_dplus_dbi(const imt_index *idx, int k)
{
    return idx->db_dplus[k];
}
/* Digest d of kind k in txn: the main table, then the delta. 0 (*val
 * set, *in_delta which), MDB_NOTFOUND, or an LMDB error. */
int imt__idx_dig_get(const imt_index *idx, MDB_txn *txn, int k, const uint8_t *d, MDB_val *val,
                     int *in_delta);
/* Where an import writes new digests of kind k: the main table by appends
 * while it is empty, else the delta (by appends while that is empty). */
MDB_dbi imt__idx_dig_target(const imt_index *idx, MDB_txn *txn, int k, unsigned *flags);
/* Keys in kind k's main table and delta together. */
uint64_t imt__idx_dig_count(const imt_index *idx, MDB_txn *txn, int k);

#define IMT__IDX_RUN_STRIDE 64u
struct imt__idx_run_meta {
    uint64_t n;                  /* records */
    uint8_t *first;              /* the keys of records 0, STRIDE, 2 STRIDE, ... */
};
/* For each digest of kind k of the batch's records a[0..m) (sorted by
 * hash) the filter does not rule out, look it up in the earlier runs:
 * pre/pcls as prelookup's (writer.c). */
imt_err imt__idx_run_lookup(imt__idx_writer *w, const imt__idx_sink *s, int k, const imt__idx_kv *a,
                            size_t m, uint32_t *pre, uint32_t *pcls);
/* A buffered sequential reader of one run of rl-byte records. */
#define IMT__IDX_RUN_BUF (256u * 1024u)
typedef struct imt__idx_run_rd {
    int fd;
    uint8_t *buf;
    size_t n, pos, rl;
    int eof;
} imt__idx_run_rd;
imt_err imt__idx_run_open(imt__idx_run_rd *r, int fd, size_t rl);
/* The next record, or NULL at the end (*err set on a read error). */
const uint8_t *imt__idx_run_next(imt__idx_run_rd *r, imt_err *err);
void imt__idx_run_close(imt__idx_run_rd *r);
/* Write the batch's sorted digests of kind k (a[0..n)) to a new run:
 * key bytes, entry id, class (u32 LE each; IDX_CLS_NONE: a full entry). */
imt_err imt__idx_run_spill(imt__idx_writer *w, const imt__idx_sink *s, int k,
                           const imt__idx_kv *a, size_t n);
/* Merge the digest runs into the tables (a no-op without runs). */
imt_err imt__idx_writer_runs(imt__idx_writer *w);
imt_err imt__idx_writer_delta(imt__idx_writer *w);
imt_err imt__idx_writer_list(imt__idx_writer *w, const imt_list_info *li);

/* compact.c: make the delta a level, merged with the levels that are not
 * IDX_LEVEL_FACTOR times larger than the result (full: every level, into
 * level 0). *written: PDQ hashes written into the rebuilt level. */
imt_err imt__idx_compact(imt__idx_writer *w, int full, uint64_t *written);
/* runs.c: merge each digest delta into its main table when it holds more
 * than a sixteenth of it, or always (force); *folded: keys moved. */
imt_err imt__idx_fold_digests(imt__idx_writer *w, int force, uint64_t *folded);

/* Formats. Each parser reads the whole file and feeds the sink. */
typedef enum imt__idx_format {
    IF_AUTO = 0, IF_PDQ_CSV, IF_TE, IF_MD5SUM, IF_SHA1SUM, IF_SHA256SUM,
    IF_HASHDEEP, IF_HEX, IF_PDQ_HEX, IF_MD5_HEX, IF_SHA1_HEX, IF_SHA256_HEX,
    IF_VICS, IF_NSRL, IF_JSONL, IF_VPDQ, IF__COUNT
} imt__idx_format;

/* ---- the one format detector (detect.c) --------------------------------- */
const char *imt__idx_format_name(imt__idx_format f);
/* The format named n (aliases too); 0 if none. */
int imt__idx_format_by_name(const char *n, imt__idx_format *f);
/* When *f is IF_AUTO: the format of the file at fd, from its head (SQLite,
 * JSON, or the first data line of a text list), never a guess: ambiguous
 * input fails with a file:line reason asking for --format. *f stays
 * IF_AUTO only for text without any data line. */
imt_err imt__idx_detect(imt__idx_sink *s, int fd, imt__idx_format *f);
/* The text format of one data line (trimmed); the same rules. */
imt_err imt__idx_detect_line(imt__idx_sink *s, const char *line, uint64_t lineno, imt__idx_format *f);
imt_err imt__idx_parse_text(imt__idx_sink *s, int fd, imt__idx_format f, imt__idx_format *actual);
imt_err imt__idx_parse_vics(imt__idx_sink *s, int fd, imt__idx_format f, char *actual, size_t cap);
imt_err imt__idx_parse_nsrl(imt__idx_sink *s, const char *path);

/* ---- known videos (parse_vpdq.c, video.c) --------------------------------
 * A vPDQ hash file (vpdq-hash-video's FRAME,QUALITY,PDQ_HEX,TIMESTAMP
 * lines) is one known video; its frames go through the sink as PDQ records
 * (membership external id = the video's id), and the parser keeps each
 * video's frames, which the import writes in the same transaction to two
 * tables: "videos" (number -> list, category, id, frames) and "vframes"
 * (PDQ hash -> the numbers of the videos holding it, LMDB duplicates).
 * imt_query_vpdq (video.c) scores candidates from those. */
typedef struct imt__idx_vframe {
    uint8_t pdq[32];
    int8_t quality;
    double ts;
} imt__idx_vframe;
typedef struct imt__idx_video {
    char *id;
    size_t first, n;             /* its frames in imt__idx_videos.f */
} imt__idx_video;
typedef struct imt__idx_videos {
    imt__idx_video *v;
    size_t n, cap;
    imt__idx_vframe *f;
    size_t nf, capf;
} imt__idx_videos;
void imt__idx_videos_free(imt__idx_videos *v);
/* Non-zero when the first line of the file at fd is a vPDQ line. */
int imt__idx_vpdq_sniff(int fd);
/* SHA-256 (hex) over a folder's hash files: sorted names and contents. */
imt_err imt__idx_vpdq_dir_sha256(imt__idx_sink *s, const char *dir, char out[65]);
/* Parse path (a file, fd open on it; or a folder of files, fd -1) into the
 * sink and out. id: the video id of a single file (NULL: its name). */
imt_err imt__idx_parse_vpdq(imt__idx_sink *s, const char *path, int fd, const char *id,
                            imt__idx_videos *out);
/* Open (create when writable) the two tables; absent in a read-only older
 * index: has_videos 0. Called by index.c when it opens the tables (vtables.c). */
imt_err imt__idx_video_dbis(imt_index *idx, MDB_txn *txn, unsigned flags);
/* Write the parsed videos of list list_id (category cat) in w's transaction. */
imt_err imt__idx_video_write(MDB_txn *txn, imt_index *idx, const imt__idx_videos *v,
                             uint32_t list_id, int32_t cat);


/* ---- records and keys -------------------------------------------------- */
static inline void imt__idx_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline uint32_t imt__idx_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint32_t imt__idx_get_u32(const void *p)
{
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

/* A decoded entry record: pointers into the record bytes. */
typedef struct imt__idx_entry {
    unsigned kinds;
    int quality;
    unsigned n_members;
    const uint8_t *pdq, *md5, *sha1, *sha256;
    const uint8_t *members;      /* n_members encoded memberships */
    size_t members_len;
} imt__idx_entry;

/* Decode an entry record; IMT_E_INDEX_CORRUPT when malformed. */
imt_err imt__idx_entry_decode(const void *data, size_t len, imt__idx_entry *e);
/* Walk memberships: *pos starts at 0; fills list id, category, label and
 * external id (NUL-terminated, inside the record). 0 at the end, -1 bad. */
int imt__idx_member_next(const imt__idx_entry *e, size_t *pos, uint32_t *list, int32_t *cat,
                    const char **label, const char **ext);

/* The record of compact entry (digest d of kind k, 0..2: MD5, SHA-1,
 * SHA-256) with class cls, built from the class's record in txn into
 * *buf (grown as needed; *len its length), as imt__idx_entry_decode reads
 * it: kinds, quality -1, one membership (the class's list, category and
 * label; no external id). IMT_E_INDEX_CORRUPT when the class is missing
 * or malformed, IMT_E_DB, IMT_E_NOMEM; sets no error text (cursors). */
imt_err imt__idx_compact_record(imt_index *idx, MDB_txn *txn, int k, const uint8_t *d, uint32_t cls,
                                uint8_t **buf, size_t *cap, size_t *len);

/* What a membership of list `list` with category `cat` means (index.c). */
/* The position of list id in l[0..n), sorted by id (the lists table's key
 * order), or n when absent: a binary search (index.c). */
size_t imt__idx_list_find(const imt_list_info *l, size_t n, uint32_t id);
imt_disposition imt__idx_disposition(const imt_index *idx, uint32_t list, int32_t cat);

/* ---- database helpers (index.c) ---------------------------------------- */
imt_err imt__idx_mdb_err(imt_index *idx, int rc, const char *what);
void imt__idx_set_err(imt_index *idx, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* ---- the verified-state record (vcache.c) ------------------------------
 * A full page check (and content check) of a read-only index is recorded
 * OUTSIDE the index, in the user's cache folder, keyed by the file's
 * identity; a later open whose key matches checks the meta and branch
 * pages only (docs/INDEX.md, "Opening: the verified-state record"). */
/* Non-zero when records may be used (IMGTRIAGE_FULL_CHECK unset or 0). */
int imt__idx_vcache_enabled(void);
/* The record whose key matches st (stat fields), txnid, last_pgno and
 * psize, into out: 1; none, unreadable or another key: 0. */
int imt__idx_vcache_load(const imt__idx_vkey *key, imt__idx_vrec *out);
/* Store rec for the index at dir, best effort: 1 stored, 0 not (no cache
 * folder, one not private to this user, inside the index, I/O error). */
int imt__idx_vcache_store(const char *dir, imt__idx_vrec *rec);
/* Non-zero when the file's timestamps are too recent for a record of a
 * check begun at checked_at_ns (CLOCK_REALTIME): a write in the same
 * timestamp tick as the check would leave the key unchanged. */
int imt__idx_vcache_racy(const imt__idx_vkey *key, int64_t checked_at_ns);
/* 1 when the snapshot's PDQ arrays may be taken as verified from the
 * record the page check used (same txnid, sums and key): then sets
 * idx->vc_content and idx->verified_at; 0 otherwise. */
int imt__idx_vcache_content(imt_index *idx);
/* After a read-only open: store (or refresh) the record when this open
 * checked all pages or read the content, the file (data: its data.mdb)
 * is unchanged since the check began and not too recent. Best effort. */
void imt__idx_vcache_after_open(imt_index *idx, const char *data);
/* The stat fields of the key (device .. ctime) from st, or of path (0 ok). */
struct stat;
void imt__idx_vkey_from_stat(imt__idx_vkey *key, const struct stat *st);
int imt__idx_vcache_stat(const char *path, imt__idx_vkey *key);
/* madvise's MADV_POPULATE_READ (Linux 5.14; older kernels: EINVAL, and
 * the pages fault in on use) */
#ifdef MADV_POPULATE_READ
#define IDX_MADV_POPULATE_READ MADV_POPULATE_READ
#else
#define IDX_MADV_POPULATE_READ 22
#endif

/* ---- page graph check (pagecheck.c) ------------------------------------ */
typedef struct imt__idx_pagecheck_info {
    uint64_t file_size;
    int empty;                   /* 0 bytes: LMDB will initialise it */
    unsigned psize;
    uint64_t last_pgno;          /* of the meta page LMDB reads */
    uint64_t pages_read;         /* branch and leaf pages checked */
    imt__idx_vkey key;           /* the file's identity and structure (vcache.c) */
    int from_record;             /* 1: leaves taken from the verified-state record */
    imt__idx_vrec rec;           /* ... that record */
} imt__idx_pagecheck_info;
/* Before mdb_env_open on an existing dir/data.mdb: check with pread that
 * every page LMDB can reach keeps its reads inside the file (pagecheck.c
 * tells what is checked). write: also the free-page DB. A function of the
 * file alone (fuzzable without an index handle). IMT_OK,
 * IMT_E_INDEX_FORMAT (not an LMDB file), IMT_E_INDEX_CORRUPT, IMT_E_IO,
 * IMT_E_NOT_FOUND, IMT_E_TOO_LARGE, IMT_E_NOMEM; on an error a sentence
 * starting with dir (page and cause when corrupt) in err[0..errlen). */
imt_err imt__idx_pagecheck(const char *dir, int write, imt__idx_pagecheck_info *info, char *err,
                      size_t errlen);
/* The same; with use_record (read-only only) 1, also the file's key into
 * info->key (to store a record after the open); 2, and a record matching
 * it replaces the read of the leaves of the big tables (the meta and
 * branch pages are still read, checked and hashed; a hash unlike the
 * record's falls back to the full check): info->from_record says which;
 * 3, the light walk whatever the record (the fuzz target's way to reach
 * it with hostile bytes). */
imt_err imt__idx_pagecheck_ex(const char *dir, int write, int use_record,
                              imt__idx_pagecheck_info *info, char *err, size_t errlen);
imt_err imt__idx_read_header(imt_index *idx, MDB_txn *txn, imt__idx_header *h);
/* The "levels" record of txn (meta.c): count 0 in a format 2-4 index;
 * IMT_E_INDEX_CORRUPT when a format 5 index lacks it or it is malformed. */
imt_err imt__idx_read_levels(imt_index *idx, MDB_txn *txn, const imt__idx_header *h,
                             imt__idx_levels *lv);
/* Write the header, the levels (lv: format 5) and the delta checksum. */
imt_err imt__idx_write_header(imt_index *idx, MDB_txn *txn, const imt__idx_header *h,
                              const imt__idx_levels *lv);
/* Load the search view of txn's snapshot (lv: levels beyond 0, may be NULL). */
imt_err imt__idx_view_load(imt_index *idx, MDB_txn *txn, const imt__idx_header *h,
                           const imt__idx_levels *lv, imt__idx_view *v);
/* The seg key of an array of level lvl: what "pdq", "ent" or "mih" (with
 * table t): "pdq", "mih07" for level 0, "2.pdq", "2.mih07" beyond. */
void imt__idx_seg_key(char out[16], int lvl, const char *what, int t);
void imt__idx_view_free(imt__idx_view *v);
/* IMT_OK, or IMT_E_INDEX_CHANGED when the handle runs without a lock and
 * a writer has committed since its snapshot was taken: pages the snapshot
 * uses may have been recycled, so nothing read since may be trusted. Every
 * reader calls it after reading (a committed transaction id only grows). */
imt_err imt__idx_unchanged(const imt_index *idx);
/* Load the list inventory and identity of the handle's snapshot. */
imt_err imt__idx_snapshot_begin(imt_index *idx);
MDB_txn *imt__idx_txn_take(imt_index *idx);
void imt__idx_txn_give(imt_index *idx, MDB_txn *txn);
void imt__idx_snapshot_end(imt_index *idx);

/* Substring t of a 256-bit hash (big-endian bit order). */
static inline uint32_t imt__idx_substr(const uint8_t *h, int start, int bits)
{
    /* read the 8 bytes covering [start, start+bits) */
    int b0 = start >> 3;
    uint64_t w = 0;
    for (int i = 0; i < 8; i++) {
        int bi = b0 + i;
        w = w << 8 | (bi < 32 ? h[bi] : 0);
    }
    int shift = 64 - (start & 7) - bits;
    return (uint32_t)((w >> shift) & ((bits >= 32) ? 0xFFFFFFFFu : ((1u << bits) - 1)));
}

/* MIH parameters for n hashes: tables and widths (sum 256, each <= 32). */
int imt__idx_mih_params(uint32_t n, uint8_t bits[IDX_MAX_TABLES]);

/* ---- distance kernels (scan*.c), chosen once ---------------------------- */
/* For each of the n hashes at arr (32 bytes each), and each of the nq
 * queries, report (index, distance, query) of those within radius. out
 * holds room for n * nq hits; returns the count. Hits are in index order,
 * then query order. */
typedef size_t (*imt__idx_scan_fn)(const uint8_t *arr, size_t n, const uint8_t *q, int nq,
                              int radius, uint32_t *out_idx, uint16_t *out_dq);
/* Distances of the hashes at arr[ids[i]] to q (verify step of MIH). */
typedef void (*imt__idx_dist_fn)(const uint8_t *arr, const uint32_t *ids, size_t n,
                            const uint8_t *q, uint16_t *out);
/* One table per ISA level; common.h's dispatch picks one per cursor when it
 * is opened (imt__idx_kernels_for(imt__simd_level())). */
typedef struct imt__idx_kernels {
    const char *name;
    imt__idx_scan_fn scan;
    imt__idx_dist_fn dist;
} imt__idx_kernels;
const imt__idx_kernels *imt__idx_kernels_for(imt_simd level);
/* Make cursor c use k (tests, benches; NULL: the process's choice). */
void imt__idx_cursor_use_kernels(imt_cursor *c, const imt__idx_kernels *k);
/* The process's choice, for callers without a cursor (benches). */
imt__idx_scan_fn imt__idx_scan_impl(void);
imt__idx_dist_fn imt__idx_dist_impl(void);
size_t imt__idx_scan_portable(const uint8_t *arr, size_t n, const uint8_t *q, int nq,
                         int radius, uint32_t *out_idx, uint16_t *out_dq);
void imt__idx_dist_portable(const uint8_t *arr, const uint32_t *ids, size_t n,
                       const uint8_t *q, uint16_t *out);
size_t imt__idx_scan_avx2(const uint8_t *arr, size_t n, const uint8_t *q, int nq,
                     int radius, uint32_t *out_idx, uint16_t *out_dq);
void imt__idx_dist_avx2(const uint8_t *arr, const uint32_t *ids, size_t n,
                   const uint8_t *q, uint16_t *out);
size_t imt__idx_scan_avx512(const uint8_t *arr, size_t n, const uint8_t *q, int nq,
                       int radius, uint32_t *out_idx, uint16_t *out_dq);
/* Block size of one scan call: n <= IDX_SCAN_BLOCK, nq <= 8. */
#define IDX_SCAN_BLOCK 4096

/* ---- segment checksums (sums.c, a leaf) --------------------------------- */
/* Checksum of a compacted segment (a level): SHA-256 over the PDQ array,
 * the entry ids, then each MIH table (offsets, positions); compaction
 * stores level 0's in the header (main_sum), the others' in "levels". */
imt_err imt__idx_seg_sum(const imt__idx_seg *g, uint8_t out[32]);
/* Checksum of the delta segment: SHA-256 over its chunks' values in order;
 * imt__idx_write_header stores it in the meta record "dsum". */
imt_err imt__idx_delta_sum(const imt__idx_view *v, uint8_t out[32]);
/* Read "dsum" (index.c); *present 0 if the index has none (older builds). */
imt_err imt__idx_read_delta_sum(imt_index *idx, MDB_txn *txn, uint8_t out[32], int *present);

#endif
