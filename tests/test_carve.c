/* tests/test_carve.c -- the carver (engine/source/carve.c).
 *
 * Every expected offset and length comes from how the test built its input
 * (where it planted each picture), never from the carver; carved bytes are
 * compared with the planted file byte for byte and by OpenSSL's MD5 of the
 * original file; PDQ of a carved JPEG/PNG vector through imt_hash_stream
 * (compat) equals the reference hasher's CSV. Linearity is asserted on the
 * carver's work counters (bytes read once, bytes examined per byte), never
 * on time. */
#include "source/carve.h"
#include "testutil.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* ---- planting --------------------------------------------------------------- */
typedef struct blob {
    unsigned char *p;
    size_t len;
    char name[96];
} blob;

typedef struct img {
    unsigned char *p;
    size_t len, cap;
    size_t at[64], n[64];
    int fmt[64];
    size_t k;
} img;

static uint32_t rng = 12345;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void put(img *m, const void *p, size_t n)
{
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2 + 4096;
        m->p = realloc(m->p, m->cap);
        REQUIRE(m->p);
    }
    memcpy(m->p + m->len, p, n);
    m->len += n;
}

/* Random bytes that hold no signature of a carved format's first byte, so
 * that the only candidates are the ones the test plants. */
static void put_noise(img *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)rnd();
        if (b == 0xFF || b == 0x89 || b == 'G' || b == 'R' || b == 'B') b = 0x11;
        put(m, &b, 1);
    }
}

static void put_zeros(img *m, size_t n)
{
    static const unsigned char z[4096];
    while (n) {
        size_t k = n < sizeof z ? n : sizeof z;
        put(m, z, k);
        n -= k;
    }
}

/* Truly random bytes: any byte, seeded. */
static void put_random(img *m, size_t n)
{
    size_t at = m->len;
    put_zeros(m, n);
    for (size_t i = 0; i < n; i++) m->p[at + i] = (unsigned char)rnd();
}

static void plant(img *m, const blob *b, int fmt)
{
    REQUIRE(m->k < 64);
    m->at[m->k] = m->len;
    m->n[m->k] = b->len;
    m->fmt[m->k] = fmt;
    m->k++;
    put(m, b->p, b->len);
}

/* ---- carving ------------------------------------------------------------------ */
typedef struct hits {
    imt_carve_hit h[4096];
    size_t n;
} hits;

static int on_hit(void *ctx, const imt_carve_hit *h)
{
    hits *hs = ctx;
    if (hs->n < 4096) hs->h[hs->n] = *h;
    hs->n++;
    return 0;
}

/* An io over memory that returns at most `most` bytes per read. */
typedef struct shortio {
    const unsigned char *p;
    size_t len, most;
} shortio;

static imt_err short_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    shortio *s = ctx;
    *got = 0;
    if (off >= s->len) return IMT_OK;
    size_t n = s->len - (size_t)off;
    if (n > cap) n = cap;
    if (n > s->most) n = s->most;
    memcpy(buf, s->p + off, n);
    *got = n;
    return IMT_OK;
}

static imt_err carve(const unsigned char *p, size_t len, size_t chunk, size_t most,
                     uint64_t max_len, hits *hs, imt_carve_stats *st)
{
    shortio s = {p, len, most ? most : SIZE_MAX};
    imt__io io = {short_pread, &s, len};
    imt_carve_opts o;
    imt_carve_opts_init(&o);
    if (chunk) o.chunk_bytes = chunk;
    if (max_len) o.max_length = max_len;
    hs->n = 0;
    return imt__carve(&io, &o, on_hit, hs, st);
}

static int fmt_of(const unsigned char *p, size_t n)
{
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8) return IMT_FMT_JPEG;
    if (n >= 8 && p[0] == 0x89 && p[1] == 'P') return IMT_FMT_PNG;
    if (n >= 6 && !memcmp(p, "GIF8", 4)) return IMT_FMT_GIF;
    if (n >= 12 && !memcmp(p, "RIFF", 4)) return IMT_FMT_WEBP;
    if (n >= 2 && p[0] == 'B' && p[1] == 'M') return IMT_FMT_BMP;
    return 0;
}

