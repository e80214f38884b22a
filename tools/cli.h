/* tools/cli.h -- shared by the imgtriage subcommands. Uses only imgtriage.h. */
#ifndef IMT_CLI_H
#define IMT_CLI_H

#include "imgtriage.h"

#include <stdio.h>
#include <sys/types.h>

/* Exit statuses shared by every subcommand (documented in --help/README). */
#define CLI_EXIT_OK 0       /* success (scan: completed, nothing known found) */
#define CLI_EXIT_FOUND 1    /* scan: completed, known material found */
#define CLI_EXIT_ERROR 2    /* errors: bad usage, unreadable input, ... */

extern const char *cli_prog; /* "imgtriage" */

int cmd_hash(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_backlog(int argc, char **argv);
/* index import-files (cmd_index_files.c); scan --sample-blocks (cmd_sample.c) */
int cmd_index_import_files(int argc, char **argv);
int cmd_scan_sample(int argc, char **argv);
int cmd_carve(int argc, char **argv);

/* Print "imgtriage: <msg>\n" to stderr. */
/* SIGINT/SIGTERM (cli_catch_stop): the first sets cli_stop, which the
 * engine polls (it stops within a 256 KiB chunk and the report says the
 * scan is incomplete); a second one ends the process at once. */
extern volatile int cli_stop;

/* Open the index at path read-only for command cmd; on failure the error
 * is printed ("cmd: cannot open the index PATH: why") and returned. */
/* Open an index read-only (cli_full_check: opts.full_check), the error printed. */
extern int cli_full_check;
imt_err cli_open_index(imt_index **out, const char *cmd, const char *path);
void cli_catch_stop(void);

void cli_err(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Write s as a JSON string literal (quoted, escaped): imt_json_write_str,
 * bytes that are not valid UTF-8 as \udcXX (lossless). */
void cli_json_str(FILE *f, const char *s);

/* The decoding-limit options that hash and scan share: getopt codes, their
 * struct option rows, and applying a parsed value to the hash options. */
enum { CLI_OPT_MAXPIX = 900, CLI_OPT_MAXDIM, CLI_OPT_MAXFILE, CLI_OPT_BUDGET };
#define CLI_LIMIT_LONGOPTS                                                 \
    {"max-pixels", required_argument, NULL, CLI_OPT_MAXPIX},               \
    {"max-dimension", required_argument, NULL, CLI_OPT_MAXDIM},            \
    {"max-file-size", required_argument, NULL, CLI_OPT_MAXFILE},           \
    {"time-budget", required_argument, NULL, CLI_OPT_BUDGET}
void cli_set_limit(imt_hash_opts *o, int opt, unsigned long long v);

/* Where a report may be written (tools/cli_outpath.c). */
typedef struct cli_output {
    char *resolved;        /* the absolute path, symlinks resolved */
    char *tmp;             /* in-place resume: the file written, renamed at the end */
    int existed;
    dev_t dev;
    ino_t ino;
} cli_output;

/* Check that a report may be written at out: not inside (or the same file
 * as) any of the n PATHs or the index (symlinks resolved; folders compared
 * by device and inode from out's folder up to "/"), not a folder or block
 * device, not a file with other hard links, and not an existing non-empty
 * file unless force. Touches nothing. 0, or -1 with why filled. */
int cli_open_output(const char *out, const char *const *paths, size_t n,
                    const char *index_path, int force, cli_output *o, char *why, size_t cap);

/* After every other check passed: open the checked file for writing (the
 * same file that was checked; truncated only now), or with in_place a
 * temporary file beside it. NULL with why filled. */
FILE *cli_output_open(cli_output *o, int in_place, char *why, size_t cap);
void cli_output_free(cli_output *o);

/* The containment checks of cli_open_output for a file that is only read
 * (--resume): 0, or -1 with why filled. */
int cli_check_input_path(const char *what, const char *path, const char *const *paths,
                         size_t n, const char *index_path, char *why, size_t cap);

/* Parse a positive integer option value; returns 0 on error. */
int cli_parse_u64(const char *s, unsigned long long *out);

#endif
