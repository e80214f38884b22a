/* tools/cmd_carve.c -- `imgtriage carve`: each FILE (a raw image, a memory
 * dump, an extract of unallocated space) is carved as unallocated space:
 * every picture found by signature and structure is hashed as an item of
 * its own and matched, and written as a record of a scan report (header,
 * one record per carved item with its "carved" location, summary). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
"Usage: imgtriage carve [--index IDX] [OPTIONS] FILE...\n"
"Carve each FILE (a raw disk or partition image, a memory dump, unallocated\n"
"space: only ever read) for pictures by signature and structure: JPEG (to its\n"
"EOI, through EXIF thumbnails, restart markers and progressive scans), PNG\n"
"(every chunk's CRC, to IEND), GIF (to its trailer), WebP (its RIFF chunks)\n"
"and BMP (its headers). Each carved item is hashed as a file is (MD5, SHA-1,\n"
"PDQ with its 8 rotations/flips, embedded pictures) and matched against the\n"
"index; the JSONL report has a header, one record per item with\n"
"\"carved\":{offset, length, format, truncated, end} (its place in FILE), then\n"
"a summary. An item that runs off the end of FILE, past --max-length or into\n"
"a damaged structure is truncated: hashed as far as it goes, flagged partial.\n"
"\n"
"Options:\n"
"  -x, --index DIR        the known-hash index to match against (default: none,\n"
"                         hashes only)\n"
"  -o, --out FILE         write the report to FILE (default: standard output);\n"
"                         refused inside a FILE or the index, and over an\n"
"                         existing report unless --force\n"
"      --force            overwrite an existing report FILE\n"
"      --max-length N     the longest item carved, in bytes (default 64 MiB);\n"
"                         a longer one is cut there, truncated\n"
"  -m, --mode MODE        PDQ mode: fast (default) or compat\n"
"      --sha256           also SHA-256 of every item\n"
"      --distance N       PDQ match distance, 0..256 (default 31)\n"
"      --min-quality N    PDQ hashes of lower quality are not matched (default 50)\n"
"      --max-pixels N, --max-dimension N, --time-budget MS\n"
"                         decoding limits, as for 'imgtriage hash'\n"
"  -h, --help             show this help and exit\n"
"\n"
"The carve is linear in the bytes: after an item it goes on after the item's\n"
"end, after a rejected signature one byte later. Ctrl-C or SIGTERM stops it;\n"
"the summary then says the carve is incomplete.\n"
"\n"
"Exit status: 0 every FILE was carved and nothing known found; 1 known\n"
"material was found; 2 errors (a FILE that cannot be read, interrupted, bad\n"
"usage, the index or the report could not be used).\n");
}

/* ---- one FILE ------------------------------------------------------------------ */
typedef struct carve_ctx {
    int fd;
    const char *path;
    imt_hasher *hasher;
    imt_matcher *mt;
    const imt_scan_opts *so;
    imt_report *rep;
    uint64_t seq;
    int write_failed;
} carve_ctx;

typedef struct range_stream {
    int fd;
    uint64_t off, left;
} range_stream;

static imt_err range_read(void *ctx, void *buf, size_t cap, size_t *got)
{
    range_stream *s = ctx;
    *got = 0;
    if (cap > s->left) cap = (size_t)s->left;
    if (!cap) return IMT_OK;
    for (;;) {
        ssize_t n = pread(s->fd, buf, cap, (off_t)s->off);
        if (n >= 0) {
            *got = (size_t)n;
            s->off += (uint64_t)n;
            s->left -= (uint64_t)n;
            return IMT_OK;
        }
        if (errno != EINTR) return IMT_E_IO;
    }
}

static int is_scan_error(imt_err e)
{
    return e == IMT_E_IO || e == IMT_E_NOMEM || e == IMT_E_INTERNAL || e == IMT_E_DB ||
           e == IMT_E_INDEX_CORRUPT || e == IMT_E_INDEX_CHANGED;
}

static int on_hit(void *vctx, const imt_carve_hit *hit)
{
    carve_ctx *c = vctx;
    range_stream rs = {c->fd, hit->offset, hit->length};
    imt_stream s = {range_read, &rs, hit->length};
    imt_hash_result res;
    imt_hash_stream(c->hasher, &s, &res);
    if (res.status == IMT_E_INTERRUPTED) return 1;
    /* An item that ended early is partial even when its decoder did not
     * notice (a BMP cut in its rows, a GIF without its trailer). */
    if (hit->truncated && res.status == IMT_OK && !res.partial) {
        res.partial = 1;
        snprintf(res.detail, sizeof res.detail, "carved item truncated (%s)",
                 imt_carve_end_name(hit->end));
    }
    imt_scan_record rec;
    memset(&rec, 0, sizeof rec);
    rec.seq = c->seq++;
    rec.path = c->path;
    rec.type = IMT_ENTRY_FILE;
    rec.status = res.status;
    rec.detail = res.detail;
    rec.hash = &res;
    rec.carved = hit;
    imt_err e = IMT_OK;
    if (res.status != IMT_E_IO && res.status != IMT_E_NOMEM) e = imt_matcher_match(c->mt, &res, &rec);
    char why[160];
    if (e != IMT_OK) {
        rec.status = e;
        snprintf(why, sizeof why, "index lookup failed: %s", imt_strerror(e));
        rec.detail = why;
    }
    rec.scan_error = is_scan_error(rec.status);
    if (imt_report_record(c->rep, &rec)) {
        c->write_failed = 1;
        return 1;
    }
    return cli_stop != 0;
}