/* The hits are exactly the planted pictures, complete. */
static void expect_planted(const char *what, const img *m, const hits *hs)
{
    CHECKF(hs->n == m->k, "%s: %zu hits for %zu planted", what, hs->n, m->k);
    for (size_t i = 0; i < m->k && i < hs->n; i++) {
        const imt_carve_hit *h = &hs->h[i];
        CHECKF(h->offset == m->at[i] && h->length == m->n[i] && !h->truncated &&
                   (int)h->format == m->fmt[i],
               "%s: hit %zu at %llu+%llu fmt %d trunc %d (%s), planted at %zu+%zu fmt %d",
               what, i, (unsigned long long)h->offset, (unsigned long long)h->length,
               h->format, h->truncated, imt_carve_end_name(h->end), m->at[i], m->n[i],
               m->fmt[i]);
        if (h->offset + h->length <= m->len)
            CHECKF(!memcmp(m->p + h->offset, m->p + m->at[i], m->n[i]),
                   "%s: carved bytes differ", what);
    }
}

/* ---- the test pictures ----------------------------------------------------------- */
static blob pics[128];
static size_t npics;

static void add_pic(const char *path, const char *name)
{
    if (npics >= 128) return;
    blob *b = &pics[npics];
    b->p = tu_read_file(path, &b->len);
    REQUIRE(b->p);
    snprintf(b->name, sizeof b->name, "%s", name);
    if (fmt_of(b->p, b->len)) npics++;
    else free(b->p);
}

static void walk_add(const char *path, const char *name, void *ctx)
{
    (void)ctx;
    size_t n = strlen(name);
    if (n > 4 && (!strcmp(name + n - 4, ".jpg") || !strcmp(name + n - 4, ".png") ||
                  !strcmp(name + n - 4, ".gif") || !strcmp(name + n - 5, ".webp") ||
                  !strcmp(name + n - 4, ".bmp"))) {
        char rel[96];
        const char *s = strstr(path, "/images/");
        snprintf(rel, sizeof rel, "%s", s ? s + 8 : name);
        add_pic(path, rel);
    }
}

static const blob *pic(const char *name)
{
    for (size_t i = 0; i < npics; i++)
        if (strstr(pics[i].name, name)) return &pics[i];
    fprintf(stderr, "no test picture %s\n", name);
    exit(1);
}

/* The length a carver must find for a whole file: all of it, but for a
 * JPEG with data after its last EOI (a camera's trailer): up to that EOI. */
static size_t whole_len(const blob *b)
{
    if (fmt_of(b->p, b->len) != IMT_FMT_JPEG) return b->len;
    size_t n = b->len;
    while (n >= 2 && !(b->p[n - 2] == 0xFF && b->p[n - 1] == 0xD9)) n--;
    return n;
}

static void plant_whole(img *m, const blob *b)
{
    blob w = *b;
    w.len = whole_len(b);
    REQUIRE(w.len > 2);
    plant(m, &w, fmt_of(b->p, b->len));
    put(m, b->p + w.len, b->len - w.len);
}

/* Every picture alone, in random bytes, in every format (mpf.jpg holds two
 * pictures: test_nested). */
static void test_each_alone(void)
{
    for (size_t i = 0; i < npics; i++) {
        const blob *b = &pics[i];
        if (strstr(b->name, "mpf.jpg")) continue;
        img m = {0};
        put_noise(&m, 100);
        plant_whole(&m, b);
        put_noise(&m, 100);
        hits hs;
        imt_carve_stats st;
        CHECK(carve(m.p, m.len, 0, 0, 0, &hs, &st) == IMT_OK);
        expect_planted(b->name, &m, &hs);
        CHECKF(st.bytes_read <= m.len, "%s: read %llu of %zu", b->name,
               (unsigned long long)st.bytes_read, m.len);
        free(m.p);
    }
}

/* A mix of pictures in random bytes, zeros and noise, carved with a chunk
 * boundary everywhere: chunk sizes from 16 bytes up, reads cut short. */
