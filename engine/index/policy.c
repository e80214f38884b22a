/* engine/index/policy.c -- a list's category policy: which categories of its
 * memberships alert (the file is a hit), which are informational (reported,
 * not a hit) and which are ignorable (known-good, non-pertinent).
 *
 * The policy is text, stored with each list record (format 3) and shown by
 * `index stats`, in one canonical form: the dispositions in the order
 * alert, info, ignore, each with the ranges it covers, e.g.
 *     "alert=none,1-2 info=3+ ignore=0"
 * "none" is a membership without a numeric category (-1: none given, or a
 * text label); "N", "N-M" and "N+" are categories 0..2^31-1. A canonical
 * policy covers none and every category exactly once, so evaluation never
 * has to guess. An import starts from its scheme's default table (below)
 * and paints the caller's overrides over it, in order; "*" is everything.
 *
 * Defaults (README's table; IPED's for Project VIC):
 *   projectvic  0 ignore (non-pertinent), 1-2 alert, 3+ info, none alert
 *   caid        1-3 (A, B, C) alert, 0 and 4+ info, none alert
 *   custom      everything alerts
 *   known-good lists (NSRL, --known-good): everything ignored
 * A membership without a category alerts in a known-bad list: a list that
 * does not grade an item cannot clear it. */
#include "index.h"

#include <stdio.h>
#include <string.h>

#define POL_MAX_SEG 64
#define POL_NONE (-1)
#define POL_TOP INT32_MAX

typedef struct seg {
    int32_t lo, hi; /* inclusive; -1 = none */
    int disp;       /* imt_disposition, or -1: not covered */
} seg;

typedef struct pol {
    seg s[POL_MAX_SEG];
    int n;
} pol;

static const char *const disp_word[3] = {"alert", "info", "ignore"};

/* Paint [lo, hi] with d over p (segments sorted, disjoint). */
static int paint(pol *p, int32_t lo, int32_t hi, int d)
{
    seg out[POL_MAX_SEG + 2];
    int n = 0, placed = 0;
    for (int i = 0; i < p->n; i++) {
        seg a = p->s[i];
        if (a.hi < lo || a.lo > hi) {
            if (a.lo > hi && !placed) {
                if (n == POL_MAX_SEG + 2) return 0;
                out[n++] = (seg){lo, hi, d};
                placed = 1;
            }
            if (n == POL_MAX_SEG + 2) return 0;
            out[n++] = a;
            continue;
        }
        if (a.lo < lo) {
            if (n == POL_MAX_SEG + 2) return 0;
            out[n++] = (seg){a.lo, lo - 1, a.disp};
        }
        if (!placed) {
            if (n == POL_MAX_SEG + 2) return 0;
            out[n++] = (seg){lo, hi, d};
            placed = 1;
        }
        if (a.hi > hi) {
            if (n == POL_MAX_SEG + 2) return 0;
            out[n++] = (seg){hi + 1, a.hi, a.disp};
        }
    }
    if (!placed) {
        if (n == POL_MAX_SEG + 2) return 0;
        out[n++] = (seg){lo, hi, d};
    }
    /* merge neighbours of one disposition */
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m && out[m - 1].disp == out[i].disp && out[m - 1].hi + 1 == out[i].lo)
            out[m - 1].hi = out[i].hi;
        else
            out[m++] = out[i];
    }
    if (m > POL_MAX_SEG) return 0;
    memcpy(p->s, out, (size_t)m * sizeof *out);
    p->n = m;
    return 1;
}

static int parse_num(const char *s, size_t n, int32_t *v)
{
    if (!n || n > 10) return 0;
    long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        x = x * 10 + (s[i] - '0');
    }
    if (x > POL_TOP) return 0;
    *v = (int32_t)x;
    return 1;
}

/* One range ("none", "*", "N", "N-M", "N+") of length n at r. */
static int parse_range(const char *r, size_t n, int32_t *lo, int32_t *hi)
{
    if (n == 4 && !memcmp(r, "none", 4)) {
        *lo = *hi = POL_NONE;
        return 1;
    }
    if (n == 1 && r[0] == '*') {
        *lo = POL_NONE;
        *hi = POL_TOP;
        return 1;
    }
    if (n > 1 && r[n - 1] == '+') {
        *hi = POL_TOP;
        return parse_num(r, n - 1, lo);
    }
    const char *dash = memchr(r, '-', n);
    if (dash) {
        if (!parse_num(r, (size_t)(dash - r), lo) ||
            !parse_num(dash + 1, n - (size_t)(dash - r) - 1, hi))
            return 0;
        return *lo <= *hi;
    }
    if (!parse_num(r, n, lo)) return 0;
    *hi = *lo;
    return 1;
}

/* Paint the terms of text ("DISP=RANGE,RANGE DISP=..." separated by blanks
 * or ';') over p. 0 with a reason in msg on a bad term. */
