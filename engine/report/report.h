/* engine/report/report.h -- internal: the report handle, the facts of one
 * record, and the summary they add up to.
 *
 * Files of the module, in data-flow order (none calls back up the list):
 *   write.c    leaf helpers: the error setter, writing a line, counting facts
 *   facts.c    the facts of a record, from a scan record or read back from a
 *              JSONL record line: the one definition of what a record says
 *   summary.c  accounting of facts and the priority score: pure (no I/O, no
 *              clock), unit-tested by tests/test_report.c
 *   record.c   the JSONL and CSV record writers and imt_report_record
 *   header.c   the handle, the audit header, imt_report_begin
 *   resume.c   reading an interrupted report back
 *   end.c      the summary record and the human summary (imt_report_end)
 *   dfxml.c, vics.c, html.c   writers of converted reports (imt__writer)
 *   convert.c  imgtriage report: a JSONL report read back record by record
 *              (imt__record_from_json) and handed to a writer
 * Calls go from the files below write.c to it, to facts.c and summary.c;
 * record.c and header.c call into resume.c, and resume.c only calls down
 * (write.c, facts.c): no file calls back into one that calls it.
 */
#ifndef IMT_REPORT_H
#define IMT_REPORT_H

#include "common/text.h"

#include <time.h>
#include <yajl/yajl_tree.h>

/* 2: records carry "scan_error", matches "list_id"; the summary keys
 * hits_by_list by list id and splits findings_by_kind from errors_by_kind. */
#define IMT__REPORT_FORMAT_VERSION 2

/* The pdq_matching sentence of a low-quality hash begins with this; the
 * writer writes it and resume reads it back (facts.c). */
#define IMT__LOWQ_PREFIX "skipped: quality "
/* The CSV report's column line (header.c, and conversion in record.c). */
#define IMT__CSV_COLUMNS                                                        \
    "path,type,status,detail,size,mtime,ctime,format,width,height,md5,sha1,"    \
    "sha256,pdq,quality,known_good,match_kind,list,scheme,category,"            \
    "category_label,external_id,distance,variant,hardlink_of,link_target,flags,"   \
    "embedded\n"
#define IMT__KNOWN_GOOD_SKIP "skipped: known-good file"

/* ---- facts: what the summary needs of one record ----------------------- */
typedef struct imt__rfacts {
    imt_entry_type type;
    imt_err status;
    int scan_error;
    int have_mtime;
    int64_t mtime_s;
    int32_t mtime_ns;
    int read;                  /* the file was read: read_bytes, has_pdq valid */
    uint64_t read_bytes;
    int has_pdq;
    int known_good;
    int low_quality;
    int has_sha1;              /* sha1: the file's content, what makes it one seized item */
    uint8_t sha1[20];
    const imt_scan_match *matches; /* borrowed */
    size_t n_matches;
    uint32_t depth;            /* a container's member (1, 2, ...) or 0 */
    int expanded;              /* a container that was expanded */
    uint64_t encrypted;        /* its encrypted entries */
    unsigned limits;           /* IMT_CLIMIT_* that stopped its expansion */
} imt__rfacts;

void imt__facts_from_record(const imt_scan_record *rec, imt__rfacts *f);

/* The facts of a JSONL record line (parsed as v), read back from exactly
 * the members record.c writes for them. *ms (imt__malloc'd, strings
 * borrowed from v) holds the matches; free it with imt__free. */
imt_err imt__facts_from_json(yajl_val v, imt__rfacts *f, imt_scan_match **ms);

/* A whole record read back from its JSONL line: every member record.c
 * writes, so that the writers below re-emit it unchanged. Strings are
 * borrowed from the parsed line; ms is imt__malloc'd (imt__free it). */