static void test_mix(void)
{
    static const char *names[] = {"thumb.jpg", "unedited.jpg", "small.png", "static_16.gif",
                                  "lossy_grey.webp", "b_pal8.bmp", "anim_opt.gif",
                                  "lossless.webp", "b_rgb24_v5.bmp", "b_pal8_rle.bmp",
                                  "b_rgb24_topdown.bmp", "alpha_lossy.webp", "restart.jpg",
                                  "progressive.jpg", "1.png"};
    img m = {0};
    rng = 99;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (i % 3 == 0) put_zeros(&m, 777 + i);
        else put_noise(&m, 1000 + 13 * i);
        const blob *b = pic(names[i]);
        plant(&m, b, fmt_of(b->p, b->len));
    }
    put_zeros(&m, 50);
    hits hs;
    imt_carve_stats st;
    static const size_t chunks[] = {16, 17, 100, 4093, 65536, 0};
    static const size_t most[] = {0, 7, 0, 1000, 3, 0};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        char what[64];
        snprintf(what, sizeof what, "mix chunk %zu most %zu", chunks[c], most[c]);
        CHECK(carve(m.p, m.len, chunks[c], most[c], 0, &hs, &st) == IMT_OK);
        expect_planted(what, &m, &hs);
        CHECKF(st.bytes_read <= m.len, "%s: read %llu of %zu bytes", what,
               (unsigned long long)st.bytes_read, m.len);
        CHECK(st.bytes_scanned == m.len);
        CHECK(st.hits == m.k);
    }
    free(m.p);
}

/* One small picture of each format at every offset of two chunks (of 64
 * and 61 bytes): every structure of it meets a chunk boundary at every
 * offset. */
static void test_every_boundary(void)
{
    static const char *names[] = {"thumb.jpg", "restart.jpg", "progressive.jpg", "small.png",
                                  "static_16.gif", "lossy_grey.webp", "b_mono1.bmp"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        const blob *b = pic(names[k]);
        static const size_t chunks[] = {64, 61};
        for (size_t ci = 0; ci < 2; ci++)
        for (size_t chunk = chunks[ci], o = 0; o < 2 * chunk; o++) {
            img m = {0};
            put_zeros(&m, o);
            plant(&m, b, fmt_of(b->p, b->len));
            put_zeros(&m, 3);
            hits hs;
            imt_carve_stats st;
            CHECK(carve(m.p, m.len, chunk, 0, 0, &hs, &st) == IMT_OK);
            if (hs.n != 1 || hs.h[0].offset != o || hs.h[0].length != b->len ||
                hs.h[0].truncated) {
                char what[128];
                snprintf(what, sizeof what, "%s at %zu, chunk %zu", names[k], o, chunk);
                expect_planted(what, &m, &hs);
                free(m.p);
                break;
            }
            tu_checks++;
            free(m.p);
        }
    }
}

/* Minimal signature bytes below which a cut file is no candidate. */
static size_t sig_len(const blob *b)
{
    switch (fmt_of(b->p, b->len)) {
    case IMT_FMT_JPEG: return 4;
    case IMT_FMT_PNG: return 8;
    case IMT_FMT_GIF: return 13;
    case IMT_FMT_WEBP: /* RIFF, WEBP, the first chunk's header and its start */
        return b->p[15] == 'L' ? 21 : b->p[15] == 'X' ? 20 : 26;
    default: return 34;
    }
}

/* A file cut short at the end of the range: one truncated hit from its
 * start to the range's end. */
static void test_truncated(void)
{
    static const char *names[] = {"unedited.jpg", "1.png", "anim_opt.gif", "lossless.webp",
                                  "b_pal8.bmp"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        const blob *b = pic(names[k]);
        int fmt = fmt_of(b->p, b->len);
        size_t cuts[] = {sig_len(b), sig_len(b) + 5, 40, 200, b->len / 3, b->len / 2,
                         b->len - 100, b->len - 2, b->len - 1};
        for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
            size_t cut = cuts[c];
            img m = {0};
            put_noise(&m, 300);
            put(&m, b->p, cut);
            hits hs;
            imt_carve_stats st;
            CHECK(carve(m.p, m.len, 1000, 0, 0, &hs, &st) == IMT_OK);
            CHECKF(hs.n == 1 && hs.h[0].offset == 300 && hs.h[0].length == cut &&
                       hs.h[0].truncated && hs.h[0].end == IMT_CARVE_RANGE_END &&
                       (int)hs.h[0].format == fmt,
                   "%s cut at %zu: %zu hits, first %llu+%llu %s", names[k], cut, hs.n,
                   hs.n ? (unsigned long long)hs.h[0].offset : 0ull,
                   hs.n ? (unsigned long long)hs.h[0].length : 0ull,
                   hs.n ? imt_carve_end_name(hs.h[0].end) : "-");
            free(m.p);
        }
        /* Shorter than the signature: nothing. */
        img m = {0};
        put(&m, b->p, sig_len(b) - 1);
        hits hs;
        CHECK(carve(m.p, m.len, 0, 0, 0, &hs, NULL) == IMT_OK);
        CHECKF(hs.n == 0, "%s cut to %zu: %zu hits", names[k], m.len, hs.n);
        free(m.p);
    }
    /* A JPEG cut in its entropy data and followed by another JPEG: the
     * first ends (bad structure) where the second's SOI begins. */
    const blob *a = pic("unedited.jpg"), *t = pic("thumb.jpg");
    img m = {0};
    put(&m, a->p, a->len - 500);
    size_t second = m.len;
    plant(&m, t, IMT_FMT_JPEG);
    hits hs;
    CHECK(carve(m.p, m.len, 333, 0, 0, &hs, NULL) == IMT_OK);
    CHECKF(hs.n == 2 && hs.h[0].offset == 0 && hs.h[0].length == second &&
               hs.h[0].end == IMT_CARVE_BAD_STRUCTURE && hs.h[1].offset == second &&
               hs.h[1].length == t->len && !hs.h[1].truncated,
           "cut JPEG then JPEG: %zu hits", hs.n);
    free(m.p);
    /* A PNG cut inside a chunk and followed by another PNG: the first ends
     * truncated no later than the cut, the second is whole. */
    const blob *p = pic("1.png");
    m = (img){0};
    put(&m, p->p, p->len / 2);
    second = m.len;
    plant(&m, p, IMT_FMT_PNG);
    CHECK(carve(m.p, m.len, 0, 0, 0, &hs, NULL) == IMT_OK);
    CHECKF(hs.n == 2 && hs.h[0].offset == 0 && hs.h[0].length <= second && hs.h[0].truncated &&
               hs.h[1].offset == second && hs.h[1].length == p->len && !hs.h[1].truncated,
           "cut PNG then PNG: %zu hits", hs.n);
    free(m.p);
}

