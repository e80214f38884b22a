/* tools/cmd_scan.c -- `imgtriage scan`: walk evidence, match it against an
 * index, write a report, print the device summary. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
"Usage: imgtriage scan --index IDX [OPTIONS] PATH...\n"
"Walk PATHs (the evidence: folders or files, only ever read), read every\n"
"regular file once (MD5 and SHA-1 of all bytes, the format sniffed from the\n"
"bytes, images decoded and PDQ-hashed), match everything against the index\n"
"and write one record per entry, then a device summary with a priority score.\n"
"\n"
"A PATH whose bytes are a disk image (E01 with all its segments, split raw\n"
"NAME.001..., a raw disk, partition or ISO image) or a block device is read\n"
"as one, never mounted: every file of every partition's file system,\n"
"allocated, deleted and orphan, and NTFS alternate data streams, each a\n"
"record with the path IMAGE!pN/path/in/fs[:stream] (N counts the allocated\n"
"partitions from 1; p0: the image holds one file system) and its location\n"
"(partition, file system, inode, allocation, times, image byte runs).\n"
"Unallocated blocks of each file system, space outside partitions and a\n"
"partition whose file system does not open are carved (as imgtriage carve):\n"
"IMAGE!pN/carved@OFFSET (p0 outside partitions). Archives inside images are\n"
"expanded as in folders: IMAGE!pN/dir/a.zip!member.\n"
"\n"
"Options:\n"
"  -x, --index DIR        the known-hash index to match against (required)\n"
"      --no-index         no matching: an inventory with hashes only\n"
"      --full-check       read and check every page of the index and its PDQ\n"
"                         arrays at open, even when this machine's record\n"
"                         ($XDG_CACHE_HOME/imgtriage/verified) says the file\n"
"                         passed that check and is unchanged since (as\n"
"                         IMGTRIAGE_FULL_CHECK=1 does for every command)\n"
"  -o, --out FILE         write the report to FILE (default: standard output);\n"
"                         refused inside a PATH or the index, and over an\n"
"                         existing report unless --force\n"
"      --force            overwrite an existing report FILE\n"
"  -f, --format FMT       jsonl (default) or csv\n"
"      --hits-only        only entries that match a list (header and summary kept)\n"
"      --also FMT:FILE    when the scan ends, also write the JSONL --out report as\n"
"                         FMT (csv, dfxml, vics, html; as 'imgtriage report') to\n"
"                         FILE (checked like --out before the scan); repeatable\n"
"      --device NAME      name of the device, for the report\n"
"      --case ID          case identifier, for the report\n"
"      --verify-image     recompute the MD5 of each disk-image PATH before the\n"
"                         scan and compare it with the hash an E01 stores; a\n"
"                         mismatch makes the scan incomplete\n"
"      --resume FILE      continue the interrupted scan whose JSONL report is FILE:\n"
"                         its records are copied, its files not read again; the\n"
"                         result equals an uninterrupted scan's report. FILE may\n"
"                         be the --out file itself\n"
"  -t, --threads N        worker threads (default: all cores; 1 = serial)\n"
"  -m, --mode MODE        PDQ mode: fast (default) or compat (bit-identical to\n"
"                         the reference hasher, slower)\n"
"      --no-dihedral      match the image as it is only (default: also its 7\n"
"                         rotations and flips)\n"
"      --sha256           also SHA-256 of every file\n"
"      --one-file-system  do not enter folders on other file systems\n"
"      --distance N       PDQ match distance, 0..256 (default 31)\n"
"      --min-quality N    PDQ hashes of lower quality are kept, not matched\n"
"                         (default 50, upstream's advice)\n"
"      --seconds-per-hash S  videos: one frame hashed every S seconds (default 1)\n"
"      --video-query-pct P   a known video matches when at least P %% of this\n"
"                         video's frames match it (default 80, as vPDQ)\n"
"      --video-compared-pct P  ... and at least P %% of its frames are matched\n"
"                         (default 0); frames of quality below --min-quality\n"
"                         are dropped and --distance applies to frames too\n"
"      --max-pixels N, --max-dimension N, --max-file-size N, --time-budget MS\n"
"                         decoding limits, as for 'imgtriage hash'\n"
"Preview (a time-boxed triage; see README, \"Preview\"):\n"
"      --budget DURATION  list the evidence (metadata only), then read files in\n"
"                         order of likelihood (pictures and videos in user folders\n"
"                         first, then deleted pictures of disk images, system\n"
"                         folders last; a seeded random order within each class)\n"
"                         and stop after DURATION (e.g. 300, 90s, 5m,\n"
"                         1h; listing included). The report's records come in read\n"
"                         order; its summary holds \"preview\": files listed and\n"
"                         read per class, hits, and a 95%% upper bound on the files\n"
"                         with known material (exact hypergeometric per class).\n"
"                         A disk image is listed through its file systems; its\n"
"                         unallocated space is not carved (left to the full\n"
"                         scan, and the summary says so: \"not_carved\")\n"
"      --stop-after-hits N  a preview that stops after N files with hits\n"
"      --seed N           the order within each class (default 1: a rerun reads\n"
"                         the same files); listing spills to unnamed files in\n"
"                         $TMPDIR (refused inside a PATH) beyond 64 MiB\n"
"Containers (ZIP, RAR, 7z, TAR, cpio, gzip, bzip2, xz, zstd, OOXML/ODF/EPUB,\n"
"PDF images): each member is a record of its own, \"outer.zip!inner/a.jpg\",\n"
"right after its container's; nothing is extracted to disk. Limits, each\n"
"reported on the container's record when it stops an expansion:\n"
"      --no-containers    do not expand containers\n"
"      --max-depth N      nesting levels expanded (default 8)\n"
"      --max-members N    member records per walked file (default 100000)\n"
"      --max-expanded-bytes N  member bytes per walked file, all depths\n"
"                         (default 16 GiB)\n"
"      --max-ratio N      stop a container whose members hold over N times its\n"
"                         size, past 64 MiB (default 200)\n"
"      --max-container-buffer N  bytes a nested container (held to be expanded)\n"
"                         or a PDF (read whole) may take in memory, per thread\n"
"                         (default 64 MiB)\n"
"      --max-held-bytes N member records held until emitted, for the whole scan\n"
"                         (default 64 MiB; more: expanded again when emitted)\n"
"      --sample-blocks N  block sampling of one raw disk IMAGE instead: see\n"
"                         'imgtriage scan --sample-blocks 1 --help'\n"
"  -q, --quiet            no progress line\n"
"  -h, --help             show this help and exit\n"
"\n"
"Symbolic links are reported, never followed (a PATH that is a link is\n"
"followed); FIFOs, sockets and devices are reported, never opened. Names that\n"
"are not UTF-8 are written losslessly (JSON: \\udcXX per byte; CSV: \\xNN, and\n"
"a cell starting with = + - @ or ' gets a leading ', never a formula).\n"
"Ctrl-C or SIGTERM stops cleanly within a second, even in the middle of a\n"
"huge file: the report ends with a summary marked incomplete, and --resume\n"
"continues it.\n"
"\n"
"Exit status (as ClamAV's): 0 the scan completed and found no known material;\n"
"1 known material was found (listed in the report; this wins over errors);\n"
"2 errors prevented a complete scan (unreadable files or folders, a PATH that\n"
"does not exist, a disk image that cannot be opened, an unreadable region of\n"
"one (a corrupt E01 chunk, a missing segment), interrupted, bad usage, the\n"
"index or the report could not be used, or a preview that stopped before\n"
"reading every file); the summary then says the scan is incomplete, and why.\n"
"A later full scan with --resume PREVIEW_REPORT reads only the files the\n"
"preview did not.\n");
}

/* ---- progress --------------------------------------------------------- */
typedef struct progress {
    int tty, quiet;
    uint64_t last_ms;
    uint64_t total_bytes, total_files;
    volatile int total_known;
    int printed;
    imt_report *rep;
    int use_report_skip;
} progress;

