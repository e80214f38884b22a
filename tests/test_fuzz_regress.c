/* tests/test_fuzz_regress.c -- replay fuzz inputs through the fuzz target
 * bodies (tests/fuzz/targets.c) in the ordinary and sanitizer builds, so a
 * finding fixed once stays fixed without libFuzzer or clang.
 *
 * Inputs: every file under tests/regress/<target>/ (inputs the fuzzers found
 * by mutating the seeds written for this project), every committed seed under tests/fuzz/seeds/<target>/,
 * and the inputs built by the generators below (findings whose input derives
 * from third-party files are rebuilt here rather than committed). A broken
 * invariant aborts inside the target, which fails the test. */
#include "fuzz/targets.c"
#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* CPU seconds one input may take: a hang guard, not a speed check (every
 * input here takes milliseconds, well under a second under ASan; the ext2
 * folder claiming a gigabyte, tests/regress/image_ext4/quadratic-runs-root-
 * folder.img, took 30 s of CPU in Release before fs.c walked folders itself,
 * and ran on for minutes under ASan). CPU time, so a loaded machine does not
 * trip it. */
#define REPLAY_CPU_S 10

/* Run one input in a child, so that one crash or broken invariant fails
 * the test and every other input still runs. Returns 1 if it passed. */
static int run_one(const imt_fuzz_target *t, const unsigned char *buf, size_t len,
                   const char *what)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* A scratch directory and index of its own, removed by exit(). */
        g_tmp[0] = '\0';
        g_idx = NULL;
        struct rlimit rl = {REPLAY_CPU_S, REPLAY_CPU_S + 5};
        setrlimit(RLIMIT_CPU, &rl);
        int r = t->fn(buf, len);
        exit(r == 0 ? 0 : 1);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return 0;
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    CHECKF(ok, "%s %s: %s %d%s", t->name, what, WIFSIGNALED(st) ? "killed by signal" : "exit",
           WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
           WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU ? " (over the CPU limit: a hang?)" : "");
    return ok;
}

static int replay_dir_as(const imt_fuzz_target *t, const char *root, const char *name)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        unsigned char *buf = tu_read_file(path, &len);
        CHECKF(buf != NULL, "cannot read %s", path);
        if (!buf) continue;
        fprintf(stderr, "replay %s %s (%zu bytes)\n", t->name, path, len);
        run_one(t, buf, len, path);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

static int replay_dir(const imt_fuzz_target *t, const char *root)
{
    return replay_dir_as(t, root, t->name);
}

/* ---- generated regression inputs -------------------------------------- */
typedef struct gen_input {
    const char *target;
    const char *what;     /* the finding it reproduces */
    unsigned char *(*make)(size_t *len);
} gen_input;

/* A valid index's data.mdb cut to 16 KiB (as by an interrupted copy):
 * LMDB maps the size its meta page claims and reading past the end of the
 * file raised SIGBUS inside imt_index_open (found by fuzz_index_open). */
static unsigned char *truncated_index(size_t *len)
{
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/regress_XXXXXX", scratch());
    if (!mkdtemp(dir)) return NULL;
    imt_fuzz_make_seeds("index_open", dir);
    snprintf(path, sizeof path, "%s/index-compacted", dir);
    unsigned char *buf = tu_read_file(path, len);
    rm_tree(dir);
    if (buf && *len > 16384) *len = 16384;
    return buf;
}

static const gen_input generated[] = {
    {"index_open", "data.mdb truncated to 16 KiB", truncated_index},
    {"index_pagecheck", "data.mdb truncated to 16 KiB", truncated_index},
    {NULL, NULL, NULL},
};

static const imt_fuzz_target *target_named(const char *name)
{
    for (const imt_fuzz_target *t = imt_fuzz_targets; t->name; t++)
        if (!strcmp(t->name, name)) return t;
    return NULL;
}

int main(void)
{
    int total = 0;
    for (const imt_fuzz_target *t = imt_fuzz_targets; t->name; t++) {
        total += replay_dir(t, IMT_SOURCE_DIR "/tests/regress");
        total += replay_dir(t, IMT_SOURCE_DIR "/tests/fuzz/seeds");
        if (!strcmp(t->name, "index_pagecheck")) /* index_open's findings, checked alone */
            total += replay_dir_as(t, IMT_SOURCE_DIR "/tests/regress", "index_open");
        /* The empty input and a lone byte: the smallest edge cases. */
        run_one(t, (const unsigned char *)"", 0, "empty input");
        run_one(t, (const unsigned char *)"\xff", 1, "one byte");
    }
    for (const gen_input *g = generated; g->target; g++) {
        const imt_fuzz_target *t = target_named(g->target);
        REQUIRE(t != NULL);
        size_t len = 0;
        unsigned char *buf = g->make(&len);
        REQUIRE(buf != NULL);
        fprintf(stderr, "replay %s generated: %s (%zu bytes)\n", g->target, g->what, len);
        run_one(t, buf, len, g->what);
        free(buf);
        total++;
    }
    printf("replayed %d inputs\n", total);
    return tu_done("test_fuzz_regress");
}
