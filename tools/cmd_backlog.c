/* tools/cmd_backlog.c -- imgtriage backlog: a unit's queue of devices,
 * ranked by what a preview found, worked through on one machine
 * (backlog run: several processes may share the database) or a Slurm
 * cluster (backlog submit / task / sync).
 *
 * Scans run as child processes of this binary (/proc/self/exe scan ...),
 * never in the process that holds the queue: a decoder crash or an
 * out-of-memory kill on one device takes down that scan only, and a child
 * dies with its worker (PR_SET_PDEATHSIG), so a device whose worker was
 * killed is never scanned twice at once: its lease expires, another worker
 * claims it and resumes it from its partial report (scan --resume). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A preview is "scan --budget DURATION --hits-only": files in order of
 * likelihood until the budget is spent, its summary holding the priority
 * and the estimate (README, "Preview"). A preview cannot be resumed: a
 * restarted one starts afresh (it is short); a full scan resumes. */
#define PREVIEW_BUDGET_FLAG "--budget"
#define PREVIEW_BUDGET_DEFAULT "5m"

static void usage(FILE *f)
{
    fprintf(f,
"Usage: imgtriage backlog COMMAND DB [OPTIONS]\n"
"A unit's backlog of seized devices in one SQLite database DB (keep it on\n"
"local disk, never NFS): every device gets a quick preview, then full scans\n"
"run in rank order, so the devices holding known material are examined first.\n"
"\n"
"Commands:\n"
"  init DB                     make an empty backlog\n"
"  add DB --case C --device D [--received DATE] SOURCE...\n"
"                              queue a device (SOURCE: its evidence paths)\n"
"  add DB --csv FILE           queue many: rows case,device,received,source\n"
"                              (a header row first; a device with several\n"
"                              sources has one row per source)\n"
"  list DB [--json|--csv]      the devices, ranked (see Ranking)\n"
"  show DB DEVICE [--case C]   one device (by name or #id) and its audit log\n"
"  log DB [--json]             the audit log: every state change, who, when\n"
"  export DB [--format json|jsonl|csv]\n"
"                              the ranked devices for a case system (default json)\n"
"  run DB --index IDX [--reports DIR] [--workers N] [--preview-budget DUR]\n"
"         [--lease SECONDS] [--threads N] [--quiet]\n"
"                              work through the backlog on this machine: preview\n"
"                              every queued device, then full scans in rank order;\n"
"                              --threads per scan (default: the cores / N)\n"
"  submit DB --slurm --index IDX --shared DIR [--partition P]\n"
"         [--preview-budget DUR] [--threads N] [--again] [-- SBATCH-OPTION...]\n"
"                              the same on a Slurm cluster (see Slurm)\n"
"  sync DB                     read the Slurm tasks' reports back into DB\n"
"\n"
"States: queued -> previewing -> previewed -> scanning -> done | failed.\n"
"Every change is logged (time, who: user@host:pid, what); the log is\n"
"append-only.\n"
"\n"
"Ranking: first the devices with known material (a hit in the preview or the\n"
"full scan), by priority (README, 'Priority score'), then by distinct known\n"
"items; then the devices not yet previewed, longest waiting first (received\n"
"date); then the devices previewed clean, longest waiting first.\n"
"\n"
"run: each worker slot runs one scan at a time as a child process\n"
"('imgtriage scan'), reports under --reports (default: the folder 'reports'\n"
"beside DB; refused inside any device's evidence or the index): ID-CASE-\n"
"DEVICE.preview.jsonl and ID-CASE-DEVICE.jsonl. Several 'backlog run' may\n"
"share DB: a device is claimed in one transaction with a lease (default\n"
"60 s, renewed while it is worked on). A worker killed (even with SIGKILL)\n"
"releases nothing: when its lease expires another worker claims the device\n"
"and resumes it from its partial report. A run ends when every device is\n"
"done or failed. A scan that ends without a summary (crashed, killed) is\n"
"retried, 3 times at most; a full scan that ends incomplete (unreadable\n"
"evidence) is 'failed', with the reason. On a terminal, a progress line\n"
"(done/remaining, hits so far, ETA). Ctrl-C stops the scans cleanly and\n"
"gives their devices back (they resume later).\n"
"The preview: 'scan --budget DUR --hits-only' (default 5m): likely places\n"
"first, its summary holding the priority and an estimate of the files with\n"
"known material (stored, shown by 'show' and 'export'). A preview that is\n"
"interrupted starts afresh; a full scan resumes its partial report.\n"
"\n"
"Slurm: submit writes each device's scan command lines and reports under\n"
"--shared DIR (shared storage every node sees, as must be the evidence, the\n"
"index, opened read-only, and this binary), then submits the previews as one\n"
"job array (task i previews device i) and the full scans as a second array\n"
"depending on the first (afterany), whose task i scans the i-th device in\n"
"rank order. Tasks requeued or restarted resume from their partial reports.\n"
"The database is never touched by the tasks: 'backlog sync DB' reads their\n"
"reports back (run it at any time, as often as wanted). A second submit while\n"
"devices are not done is refused unless --again.\n"
"\n"
"Exit status: 0 success; 1 (run) every device is done and some hold known\n"
"material; 2 errors (a device failed, bad usage, the database unusable).\n");
}

/* ---- helpers ----------------------------------------------------------- */

static char g_who[300];

static const char *who(void)
{
    if (!g_who[0]) {
        char host[256] = "?";
        gethostname(host, sizeof host);
        host[sizeof host - 1] = 0;
        struct passwd *pw = getpwuid(geteuid());
        const char *user = pw ? pw->pw_name : getenv("USER");
        snprintf(g_who, sizeof g_who, "%s@%s:%ld", user ? user : "?", host, (long)getpid());
    }
    return g_who;
}

static imt_backlog *open_db(const char *path, int create)
{
    imt_backlog *bl = NULL;
    imt_err e = imt_backlog_open(&bl, path, create);
    if (e) {
        cli_err("%s", imt_backlog_error(bl));
        imt_backlog_close(bl);
        return NULL;
    }
    return bl;
}

static int db_fail(imt_backlog *bl, imt_err e)
{
    cli_err("%s (%s)", imt_backlog_error(bl), imt_strerror(e));
    return CLI_EXIT_ERROR;
}

/* "90", "90s", "5m", "2h" -> seconds; 0 on error. */
static unsigned long long parse_duration(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s) return 0;
    if (!*end || !strcmp(end, "s")) return v;
    if (!strcmp(end, "m")) return v * 60;
    if (!strcmp(end, "h")) return v * 3600;
    return 0;
}