typedef struct estimate {
    const char *const *paths;
    size_t n;
    int one_fs;
    progress *pr;
    pthread_t th;
    int started;
} estimate;

static void *estimate_main(void *arg)
{
    estimate *e = arg;
    uint64_t files = 0, bytes = 0;
    if (imt_scan_estimate(e->paths, e->n, e->one_fs, &cli_stop, &files, &bytes) == IMT_OK) {
        e->pr->total_files = files;
        e->pr->total_bytes = bytes;
        __atomic_store_n(&e->pr->total_known, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_progress(void *ctx, const imt_scan_progress *p)
{
    progress *pr = ctx;
    if (pr->quiet) return;
    uint64_t t = now_ms();
    uint64_t every = pr->tty ? 500 : 30000;
    if (pr->last_ms && t - pr->last_ms < every) return;
    pr->last_ms = t;
    double secs = (double)p->elapsed_ms / 1000.0;
    double mbs = secs > 0 ? (double)p->bytes / 1e6 / secs : 0.0;
    char eta[64] = "ETA ?";
    if (__atomic_load_n(&pr->total_known, __ATOMIC_ACQUIRE) && p->bytes && secs > 0) {
        double left = pr->total_bytes > p->bytes ? (double)(pr->total_bytes - p->bytes) : 0;
        double s = left / ((double)p->bytes / secs);
        snprintf(eta, sizeof eta, "%.0f%%, ETA %dm%02ds",
                 pr->total_bytes ? 100.0 * (double)p->bytes / (double)pr->total_bytes : 100.0,
                 (int)(s / 60), (int)s % 60);
    }
    fprintf(stderr, "%s%s: %llu files, %llu images, %.1f MB/s, %llu hits, %llu errors, %s%s",
            pr->tty ? "\r" : "", cli_prog, (unsigned long long)p->files,
            (unsigned long long)p->images, mbs, (unsigned long long)p->hits,
            (unsigned long long)p->errors, eta, pr->tty ? "\033[K" : "\n");
    fflush(stderr);
    pr->printed = 1;
}

static int skip_fn(void *ctx, const char *path, imt_entry_type type)
{
    progress *pr = ctx;
    return pr->use_report_skip ? imt_report_skip(pr->rep, path, type) : 0;
}

/* The command line, shell-quoted where needed, for the audit header. */
static char *join_cmdline(int argc, char **argv)
{
    size_t cap = 64;
    for (int i = 0; i < argc; i++) cap += 4 * strlen(argv[i]) + 3;
    char *s = malloc(cap), *p = s;
    if (!s) return NULL;
    p += sprintf(p, "%s", cli_prog);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int plain = *a != '\0';
        for (const char *c = a; *c; c++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *c))
                plain = 0;
        *p++ = ' ';
        if (plain) {
            p += sprintf(p, "%s", a);
        } else {
            *p++ = '\'';
            for (const char *c = a; *c; c++) {
                if (*c == '\'') p += sprintf(p, "'\\''");
                else *p++ = *c;
            }
            *p++ = '\'';
        }
    }
    *p = '\0';
    return s;
}

/* "300", "90s", "5m", "1h", "250ms" (a whole number and a unit). */
static int parse_duration_ms(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || *s < '0' || *s > '9') return 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno) return 0;
    unsigned long long mul = !*end || !strcmp(end, "s") ? 1000 : !strcmp(end, "ms") ? 1
                           : !strcmp(end, "m") ? 60000 : !strcmp(end, "h") ? 3600000 : 0;
    if (!mul || n == 0 || n > UINT64_MAX / mul) return 0;
    *out = n * mul;
    return 1;
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cmd_scan(int argc, char **argv)
{
    enum {
        OPT_NOINDEX = 1000, OPT_HITS, OPT_DEVICE, OPT_CASE, OPT_VERIFY_IMAGE, OPT_RESUME, OPT_NODIH, OPT_SHA256,
        OPT_ONEFS, OPT_DIST, OPT_MINQ, OPT_FORCE, OPT_ALSO, OPT_PBUDGET, OPT_STOPHITS, OPT_SEED,
        OPT_NOCONT, OPT_CDEPTH, OPT_FULLCHECK,
        OPT_CMEMBERS, OPT_CBYTES, OPT_CRATIO, OPT_CBUF, OPT_CHELD, OPT_SPH, OPT_VQ, OPT_VC
    };
    static const struct option longopts[] = {
        {"index", required_argument, NULL, 'x'},
        {"no-index", no_argument, NULL, OPT_NOINDEX},
        {"full-check", no_argument, NULL, OPT_FULLCHECK},
        {"out", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, OPT_FORCE},
        {"format", required_argument, NULL, 'f'},
        {"hits-only", no_argument, NULL, OPT_HITS},
        {"also", required_argument, NULL, OPT_ALSO},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"case", required_argument, NULL, OPT_CASE},
        {"verify-image", no_argument, NULL, OPT_VERIFY_IMAGE},
        {"resume", required_argument, NULL, OPT_RESUME},
        {"threads", required_argument, NULL, 't'},
        {"mode", required_argument, NULL, 'm'},
        {"no-dihedral", no_argument, NULL, OPT_NODIH},
        {"sha256", no_argument, NULL, OPT_SHA256},
        {"one-file-system", no_argument, NULL, OPT_ONEFS},
        {"distance", required_argument, NULL, OPT_DIST},
        {"min-quality", required_argument, NULL, OPT_MINQ},
        {"budget", required_argument, NULL, OPT_PBUDGET},
        {"stop-after-hits", required_argument, NULL, OPT_STOPHITS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"no-containers", no_argument, NULL, OPT_NOCONT},
        {"max-depth", required_argument, NULL, OPT_CDEPTH},
        {"max-members", required_argument, NULL, OPT_CMEMBERS},
        {"max-expanded-bytes", required_argument, NULL, OPT_CBYTES},
        {"max-ratio", required_argument, NULL, OPT_CRATIO},
        {"max-container-buffer", required_argument, NULL, OPT_CBUF},
        {"max-held-bytes", required_argument, NULL, OPT_CHELD},
        {"seconds-per-hash", required_argument, NULL, OPT_SPH},
        {"video-query-pct", required_argument, NULL, OPT_VQ},
        {"video-compared-pct", required_argument, NULL, OPT_VC},
        CLI_LIMIT_LONGOPTS,
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    for (int i = 1; i < argc; i++) /* block sampling of a disk image: its own command */
        if (!strncmp(argv[i], "--sample-blocks", 15)) return cmd_scan_sample(argc, argv);
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    imt_report_opts ro;
    imt_report_opts_init(&ro);
    const char *index_path = NULL, *out_path = NULL, *resume = NULL;
    int no_index = 0, quiet = 0, force = 0, c, rc = CLI_EXIT_ERROR;
    enum { MAX_ALSO = 8 };
    struct { imt_report_format f; const char *path; cli_output co; } also[MAX_ALSO];
    size_t n_also = 0;
    memset(also, 0, sizeof also);
    unsigned long long v;
    imt_triage_opts to;
    imt_triage_opts_init(&to);
    int preview = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "x:o:f:t:m:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'x': index_path = optarg; break;
        case OPT_NOINDEX: no_index = 1; break;
        case OPT_FULLCHECK: cli_full_check = 1; break;
        case 'o': out_path = optarg; break;
        case 'f':
            if (!strcmp(optarg, "jsonl")) ro.format = IMT_REPORT_JSONL;
            else if (!strcmp(optarg, "csv")) ro.format = IMT_REPORT_CSV;
            else { cli_err("scan: --format must be jsonl or csv, not '%s'", optarg); return CLI_EXIT_ERROR; }
            break;
        case OPT_HITS: ro.hits_only = 1; break;
        case OPT_ALSO: {
            static const struct { const char *name; imt_report_format f; } fm[] = {
                {"csv:", IMT_REPORT_CSV}, {"dfxml:", IMT_REPORT_DFXML},
                {"vics:", IMT_REPORT_VICS}, {"html:", IMT_REPORT_HTML}, {"jsonl:", IMT_REPORT_JSONL}};
            size_t k = 0;
            while (k < sizeof fm / sizeof fm[0] && strncmp(optarg, fm[k].name, strlen(fm[k].name))) k++;
            if (k == sizeof fm / sizeof fm[0] || !optarg[strlen(fm[k].name)]) {
                cli_err("scan: --also needs FORMAT:FILE (csv, dfxml, vics, html), not '%s'", optarg);
                return CLI_EXIT_ERROR;
            }
            if (n_also == MAX_ALSO) { cli_err("scan: at most %d --also", MAX_ALSO); return CLI_EXIT_ERROR; }
            also[n_also].f = fm[k].f;
            also[n_also++].path = optarg + strlen(fm[k].name);
            break;
        }
        case OPT_DEVICE: ro.device = optarg; break;
        case OPT_CASE: ro.case_id = optarg; break;
        case OPT_VERIFY_IMAGE: ro.verify_images = 1; break;
        case OPT_RESUME: resume = optarg; break;
        case OPT_FORCE: force = 1; break;
        case 't':
            if (!cli_parse_u64(optarg, &v) || v < 1 || v > 4096) {
                cli_err("scan: --threads needs a number from 1 to 4096");
                return CLI_EXIT_ERROR;
            }
            so.threads = (int)v;
            break;
        case 'm':
            if (!strcmp(optarg, "fast")) so.hash.mode = IMT_PDQ_FAST;
            else if (!strcmp(optarg, "compat")) so.hash.mode = IMT_PDQ_COMPAT;
            else { cli_err("scan: --mode must be fast or compat, not '%s'", optarg); return CLI_EXIT_ERROR; }
            break;
        case OPT_NODIH: so.hash.dihedral = 0; break;
        case OPT_SHA256: so.hash.digests |= IMT_DIGEST_SHA256; break;
        case OPT_ONEFS: so.one_file_system = 1; break;
        case OPT_DIST: case OPT_MINQ: case CLI_OPT_MAXPIX: case CLI_OPT_MAXDIM:
        case CLI_OPT_MAXFILE: case CLI_OPT_BUDGET:
            if (!cli_parse_u64(optarg, &v)) {
                cli_err("scan: %s needs a non-negative number", argv[optind - 1]);
                return CLI_EXIT_ERROR;
            }
            if (c == OPT_DIST) {
                if (v > 256) { cli_err("scan: --distance must be 0..256"); return CLI_EXIT_ERROR; }
                so.pdq_distance = (int)v;
            } else if (c == OPT_MINQ) {
                if (v > 100) { cli_err("scan: --min-quality must be 0..100"); return CLI_EXIT_ERROR; }
                so.min_quality = (int)v;
            } else cli_set_limit(&so.hash, c, v);
            break;
        case OPT_PBUDGET:
            if (!parse_duration_ms(optarg, &to.budget_ms)) {
                cli_err("scan: --budget needs a duration such as 300, 90s, 5m or 1h, not '%s'",
                        optarg);
                return CLI_EXIT_ERROR;
            }
            preview = 1;
            break;
        case OPT_STOPHITS: case OPT_SEED:
            if (!cli_parse_u64(optarg, &v) || (c == OPT_STOPHITS && v == 0)) {
                cli_err("scan: %s needs a %s number", argv[optind - 1],
                        c == OPT_STOPHITS ? "positive" : "non-negative");
                return CLI_EXIT_ERROR;
            }
            if (c == OPT_STOPHITS) {
                to.stop_after_hits = v;
                preview = 1;
            } else to.seed = v;
            break;
        case OPT_NOCONT: so.containers.enabled = 0; break;
        case OPT_CDEPTH: case OPT_CMEMBERS: case OPT_CBYTES: case OPT_CRATIO: case OPT_CBUF:
        case OPT_CHELD:
            if (!cli_parse_u64(optarg, &v) ||
                ((c == OPT_CDEPTH || c == OPT_CRATIO) && v > UINT32_MAX)) {
                cli_err("scan: %s needs a non-negative number", argv[optind - 1]);
                return CLI_EXIT_ERROR;
            }
            if (c == OPT_CDEPTH) so.containers.max_depth = (uint32_t)v;
            else if (c == OPT_CMEMBERS) so.containers.max_members = v;
            else if (c == OPT_CBYTES) so.containers.max_total_bytes = v;
            else if (c == OPT_CRATIO) so.containers.max_ratio = (uint32_t)v;
            else if (c == OPT_CBUF) so.containers.max_buffer = v;
            else so.containers.max_held_bytes = v;
            break;
        case OPT_SPH: case OPT_VQ: case OPT_VC: {
            char *end = NULL;
            double d = strtod(optarg, &end);
            if (!end || *end || !(d >= 0) || (c == OPT_SPH ? !(d > 0) || d > 86400 : d > 100)) {
                cli_err("scan: %s needs %s", argv[optind - 1],
                        c == OPT_SPH ? "a number of seconds over 0" : "a percentage 0..100");
                return CLI_EXIT_ERROR;
            }
            if (c == OPT_SPH) so.hash.seconds_per_hash = d;
            else if (c == OPT_VQ) so.vpdq.query_pct = d;
            else so.vpdq.compared_pct = d;
            break;
        }
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_ERROR;
        }
    }
    so.vpdq.distance = so.pdq_distance; /* one distance and quality floor for frames too */
    so.vpdq.min_quality = so.min_quality;
    if (optind >= argc) {
        cli_err("scan: no PATH given; try 'imgtriage scan --help'");
        return CLI_EXIT_ERROR;
    }
    if (!index_path && !no_index) {
        cli_err("scan: --index IDX is required (or --no-index for an inventory without matching)");
        return CLI_EXIT_ERROR;
    }
    if (index_path && no_index) {
        cli_err("scan: --index and --no-index exclude each other");
        return CLI_EXIT_ERROR;
    }
    if (n_also && (!out_path || ro.format != IMT_REPORT_JSONL)) {
        cli_err("scan: --also converts the JSONL report: it needs --out FILE and --format jsonl");
        return CLI_EXIT_ERROR;
    }
    if (preview && resume) {
        cli_err("scan: a preview (--budget, --stop-after-hits) cannot --resume; a full scan "
                "can --resume a preview's report");
        return CLI_EXIT_ERROR;
    }
    const char *const *paths = (const char *const *)(argv + optind);
    size_t n_paths = (size_t)(argc - optind);

    imt_index *idx = NULL;
    imt_report *rep = NULL;
    FILE *out = stdout;
    cli_output co = {0};
    int in_place = 0;
    char why[1024];
    char *cmdline = NULL;
    estimate est = {0};
    progress pr = {0};
    imt_err e;

    if (index_path) {
        e = cli_open_index(&idx, "scan", index_path);
        if (e) goto cleanup;
        imt_index_stats ist;
        if (imt_index_stats_get(idx, &ist) == IMT_OK && !ist.content_verified)
            cli_err("scan: warning: the index's searched arrays could not be checked against "
                    "their checksums (an index written before they were stored): its identity "
                    "in the report is marked \"content_verified\":false; a new import into it "
                    "stores them");
    }
    /* Every check before the report file is opened (and truncated). */
    if (resume && cli_check_input_path("the report to resume", resume, paths, n_paths,
                                       index_path, why, sizeof why) != 0) {
        cli_err("scan: %s", why);
        goto cleanup;
    }
    if (out_path) {
        in_place = resume && same_file(resume, out_path);
        if (cli_open_output(out_path, paths, n_paths, index_path, force || in_place, &co, why,
                            sizeof why) != 0) {
            cli_err("scan: %s", why);
            goto cleanup;
        }
    }
    /* --also files: the same checks as --out, before anything is written;
     * none may be the report or another --also file. */
    for (size_t i = 0; i < n_also; i++) {
        if (cli_open_output(also[i].path, paths, n_paths, index_path, force, &also[i].co, why,
                            sizeof why) != 0) {
            cli_err("scan: --also %s: %s", also[i].path, why);
            goto cleanup;
        }
        int clash = !strcmp(also[i].co.resolved, co.resolved);
        for (size_t j = 0; j < i; j++) clash |= !strcmp(also[i].co.resolved, also[j].co.resolved);
        if (clash) {
            cli_err("scan: --also %s: the same file as the report or another --also", also[i].path);
            goto cleanup;
        }
    }
    cmdline = join_cmdline(argc, argv);
    ro.command_line = cmdline;
    ro.index_path = index_path;
    if (resume && out_path) {
        /* Would the resume be accepted? Checked on a scratch report, so that a
         * refused resume leaves the --out file as it was. */
        FILE *scratch = fopen("/dev/null", "w");
        imt_report *chk = NULL;
        e = scratch ? imt_report_create(&chk, scratch, &ro) : IMT_E_IO;
        if (!e && (e = imt_report_resume(chk, resume)) == IMT_OK)
            e = imt_report_begin(chk, idx, paths, n_paths, &so);
        if (e) cli_err("scan: %s", chk ? imt_report_last_error(chk) : imt_strerror(e));
        imt_report_free(chk);
        if (scratch) fclose(scratch);
        if (e) goto cleanup;
    }
    if (out_path) {
        out = cli_output_open(&co, in_place, why, sizeof why);
        if (!out) {
            cli_err("scan: %s", why);
            out = stdout;
            goto cleanup;
        }
    }
    e = imt_report_create(&rep, out, &ro);
    if (e) { cli_err("scan: cannot start the report: %s", imt_strerror(e)); goto cleanup; }
    if (resume) {
        e = imt_report_resume(rep, resume);
        if (e) { cli_err("scan: %s", imt_report_last_error(rep)); goto cleanup; }
    }
    imt_preview_stats pst;
    memset(&pst, 0, sizeof pst);
    pst.budget_ms = to.budget_ms;
    pst.stop_after_hits = to.stop_after_hits;
    pst.seed = to.seed;
    if (preview) imt_report_preview(rep, &pst);
    e = imt_report_begin(rep, idx, paths, n_paths, &so);
    if (e) { cli_err("scan: %s", imt_report_last_error(rep)); goto cleanup; }

    cli_catch_stop();

    pr.tty = isatty(STDERR_FILENO);
    pr.quiet = quiet;
    pr.rep = rep;
    pr.use_report_skip = resume != NULL;
    if (!quiet) {
        est.paths = paths;
        est.n = n_paths;
        est.one_fs = so.one_file_system;
        est.pr = &pr;
        est.started = pthread_create(&est.th, NULL, estimate_main, &est) == 0;
    }
    so.stop = &cli_stop;
    so.progress = on_progress;
    so.skip = preview ? NULL : skip_fn;
    so.ctx = &pr;
    char detail[256];
    imt_err st = preview ? imt_triage_run(idx, paths, n_paths, &so, &to, imt_report_record, rep,
                                          &pst, detail, sizeof detail)
                         : imt_scan_run(idx, paths, n_paths, &so, imt_report_record, rep, detail,
                                        sizeof detail);
    if (preview) imt_report_preview(rep, &pst);
    if (pr.printed && pr.tty) fputc('\n', stderr);
    if (st == IMT_E_INTERRUPTED && imt_report_last_error(rep)[0]) {
        cli_err("scan: %s", imt_report_last_error(rep)); /* the report's end says it too */
    } else if (st != IMT_OK) {
        cli_err("scan: %s", detail[0] ? detail : imt_strerror(st));
    }
    imt_report_summary sum;
    e = imt_report_end(rep, st, &sum);
    if (e) cli_err("scan: %s", imt_report_last_error(rep));
    /* The report on disk before the summary is printed: a file system that
     * fills up at close (delayed allocation, NFS) must not leave "scan
     * complete" on the screen beside exit status 2. */
    int close_errno = 0;
    if (out != stdout) {
        if (fflush(out) != 0 || (fsync(fileno(out)) != 0 && errno != EINVAL)) close_errno = errno;
        if (fclose(out) != 0 && !close_errno) close_errno = errno;
        out = stdout;
        if (co.tmp && !close_errno && e == IMT_OK && rename(co.tmp, co.resolved) != 0) {
            cli_err("scan: cannot rename %s to %s: %s", co.tmp, co.resolved, strerror(errno));
            e = IMT_E_WRITE;
        }
    } else if (fflush(stdout) != 0) {
        close_errno = errno;
    }
    fputs(imt_report_summary_text(rep), stderr);
    if (close_errno && e == IMT_OK) {
        cli_err("scan: SCAN INCOMPLETE: the report could not be written: %s",
                strerror(close_errno));
        e = IMT_E_WRITE;
    }
    /* The other formats, converted from the report just written. */
    for (size_t i = 0; i < n_also && e == IMT_OK && !close_errno; i++) {
        FILE *af = cli_output_open(&also[i].co, 0, why, sizeof why);
        imt_report_opts aro;
        imt_report_opts_init(&aro);
        aro.format = also[i].f;
        imt_err ae = af ? imt_report_convert(co.resolved, af, &aro, why, sizeof why) : IMT_E_IO;
        if (af && fclose(af) != 0 && ae == IMT_OK) {
            ae = IMT_E_WRITE;
            snprintf(why, sizeof why, "%s", strerror(errno));
        }
        if (ae != IMT_OK) {
            cli_err("scan: --also %s could not be written: %s", also[i].path, why);
            e = ae;
        }
    }
    if (sum.hit_files) rc = CLI_EXIT_FOUND;
    else if (st != IMT_OK || e != IMT_OK || sum.errors || !sum.complete) rc = CLI_EXIT_ERROR;
    else rc = CLI_EXIT_OK;

cleanup:
    cli_stop = cli_stop ? cli_stop : 2; /* ends the estimate walk if still going */
    if (est.started) pthread_join(est.th, NULL);
    if (out != stdout) fclose(out);
    imt_report_free(rep);
    imt_index_close(idx);
    cli_output_free(&co);
    for (size_t i = 0; i < n_also; i++) cli_output_free(&also[i].co);
    free(cmdline);
    return rc;
}
