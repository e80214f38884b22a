/* tests/test_index_crash.c -- a writer killed with SIGKILL in the middle of
 * an import leaves the index exactly as it was: a child process imports a
 * large generated list and is killed at several points (while parsing,
 * and at growing delays into the write transaction) and, deterministically,
 * stopped inside the LMDB write transaction at each step the import reports
 * (imt_import_opts.stage: the child stops itself with SIGSTOP there and is
 * killed while stopped, so the kill provably lands inside the transaction,
 * "commit" being everything written but the commit itself); each time the
 * index then opens, verifies and has its old identity and content. */
#include "imgtriage.h"
#include "testutil.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[400], big[400], base[400];
static int progress_fd = -1;
static const char *stop_at; /* the child stops itself at this step */

static void on_stage(void *opaque, const char *step)
{
    (void)opaque;
    if (!stop_at || strcmp(step, stop_at) != 0) return;
    if (write(progress_fd, "s", 1) != 1) _exit(3);
    raise(SIGSTOP);
}

static void on_progress(void *opaque, uint64_t n)
{
    (void)opaque;
    (void)n;
    if (write(progress_fd, "p", 1) != 1) _exit(3);
}

static void write_list(const char *path, size_t n, uint64_t seed)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    uint64_t x = seed;
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 4; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            fprintf(f, "%016llx", (unsigned long long)x);
        }
        fprintf(f, ",%d\n", (int)(i % 100));
    }
    fclose(f);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Import big in a child; kill it after `reports` progress reports plus
 * delay_ms (reports < 0: let it finish). Returns the child's status. */
static int run_child(int reports, int delay_ms)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        progress_fd = p[1];
        imt_index_opts o;
        imt_index_opts_init(&o);
        o.read_only = 0;
        imt_index *idx;
        if (imt_index_open(&idx, dir, &o) != IMT_OK) _exit(2);
        imt_import_opts io;
        imt_import_opts_init(&io);
        io.progress = on_progress;
        io.stage = on_stage;
        io.compact = 1; /* the longest write transaction: a full rebuild */
        imt_err e = imt_index_import(idx, big, &io, NULL);
        if (write(progress_fd, "d", 1) != 1) _exit(3);
        imt_index_close(idx);
        _exit(e == IMT_OK ? 0 : 1);
    }
    close(p[1]);
    int seen = 0;
    char ch;
    if (reports >= 0) {
        while (seen < reports && read(p[0], &ch, 1) == 1)
            if (ch == 'p') seen++;
        sleep_ms(delay_ms);
        kill(pid, SIGKILL);
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    close(p[0]);
    return status;
}

/* Import big in a child that stops itself at step; kill it while stopped.
 * Returns 1 if it was stopped there and killed. */
static int run_child_stop(const char *step)
{
    stop_at = step;
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        progress_fd = p[1];
        imt_index_opts o;
        imt_index_opts_init(&o);
        o.read_only = 0;
        imt_index *idx;
        if (imt_index_open(&idx, dir, &o) != IMT_OK) _exit(2);
        imt_import_opts io;
        imt_import_opts_init(&io);
        io.progress = on_progress;
        io.stage = on_stage;
        io.compact = 1;
        imt_err e = imt_index_import(idx, big, &io, NULL);
        imt_index_close(idx);
        _exit(e == IMT_OK ? 0 : 1);
    }
    close(p[1]);
    char ch;
    int stopped_msg = 0;
    while (read(p[0], &ch, 1) == 1)
        if (ch == 's') {
            stopped_msg = 1;
            break;
        }
    int status, ok = 0;
    REQUIRE(waitpid(pid, &status, WUNTRACED) == pid);
    if (stopped_msg && WIFSTOPPED(status)) {
        kill(pid, SIGKILL);
        REQUIRE(waitpid(pid, &status, 0) == pid);
        ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    } else if (WIFSTOPPED(status)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    close(p[0]);
    stop_at = NULL;
    return ok;
}

/* After a kill the index must hold the old content, or (allow_new: the kill
 * may have landed between the commit and the child's exit) the whole new
 * one, never a part. Returns 1 when it holds the new content. */