/* The EXIF thumbnail (its own SOI..EOI inside APP1) does not end the outer
 * file; MPF's second image after EOI is a picture of its own. */
static void test_nested(void)
{
    const blob *u = pic("unedited.jpg"), *t = pic("thumb.jpg");
    /* independent: the thumbnail's bytes are inside unedited.jpg, before its end */
    const unsigned char *in = memmem(u->p, u->len, t->p, t->len);
    REQUIRE(in && (size_t)(in - u->p) + t->len < u->len);
    img m = {0};
    put_noise(&m, 10);
    plant(&m, u, IMT_FMT_JPEG);
    hits hs;
    CHECK(carve(m.p, m.len, 0, 0, 0, &hs, NULL) == IMT_OK);
    expect_planted("EXIF thumbnail inside", &m, &hs);
    free(m.p);

    const blob *mp = pic("mpf.jpg"), *pv = pic("preview.jpg");
    const unsigned char *at = memmem(mp->p, mp->len, pv->p, pv->len);
    REQUIRE(at && (size_t)(at - mp->p) + pv->len == mp->len);
    size_t primary = (size_t)(at - mp->p);
    CHECK(carve(mp->p, mp->len, 0, 0, 0, &hs, NULL) == IMT_OK);
    CHECKF(hs.n == 2 && hs.h[0].offset == 0 && hs.h[0].length == primary &&
               !hs.h[0].truncated && hs.h[1].offset == primary && hs.h[1].length == pv->len &&
               !hs.h[1].truncated,
           "MPF: %zu hits", hs.n);

    /* A PNG inside a JPEG's APP segment is part of the JPEG; a PNG right
     * after a JPEG's EOI is a hit of its own. */
    const blob *png = pic("small.png");
    m = (img){0};
    size_t seglen = png->len + 2;
    REQUIRE(seglen < 65536);
    unsigned char hdr[] = {0xFF, 0xD8, 0xFF, 0xE5, (unsigned char)(seglen >> 8),
                           (unsigned char)seglen};
    put(&m, hdr, sizeof hdr);
    put(&m, png->p, png->len);
    put(&m, t->p + 2, t->len - 2); /* the thumbnail's segments after its SOI */
    size_t jlen = m.len;
    img want = {0};
    want.k = 2;
    want.at[0] = 0;
    want.n[0] = jlen;
    want.fmt[0] = IMT_FMT_JPEG;
    want.at[1] = jlen;
    want.n[1] = png->len;
    want.fmt[1] = IMT_FMT_PNG;
    put(&m, png->p, png->len);
    want.p = m.p;
    want.len = m.len;
    CHECK(carve(m.p, m.len, 50, 0, 0, &hs, NULL) == IMT_OK);
    expect_planted("PNG in APP5, PNG after", &want, &hs);
    free(m.p);
}

