/* tests/fuzz/targets.h -- the bodies of the libFuzzer targets, as plain
 * functions so that the same code runs under libFuzzer (fuzz_main.c) and in
 * the regression test that replays minimised inputs in every build
 * (tests/test_fuzz_regress.c). Each returns 0; a broken invariant aborts. */
#ifndef IMT_FUZZ_TARGETS_H
#define IMT_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

int imt_fuzz_jpeg(const uint8_t *data, size_t len);
int imt_fuzz_png(const uint8_t *data, size_t len);
int imt_fuzz_sniff(const uint8_t *data, size_t len);

typedef struct imt_fuzz_target {
    const char *name;
    int (*fn)(const uint8_t *data, size_t len);
} imt_fuzz_target;

/* Every target, ending with {NULL, NULL}. */
extern const imt_fuzz_target imt_fuzz_targets[];

#endif
