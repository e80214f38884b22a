/* tests/testutil.h -- a tiny assertion harness shared by the ctest programs.
 * CHECK records a failure and goes on; REQUIRE stops the test. Exit status:
 * 0 pass, 1 fail, 77 skip (ctest SKIP_RETURN_CODE). */
#ifndef IMT_TESTUTIL_H
#define IMT_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern int tu_failures;
extern int tu_checks;

#define CHECK(cond)                                                            \
    do {                                                                       \
        tu_checks++;                                                           \
        if (!(cond)) {                                                         \
            tu_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
        }                                                                      \
    } while (0)

#define CHECKF(cond, ...)                                                      \
    do {                                                                       \
        tu_checks++;                                                           \
        if (!(cond)) {                                                         \
            tu_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__,   \
                    #cond);                                                    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

#define REQUIRE(cond)                                                          \
    do {                                                                       \
        tu_checks++;                                                           \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* Path of a file under ../shared, or NULL (with a message) when ../shared is
 * absent: the caller then returns tu_skip(), which fails under CI=true. */
const char *tu_shared(const char *rel);
int tu_skip(const char *why);
/* The reference hasher's line for file NAME in a "hash,quality,name" CSV
 * (tests/data/.../ref.csv): its hex hash (65 bytes) and quality; 0 when
 * the CSV cannot be read or has no such line. */
int tu_ref_csv(const char *csv, const char *name, char hex[65], int *quality);
/* Print the summary line and return the exit status. */
int tu_done(const char *name);
/* Read a whole file into a malloc'd buffer (NULL on error). */
unsigned char *tu_read_file(const char *path, size_t *len);
/* Every regular file below dir, depth first in sorted order (no links
 * followed): fn(path, name, ctx). */
void tu_walk(const char *dir, void (*fn)(const char *path, const char *name, void *ctx),
             void *ctx);

/* Open the index at dir for writing (create: make it first); a failure
 * names the open error and stops the test. tu_index.c. */
struct imt_index;
struct imt_index *tu_index_rw(const char *dir, int create);
/* The same for a new index whose map (the most it may grow to) is
 * map_size bytes. */
struct imt_index *tu_index_new(const char *dir, uint64_t map_size);

/* Random PDQ hashes for the index tests (tu_index.c): a xorshift64
 * generator on *state, a random hash, k distinct random bits flipped. */
struct imt_pdq;
uint64_t tu_xorshift(uint64_t *state);
void tu_rand_pdq(uint64_t *state, struct imt_pdq *h);
void tu_flip_pdq(uint64_t *state, struct imt_pdq *h, int k);

#endif