/* An ISO 8601 date or UTC time: YYYY-MM-DD[THH:MM[:SS[.fff]]][Z]. */
static int valid_date(const char *s)
{
    static const char pat[] = "dddd-dd-dd";
    size_t n = strlen(s);
    if (n < 10) return 0;
    for (int i = 0; i < 10; i++)
        if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i]) return 0;
    for (size_t i = 10; i < n; i++)
        if (!strchr("0123456789T:.Z", s[i])) return 0;
    return n == 10 || s[10] == 'T';
}

static char *absolute(const char *p)
{
    char *r = realpath(p, NULL);
    return r;
}

/* A source as stored: absolute (symlinks resolved) when it exists, else
 * joined to the current folder, so that any worker finds it. */
static char *source_path(const char *p)
{
    char *r = realpath(p, NULL);
    if (r || p[0] == '/') return r ? r : strdup(p);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return strdup(p);
    size_t n = strlen(cwd) + strlen(p) + 2;
    r = malloc(n);
    if (r) snprintf(r, n, "%s/%s", cwd, p);
    return r;
}

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
    for (char *q = buf + 1; *q; q++) {
        if (*q != '/') continue;
        *q = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *q = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

/* ---- the scan command line --------------------------------------------- */

/* Does the report at path hold a whole first line (a header)? Then the
 * scan resumes from it; otherwise it starts afresh. */
static int resumable(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n > 0 && memchr(buf, '\n', (size_t)n) != NULL;
}

typedef struct argv_t {
    const char *v[64];
    int n;
} argv_t;

/* The one place a device's scan command line is made: the preview (with
 * the budget, when the scan has one) and the full scan. Sources follow
 * "--", so no evidence name is read as an option. */
static void scan_argv(argv_t *a, int preview, const char *index, const char *case_id,
                      const char *device, const char *report, const char *budget,
                      const char *threads, int resume)
{
    a->n = 0;
    a->v[a->n++] = "imgtriage";
    a->v[a->n++] = "scan";
    a->v[a->n++] = "--quiet";
    a->v[a->n++] = "--index";
    a->v[a->n++] = index;
    a->v[a->n++] = "--case";
    a->v[a->n++] = case_id;
    a->v[a->n++] = "--device";
    a->v[a->n++] = device;
    a->v[a->n++] = "--out";
    a->v[a->n++] = report;
    if (threads) {
        a->v[a->n++] = "--threads";
        a->v[a->n++] = threads;
    }
    if (preview) {
        a->v[a->n++] = "--hits-only";
        a->v[a->n++] = PREVIEW_BUDGET_FLAG;
        a->v[a->n++] = budget ? budget : PREVIEW_BUDGET_DEFAULT;
        resume = 0;
    }
    if (resume) {
        a->v[a->n++] = "--resume";
        a->v[a->n++] = report;
    } else {
        a->v[a->n++] = "--force";
    }
    a->v[a->n++] = "--";
    a->v[a->n] = NULL;
}

/* Run "imgtriage ARGS SOURCES" as a child (its stderr appended to log),
 * dying with this process. Returns its pid, or -1. */
static pid_t spawn(const argv_t *a, const char *const *sources, size_t n_sources,
                   const char *log)
{
    size_t total = (size_t)a->n + n_sources + 1;
    char **argv = calloc(total, sizeof *argv);
    if (!argv) return -1;
    for (int i = 0; i < a->n; i++) argv[i] = (char *)a->v[i];
    for (size_t i = 0; i < n_sources; i++) argv[a->n + i] = (char *)sources[i];
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127); /* the worker died already */
        signal(SIGINT, SIG_IGN);             /* Ctrl-C reaches the worker, which asks */
        int nul = open("/dev/null", O_RDWR);
        int lf = log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
        }
        if (lf >= 0) dup2(lf, 2);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    free(argv);
    return pid;
}

/* ---- init, add, list, show, log, export -------------------------------- */

static int cmd_init(int argc, char **argv)
{
    if (argc != 2) {
        cli_err("usage: imgtriage backlog init DB");
        return CLI_EXIT_ERROR;
    }
    struct stat st;
    int existed = stat(argv[1], &st) == 0;
    imt_backlog *bl = open_db(argv[1], 1);
    if (!bl) return CLI_EXIT_ERROR;
    if (!existed) imt_backlog_note(bl, who(), 0, "backlog created");
    imt_backlog_close(bl);
    return CLI_EXIT_OK;
}

/* One CSV field (RFC 4180 quotes) from *p; NULL at the end of the line. */
static char *csv_field(char **p, int *eol)
{
    char *s = *p, *out = s, *w = s;
    if (*s == '"') {
        s++;
        for (;;) {
            if (!*s) break;
            if (*s == '"') {
                if (s[1] == '"') {
                    *w++ = '"';
                    s += 2;
                    continue;
                }
                s++;
                break;
            }
            *w++ = *s++;
        }
    } else {
        while (*s && *s != ',' && *s != '\n' && *s != '\r') *w++ = *s++;
    }
    *eol = *s != ',';
    if (*s == ',') s++;
    *w = 0;
    *p = s;
    return out;
}

static int add_csv(imt_backlog *bl, const char *file)
{
    FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
    if (!f) {
        cli_err("%s: %s", file, strerror(errno));
        return CLI_EXIT_ERROR;
    }
    char *line = NULL;
    size_t cap = 0;
    int rc = CLI_EXIT_OK;
    long lineno = 0;
    /* rows of one device (case, device) in a run are gathered */
    char pcase[512] = "", pdev[512] = "", prec[64] = "";
    char **src = NULL;
    size_t ns = 0;
    int added = 0;
    for (;;) {
        ssize_t len = getline(&line, &cap, f);
        char *fl[4] = {0};
        int nf = 0;
        if (len >= 0) {
            lineno++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
            if (!len) continue;
            char *p = line;
            int eol = 0;
            while (!eol && nf < 4) fl[nf++] = csv_field(&p, &eol);
            if (!eol || nf != 4) {
                cli_err("%s:%ld: expected 4 fields: case,device,received,source", file, lineno);
                rc = CLI_EXIT_ERROR;
                break;
            }
            if (lineno == 1 && !strcmp(fl[0], "case")) continue; /* header */
        }
        int same = len >= 0 && ns && !strcmp(fl[0], pcase) && !strcmp(fl[1], pdev);
        if (ns && !same) {
            imt_err e = imt_backlog_add(bl, who(), pcase, pdev, prec[0] ? prec : NULL,
                                        (const char *const *)src, ns, NULL);
            for (size_t i = 0; i < ns; i++) free(src[i]);
            ns = 0;
            if (e) {
                rc = db_fail(bl, e);
                break;
            }
            added++;
        }
        if (len < 0) break;
        if (!fl[0][0] || !fl[1][0] || !fl[3][0] || (fl[2][0] && !valid_date(fl[2])) ||
            strlen(fl[0]) >= sizeof pcase || strlen(fl[1]) >= sizeof pdev ||
            strlen(fl[2]) >= sizeof prec) {
            cli_err("%s:%ld: a row needs a case, a device, an ISO 8601 received date (or none) "
                    "and a source", file, lineno);
            rc = CLI_EXIT_ERROR;
            break;
        }
        snprintf(pcase, sizeof pcase, "%s", fl[0]);
        snprintf(pdev, sizeof pdev, "%s", fl[1]);
        snprintf(prec, sizeof prec, "%s", fl[2]);
        char **n2 = realloc(src, (ns + 1) * sizeof *n2);
        if (!n2 || !(n2[ns] = source_path(fl[3]))) {
            if (n2) src = n2;
            cli_err("out of memory");
            rc = CLI_EXIT_ERROR;
            break;
        }
        src = n2;
        ns++;
    }
    for (size_t i = 0; i < ns; i++) free(src[i]);
    free(src);
    free(line);
    if (f != stdin) fclose(f);
    if (rc == CLI_EXIT_OK) fprintf(stderr, "%s: %d devices added\n", cli_prog, added);
    return rc;
}

