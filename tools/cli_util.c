/* tools/cli_util.c -- helpers shared by the subcommands. */
#include "cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *cli_prog = "imgtriage";

volatile int cli_stop = 0;

static void on_stop_signal(int sig)
{
    if (cli_stop) {
        /* A second signal: stop at once. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    cli_stop = 1;
}

int cli_full_check = 0;

imt_err cli_open_index(imt_index **out, const char *cmd, const char *path)
{
    imt_index_opts io;
    imt_index_opts_init(&io);
    io.read_only = 1;
    io.full_check = cli_full_check;
    imt_err e = imt_index_open(out, path, &io);
    if (e)
        cli_err("%s: cannot open the index %s: %s", cmd, path,
                imt_index_open_error()[0] ? imt_index_open_error() : imt_strerror(e));
    return e;
}

void cli_catch_stop(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void cli_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* One implementation of the lossless escaping: the library's. */
void cli_json_str(FILE *f, const char *str)
{
    imt_json_write_str(f, str);
}

int cli_parse_u64(const char *s, unsigned long long *out)
{
    if (!s || !*s || *s == '-') return 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end) return 0;
    *out = v;
    return 1;
}

void cli_set_limit(imt_hash_opts *o, int opt, unsigned long long v)
{
    uint32_t v32 = v > 0xffffffffu ? 0xffffffffu : (uint32_t)v;
    switch (opt) {
    case CLI_OPT_MAXPIX: o->max_pixels = v; break;
    case CLI_OPT_MAXDIM: o->max_dimension = v32; break;
    case CLI_OPT_MAXFILE: o->max_file_bytes = v; break;
    case CLI_OPT_BUDGET: o->time_budget_ms = v32; break;
    }
}
