/* tools/cli.h -- shared by the imgtriage subcommands. Uses only imgtriage.h. */
#ifndef IMT_CLI_H
#define IMT_CLI_H

#include "imgtriage.h"

#include <stdio.h>

/* Exit statuses shared by every subcommand (documented in --help/README). */
#define CLI_EXIT_OK 0       /* success (scan: completed, nothing known found) */
#define CLI_EXIT_FOUND 1    /* scan: completed, known material found */
#define CLI_EXIT_ERROR 2    /* errors: bad usage, unreadable input, ... */

extern const char *cli_prog; /* "imgtriage" */

int cmd_hash(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_scan(int argc, char **argv);

/* Print "imgtriage: <msg>\n" to stderr. */
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

/* Parse a positive integer option value; returns 0 on error. */
int cli_parse_u64(const char *s, unsigned long long *out);

#endif