/* ---- hostile input: bounded, linear ------------------------------------------------ */
static void test_hostile(void)
{
    hits hs;
    imt_carve_stats st;
    /* Millions of SOI signatures in a row (and SOI + APP0 whose length
     * points at another SOI): no hit, every byte read once, a constant
     * number of bytes examined per byte. */
    static const unsigned char pats[][4] = {{0xFF, 0xD8, 0xFF, 0xD8}, {0xFF, 0xD8, 0xFF, 0xE0}};
    for (size_t k = 0; k < 2; k++) {
        size_t n = (size_t)1 << 20;
        unsigned char *p = malloc(n);
        REQUIRE(p);
        for (size_t i = 0; i < n; i += 4) memcpy(p + i, pats[k], 4);
        CHECK(carve(p, n, 0, 0, 0, &hs, &st) == IMT_OK);
        /* SOI + APP0 of length 0xFFD8 lands on another SOI: rejected, but
         * for the first candidate whose APP0 runs past the end: a truncated
         * hit from there to the end. */
        size_t last = (n - 65502 + 3) / 4 * 4;
        if (k == 0)
            CHECKF(hs.n == 0, "SOI flood %zu: %zu hits", k, hs.n);
        else
            CHECKF(hs.n == 1 && hs.h[0].offset == last && hs.h[0].length == n - last &&
                       hs.h[0].end == IMT_CARVE_RANGE_END,
                   "SOI flood %zu: %zu hits, first at %llu", k, hs.n,
                   hs.n ? (unsigned long long)hs.h[0].offset : 0ull);
        CHECK(st.bytes_read == n);
        CHECKF(st.examined <= 8 * (uint64_t)n, "SOI flood %zu: %llu examined for %zu", k,
               (unsigned long long)st.examined, n);
        CHECKF(st.candidates >= (k ? last / 4 : n / 2), "SOI flood: %llu candidates",
               (unsigned long long)st.candidates);
        free(p);
    }
    /* Chains of tiny segments, each holding the SOI of another candidate
     * that walks the rest of the chain: work per byte stays bounded, the
     * same for a 4x larger input. */
    uint64_t per[2];
    for (int r = 0; r < 2; r++) {
        img m = {0};
        size_t blocks = r ? 1000 : 250;
        for (size_t b = 0; b < blocks; b++) {
            static const unsigned char seg[] = {0xFF, 0xE0, 0x00, 0x04, 0xFF, 0xD8};
            static const unsigned char soi[] = {0xFF, 0xD8};
            put(&m, soi, 2);
            for (int s = 0; s < 100; s++) put(&m, seg, sizeof seg);
            put_zeros(&m, 2);
        }
        CHECK(carve(m.p, m.len, 0, 0, 0, &hs, &st) == IMT_OK);
        CHECKF(hs.n == 0, "segment chains: %zu hits", hs.n);
        CHECK(st.bytes_read == m.len);
        CHECKF(st.examined <= (uint64_t)(IMT__CARVE_EXAMINE + 64) * st.candidates + m.len,
               "chains: %llu examined, %llu candidates", (unsigned long long)st.examined,
               (unsigned long long)st.candidates);
        per[r] = st.examined / m.len;
        free(m.p);
    }
    CHECKF(per[1] <= per[0] + 1, "chains: %llu then %llu bytes examined per byte",
           (unsigned long long)per[0], (unsigned long long)per[1]);
    /* 200 JPEG candidates (each SOI inside the previous one's APP0) sharing
     * one header and a long entropy-coded tail without EOI: the first is a
     * truncated hit to the range's end, and the tail is scanned once. */
    {
        const blob *t = pic("thumb.jpg");
        const unsigned char *sos = NULL;
        for (size_t i = 0; i + 1 < t->len; i++)
            if (t->p[i] == 0xFF && t->p[i + 1] == 0xDA) {
                sos = t->p + i;
                break;
            }
        REQUIRE(sos);
        size_t hdr = (size_t)(sos - t->p) + 2 + ((size_t)sos[2] << 8 | sos[3]);
        img m = {0};
        static const unsigned char seg[] = {0xFF, 0xE0, 0x00, 0x04, 0xFF, 0xD8};
        put(&m, seg + 4, 2);
        for (int i = 0; i < 200; i++) put(&m, seg, sizeof seg);
        put(&m, t->p + 2, hdr - 2); /* the thumbnail's header after its SOI */
        size_t tail = (size_t)2 << 20, at = m.len;
        put_random(&m, tail);
        for (size_t i = at; i < m.len; i++)
            if (m.p[i] == 0xFF) m.p[i] = 0;
        CHECK(carve(m.p, m.len, 0, 0, 0, &hs, &st) == IMT_OK);
        CHECKF(hs.n == 1 && hs.h[0].offset == 0 && hs.h[0].length == m.len &&
                   hs.h[0].end == IMT_CARVE_RANGE_END,
               "shared tail: %zu hits", hs.n);
        CHECK(st.bytes_read == m.len && st.examined <= 2 * (uint64_t)m.len);
        free(m.p);
    }
    /* A marker length walking past the end: truncated to the range's end. */
    {
        unsigned char p[300] = {0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF};
        CHECK(carve(p, sizeof p, 0, 0, 0, &hs, &st) == IMT_OK);
        CHECKF(hs.n == 1 && hs.h[0].offset == 0 && hs.h[0].length == sizeof p &&
                   hs.h[0].end == IMT_CARVE_RANGE_END,
               "APP1 past the end: %zu hits", hs.n);
    }
    /* PNG chunk lengths of 0xFFFFFFFF: as the first chunk, no candidate;
     * after a good IHDR, the file ends there (bad structure). */
    {
        const blob *png = pic("1.png");
        img m = {0};
        put(&m, png->p, 8);
        unsigned char bad[] = {0xFF, 0xFF, 0xFF, 0xFF, 'I', 'H', 'D', 'R', 0, 0, 0, 0};
        put(&m, bad, sizeof bad);
        put_zeros(&m, 100);
        size_t second = m.len;
        put(&m, png->p, 33); /* signature + IHDR with its CRC */
        memcpy(bad + 4, "IDAT", 4);
        put(&m, bad, sizeof bad);
        put_zeros(&m, 5000);
        CHECK(carve(m.p, m.len, 0, 0, 0, &hs, &st) == IMT_OK);
        CHECKF(hs.n == 1 && hs.h[0].offset == second && hs.h[0].length == 33 &&
                   hs.h[0].end == IMT_CARVE_BAD_STRUCTURE,
               "PNG 0xFFFFFFFF: %zu hits", hs.n);
        free(m.p);
    }
    /* A PNG chunk with a wrong CRC ends the file before that chunk. */
    {
        const blob *png = pic("1.png");
        img m = {0};
        put(&m, png->p, png->len);
        size_t idat = 33; /* the chunk after IHDR */
        m.p[idat + 8] ^= 1;
        CHECK(carve(m.p, m.len, 0, 0, 0, &hs, &st) == IMT_OK);
        CHECKF(hs.n >= 1 && hs.h[0].offset == 0 && hs.h[0].length == idat &&
                   hs.h[0].end == IMT_CARVE_BAD_STRUCTURE,
               "PNG bad CRC: %zu hits, first length %llu", hs.n,
               hs.n ? (unsigned long long)hs.h[0].length : 0ull);
        free(m.p);
    }
    /* PNGs nested in each other's chunk with a wrong CRC (each chunk 2 MiB,
     * covering every later PNG): the first ends before its bad chunk, so the
     * next is found, until the bytes gone back over reach the range's size;
     * then a PNG ends after its bad chunk. Linear: found by the fuzzer,
     * where every PNG went back over the chunk (and read it again). */
    {
        const blob *png = pic("small.png");
        img m = {0};
        const uint32_t L = 2u << 20;
        unsigned char hdr[8] = {(unsigned char)(L >> 24), (unsigned char)(L >> 16),
                                (unsigned char)(L >> 8), (unsigned char)L, 'I', 'D', 'A', 'T'};
        for (int i = 0; i < 40; i++) {
            put(&m, png->p, 33); /* signature and IHDR with its CRC */
            put(&m, hdr, 8);
        }
        put_zeros(&m, L);
        size_t size = m.len;
        CHECK(carve(m.p, m.len, 0, 0, 0, &hs, &st) == IMT_OK);
        /* 0: ends at its IDAT (33), costing 12 + L of the budget (size);
         * 41: its IDAT at 74 would cost as much again: it ends after it */
        CHECKF(hs.n == 2 && hs.h[0].offset == 0 && hs.h[0].length == 33 &&
                   hs.h[0].end == IMT_CARVE_BAD_STRUCTURE && hs.h[1].offset == 41 &&
                   hs.h[1].length == 33 + 12 + (uint64_t)L && hs.h[1].end == IMT_CARVE_BAD_STRUCTURE,
               "nested bad CRCs: %zu hits, second %llu+%llu", hs.n,
               hs.n > 1 ? (unsigned long long)hs.h[1].offset : 0ull,
               hs.n > 1 ? (unsigned long long)hs.h[1].length : 0ull);
        CHECKF(st.examined <= 3 * (uint64_t)size + 4096 && st.bytes_read <= 2 * (uint64_t)size,
               "nested bad CRCs: %llu examined, %llu read for %zu bytes",
               (unsigned long long)st.examined, (unsigned long long)st.bytes_read, size);
        free(m.p);
    }
    /* The maximum carve length cuts a picture there, truncated. */
    {
        const blob *u = pic("unedited.jpg");
        CHECK(carve(u->p, u->len, 100, 0, 5000, &hs, &st) == IMT_OK);
        CHECKF(hs.n >= 1 && hs.h[0].offset == 0 && hs.h[0].length == 5000 &&
                   hs.h[0].end == IMT_CARVE_MAX_LENGTH,
               "max length: %zu hits", hs.n);
    }
    /* Random bytes: nothing read twice; work per byte bounded. */
    {
        img m = {0};
        rng = 7;
        put_random(&m, (size_t)4 << 20);
        CHECK(carve(m.p, m.len, 0, 0, 0, &hs, &st) == IMT_OK);
        CHECK(st.bytes_read == m.len && st.examined <= 2 * (uint64_t)m.len);
        free(m.p);
    }
}

