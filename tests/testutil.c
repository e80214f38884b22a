#include "testutil.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int tu_failures = 0;
int tu_checks = 0;

const char *tu_shared(const char *rel)
{
    static char buf[8][4096];
    static int slot = 0;
    struct stat st;
    if (stat(IMT_SHARED_DIR, &st) != 0) return NULL;
    char *b = buf[slot++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", IMT_SHARED_DIR, rel);
    if (stat(b, &st) != 0) return NULL;
    return b;
}

int tu_skip(const char *why)
{
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        fprintf(stderr, "FAIL: required test data missing under CI=true: %s\n", why);
        return 1;
    }
    fprintf(stderr, "SKIP: %s\n", why);
    return 77;
}

int tu_done(const char *name)
{
    if (tu_failures) {
        fprintf(stderr, "%s: %d of %d checks failed\n", name, tu_failures, tu_checks);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, tu_checks);
    return 0;
}

unsigned char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *p = malloc(cap);
    size_t r;
    while (p && (r = fread(p + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            unsigned char *q = realloc(p, cap *= 2);
            if (!q) { free(p); p = NULL; }
            else p = q;
        }
    }
    fclose(f);
    if (p) *len = n;
    return p;
}

void tu_walk(const char *dir, void (*fn)(const char *path, const char *name, void *ctx),
             void *ctx)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    REQUIRE(n >= 0);
    for (int i = 0; i < n; i++) {
        const char *nm = ents[i]->d_name;
        if (strcmp(nm, ".") && strcmp(nm, "..")) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, nm);
            struct stat st;
            if (lstat(p, &st) == 0) {
                if (S_ISDIR(st.st_mode)) tu_walk(p, fn, ctx);
                else if (S_ISREG(st.st_mode)) fn(p, nm, ctx);
            }
        }
        free(ents[i]);
    }
    free(ents);
}

int tu_ref_csv(const char *csv, const char *name, char hex[65], int *quality)
{
    FILE *f = fopen(csv, "r");
    if (!f) return 0;
    char line[400], h[65], n[200];
    int q, found = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%64[0-9a-f],%d,%199[^\n]", h, &q, n) == 3 && !strcmp(n, name)) {
            memcpy(hex, h, 65);
            *quality = q;
            found = 1;
        }
    fclose(f);
    return found;
}