static int cmd_add(int argc, char **argv)
{
    static const struct option lo[] = {{"case", required_argument, NULL, 'c'},
                                       {"device", required_argument, NULL, 'd'},
                                       {"received", required_argument, NULL, 'r'},
                                       {"csv", required_argument, NULL, 'C'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *case_id = NULL, *device = NULL, *received = NULL, *csv = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
        switch (c) {
        case 'c': case_id = optarg; break;
        case 'd': device = optarg; break;
        case 'r': received = optarg; break;
        case 'C': csv = optarg; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: return CLI_EXIT_ERROR;
        }
    }
    if (optind >= argc) {
        cli_err("backlog add: DB missing");
        return CLI_EXIT_ERROR;
    }
    const char *db = argv[optind++];
    /* options may also follow DB */
    while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
        switch (c) {
        case 'c': case_id = optarg; break;
        case 'd': device = optarg; break;
        case 'r': received = optarg; break;
        case 'C': csv = optarg; break;
        default: return CLI_EXIT_ERROR;
        }
    }
    if (optind < argc && !strcmp(argv[optind], "--")) optind++;
    if (!csv && (!case_id || !*case_id || !device || !*device || optind >= argc)) {
        cli_err("backlog add: needs --case C --device D and at least one SOURCE (or --csv FILE)");
        return CLI_EXIT_ERROR;
    }
    if (received && !valid_date(received)) {
        cli_err("--received %s: not an ISO 8601 date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)",
                received);
        return CLI_EXIT_ERROR;
    }
    imt_backlog *bl = open_db(db, 0);
    if (!bl) return CLI_EXIT_ERROR;
    int rc = CLI_EXIT_OK;
    if (csv) {
        rc = add_csv(bl, csv);
    } else {
        int64_t id;
        size_t ns = (size_t)(argc - optind);
        char **src = calloc(ns, sizeof *src);
        imt_err e = src ? IMT_OK : IMT_E_NOMEM;
        for (size_t i = 0; !e && i < ns; i++)
            if (!(src[i] = source_path(argv[optind + (int)i]))) e = IMT_E_NOMEM;
        if (!e) e = imt_backlog_add(bl, who(), case_id, device, received,
                                    (const char *const *)src, ns, &id);
        for (size_t i = 0; src && i < ns; i++) free(src[i]);
        free(src);
        if (e) rc = db_fail(bl, e);
        else printf("%lld\n", (long long)id);
    }
    imt_backlog_close(bl);
    return rc;
}

static void print_result(FILE *f, const imt_bl_result *r)
{
    if (!r->have) {
        fprintf(f, "%-28s", "-");
        return;
    }
    char buf[96];
    snprintf(buf, sizeof buf, "%lld hits, %lld items, %.3f", (long long)r->hit_files,
             (long long)r->hit_items, r->priority);
    fprintf(f, "%-28s", buf);
}

/* A name for a terminal: control bytes and invalid UTF-8 as \xNN. */
static void put_name(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\') fprintf(f, "\\x%02x", *p);
        else fputc(*p, f);
    }
}

static int cmd_list(int argc, char **argv)
{
    const char *fmt = NULL, *db = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) fmt = "json";
        else if (!strcmp(argv[i], "--jsonl")) fmt = "jsonl";
        else if (!strcmp(argv[i], "--csv")) fmt = "csv";
        else if (!db && argv[i][0] != '-') db = argv[i];
        else {
            cli_err("usage: imgtriage backlog list DB [--json|--jsonl|--csv]");
            return CLI_EXIT_ERROR;
        }
    }
    if (!db) {
        cli_err("usage: imgtriage backlog list DB [--json|--jsonl|--csv]");
        return CLI_EXIT_ERROR;
    }
    imt_backlog *bl = open_db(db, 0);
    if (!bl) return CLI_EXIT_ERROR;
    int rc = CLI_EXIT_OK;
    imt_err e;
    if (fmt) {
        if ((e = imt_backlog_export(bl, stdout, fmt))) rc = db_fail(bl, e);
    } else {
        imt_bl_device *v;
        size_t n;
        if ((e = imt_backlog_devices(bl, &v, &n))) {
            rc = db_fail(bl, e);
        } else {
            static const char *const g[] = {"KNOWN", "unpreviewed", "clean"};
            printf("%-4s %-4s %-11s %-11s %-28s %-28s %-20s %s\n", "RANK", "ID", "STATE", "GROUP",
                   "PREVIEW", "FULL SCAN", "RECEIVED", "CASE / DEVICE");
            for (size_t i = 0; i < n; i++) {
                printf("%-4zu %-4lld %-11s %-11s ", i + 1, (long long)v[i].id,
                       imt_bl_state_name(v[i].state), g[v[i].group]);
                print_result(stdout, &v[i].preview);
                putchar(' ');
                print_result(stdout, &v[i].scan);
                printf(" %-20.20s ", v[i].received ? v[i].received : "");
                put_name(stdout, v[i].case_id);
                fputs(" / ", stdout);
                put_name(stdout, v[i].device);
                putchar('\n');
            }
            imt_bl_devices_free(v, n);
        }
    }
    imt_backlog_close(bl);
    return rc;
}