/* ---- hashing a hit ------------------------------------------------------------------ */
static void md5(const unsigned char *p, size_t n, unsigned char out[16])
{
    unsigned len = 0;
    REQUIRE(EVP_Digest(p, n, out, &len, EVP_md5(), NULL) == 1 && len == 16);
}

/* The reference hasher's "hash,quality,path" for rel, or 0. */
static int ref_pdq(const char *csv, const char *rel, char hash[65], int *quality)
{
    FILE *f = fopen(csv, "r");
    if (!f) return 0;
    char line[1024];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (!c2) continue;
        char *path = c2 + 1;
        path[strcspn(path, "\r\n")] = 0;
        if (strcmp(path, rel) || c1 - line != 64) continue;
        memcpy(hash, line, 64);
        hash[64] = 0;
        *quality = atoi(c1 + 1);
        found = 1;
        break;
    }
    fclose(f);
    return found;
}

static void test_hash_hits(const char *csv)
{
    imt_hash_opts ho;
    imt_hash_opts_init(&ho);
    ho.mode = IMT_PDQ_COMPAT;
    ho.digests = IMT_DIGEST_MD5;
    imt_hasher *hr;
    REQUIRE(imt_hasher_create(&hr, &ho) == IMT_OK);
    img m = {0};
    rng = 5;
    size_t refs = 0;
    for (size_t i = 0; i < npics; i++) {
        int f = fmt_of(pics[i].p, pics[i].len);
        if (f != IMT_FMT_JPEG && f != IMT_FMT_PNG) continue;
        if (strstr(pics[i].name, "mpf.jpg")) continue;
        put_random(&m, 3000);
        put_zeros(&m, 512);
        plant_whole(&m, &pics[i]);
    }
    imt__memio mio;
    imt__io io;
    imt__memio_init(&mio, m.p, m.len, &io);
    hits hs = {0};
    imt_carve_opts o;
    imt_carve_opts_init(&o);
    CHECK(imt__carve(&io, &o, on_hit, &hs, NULL) == IMT_OK);
    expect_planted("hashed mix", &m, &hs);
    size_t j = 0;
    for (size_t i = 0; i < npics && j < hs.n; i++) {
        int f = fmt_of(pics[i].p, pics[i].len);
        if (f != IMT_FMT_JPEG && f != IMT_FMT_PNG) continue;
        if (strstr(pics[i].name, "mpf.jpg")) continue;
        const imt_carve_hit *h = &hs.h[j++];
        size_t wl = whole_len(&pics[i]);
        imt__slice sl;
        imt_stream s;
        imt__slice_init(&sl, &io, h->offset, h->length);
        imt__carve_stream(&sl, &s);
        imt_hash_result r;
        imt_hash_stream(hr, &s, &r);
        unsigned char want[16];
        md5(pics[i].p, wl, want);
        CHECKF(r.file_size == wl && (r.digests & IMT_DIGEST_MD5) &&
                   !memcmp(r.md5, want, 16),
               "%s: carved MD5 differs from the file's", pics[i].name);
        char hash[65];
        int q;
        if (ref_pdq(csv, pics[i].name, hash, &q)) {
            char hx[IMT_PDQ_HEX_LEN + 1] = "";
            if (r.has_pdq) imt_pdq_to_hex(&r.pdq[0], hx);
            CHECKF(r.has_pdq && !strcmp(hx, hash) && r.quality == q,
                   "%s: carved PDQ %s q%d, reference %s q%d", pics[i].name, hx, r.quality,
                   hash, q);
            refs++;
        }
        /* the io view reads the same bytes */
        imt__io sub;
        imt__carve_io(&sl, &sub);
        unsigned char buf[64];
        size_t got = 0;
        CHECK(sub.size == h->length);
        CHECK(sub.pread(sub.ctx, 0, buf, sizeof buf, &got) == IMT_OK && got == 64 &&
              !memcmp(buf, pics[i].p, 64));
        CHECK(sub.pread(sub.ctx, h->length, buf, sizeof buf, &got) == IMT_OK && got == 0);
    }
    CHECKF(refs >= 20, "only %zu carved vectors had a reference hash", refs);
    imt_hasher_free(hr);
    free(m.p);
}

