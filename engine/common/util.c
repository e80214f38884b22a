/* engine/common/util.c -- CPU features, clock, detail strings. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static unsigned detect(void)
{
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int sse41 = (c >> 19) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1,
        fma = (c >> 12) & 1;
    if (sse41) f |= IMT_CPU_SSE41;
    if (!osxsave || !avx) return f;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 6) != 6) return f;
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    if (avx2 && fma) f |= IMT_CPU_AVX2;
    int avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1,
        vpopcntdq = (c >> 14) & 1;
    if ((f & IMT_CPU_AVX2) && avx512f && avx512bw && avx512vl && vpopcntdq &&
        (xcr0 & 0xe6) == 0xe6)
        f |= IMT_CPU_AVX512;
    return f;
}
#else
static unsigned detect(void) { return 0; }
#endif

unsigned imt__cpu_features(void)
{
    /* Benign race: every thread computes the same value. */
    static volatile int done = 0;
    static volatile unsigned feats = 0;
    if (!done) {
        const char *e = getenv("IMT_FORCE_PORTABLE");
        feats = (e && *e && strcmp(e, "0") != 0) ? 0 : detect();
        done = 1;
    }
    return feats;
}

uint64_t imt__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void imt__set_detail(char *buf, size_t cap, const char *fmt, ...)
{
    if (!buf || !cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}
