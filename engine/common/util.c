/* engine/common/util.c -- CPU features, clock, detail strings, category severity. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdarg.h>
#include <stdatomic.h>
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
    int sse41 = (c >> 19) & 1, popcnt = (c >> 23) & 1, osxsave = (c >> 27) & 1,
        avx = (c >> 28) & 1;
    if (sse41) f |= IMT_CPU_SSE41;
    if (!osxsave || !avx || !popcnt) return f;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 6) != 6) return f;
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1;
    if (avx2 && bmi2) f |= IMT_CPU_AVX2;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
        avx512vl = (b >> 31) & 1, vpopcntdq = (c >> 14) & 1;
    if ((f & IMT_CPU_AVX2) && avx512f && avx512dq && avx512bw && avx512vl && vpopcntdq &&
        (xcr0 & 0xe6) == 0xe6)
        f |= IMT_CPU_AVX512;
    return f;
}
#else
static unsigned detect(void) { return 0; }
#endif

/* 0: not detected yet; else the features with this bit set. Every thread
 * that finds 0 computes the same value and stores it: no lock needed, and
 * no data race (C11 atomics, unlike the volatile ints this replaces). */
#define FEATURES_KNOWN 0x80000000u

unsigned imt__cpu_features(void)
{
    static atomic_uint feats;
    unsigned f = atomic_load_explicit(&feats, memory_order_acquire);
    if (!f) {
        const char *e = getenv("IMT_FORCE_PORTABLE");
        f = ((e && *e && strcmp(e, "0") != 0) ? 0 : detect()) | FEATURES_KNOWN;
        atomic_store_explicit(&feats, f, memory_order_release);
    }
    return f & ~FEATURES_KNOWN;
}

imt_simd imt__simd_level(void)
{
    unsigned f = imt__cpu_features();
    if (f & IMT_CPU_AVX512) return IMT_SIMD_AVX512;
    if (f & IMT_CPU_AVX2) return IMT_SIMD_AVX2;
    return IMT_SIMD_PORTABLE;
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

imt_err imt_hex_decode(uint8_t *out, size_t nbytes, const char *hex, size_t len)
{
    if (!out || !hex || nbytes > SIZE_MAX / 2 || len != 2 * nbytes) return IMT_E_HASH_LENGTH;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)hex[i];
        int x;
        if (c >= '0' && c <= '9') x = c - '0';
        else if (c >= 'a' && c <= 'f') x = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') x = c - 'A' + 10;
        else return IMT_E_NOT_HEX;
        if (i & 1) out[i / 2] = (uint8_t)(out[i / 2] | x);
        else out[i / 2] = (uint8_t)(x << 4);
    }
    return IMT_OK;
}

/* Severity weight of an alerting membership. The Project VIC (VICS) and
 * CAID schemes put their gravest category first; lists of other schemes
 * weigh 1 per item. The table is in README. */
int imt__severity(const char *scheme, int32_t cat)
{
    if (scheme && !strcmp(scheme, "projectvic")) {
        switch (cat) {
        case 0: return 0;  /* non-pertinent */
        case 1: return 10;
        case 2: return 5;
        case 3: return 2;
        default: return 1;
        }
    }
    if (scheme && !strcmp(scheme, "caid")) {
        switch (cat) {
        case 1: return 10; /* category A */
        case 2: return 7;  /* B */
        case 3: return 4;  /* C */
        default: return 1;
        }
    }
    return 1;
}
