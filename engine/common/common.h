/* engine/common/common.h -- internal helpers shared by every module:
 * allocation through the public hooks, error forwarding, CPU features. */
#ifndef IMT_COMMON_H
#define IMT_COMMON_H

#include "imgtriage.h"

#include <stddef.h>
#include <stdint.h>

/* Allocation: everything the library allocates goes through these, so the
 * allocation-failure test can fail allocation N. imt__free(NULL) is a no-op. */
void *imt__malloc(size_t size);
void *imt__calloc(size_t n, size_t size);   /* overflow-checked, zeroed */
void *imt__realloc(void *ptr, size_t size);
void imt__free(void *ptr);
char *imt__strdup(const char *s);
/* The active allocator, for libraries that take hooks (libpng). */
const imt_allocator *imt__allocator(void);

/* Overflow-checked size arithmetic: returns 0 on overflow, 1 otherwise. */
static inline int imt__mul_ok(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* Forward a non-OK error to the function's cleanup label. */
#define IMT_TRY(expr)                   \
    do {                                \
        err = (expr);                   \
        if (err != IMT_OK) goto cleanup;\
    } while (0)

/* CPU features, detected once. IMT_FORCE_PORTABLE=1 in the environment
 * clears every bit, so tests can compare the portable path with SIMD. */
#define IMT_CPU_SSE41 1u
#define IMT_CPU_AVX2 2u     /* AVX2 + FMA + OS support for YMM */
#define IMT_CPU_AVX512 4u   /* AVX-512 F/BW/VL/VPOPCNTDQ + OS support for ZMM */
unsigned imt__cpu_features(void);

/* Monotonic clock in milliseconds. */
uint64_t imt__now_ms(void);

/* snprintf into a fixed buffer, never overflowing, always terminated. */
void imt__set_detail(char *buf, size_t cap, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