static int cmd_show(int argc, char **argv)
{
    const char *db = NULL, *dev = NULL, *case_id = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--case") && i + 1 < argc) case_id = argv[++i];
        else if (!db) db = argv[i];
        else if (!dev) dev = argv[i];
        else dev = NULL, db = NULL, i = argc;
    }
    if (!db || !dev) {
        cli_err("usage: imgtriage backlog show DB DEVICE [--case C]");
        return CLI_EXIT_ERROR;
    }
    imt_backlog *bl = open_db(db, 0);
    if (!bl) return CLI_EXIT_ERROR;
    imt_bl_device d;
    imt_err e = imt_backlog_find(bl, case_id, dev, &d);
    int rc = CLI_EXIT_OK;
    if (e) {
        rc = db_fail(bl, e);
    } else {
        printf("device #%lld: ", (long long)d.id);
        put_name(stdout, d.device);
        printf("\ncase: ");
        put_name(stdout, d.case_id);
        printf("\nreceived: %s\nadded: %s\nstate: %s\n", d.received ? d.received : "-",
               d.added ? d.added : "-", imt_bl_state_name(d.state));
        for (size_t i = 0; i < d.n_sources; i++) {
            printf("source: ");
            put_name(stdout, d.sources[i]);
            putchar('\n');
        }
        for (int k = 0; k < 2; k++) {
            const imt_bl_result *r = k ? &d.scan : &d.preview;
            const char *rep = k ? d.report : d.preview_report;
            printf("%s: ", k ? "full scan" : "preview");
            if (r->have)
                printf("%s, %lld files, %lld with hits, %lld distinct seized items, %lld "
                       "distinct known items, priority %.3f\n",
                       r->complete ? "complete" : "incomplete", (long long)r->files,
                       (long long)r->hit_files, (long long)r->hit_items,
                       (long long)r->known_items, r->priority);
            else
                printf("-\n");
            if (rep) {
                printf("  report: ");
                put_name(stdout, rep);
                putchar('\n');
            }
            if (!k && r->preview) printf("  estimate: %s\n", r->preview);
        }
        if (d.worker) printf("worker: %s (lease until %lld ms)\n", d.worker, (long long)d.lease_until_ms);
        if (d.error) {
            printf("error: ");
            put_name(stdout, d.error);
            putchar('\n');
        }
        printf("log:\n");
        fflush(stdout);
        if ((e = imt_backlog_log_write(bl, d.id, stdout, 0))) rc = db_fail(bl, e);
        imt_bl_device_clear(&d);
    }
    imt_backlog_close(bl);
    return rc;
}

static int cmd_log(int argc, char **argv)
{
    int json = argc == 3 && !strcmp(argv[2], "--json");
    if (argc != 2 && !json) {
        cli_err("usage: imgtriage backlog log DB [--json]");
        return CLI_EXIT_ERROR;
    }
    imt_backlog *bl = open_db(argv[1], 0);
    if (!bl) return CLI_EXIT_ERROR;
    imt_err e = imt_backlog_log_write(bl, 0, stdout, json);
    int rc = e ? db_fail(bl, e) : CLI_EXIT_OK;
    imt_backlog_close(bl);
    return rc;
}

static int cmd_export(int argc, char **argv)
{
    const char *fmt = "json", *db = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--format") && i + 1 < argc) fmt = argv[++i];
        else if (!strncmp(argv[i], "--format=", 9)) fmt = argv[i] + 9;
        else if (!db) db = argv[i];
        else db = NULL, i = argc;
    }
    if (!db) {
        cli_err("usage: imgtriage backlog export DB [--format json|jsonl|csv]");
        return CLI_EXIT_ERROR;
    }
    imt_backlog *bl = open_db(db, 0);
    if (!bl) return CLI_EXIT_ERROR;
    imt_err e = imt_backlog_export(bl, stdout, fmt);
    int rc = e ? db_fail(bl, e) : CLI_EXIT_OK;
    imt_backlog_close(bl);
    return rc;
}

/* ---- run --------------------------------------------------------------- */

static volatile sig_atomic_t g_stop;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_stop(int sig)
{
    (void)sig;
    g_stop = 1;
}

typedef struct slot {
    pid_t pid;
    int64_t id;
    imt_bl_phase phase;
    char *report;
    time_t started;
} slot;

typedef struct run_opts {
    const char *index, *reports, *budget, *threads;
    int64_t lease_ms;
} run_opts;

/* Reports never inside a device's evidence or the index: checked before
 * the folder is made, on its nearest existing ancestor (a folder yet to be
 * made is inside the evidence only if that ancestor is). */
static int check_reports_dir(const char *reports, const imt_bl_device *d, const char *index)
{
    char probe[PATH_MAX + 64], why[512], dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", reports);
    struct stat st;
    while (stat(dir, &st) != 0) {
        char *sl = strrchr(dir, '/');
        if (!sl) {
            snprintf(dir, sizeof dir, ".");
            break;
        }
        if (sl == dir) sl[1] = 0;
        else *sl = 0;
    }
    snprintf(probe, sizeof probe, "%s/.imgtriage-backlog-probe", dir);
    cli_output o;
    memset(&o, 0, sizeof o);
    int r = cli_open_output(probe, (const char *const *)d->sources, d->n_sources, index, 1, &o,
                            why, sizeof why);
    cli_output_free(&o);
    if (r) {
        cli_err("device %s (#%lld): the reports folder %s: %s", d->device, (long long)d->id,
                reports, why);
        return -1;
    }
    return 0;
}

static pid_t start_scan(const run_opts *o, const imt_bl_device *d, imt_bl_phase ph)
{
    const char *report = ph == IMT_BL_PREVIEW ? d->preview_report : d->report;
    argv_t a;
    scan_argv(&a, ph == IMT_BL_PREVIEW, o->index, d->case_id, d->device, report, o->budget,
              o->threads, ph == IMT_BL_SCAN && resumable(report));
    char log[PATH_MAX + 8];
    snprintf(log, sizeof log, "%s.log", report);
    return spawn(&a, (const char *const *)d->sources, d->n_sources, log);
}

static void progress(imt_backlog *bl, time_t t0, int units_done, int busy)
{
    int64_t c[IMT_BL__COUNT], hits = 0;
    if (imt_backlog_counts(bl, c, &hits)) return;
    int64_t total = 0;
    for (int i = 0; i < IMT_BL__COUNT; i++) total += c[i];
    int64_t finished = c[IMT_BL_DONE] + c[IMT_BL_FAILED];
    /* work left in units: a queued device needs a preview and a scan */
    int64_t left = 2 * (c[IMT_BL_QUEUED] + c[IMT_BL_PREVIEWING]) + c[IMT_BL_PREVIEWED] +
                   c[IMT_BL_SCANNING];
    double el = difftime(time(NULL), t0);
    char eta[32] = "?";
    if (units_done > 0 && left > 0) {
        double s = el / units_done * (double)left;
        snprintf(eta, sizeof eta, "%dh%02dm%02ds", (int)(s / 3600), (int)(s / 60) % 60,
                 (int)s % 60);
    } else if (left == 0) {
        snprintf(eta, sizeof eta, "0s");
    }
    fprintf(stderr, "\r\033[Kbacklog: %lld/%lld devices done (%lld failed), %lld remaining "
            "(%lld to preview), %d running here, hits so far %lld, ETA %s",
            (long long)finished, (long long)total, (long long)c[IMT_BL_FAILED],
            (long long)(total - finished), (long long)(c[IMT_BL_QUEUED] + c[IMT_BL_PREVIEWING]),
            busy, (long long)hits, eta);
}

