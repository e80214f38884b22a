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

/* Random access to one item's bytes, whatever holds them: a file in a
 * folder (pread on its descriptor), a file or unallocated run in a disk
 * image (engine/source), a buffered archive member (engine/container).
 * pread reads up to cap bytes at off into buf, sets *got (0 at or past the
 * end) and returns IMT_OK or the error (IMT_E_IO for a failed read; the
 * caller names the item). size is the item's size. Each item gets its own
 * io; one io is used by one thread at a time. Containers, the carver and
 * video demuxers take this; imt_stream (public) is its sequential view. */
typedef struct imt__io {
    imt_err (*pread)(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got);
    void *ctx;
    uint64_t size;
} imt__io;

/* Forward a non-OK error to the function's cleanup label. */
#define IMT_TRY(expr)                   \
    do {                                \
        err = (expr);                   \
        if (err != IMT_OK) goto cleanup;\
    } while (0)

/* CPU features, detected once per process (a C11 atomic: any thread may be
 * the first to ask). IMT_FORCE_PORTABLE=1 in the environment clears every
 * bit, so tests can compare the portable path with SIMD. A bit means the
 * CPU and OS run everything the matching *_avx2.c / *_avx512.c file was
 * compiled for (CMakeLists.txt gives their flags). */
#define IMT_CPU_SSE41 1u
#define IMT_CPU_AVX2 2u     /* AVX2 + BMI2 + POPCNT + OS support for YMM */
#define IMT_CPU_AVX512 4u   /* the above + AVX-512 F/BW/VL/DQ/VPOPCNTDQ + ZMM state */
unsigned imt__cpu_features(void);

/* The one SIMD dispatch (BLAKE3's blake3_dispatch.c pattern). Every kernel
 * family (PDQ in hash/, the index scan in index/) has a table of function
 * pointers per ISA level and a function giving the best table at or below
 * a level. The level is imt__simd_level(), from the features above, once
 * per process; each context (PDQ context, index cursor) takes its table
 * when it is created and keeps it, and tests and benches may give a
 * context another table. Nothing re-chooses per call. */
typedef enum imt_simd {
    IMT_SIMD_PORTABLE = 0,
    IMT_SIMD_AVX2 = 1,
    IMT_SIMD_AVX512 = 2
} imt_simd;
imt_simd imt__simd_level(void);

/* Monotonic clock in milliseconds. */
uint64_t imt__now_ms(void);

/* snprintf into a fixed buffer, never overflowing, always terminated. */
/* Severity weight of an alerting membership of a list of that category
 * scheme (util.c; README's table): the priority's weight, and what the cap
 * on matches kept per file keeps first. */
int imt__severity(const char *scheme, int32_t category);

void imt__set_detail(char *buf, size_t cap, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
