/* engine/triage/bound.c -- what a random sample says about the rest: the
 * exact hypergeometric upper bound on the files with known material in a
 * class, and the device's joint bound. Pure (no I/O, no clock). */
#include "triage.h"

#include <math.h>

const char *imt_preview_stop_name(imt_preview_stop s)
{
    switch (s) {
    case IMT_PREVIEW_COMPLETE: return "complete";
    case IMT_PREVIEW_BUDGET: return "budget";
    case IMT_PREVIEW_HITS: return "hits";
    case IMT_PREVIEW_INTERRUPTED: return "interrupted";
    }
    return "unknown";
}

/* log C(a, b) */
static double lchoose(double a, double b)
{
    return lgamma(a + 1.0) - lgamma(b + 1.0) - lgamma(a - b + 1.0);
}

/* P(X <= x) for X ~ Hypergeometric(N, K, n): draws n of N, K marked. */
static double hyper_cdf(uint64_t N, uint64_t K, uint64_t n, uint64_t x)
{
    double dN = (double)N, dK = (double)K, dn = (double)n;
    double base = lchoose(dN, dn), p = 0.0;
    uint64_t lo = n + K > N ? n + K - N : 0; /* the fewest marked a sample can hold */
    uint64_t hi = x < K ? x : K;
    if (hi > n) hi = n;
    for (uint64_t j = lo; j <= hi; j++)
        p += exp(lchoose(dK, (double)j) + lchoose(dN - dK, dn - (double)j) - base);
    return p > 1.0 ? 1.0 : p;
}

imt_err imt_triage_bound(uint64_t N, uint64_t n, uint64_t x, double confidence,
                         uint64_t *upper)
{
    if (!upper || x > n || n > N || !(confidence > 0.0 && confidence < 1.0))
        return IMT_E_INVALID;
    double alpha = 1.0 - confidence;
    /* K ranges over what the sample allows: x marked seen, n - x unmarked
     * seen, so x <= K <= N - (n - x). P(X <= x | K) falls as K grows: the
     * largest K where it is still above alpha, by bisection. */
    uint64_t lo = x, hi = N - (n - x);
    if (n == N || hyper_cdf(N, hi, n, x) > alpha) {
        *upper = n == N ? x : hi;
        return IMT_OK;
    }
    /* cdf(lo = x) is 1 (X <= K = x always), cdf(hi) <= alpha */
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (hyper_cdf(N, mid, n, x) > alpha) lo = mid;
        else hi = mid;
    }
    *upper = lo;
    return IMT_OK;
}

void imt__preview_finish(imt_preview_stats *st)
{
    int partial = 0;
    st->enumerated_files = st->examined_files = st->examined_pictures = st->hit_files = 0;
    for (int c = 0; c < IMT_CLASS__COUNT; c++) {
        imt_preview_class_stats *k = &st->cls[c];
        if (k->examined > k->enumerated) k->enumerated = k->examined; /* never: defensive */
        if (k->hit_files > k->examined) k->hit_files = k->examined;
        st->enumerated_files += k->enumerated;
        st->examined_files += k->examined;
        st->examined_pictures += k->pictures;
        st->hit_files += k->hit_files;
        if (k->examined < k->enumerated) partial++;
    }
    st->estimate = 0.0;
    st->upper95 = 0;
    for (int c = 0; c < IMT_CLASS__COUNT; c++) {
        imt_preview_class_stats *k = &st->cls[c];
        k->estimate = k->examined ? (double)k->hit_files * (double)k->enumerated /
                                        (double)k->examined
                                  : 0.0;
        if (imt_triage_bound(k->enumerated, k->examined, k->hit_files, 0.95, &k->upper95))
            k->upper95 = k->enumerated;
        st->estimate += k->examined ? k->estimate : 0.0;
        uint64_t joint = k->upper95;
        if (k->examined < k->enumerated && partial > 1 &&
            imt_triage_bound(k->enumerated, k->examined, k->hit_files,
                             1.0 - 0.05 / (double)partial, &joint))
            joint = k->enumerated;
        st->upper95 += joint;
    }
}