/* A record for FILE itself when it could not be carved (whole or in part). */
static int file_error(carve_ctx *c, imt_err st, const char *detail)
{
    imt_scan_record rec;
    memset(&rec, 0, sizeof rec);
    rec.seq = c->seq++;
    rec.path = c->path;
    rec.type = IMT_ENTRY_FILE;
    rec.status = st;
    rec.scan_error = 1;
    rec.detail = detail;
    if (imt_report_record(c->rep, &rec)) c->write_failed = 1;
    return c->write_failed;
}

static imt_err carve_one(carve_ctx *c, const imt_carve_opts *co)
{
    char why[512];
    int fd = open(c->path, O_RDONLY | O_NOATIME | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == EPERM) fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int en = errno;
        snprintf(why, sizeof why, "cannot open: %s", strerror(en));
        file_error(c, en == ENOENT ? IMT_E_NOT_FOUND : IMT_E_IO, why);
        return IMT_OK;
    }
    struct stat st;
    off_t end = -1;
    if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
        end = lseek(fd, 0, SEEK_END);
    if (end < 0) {
        close(fd);
        file_error(c, IMT_E_IO, "not a regular file or block device: not carved");
        return IMT_OK;
    }
    if (end == 0) {
        close(fd);
        return IMT_OK; /* nothing to carve */
    }
    c->fd = fd;
    imt_carve_stats cs;
    imt_err e = imt_carve_fd(fd, (uint64_t)end, co, on_hit, c, &cs);
    close(fd);
    if (e == IMT_E_INTERRUPTED && !c->write_failed) return e;
    if (e != IMT_OK && !c->write_failed) {
        snprintf(why, sizeof why, "carving stopped at byte %llu of %llu: %s; the items "
                 "before it are reported", (unsigned long long)cs.bytes_scanned,
                 (unsigned long long)end, imt_strerror(e));
        file_error(c, e, why);
    }
    return c->write_failed ? IMT_E_WRITE : IMT_OK;
}