static int apply(pol *p, const char *text, char *msg, size_t cap)
{
    const char *t = text;
    for (;;) {
        while (*t == ' ' || *t == ';' || *t == '\t') t++;
        if (!*t) return 1;
        size_t tl = strcspn(t, " ;\t");
        const char *eq = memchr(t, '=', tl);
        int d = -1;
        for (int i = 0; i < 3 && eq; i++)
            if ((size_t)(eq - t) == strlen(disp_word[i]) && !memcmp(t, disp_word[i], (size_t)(eq - t)))
                d = i;
        if (d < 0) {
            snprintf(msg, cap, "'%.*s' is not alert=, info= or ignore= followed by categories",
                     (int)(tl > 60 ? 60 : tl), t);
            return 0;
        }
        const char *r = eq + 1, *end = t + tl;
        if (r == end) {
            snprintf(msg, cap, "'%.*s' names no category", (int)(tl > 60 ? 60 : tl), t);
            return 0;
        }
        while (r < end) {
            const char *c = memchr(r, ',', (size_t)(end - r));
            size_t rl = c ? (size_t)(c - r) : (size_t)(end - r);
            int32_t lo, hi;
            if (!parse_range(r, rl, &lo, &hi)) {
                snprintf(msg, cap, "'%.*s' is not a category, range (N-M, N+), none or *",
                         (int)(rl > 40 ? 40 : rl), r);
                return 0;
            }
            if (!paint(p, lo, hi, d)) {
                snprintf(msg, cap, "the policy has too many ranges (at most %d)", POL_MAX_SEG);
                return 0;
            }
            r += rl + (c ? 1 : 0);
            if (c && r == end) {
                snprintf(msg, cap, "a category list ends with ','");
                return 0;
            }
        }
        t = end;
    }
}

static int complete(const pol *p)
{
    if (!p->n || p->s[0].lo != POL_NONE || p->s[p->n - 1].hi != POL_TOP) return 0;
    for (int i = 0; i < p->n; i++) {
        if (p->s[i].disp < 0) return 0;
        if (i && p->s[i - 1].hi + 1 != p->s[i].lo) return 0;
    }
    return 1;
}

/* Canonical text of a complete policy. 0 if it does not fit. */
static int format_pol(const pol *p, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int d = 0; d < 3; d++) {
        int first = 1;
        for (int i = 0; i < p->n; i++) {
            const seg *s = &p->s[i];
            if (s->disp != d) continue;
            char tmp[64];
            int k = 0;
            int32_t lo = s->lo;
            if (lo == POL_NONE) {
                k += snprintf(tmp + k, sizeof tmp - (size_t)k, "none");
                lo = 0;
            }
            if (s->hi >= 0) {
                const char *sep = k ? "," : "";
                if (s->hi == POL_TOP)
                    k += snprintf(tmp + k, sizeof tmp - (size_t)k, "%s%ld+", sep, (long)lo);
                else if (s->hi == lo)
                    k += snprintf(tmp + k, sizeof tmp - (size_t)k, "%s%ld", sep, (long)lo);
                else
                    k += snprintf(tmp + k, sizeof tmp - (size_t)k, "%s%ld-%ld", sep, (long)lo,
                                  (long)s->hi);
            }
            int w = first ? snprintf(out + n, cap - n, "%s%s=%s", n ? " " : "", disp_word[d], tmp)
                          : snprintf(out + n, cap - n, ",%s", tmp);
            if (w < 0 || (size_t)w >= cap - n) return 0;
            n += (size_t)w;
            first = 0;
        }
    }
    return 1;
}

const char *imt__idx_policy_default(const char *scheme, int known_good)
{
    if (known_good) return "ignore=none,0+";
    if (scheme && !strcmp(scheme, "projectvic")) return "alert=none,1-2 info=3+ ignore=0";
    if (scheme && !strcmp(scheme, "caid")) return "alert=none,1-3 info=0,4+";
    return "alert=none,0+";
}

imt_err imt__idx_policy_resolve(const char *base, const char *over, char *out, size_t cap,
                           char *msg, size_t msgcap)
{
    pol p;
    p.n = 0;
    msg[0] = '\0';
    if (!apply(&p, base, msg, msgcap)) return IMT_E_INVALID;
    if (over && !apply(&p, over, msg, msgcap)) return IMT_E_INVALID;
    if (!complete(&p)) {
        snprintf(msg, msgcap, "the policy leaves categories without a disposition");
        return IMT_E_INVALID;
    }
    if (!format_pol(&p, out, cap)) {
        snprintf(msg, msgcap, "the policy is too long");
        return IMT_E_INVALID;
    }
    return IMT_OK;
}

int imt__idx_policy_valid(const char *text)
{
    pol p;
    char msg[8], canon[IDX_POLICY_MAX];
    p.n = 0;
    if (!apply(&p, text, msg, sizeof msg) || !complete(&p)) return 0;
    /* stored policies are canonical: anything else was not written by us */
    return format_pol(&p, canon, sizeof canon) && !strcmp(canon, text);
}

imt_disposition imt__idx_policy_eval(const char *text, int32_t cat)
{
    pol p;
    char msg[8];
    p.n = 0;
    if (cat < 0) cat = POL_NONE;
    if (!apply(&p, text, msg, sizeof msg)) return IMT_DISP_ALERT; /* never clears */
    for (int i = 0; i < p.n; i++)
        if (p.s[i].lo <= cat && cat <= p.s[i].hi && p.s[i].disp >= 0)
            return (imt_disposition)p.s[i].disp;
    return IMT_DISP_ALERT;
}