static int cmd_run(int argc, char **argv)
{
    static const struct option lo[] = {{"index", required_argument, NULL, 'x'},
                                       {"reports", required_argument, NULL, 'r'},
                                       {"workers", required_argument, NULL, 'w'},
                                       {"preview-budget", required_argument, NULL, 'b'},
                                       {"lease", required_argument, NULL, 'l'},
                                       {"threads", required_argument, NULL, 't'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    run_opts o = {0};
    unsigned long long workers = 1, lease = 60, tv;
    const char *reports = NULL;
    int quiet = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "x:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'x': o.index = optarg; break;
        case 'r': reports = optarg; break;
        case 'w':
            if (!cli_parse_u64(optarg, &workers) || !workers || workers > 64) {
                cli_err("--workers: 1..64");
                return CLI_EXIT_ERROR;
            }
            break;
        case 'b':
            if (!parse_duration(optarg)) {
                cli_err("--preview-budget %s: a duration such as 90s, 5m or 1h", optarg);
                return CLI_EXIT_ERROR;
            }
            o.budget = optarg;
            break;
        case 'l':
            if (!cli_parse_u64(optarg, &lease) || lease < 2) {
                cli_err("--lease: seconds, at least 2");
                return CLI_EXIT_ERROR;
            }
            break;
        case 't':
            if (!cli_parse_u64(optarg, &tv) || !tv) {
                cli_err("--threads: a positive number");
                return CLI_EXIT_ERROR;
            }
            o.threads = optarg;
            break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: return CLI_EXIT_ERROR;
        }
    }
    if (optind + 1 != argc || !o.index) {
        cli_err("usage: imgtriage backlog run DB --index IDX [OPTIONS]");
        return CLI_EXIT_ERROR;
    }
    const char *db = argv[optind];
    o.lease_ms = (int64_t)lease * 1000;
    /* N scans at once share the cores: each gets its part unless told */
    char thr[24];
    if (!o.threads && workers > 1) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        long each = cpus > 0 ? cpus / (long)workers : 1;
        snprintf(thr, sizeof thr, "%ld", each > 0 ? each : 1);
        o.threads = thr;
    }
    char defdir[PATH_MAX];
    if (!reports) {
        const char *sl = strrchr(db, '/');
        snprintf(defdir, sizeof defdir, "%.*sreports", sl ? (int)(sl - db + 1) : 0, db);
        reports = defdir;
    }
    char *rdir = NULL, *idx = absolute(o.index), *self = absolute("/proc/self/exe");
    int rc = CLI_EXIT_OK;
    imt_backlog *bl = NULL;
    slot *slots = calloc(workers, sizeof *slots);
    if (!idx || !self || !slots) {
        cli_err("%s: %s", o.index, strerror(errno));
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    o.index = idx;
    if (!(bl = open_db(db, 0))) {
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    {
        imt_bl_device *v;
        size_t n;
        imt_err e = imt_backlog_devices(bl, &v, &n);
        if (e) {
            rc = db_fail(bl, e);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (check_reports_dir(reports, &v[i], idx)) rc = CLI_EXIT_ERROR;
        imt_bl_devices_free(v, n);
        if (rc) goto out;
    }
    if (mkdir_p(reports) || !(rdir = absolute(reports))) {
        cli_err("%s: %s", reports, strerror(errno));
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    o.reports = rdir;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int tty = !quiet && isatty(2);
    time_t t0 = time(NULL), last_progress = 0;
    int64_t last_renew = mono_ms();
    int units = 0, busy = 0, done_all = 0;
    char wait_note = 0;
    if (!quiet)
        fprintf(stderr, "%s: backlog run as %s: %llu worker%s, reports in %s\n", cli_prog, who(),
                workers, workers == 1 ? "" : "s", rdir);
    while (!done_all) {
        if (g_stop) {
            for (size_t i = 0; i < workers; i++)
                if (slots[i].pid > 0) kill(slots[i].pid, SIGTERM);
            for (size_t i = 0; i < workers; i++) {
                if (slots[i].pid <= 0) continue;
                waitpid(slots[i].pid, NULL, 0);
                imt_backlog_release(bl, slots[i].id, who(), "the worker was interrupted");
                free(slots[i].report);
                slots[i].pid = 0;
            }
            if (tty) fputc('\n', stderr);
            cli_err("interrupted: the devices in progress are back in the queue");
            rc = CLI_EXIT_ERROR;
            break;
        }
        /* finished scans */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (size_t i = 0; i < workers; i++) {
                if (slots[i].pid != pid) continue;
                char note[96];
                if (WIFEXITED(status)) snprintf(note, sizeof note, "scan exit status %d", WEXITSTATUS(status));
                else snprintf(note, sizeof note, "scan killed by signal %d", WTERMSIG(status));
                imt_err e = imt_backlog_finish(bl, slots[i].id, who(), who(), slots[i].phase,
                                               slots[i].report, note);
                if (e == IMT_E_NOT_FOUND)
                    cli_err("device #%lld: %s; its result is left to the new holder",
                            (long long)slots[i].id, imt_backlog_error(bl));
                else if (e)
                    cli_err("device #%lld: %s", (long long)slots[i].id, imt_backlog_error(bl));
                units++;
                free(slots[i].report);
                memset(&slots[i], 0, sizeof slots[i]);
                busy--;
            }
        }
        /* renew the leases held; a lease lost means another worker has
         * the device: stop this scan of it */
        time_t now = time(NULL);
        if (busy && (mono_ms() - last_renew) * 3 >= o.lease_ms) {
            for (size_t i = 0; i < workers; i++) {
                if (slots[i].pid <= 0) continue;
                if (imt_backlog_renew(bl, slots[i].id, who(), o.lease_ms) == IMT_E_NOT_FOUND) {
                    cli_err("device #%lld: lease lost; stopping its scan", (long long)slots[i].id);
                    kill(slots[i].pid, SIGKILL);
                }
            }
            last_renew = mono_ms();
        }
        /* claim work for idle slots */
        int64_t pending = 1;
        int claimed_any = 0;
        for (size_t i = 0; i < workers; i++) {
            if (slots[i].pid > 0) continue;
            imt_bl_device d;
            imt_bl_phase ph;
            int got = 0;
            imt_err e = imt_backlog_claim(bl, who(), o.lease_ms, rdir, &d, &ph, &got, &pending);
            if (e) {
                cli_err("%s", imt_backlog_error(bl));
                rc = CLI_EXIT_ERROR;
                g_stop = 1;
                break;
            }
            if (!got) break;
            pid_t p = start_scan(&o, &d, ph);
            if (p < 0) {
                cli_err("device #%lld: cannot start a scan: %s", (long long)d.id, strerror(errno));
                imt_backlog_release(bl, d.id, who(), "the scan could not be started");
                imt_bl_device_clear(&d);
                rc = CLI_EXIT_ERROR;
                g_stop = 1;
                break;
            }
            slots[i].pid = p;
            slots[i].id = d.id;
            slots[i].phase = ph;
            slots[i].report = strdup(ph == IMT_BL_PREVIEW ? d.preview_report : d.report);
            slots[i].started = time(NULL);
            busy++;
            claimed_any = 1;
            imt_bl_device_clear(&d);
        }
        if (!busy && pending == 0) done_all = 1;
        if (!busy && !claimed_any && pending > 0 && !wait_note && !quiet) {
            fprintf(stderr, "%s%s: waiting for devices held by other workers (or their leases)\n",
                    tty ? "\n" : "", cli_prog);
            wait_note = 1;
        }
        if (tty && (now != last_progress || done_all)) {
            progress(bl, t0, units, busy);
            last_progress = now;
        }
        if (!done_all) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (tty) fputc('\n', stderr);
    if (!rc) {
        imt_bl_device *v;
        size_t n;
        if (!imt_backlog_devices(bl, &v, &n)) {
            size_t known = 0, failed = 0;
            for (size_t i = 0; i < n; i++) {
                known += v[i].group == 0;
                failed += v[i].state == IMT_BL_FAILED;
            }
            if (!quiet)
                fprintf(stderr, "%s: backlog done: %zu devices, %zu with known material, %zu failed\n",
                        cli_prog, n, known, failed);
            rc = failed ? CLI_EXIT_ERROR : known ? CLI_EXIT_FOUND : CLI_EXIT_OK;
            imt_bl_devices_free(v, n);
        }
    }
out:
    imt_backlog_close(bl);
    free(slots);
    free(rdir);
    free(idx);
    free(self);
    return rc;
}

/* ---- Slurm: submit, task, sync ----------------------------------------- */

/* Write argv (NUL-separated) to path. */
static int write_args(const char *path, const argv_t *a, const char *const *src, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    for (int i = 1; i < a->n; i++) fwrite(a->v[i], 1, strlen(a->v[i]) + 1, f); /* skip argv[0] */
    for (size_t i = 0; i < n; i++) fwrite(src[i], 1, strlen(src[i]) + 1, f);
    return fclose(f) ? -1 : 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f) ? -1 : 0;
}

/* Run sbatch with args; its --parsable output (the job id) into id. */
static int sbatch(char *const *args, char *id, size_t cap)
{
    int pfd[2];
    if (pipe(pfd)) return -1;
    pid_t p = fork();
    if (p == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execvp("sbatch", args);
        fprintf(stderr, "%s: sbatch: %s\n", cli_prog, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    ssize_t n = p > 0 ? read(pfd[0], id, cap - 1) : -1;
    close(pfd[0]);
    int st = 0;
    if (p > 0) waitpid(p, &st, 0);
    if (n <= 0 || !WIFEXITED(st) || WEXITSTATUS(st)) return -1;
    id[n] = 0;
    id[strcspn(id, ";\n")] = 0; /* "jobid[;cluster]" */
    return id[0] ? 0 : -1;
}

static int cmd_submit(int argc, char **argv)
{
    static const struct option lo[] = {{"slurm", no_argument, NULL, 's'},
                                       {"index", required_argument, NULL, 'x'},
                                       {"shared", required_argument, NULL, 'S'},
                                       {"partition", required_argument, NULL, 'p'},
                                       {"preview-budget", required_argument, NULL, 'b'},
                                       {"threads", required_argument, NULL, 't'},
                                       {"again", no_argument, NULL, 'a'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *index = NULL, *shared = NULL, *partition = NULL, *budget = NULL, *threads = NULL;
    int slurm = 0, again = 0, c;
    unsigned long long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "x:h", lo, NULL)) != -1) {
        switch (c) {
        case 's': slurm = 1; break;
        case 'a': again = 1; break;
        case 'x': index = optarg; break;
        case 'S': shared = optarg; break;
        case 'p': partition = optarg; break;
        case 'b':
            if (!parse_duration(optarg)) {
                cli_err("--preview-budget %s: a duration such as 90s, 5m or 1h", optarg);
                return CLI_EXIT_ERROR;
            }
            budget = optarg;
            break;
        case 't':
            if (!cli_parse_u64(optarg, &v) || !v) {
                cli_err("--threads: a positive number");
                return CLI_EXIT_ERROR;
            }
            threads = optarg;
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: return CLI_EXIT_ERROR;
        }
    }
    /* DB, then anything after "--" is for sbatch */
    if (optind >= argc || !slurm || !index || !shared) {
        cli_err("usage: imgtriage backlog submit DB --slurm --index IDX --shared DIR "
                "[--partition P] [-- SBATCH-OPTION...]");
        return CLI_EXIT_ERROR;
    }
    const char *db = argv[optind++];
    char **extra = argv + optind;
    int n_extra = argc - optind;
    if (n_extra && !strcmp(extra[0], "--")) extra++, n_extra--;
    {
        /* the shared folder is checked against every device before it is made */
        imt_backlog *cb = open_db(db, 0);
        if (!cb) return CLI_EXIT_ERROR;
        imt_bl_device *cv;
        size_t cn;
        int bad = 0;
        if (!imt_backlog_devices(cb, &cv, &cn)) {
            for (size_t i = 0; i < cn; i++)
                if (check_reports_dir(shared, &cv[i], index)) bad = 1;
            imt_bl_devices_free(cv, cn);
        }
        imt_backlog_close(cb);
        if (bad) return CLI_EXIT_ERROR;
    }
    if (mkdir_p(shared)) {
        cli_err("%s: %s", shared, strerror(errno));
        return CLI_EXIT_ERROR;
    }
    char *sdir = absolute(shared), *idx = absolute(index), *self = absolute("/proc/self/exe");
    int rc = CLI_EXIT_OK;
    imt_backlog *bl = NULL;
    imt_bl_device *dv = NULL;
    size_t n = 0;
    if (!sdir || !idx || !self) {
        cli_err("%s: %s", !sdir ? shared : index, strerror(errno));
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    if (!(bl = open_db(db, 0))) {
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    imt_err e = imt_backlog_devices(bl, &dv, &n);
    if (e) {
        rc = db_fail(bl, e);
        goto out;
    }
    {
        /* one submission at a time: its jobs may still run */
        char *prev = NULL;
        imt_backlog_get(bl, "slurm_jobs", &prev);
        size_t open_n = 0;
        for (size_t i = 0; i < n; i++) open_n += dv[i].state != IMT_BL_DONE && dv[i].state != IMT_BL_FAILED;
        if (prev && open_n && !again) {
            cli_err("submitted already (jobs %s) and %zu devices are not done: 'backlog sync' "
                    "once those jobs end, or --again to submit the rest anew", prev, open_n);
            imt_backlog_free_string(prev);
            rc = CLI_EXIT_ERROR;
            goto out;
        }
        imt_backlog_free_string(prev);
    }
    /* the devices still to be worked, previews in waiting order (their id) */
    char path[PATH_MAX + 64], list[PATH_MAX + 64];
    snprintf(list, sizeof list, "%s/devices", sdir);
    snprintf(path, sizeof path, "%s/logs", sdir);
    FILE *lf = mkdir_p(path) ? NULL : fopen(list, "w");
    if (!lf) {
        cli_err("%s: %s", list, strerror(errno));
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    size_t tasks = 0;
    for (size_t i = 0; i < n; i++) {
        imt_bl_device *d = &dv[i];
        if (d->state != IMT_BL_QUEUED && d->state != IMT_BL_PREVIEWED) continue;
        if (check_reports_dir(sdir, d, idx)) {
            rc = CLI_EXIT_ERROR;
            break;
        }
        char dir[PATH_MAX], rep[PATH_MAX + 32];
        snprintf(dir, sizeof dir, "%s/dev/%lld", sdir, (long long)d->id);
        if (mkdir_p(dir)) {
            cli_err("%s: %s", dir, strerror(errno));
            rc = CLI_EXIT_ERROR;
            break;
        }
        argv_t a;
        for (int ph = 0; ph < 2 && !rc; ph++) {
            snprintf(rep, sizeof rep, "%s/%s", dir, ph ? "scan.jsonl" : "preview.jsonl");
            scan_argv(&a, !ph, idx, d->case_id, d->device, rep, budget, threads, 0);
            snprintf(path, sizeof path, "%s/%s", dir, ph ? "scan.args" : "preview.args");
            if (write_args(path, &a, (const char *const *)d->sources, d->n_sources)) rc = CLI_EXIT_ERROR;
        }
        snprintf(path, sizeof path, "%s/received", dir);
        if (!rc && write_text(path, d->received ? d->received : d->added)) rc = CLI_EXIT_ERROR;
        if (rc) {
            cli_err("%s: %s", path, strerror(errno));
            break;
        }
        fprintf(lf, "%lld\n", (long long)d->id);
        tasks++;
    }
    /* devices in waiting order for the preview array */
    if (fclose(lf) && !rc) {
        cli_err("%s: %s", list, strerror(errno));
        rc = CLI_EXIT_ERROR;
    }
    if (rc) goto out;
    if (!tasks) {
        fprintf(stderr, "%s: nothing to submit: every device is previewed, done or failed\n", cli_prog);
        goto out;
    }
    char arr[64], job1[64] = "", job2[64] = "", dep[96], wrap[3][PATH_MAX * 2];
    snprintf(arr, sizeof arr, "--array=0-%zu", tasks - 1);
    for (int ph = 0; ph < 2 && !rc; ph++) {
        const char *args[40 + 64];
        int k = 0;
        args[k++] = "sbatch";
        args[k++] = "--parsable";
        args[k++] = arr;
        args[k++] = "--requeue";
        args[k++] = ph ? "--job-name=imgtriage-scan" : "--job-name=imgtriage-preview";
        snprintf(wrap[2], sizeof wrap[2], "--output=%s/logs/%s-%%a.out", sdir, ph ? "scan" : "preview");
        args[k++] = wrap[2];
        char part[256];
        if (partition) {
            snprintf(part, sizeof part, "--partition=%s", partition);
            args[k++] = part;
        }
        if (ph) {
            snprintf(dep, sizeof dep, "--dependency=afterany:%s", job1);
            args[k++] = dep;
        }
        for (int i = 0; i < n_extra && k < 90; i++) args[k++] = extra[i];
        snprintf(wrap[ph], sizeof wrap[ph], "--wrap=exec '%s' backlog task '%s' %s", self, sdir,
                 ph ? "scan" : "preview");
        if (strchr(self, '\'') || strchr(sdir, '\'')) {
            cli_err("the binary's and the shared folder's paths may not hold a quote");
            rc = CLI_EXIT_ERROR;
            break;
        }
        args[k++] = wrap[ph];
        args[k] = NULL;
        if (sbatch((char *const *)args, ph ? job2 : job1, sizeof job1)) {
            cli_err("sbatch failed (is Slurm running? scripts/slurm-local.sh starts a local one)");
            rc = CLI_EXIT_ERROR;
        }
    }
    if (!rc) {
        char what[PATH_MAX + 512];
        snprintf(what, sizeof what, "submitted to Slurm: previews as job array %s, full scans as "
                 "job array %s (after %s), %zu devices, shared folder %s", job1, job2, job1,
                 tasks, sdir);
        char jobs[160];
        snprintf(jobs, sizeof jobs, "%s %s", job1, job2);
        imt_backlog_set(bl, "slurm_shared", sdir);
        imt_backlog_set(bl, "slurm_jobs", jobs);
        imt_backlog_note(bl, who(), 0, what);
        printf("%s %s\n", job1, job2);
    }
out:
    imt_bl_devices_free(dv, n);
    imt_backlog_close(bl);
    free(sdir);
    free(idx);
    free(self);
    return rc;
}

/* Read a NUL-separated argument file. */
static char **read_args(const char *path, int *argc_out, char **buf_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 0, len = 0;
    char *buf = NULL;
    char chunk[65536];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + r + 1 > cap) {
            cap = (len + r + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, r);
        len += r;
    }
    fclose(f);
    if (!buf || !len || buf[len - 1]) {
        free(buf);
        return NULL;
    }
    int n = 0;
    for (size_t i = 0; i < len; i++) n += !buf[i];
    char **v = calloc((size_t)n + 4, sizeof *v);
    if (!v) {
        free(buf);
        return NULL;
    }
    int k = 0;
    for (size_t i = 0; i < len; i += strlen(buf + i) + 1) v[k++] = buf + i;
    *argc_out = k;
    *buf_out = buf;
    return v;
}

/* Slurm array task: SLURM_ARRAY_TASK_ID picks the device (previews: the
 * i-th in the devices file; scans: the i-th in rank order, from the
 * previews' reports), then this process becomes its scan. */
static int cmd_task(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[2], "preview") && strcmp(argv[2], "scan"))) {
        cli_err("usage: imgtriage backlog task SHARED-DIR preview|scan (run by Slurm)");
        return CLI_EXIT_ERROR;
    }
    const char *sdir = argv[1];
    int scan = !strcmp(argv[2], "scan");
    const char *t = getenv("SLURM_ARRAY_TASK_ID");
    unsigned long long task;
    if (!t || !cli_parse_u64(t, &task)) {
        cli_err("SLURM_ARRAY_TASK_ID is not set: this command is run by Slurm");
        return CLI_EXIT_ERROR;
    }
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/devices", sdir);
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_err("%s: %s", path, strerror(errno));
        return CLI_EXIT_ERROR;
    }
    imt_bl_device *v = NULL;
    size_t n = 0;
    long long id;
    while (fscanf(f, "%lld", &id) == 1) {
        imt_bl_device *nv = realloc(v, (n + 1) * sizeof *nv);
        if (!nv) break;
        v = nv;
        memset(&v[n], 0, sizeof v[n]);
        v[n].id = id;
        n++;
    }
    fclose(f);
    if (task >= n) {
        cli_err("task %llu: only %zu devices", task, n);
        free(v);
        return CLI_EXIT_ERROR;
    }
    if (scan) {
        /* rank from the previews' summaries and received dates: the same
         * ranking as 'backlog list' */
        for (size_t i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/dev/%lld/preview.jsonl", sdir, (long long)v[i].id);
            imt_bl_read_summary(path, &v[i].preview);
            snprintf(path, sizeof path, "%s/dev/%lld/received", sdir, (long long)v[i].id);
            FILE *rf = fopen(path, "r");
            char rec[128] = "";
            if (rf) {
                if (!fgets(rec, sizeof rec, rf)) rec[0] = 0;
                fclose(rf);
            }
            v[i].received = strdup(rec);
        }
        imt_bl_rank(v, n);
    }
    id = v[task].id;
    for (size_t i = 0; i < n; i++) {
        imt_bl_result_clear(&v[i].preview);
        free(v[i].received);
    }
    free(v);
    snprintf(path, sizeof path, "%s/dev/%lld/%s.args", sdir, id, scan ? "scan" : "preview");
    int ac = 0;
    char *buf = NULL;
    char **args = read_args(path, &ac, &buf);
    if (!args) {
        cli_err("%s: cannot read the scan's arguments", path);
        return CLI_EXIT_ERROR;
    }
    /* args: scan ... --out REPORT ... --force -- SOURCES: a requeued or
     * restarted task resumes its partial report instead */
    const char *report = NULL;
    for (int i = 0; i + 1 < ac && strcmp(args[i], "--"); i++)
        if (!strcmp(args[i], "--out")) report = args[i + 1];
    char **ev = calloc((size_t)ac + 4, sizeof *ev);
    if (!ev || !report) {
        cli_err("%s: no --out", path);
        return CLI_EXIT_ERROR;
    }
    int k = 0;
    ev[k++] = "imgtriage";
    int resume = scan && resumable(report);
    for (int i = 0; i < ac; i++) {
        if (resume && !strcmp(args[i], "--force")) {
            ev[k++] = "--resume";
            ev[k++] = (char *)report;
            continue;
        }
        ev[k++] = args[i];
    }
    ev[k] = NULL;
    fprintf(stderr, "%s: task %llu: device #%lld, %s%s\n", cli_prog, task, id,
            scan ? "full scan" : "preview", resume ? ", resumed from its report" : "");
    fflush(NULL);
    execv("/proc/self/exe", ev);
    cli_err("exec: %s", strerror(errno));
    return CLI_EXIT_ERROR;
}

static int cmd_sync(int argc, char **argv)
{
    if (argc != 2) {
        cli_err("usage: imgtriage backlog sync DB");
        return CLI_EXIT_ERROR;
    }
    imt_backlog *bl = open_db(argv[1], 0);
    if (!bl) return CLI_EXIT_ERROR;
    char *sdir = NULL;
    imt_bl_device *v = NULL;
    size_t n = 0;
    int rc = CLI_EXIT_OK;
    imt_err e = imt_backlog_get(bl, "slurm_shared", &sdir);
    if (!e && !sdir) {
        cli_err("nothing was submitted from this backlog ('backlog submit')");
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    if (!e) e = imt_backlog_devices(bl, &v, &n);
    if (e) {
        rc = db_fail(bl, e);
        goto out;
    }
    size_t got[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        for (int ph = 0; ph < 2; ph++) {
            char path[PATH_MAX + 64];
            snprintf(path, sizeof path, "%s/dev/%lld/%s.jsonl", sdir, (long long)v[i].id,
                     ph ? "scan" : "preview");
            if (access(path, F_OK)) continue;
            e = imt_backlog_finish(bl, v[i].id, who(), NULL, ph ? IMT_BL_SCAN : IMT_BL_PREVIEW,
                                   path, "from a Slurm task's report");
            if (!e) got[ph]++;
            else if (e != IMT_E_NOT_FOUND) {
                rc = db_fail(bl, e);
                goto out;
            }
        }
    }
    fprintf(stderr, "%s: synced %zu previews and %zu full scans from %s\n", cli_prog, got[0],
            got[1], sdir);
out:
    imt_bl_devices_free(v, n);
    imt_backlog_free_string(sdir);
    imt_backlog_close(bl);
    return rc;
}

int cmd_backlog(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
    }
    const char *sub = argv[1];
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(argv[i], "--")) {
            break;
        }
    argc--;
    argv++;
    if (!strcmp(sub, "init")) return cmd_init(argc, argv);
    if (!strcmp(sub, "add")) return cmd_add(argc, argv);
    if (!strcmp(sub, "list")) return cmd_list(argc, argv);
    if (!strcmp(sub, "show")) return cmd_show(argc, argv);
    if (!strcmp(sub, "log")) return cmd_log(argc, argv);
    if (!strcmp(sub, "export")) return cmd_export(argc, argv);
    if (!strcmp(sub, "run")) return cmd_run(argc, argv);
    if (!strcmp(sub, "submit")) return cmd_submit(argc, argv);
    if (!strcmp(sub, "task")) return cmd_task(argc, argv);
    if (!strcmp(sub, "sync")) return cmd_sync(argc, argv);
    cli_err("backlog: unknown command '%s'; try 'imgtriage backlog --help'", sub);
    return CLI_EXIT_ERROR;
}