/* imt_carve_fd over a file; a read error stops the carve with IMT_E_IO. */
static imt_err fail_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    (void)ctx;
    (void)buf;
    *got = 0;
    if (off >= 100000) return IMT_E_IO;
    *got = cap < 1000 ? cap : 1000;
    memset(buf, 0, *got);
    return IMT_OK;
}

static void test_fd_and_errors(void)
{
    const blob *u = pic("unedited.jpg");
    img m = {0};
    put_zeros(&m, 10000);
    plant(&m, u, IMT_FMT_JPEG);
    put_noise(&m, 3);
    char path[] = "/tmp/imt-test-carve-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, m.p, m.len) == (ssize_t)m.len);
    hits hs = {0};
    imt_carve_stats st;
    CHECK(imt_carve_fd(fd, 0, NULL, on_hit, &hs, &st) == IMT_OK);
    expect_planted("fd", &m, &hs);
    close(fd);
    unlink(path);
    free(m.p);

    imt__io io = {fail_pread, NULL, 1 << 20};
    hs.n = 0;
    CHECK(imt__carve(&io, NULL, on_hit, &hs, &st) == IMT_E_IO);
    CHECK(st.bytes_scanned <= 100000);
    CHECK(imt_carve_fd(-1, 0, NULL, on_hit, &hs, NULL) == IMT_E_INVALID);
    CHECK(!strcmp(imt_carve_end_name(IMT_CARVE_MAX_LENGTH), "max-length"));
}

