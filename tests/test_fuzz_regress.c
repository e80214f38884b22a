/* tests/test_fuzz_regress.c -- replay fuzz inputs through the fuzz target
 * bodies (tests/fuzz/targets.c) in the ordinary and sanitizer builds, so a
 * finding fixed once stays fixed without libFuzzer or clang.
 *
 * Inputs: every file under tests/regress/<target>/ (minimised inputs written
 * for this project), every committed seed under tests/fuzz/seeds/<target>/,
 * and the inputs built by the generators below (findings whose input derives
 * from third-party files are rebuilt here rather than committed). A broken
 * invariant aborts inside the target, which fails the test. */
#include "fuzz/targets.c"
#include "testutil.h"

#include <dirent.h>

static int replay_dir(const imt_fuzz_target *t, const char *root)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", root, t->name);
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
        CHECK(t->fn(buf, len) == 0);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

/* ---- generated regression inputs -------------------------------------- */
typedef struct gen_input {
    const char *target;
    const char *what;     /* the finding it reproduces */
    unsigned char *(*make)(size_t *len);
} gen_input;

static const gen_input generated[] = {
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
        /* The empty input and a lone byte: the smallest edge cases. */
        CHECK(t->fn((const uint8_t *)"", 0) == 0);
        CHECK(t->fn((const uint8_t *)"\xff", 1) == 0);
    }
    for (const gen_input *g = generated; g->target; g++) {
        const imt_fuzz_target *t = target_named(g->target);
        REQUIRE(t != NULL);
        size_t len = 0;
        unsigned char *buf = g->make(&len);
        REQUIRE(buf != NULL);
        fprintf(stderr, "replay %s generated: %s (%zu bytes)\n", g->target, g->what, len);
        CHECK(t->fn(buf, len) == 0);
        free(buf);
        total++;
    }
    printf("replayed %d inputs\n", total);
    return tu_done("test_fuzz_regress");
}