static char *join_cmdline(int argc, char **argv)
{
    size_t n = 1;
    for (int i = 0; i < argc; i++) n += strlen(argv[i]) + 1;
    char *s = malloc(n + 16);
    if (!s) return NULL;
    strcpy(s, "imgtriage");
    for (int i = 0; i < argc; i++) {
        strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

int cmd_carve(int argc, char **argv)
{
    enum { O_FORCE = 1, O_MAXLEN, O_SHA256, O_DIST, O_MINQ };
    static const struct option lo[] = {
        {"index", required_argument, NULL, 'x'},
        {"out", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, O_FORCE},
        {"max-length", required_argument, NULL, O_MAXLEN},
        {"mode", required_argument, NULL, 'm'},
        {"sha256", no_argument, NULL, O_SHA256},
        {"distance", required_argument, NULL, O_DIST},
        {"min-quality", required_argument, NULL, O_MINQ},
        {"help", no_argument, NULL, 'h'},
        CLI_LIMIT_LONGOPTS,
        {NULL, 0, NULL, 0}};
    const char *index_path = NULL, *out_path = NULL;
    int force = 0, c, rc = CLI_EXIT_ERROR;
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.threads = 1;
    imt_carve_opts co;
    imt_carve_opts_init(&co);
    optind = 1;
    while ((c = getopt_long(argc, argv, "x:o:m:h", lo, NULL)) != -1) {
        unsigned long long v;
        switch (c) {
        case 'x': index_path = optarg; break;
        case 'o': out_path = optarg; break;
        case O_FORCE: force = 1; break;
        case 'm':
            if (!strcmp(optarg, "fast")) so.hash.mode = IMT_PDQ_FAST;
            else if (!strcmp(optarg, "compat")) so.hash.mode = IMT_PDQ_COMPAT;
            else { cli_err("carve: --mode must be fast or compat, not '%s'", optarg); return CLI_EXIT_ERROR; }
            break;
        case O_SHA256: so.hash.digests |= IMT_DIGEST_SHA256; break;
        case O_MAXLEN: case O_DIST: case O_MINQ:
        case CLI_OPT_MAXPIX: case CLI_OPT_MAXDIM: case CLI_OPT_MAXFILE: case CLI_OPT_BUDGET:
            if (!cli_parse_u64(optarg, &v)) {
                cli_err("carve: bad number '%s'", optarg);
                return CLI_EXIT_ERROR;
            }
            if (c == O_MAXLEN) {
                if (!v) { cli_err("carve: --max-length must be positive"); return CLI_EXIT_ERROR; }
                co.max_length = v;
            } else if (c == O_DIST) {
                if (v > 256) { cli_err("carve: --distance must be 0..256"); return CLI_EXIT_ERROR; }
                so.pdq_distance = (int)v;
            } else if (c == O_MINQ) {
                if (v > 100) { cli_err("carve: --min-quality must be 0..100"); return CLI_EXIT_ERROR; }
                so.min_quality = (int)v;
            } else {
                cli_set_limit(&so.hash, c, v);
            }
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_ERROR;
        }
    }
    if (optind >= argc) {
        cli_err("carve: no FILE given; try 'imgtriage carve --help'");
        return CLI_EXIT_ERROR;
    }
    const char *const *paths = (const char *const *)(argv + optind);
    size_t n_paths = (size_t)(argc - optind);

    imt_index *idx = NULL;
    imt_report *rep = NULL;
    imt_hasher *hasher = NULL;
    imt_matcher *mt = NULL;
    FILE *out = stdout;
    cli_output cout = {0};
    char why[1024];
    char *cmdline = NULL;
    imt_err e;

    if (index_path) {
        e = cli_open_index(&idx, "carve", index_path);
        if (e) goto cleanup;
    }
    e = imt_matcher_open(&mt, idx, &so);
    if (e) { cli_err("carve: cannot read the index: %s", imt_strerror(e)); goto cleanup; }
    if (out_path && cli_open_output(out_path, paths, n_paths, index_path, force, &cout, why,
                                    sizeof why) != 0) {
        cli_err("carve: %s", why);
        goto cleanup;
    }
    so.hash.stop = &cli_stop; /* a long item stops within a chunk too */
    e = imt_hasher_create(&hasher, &so.hash);
    if (e) { cli_err("carve: %s", imt_strerror(e)); goto cleanup; }
    cmdline = join_cmdline(argc, argv);
    imt_report_opts ro;
    imt_report_opts_init(&ro);
    ro.command_line = cmdline;
    ro.index_path = index_path;
    if (out_path) {
        out = cli_output_open(&cout, 0, why, sizeof why);
        if (!out) {
            cli_err("carve: %s", why);
            out = stdout;
            goto cleanup;
        }
    }
    e = imt_report_create(&rep, out, &ro);
    if (e) { cli_err("carve: cannot start the report: %s", imt_strerror(e)); goto cleanup; }
    e = imt_report_begin(rep, idx, paths, n_paths, &so);
    if (e) { cli_err("carve: %s", imt_report_last_error(rep)); goto cleanup; }

    cli_catch_stop();
    co.stop = &cli_stop;

    carve_ctx cc = {-1, NULL, hasher, mt, &so, rep, 0, 0};
    imt_err st = IMT_OK;
    for (size_t i = 0; i < n_paths && st == IMT_OK; i++) {
        cc.path = paths[i];
        st = carve_one(&cc, &co);
    }
    if (cli_stop && st == IMT_OK) st = IMT_E_INTERRUPTED;
    if (st == IMT_E_WRITE) {
        cli_err("carve: %s", imt_report_last_error(rep));
        st = IMT_E_INTERRUPTED;
    }
    imt_report_summary sum;
    e = imt_report_end(rep, st, &sum);
    if (e) cli_err("carve: %s", imt_report_last_error(rep));
    int close_errno = 0;
    if (out != stdout) {
        if (fflush(out) != 0 || (fsync(fileno(out)) != 0 && errno != EINVAL)) close_errno = errno;
        if (fclose(out) != 0 && !close_errno) close_errno = errno;
        out = stdout;
    } else if (fflush(stdout) != 0) {
        close_errno = errno;
    }
    fputs(imt_report_summary_text(rep), stderr);
    if (close_errno && e == IMT_OK) {
        cli_err("carve: INCOMPLETE: the report could not be written: %s", strerror(close_errno));
        e = IMT_E_WRITE;
    }
    if (sum.hit_files) rc = CLI_EXIT_FOUND;
    else if (st != IMT_OK || e != IMT_OK || sum.errors) rc = CLI_EXIT_ERROR;
    else rc = CLI_EXIT_OK;

cleanup:
    if (out != stdout) fclose(out);
    imt_report_free(rep);
    imt_hasher_free(hasher);
    imt_matcher_close(mt);
    imt_index_close(idx);
    cli_output_free(&cout);
    free(cmdline);
    return rc;
}
