/* engine/backlog/backlog.h -- internal header of the backlog module: the
 * queue of devices over SQLite (imgtriage.h, "the backlog").
 *
 * Files, leaves first:
 *   rank.c    the ranking of devices: pure (no I/O), tested alone
 *   ingest.c  a report's summary line read back into an imt_bl_result
 *   db.c      the database: schema, add, find, list, claim, lease, finish, log
 *   export.c  the ranked devices as JSON or CSV for a case system
 * The module sits above scan and report: it stores what their reports say
 * and never calls into them (the caller runs the scans as processes). */
#ifndef IMT_BACKLOG_H
#define IMT_BACKLOG_H

#include "common/common.h"
#include "common/text.h"

#include <sqlite3.h>

struct imt_backlog {
    sqlite3 *db;
    char err[512];
};

/* Rank group of a device: 0 known material (a hit in its preview or full
 * scan), 1 not previewed yet, 2 previewed clean. */
int imt__bl_group(const imt_bl_device *d);
/* qsort comparator of the ranking (README, "Backlog"). */
int imt__bl_rank_cmp(const void *a, const void *b);
/* Sort v[0..n) into rank order and set each group. */
void imt__bl_rank(imt_bl_device *v, size_t n);

/* Read the summary record of the JSONL report at path into r (r->have 0
 * when the report has none: missing, empty, or cut short). Only
 * IMT_E_NOMEM is an error. */
imt_err imt__bl_read_summary(const char *path, imt_bl_result *r);
void imt__bl_result_clear(imt_bl_result *r);

/* Set bl->err; returns e. */
imt_err imt__bl_fail(imt_backlog *bl, imt_err e, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