typedef struct imt__jrecord {
    imt_scan_record rec;
    imt_hash_result hash;      /* rec.hash points here for a file that was read */
    imt_subitem sub[IMT_MAX_SUBITEMS]; /* hash.sub points here: "embedded" */
    imt_carve_hit carved;      /* rec.carved points here: "carved" */
    imt_scan_match *ms;
    imt_video_frame *frames;   /* hash.frames points here: "frames" */
    imt_location loc;          /* rec.loc points here for a file in an image */
    imt_byte_run runs[IMT_MAX_BYTE_RUNS];
} imt__jrecord;

imt_err imt__record_from_json(yajl_val v, imt__jrecord *out);
/* Free what imt__record_from_json allocated (ms, frames). */
void imt__jrecord_clear(imt__jrecord *r);

/* A string yajl decoded in place: \udcXX (a byte that is not UTF-8) back
 * into its byte. Returns s. */
char *imt__json_unescape(char *s);

/* ---- summary: pure accounting ------------------------------------------ */
/* Matched files per (list id, category, label): lists are told apart by id,
 * never by name (two lists may share a name). */
typedef struct imt__hitcat {
    uint32_t list_id;
    char *list, *scheme, *label;
    int32_t category;
    int known_good;
    uint64_t files;
} imt__hitcat;

/* A set of distinct items -> highest severity weight seen: known index
 * entries (key: the entry number) and seized items (key: the file's SHA-1,
 * or a per-record number for a file without one). */
typedef struct imt__item {
    uint8_t key[20];
    int weight;
    int used;
} imt__item;

typedef struct imt__summary {
    uint64_t entries, files, images, bytes, hit_files, known_good_files, errors,
        low_quality;
    uint64_t by_type[IMT_ENTRY__COUNT];
    uint64_t err_by_status[IMT_E__COUNT];  /* records that are scan errors */
    uint64_t find_by_status[IMT_E__COUNT]; /* findings about the others */
    imt__hitcat *cats;
    size_t n_cats;
    imt__item *items;          /* distinct known items matched */
    size_t n_items, items_cap;
    imt__item *seized;         /* distinct seized items (contents) with hits */
    size_t n_seized, seized_cap;
    uint64_t unkeyed_hits;     /* files with hits but no SHA-1: one item each */
    uint64_t unkeyed_by_w[11];
    char *first_hit;           /* JSON literal of its path */
    double first_hit_after;
    int64_t earliest_hit_mtime;
    int32_t earliest_hit_mtime_ns;
    int have_hit_mtime;
    /* containers */
    uint64_t containers, members, encrypted_containers;
    uint64_t limits[IMT_CLIMIT__COUNT]; /* containers a limit stopped, by limit */
} imt__summary;

void imt__summary_free(imt__summary *s);

/* Count one record. path_json: its path as a JSON literal; now_s: seconds
 * since the scan began (kept for the first hit). */
imt_err imt__summary_add(imt__summary *s, const imt__rfacts *f, const char *path_json,
                         double now_s);

/* The priority score and its one-line explanation appended to expl. */
double imt__priority(const imt__summary *s, imt__buf *expl);

/* A preview's header member, summary members, the sentence added to the
 * priority explanation and the human lines (engine/triage fills st). */
void imt__preview_header_json(imt__buf *b, const imt_preview_stats *st);
void imt__preview_summary_json(imt__buf *b, const imt_preview_stats *st);
void imt__preview_explain(imt__buf *b, const imt_preview_stats *st);
void imt__preview_text(imt__buf *s, const imt_preview_stats *st);

/* Outcomes of a file that are neither scan errors nor findings. */
int imt__is_plain_outcome(imt_err e);

/* hits_by_list rows in their report order: by list id, category, label. */
void imt__summary_sort(imt__summary *s);

/* ---- the handle -------------------------------------------------------- */
/* A claimed old record waiting for its turn to be emitted. */
typedef struct imt__pending {
    char *line;                /* with its newline */
    size_t len;
} imt__pending;

