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
    const imt_scan_match *matches; /* borrowed */
    size_t n_matches;
} imt__rfacts;

void imt__facts_from_record(const imt_scan_record *rec, imt__rfacts *f);

/* The facts of a JSONL record line (parsed as v), read back from exactly
 * the members record.c writes for them. *ms (imt__malloc'd, strings
 * borrowed from v) holds the matches; free it with imt__free. */
imt_err imt__facts_from_json(yajl_val v, imt__rfacts *f, imt_scan_match **ms);

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

/* Distinct known items: index entry -> highest severity weight seen. */
typedef struct imt__item {
    uint64_t entry;
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
    imt__item *items;
    size_t n_items, items_cap;
    char *first_hit;           /* JSON literal of its path */
    double first_hit_after;
    int64_t earliest_hit_mtime;
    int32_t earliest_hit_mtime_ns;
    int have_hit_mtime;
} imt__summary;

void imt__summary_free(imt__summary *s);

/* Count one record. path_json: its path as a JSON literal; now_s: seconds
 * since the scan began (kept for the first hit). */
imt_err imt__summary_add(imt__summary *s, const imt__rfacts *f, const char *path_json,
                         double now_s);

/* Severity weight of an alerting membership (the table is in README). */
int imt__severity(const char *scheme, int32_t category);

/* The priority score and its one-line explanation appended to expl. */
double imt__priority(const imt__summary *s, imt__buf *expl);

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
};

/* last_error = fmt with arg (may be NULL); returns e. */
imt_err imt__report_fail(imt_report *r, imt_err e, const char *fmt, const char *arg);

/* Write r->line to the stream and empty it; remembers a failed write. */
imt_err imt__report_flush(imt_report *r);

/* Count a record's facts into r->sum (path: its path as a JSON literal). */
imt_err imt__report_account(imt_report *r, const imt__rfacts *f, const char *path_json);

/* Resume: free the resume state; emit the next claimed old record. */
void imt__resume_free(imt_report *r);
imt_err imt__resume_emit(imt_report *r);

/* s as a JSON string literal, or null. */
void imt__put_str_or_null(imt__buf *b, const char *s);

/* JSON values equal (object members in any order). */
int imt__json_equal(yajl_val a, yajl_val b);

#endif