int main(int argc, char **argv)
{
    const char *vec = tu_shared("vectors/pdq/images");
    const char *csv = tu_shared("vectors/pdq/observed/cpp-shipped-imagemagick.csv");
    if (!vec || !csv) return tu_skip("the PDQ vectors in ../shared");
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", vec);
    tu_walk(buf, walk_add, NULL);
    tu_walk(IMT_SOURCE_DIR "/tests/data/embedded", walk_add, NULL);
    tu_walk(IMT_SOURCE_DIR "/tests/data/formats/webp_gif", walk_add, NULL);
    tu_walk(IMT_SOURCE_DIR "/tests/data/formats/tiffbmp", walk_add, NULL);
    tu_walk(IMT_SOURCE_DIR "/tests/data/carve", walk_add, NULL);
    REQUIRE(npics > 60);
    /* argv[1] "--scan-only": the carving tests alone (the portable run) */
    int scan_only = argc > 1 && !strcmp(argv[1], "--scan-only");
    if (!scan_only) test_each_alone();
    test_mix();
    test_every_boundary();
    test_truncated();
    test_nested();
    test_hostile();
    if (!scan_only) {
        test_hash_hits(csv);
        test_fd_and_errors();
    }
    for (size_t i = 0; i < npics; i++) free(pics[i].p);
    /* Once more with the portable signature scan (no SSE2): the same hits. */
    if (!getenv("IMT_FORCE_PORTABLE") && argc > 0) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "IMT_FORCE_PORTABLE=1 '%s' --scan-only", argv[0]);
        int rc = system(cmd);
        CHECKF(rc == 0, "the portable run failed (status %d)", rc);
    }
    return tu_done("test_carve");
}