static int check_old_or_new(const char *id_old, uint64_t entries_old, uint64_t added,
                            int allow_new, const char *what)
{
    imt_index *idx;
    imt_err e = imt_index_open(&idx, dir, NULL);
    CHECKF(e == IMT_OK, "%s: open: %s", what, imt_index_open_error());
    if (e) return 0;
    char id[65];
    imt_index_identity(idx, id);
    imt_index_stats s;
    imt_index_stats_get(idx, &s);
    int old = !strcmp(id, id_old) && s.entries == entries_old && imt_index_list_count(idx) == 1;
    int whole_new = allow_new && strcmp(id, id_old) != 0 && s.entries == entries_old + added &&
                    imt_index_list_count(idx) == 2;
    CHECKF(old || whole_new, "%s: the index changed (%llu entries, %zu lists)", what,
           (unsigned long long)s.entries, imt_index_list_count(idx));
    e = imt_index_verify(idx);
    CHECKF(e == IMT_OK, "%s: verify: %s", what, imt_index_last_error(idx));
    imt_index_close(idx);
    return whole_new;
}

static void check_old(const char *id_old, uint64_t entries_old, const char *what)
{
    (void)check_old_or_new(id_old, entries_old, 0, 0, what);
}

int main(void)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s/test_index_crash.XXXXXX", IMT_BINARY_DIR);
    REQUIRE(mkdtemp(tmp));
    snprintf(dir, sizeof dir, "%s/idx", tmp);
    snprintf(big, sizeof big, "%s/big.csv", tmp);
    snprintf(base, sizeof base, "%s/base.csv", tmp);
    write_list(base, 20000, 1);
    write_list(big, 300000, 2);
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = 0;
    o.create = 1;
    imt_index *idx;
    REQUIRE(imt_index_open(&idx, dir, &o) == IMT_OK);
    REQUIRE(imt_index_import(idx, base, NULL, NULL) == IMT_OK);
    char id_old[65];
    imt_index_identity(idx, id_old);
    imt_index_stats s;
    imt_index_stats_get(idx, &s);
    uint64_t entries_old = s.entries;
    imt_index_close(idx); /* never keep an LMDB env open across fork */

    /* killed inside the write transaction, at every step it reports */
    static const char *const steps[] = {"parsed", "begin", "entries", "digests", "delta",
                                        "compact", "commit"};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "killed stopped at '%s'", steps[i]);
        int ok = run_child_stop(steps[i]);
        CHECKF(ok, "%s: the child did not stop there", what);
        if (ok) check_old(id_old, entries_old, what);
    }
    /* 300k records: 4 progress reports while parsing; then the write
     * transaction (merge, delta, full rebuild) takes a few hundred ms */
    static const int delays[] = {0, 0, 30, 100, 200, 400, 800};
    int killed = 0;
    for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
        int reports = i == 0 ? 1 : 4;
        int st = run_child(reports, delays[i]);
        char what[64];
        snprintf(what, sizeof what, "kill after %d reports + %d ms", reports, delays[i]);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
            if (check_old_or_new(id_old, entries_old, 300000, 1, what)) {
                printf("%s: the kill landed after the commit\n", what);
                break;
            }
            killed++;
        } else {
            /* finished before the kill: then it must have committed whole */
            CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child status %d", what, st);
            printf("%s: the import finished first\n", what);
            break;
        }
    }
    CHECKF(killed >= 3, "only %d imports were killed", killed);
    printf("killed %d imports mid-way; the index kept its content each time\n", killed);
    /* and an import left to finish commits everything */
    imt_index_open(&idx, dir, NULL);
    imt_index_stats_get(idx, &s);
    uint64_t before = s.entries;
    imt_index_close(idx);
    if (before == entries_old) {
        int st = run_child(-1, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    REQUIRE(imt_index_open(&idx, dir, NULL) == IMT_OK);
    imt_index_stats_get(idx, &s);
    CHECK(s.entries == entries_old + 300000 && imt_index_list_count(idx) == 2);
    CHECK(imt_index_verify(idx) == IMT_OK);
    imt_index_close(idx);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (tu_failures == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp);
    return tu_done("test_index_crash");
}