struct imt_report {
    FILE *f;
    imt_report_opts o;
    char *cmdline, *device, *case_id, *index_path;
    char last_error[512];
    int began, ended;
    int write_failed;          /* a record could not be written */
    int write_errno;           /* why */
    struct timespec start;
    uint64_t t0_ms;
    imt__buf line, tmp;
    imt_scan_opts scan_opts;
    imt__summary sum;
    double priority;
    imt__buf summary_text;
    int is_preview;            /* imt_report_preview was called */
    imt_preview_stats preview;

    /* resume */
    FILE *old;
    char *old_path;
    yajl_val old_header;
    char *next_line;           /* the next unclaimed old record */
    size_t next_len;
    int old_eof;
    imt__pending *queue;
    size_t q_head, q_len, q_cap;
    uint64_t resumed;
    /* resuming a preview (records in read order): its records by the hash
     * of their path literal, sorted: claimed wherever the walk meets them */
    struct imt__oldrec *byhash;
    size_t n_byhash;
    /* disk images (header.c): verification failures (verify_images) */
    unsigned image_failures;
    char image_failure[200];
};

/* last_error = fmt with arg (may be NULL); returns e. */
imt_err imt__report_fail(imt_report *r, imt_err e, const char *fmt, const char *arg);

/* Write r->line to the stream and empty it; remembers a failed write. */
imt_err imt__report_flush(imt_report *r);

/* Count a record's facts into r->sum (path: its path as a JSON literal). */
imt_err imt__report_account(imt_report *r, const imt__rfacts *f, const char *path_json);

/* Resume: free the resume state; emit the next claimed old record. */
void imt__resume_free(imt_report *r);
imt_err imt__resume_emit(imt_report *r, uint64_t seq);

/* s as a JSON string literal, or null. */
void imt__put_str_or_null(imt__buf *b, const char *s);

/* JSON values equal (object members in any order). */
int imt__json_equal(yajl_val a, yajl_val b);

/* ---- conversion of a JSONL report (convert.c) into a writer's format ----
 * Writers (record.c: jsonl, csv; dfxml.c; vics.c; html.c) see the header
 * and summary lines parsed, then every record (hits only when asked), as the
 * scan's writer saw it. */
typedef struct imt__conv {
    FILE *out;
    int format, hits_only;
    int version;               /* the report's report_format */
    const char *header_line;   /* raw, with its newline */
    const char *summary_line;  /* raw, or NULL (an interrupted report) */
    const char *record_line;   /* the raw line of the record being written */
    yajl_val header, summary;  /* parsed; strings unescaped (summary may be NULL) */
    imt__buf b;                /* built output, written by imt__conv_flush */
    void *st;                  /* the writer's state */
    int failed;                /* end: free st, write nothing */
    char *why;
    size_t cap;
} imt__conv;

typedef struct imt__writer {
    imt_err (*begin)(imt__conv *c);
    imt_err (*record)(imt__conv *c, const imt_scan_record *rec);
    imt_err (*end)(imt__conv *c); /* also frees st, also after a failure */
} imt__writer;

extern const imt__writer imt__writer_jsonl, imt__writer_csv, imt__writer_dfxml,
    imt__writer_vics, imt__writer_html;

/* Write c->b and empty it (IMT_E_NOMEM / IMT_E_WRITE with why filled). */
imt_err imt__conv_flush(imt__conv *c);

/* A record has a match whose list alerts (a hit). */
int imt__record_has_hit(const imt_scan_record *rec);

/* Members of a parsed JSON object (NULL when absent or of another type). */
yajl_val imt__jget(yajl_val o, const char *key, yajl_type t);
const char *imt__jstr(yajl_val o, const char *key);

/* The record writers of record.c, used by the scan's report and by
 * conversion alike. */
void imt__put_record_json(imt__buf *b, const imt_scan_record *rec);
void imt__put_record_csv(imt__buf *b, const imt_scan_record *rec);

#endif
