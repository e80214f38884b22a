/* tests/test_api.c -- the public API through imgtriage.h only. */
#include "imgtriage.h"
#include "testutil.h"

#include <string.h>

static void test_errors(void)
{
    for (int e = 0; e < IMT_E__COUNT; e++) {
        CHECK(imt_strerror((imt_err)e) != NULL);
        CHECK(strcmp(imt_err_name((imt_err)e), "unknown") != 0);
    }
    CHECK(strcmp(imt_err_name(IMT_E_CORRUPT), "corrupt") == 0);
    CHECK(strcmp(imt_err_name(IMT_E_UNSUPPORTED), "unsupported-format") == 0);
    CHECK(strcmp(imt_strerror((imt_err)9999), "unknown error code") == 0);
}

static void test_sniff(void)
{
    CHECK(imt_sniff("\xff\xd8\xff\xe0", 4) == IMT_FMT_JPEG);
    CHECK(imt_sniff("\x89PNG\r\n\x1a\n", 8) == IMT_FMT_PNG);
    CHECK(imt_sniff("GIF89a", 6) == IMT_FMT_GIF);
    CHECK(imt_sniff("RIFF\0\0\0\0WEBPVP8 ", 16) == IMT_FMT_WEBP);
    CHECK(imt_sniff("\0\0\0\x18" "ftypheic", 12) == IMT_FMT_HEIF);
    CHECK(imt_sniff("\0\0\0\x18" "ftypavif", 12) == IMT_FMT_AVIF);
    CHECK(imt_sniff("II*\0", 4) == IMT_FMT_TIFF);
    CHECK(imt_sniff("hello world", 11) == IMT_FMT_UNKNOWN);
    CHECK(imt_sniff("\xff\xd8", 2) == IMT_FMT_UNKNOWN);
    CHECK(imt_sniff(NULL, 0) == IMT_FMT_UNKNOWN);
    CHECK(imt_format_decodable(IMT_FMT_JPEG) && imt_format_decodable(IMT_FMT_PNG));
    CHECK(imt_format_decodable(IMT_FMT_GIF) && imt_format_decodable(IMT_FMT_WEBP));
    CHECK(!imt_format_decodable(IMT_FMT_JXL));
}

/* The one hex decoder: both cases, exact length, the error of each failure. */
static void test_hex_decode(void)
{
    uint8_t d[4];
    CHECK(imt_hex_decode(d, 4, "DeadBEEF", 8) == IMT_OK);
    CHECK(d[0] == 0xde && d[1] == 0xad && d[2] == 0xbe && d[3] == 0xef);
    CHECK(imt_hex_decode(d, 4, "00ff7f80", 8) == IMT_OK);
    CHECK(d[0] == 0x00 && d[1] == 0xff && d[2] == 0x7f && d[3] == 0x80);
    CHECK(imt_hex_decode(d, 4, "deadbee", 7) == IMT_E_HASH_LENGTH);
    CHECK(imt_hex_decode(d, 4, "deadbeef0", 9) == IMT_E_HASH_LENGTH);
    CHECK(imt_hex_decode(d, 4, "deadbeeg", 8) == IMT_E_NOT_HEX);
    CHECK(imt_hex_decode(d, 4, "dead beef", 8) == IMT_E_NOT_HEX);
    CHECK(imt_hex_decode(d, 0, "", 0) == IMT_OK);
    CHECK(imt_hex_decode(NULL, 4, "deadbeef", 8) != IMT_OK);
}

static void test_pdq_hex(void)
{
    const char *s = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22";
    imt_pdq a, b;
    char out[IMT_PDQ_HEX_LEN + 1];
    CHECK(imt_pdq_from_hex(&a, s, strlen(s)) == IMT_OK);
    imt_pdq_to_hex(&a, out);
    CHECK(strcmp(out, s) == 0);
    CHECK(imt_pdq_distance(&a, &a) == 0);
    b = a;
    b.bytes[0] ^= 0x81;
    b.bytes[31] ^= 0x01;
    CHECK(imt_pdq_distance(&a, &b) == 3);
    CHECK(imt_pdq_from_hex(&a, s, 63) == IMT_E_PARSE);
    CHECK(imt_pdq_from_hex(&a, "zz", 2) == IMT_E_PARSE);
}

/* Whether the n bytes at p print as the lowercase hex string want. */
static int hex_is(const uint8_t *p, size_t n, const char *want)
{
    char got[129];
    for (size_t i = 0; i < n; i++) snprintf(got + 2 * i, 3, "%02x", p[i]);
    got[2 * n] = '\0';
    if (strcmp(got, want) == 0) return 1;
    fprintf(stderr, "digest %s, want %s\n", got, want);
    return 0;
}

static void test_hasher_digests(void)
{
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.digests = IMT_DIGEST_ALL;
    imt_hasher *h = NULL;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    imt_hash_result r;
    /* "abc": the FIPS test vectors. */
    CHECK(imt_hash_memory(h, "abc", 3, &r) == IMT_E_NOT_IMAGE);
    CHECK(r.digests == IMT_DIGEST_ALL);
    CHECK(r.file_size == 3);
    CHECK(hex_is(r.md5, 16, "900150983cd24fb0d6963f7d28e17f72"));           /* RFC 1321 */
    CHECK(hex_is(r.sha1, 20, "a9993e364706816aba3e25717850c26c9cd0d89d"));   /* FIPS 180 */
    CHECK(hex_is(r.sha256, 32,
                 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    CHECK(strlen(r.detail) > 0);
    CHECK(imt_hash_memory(h, "", 0, &r) == IMT_E_EMPTY);
    CHECK(r.digests == IMT_DIGEST_ALL);
    CHECK(hex_is(r.md5, 16, "d41d8cd98f00b204e9800998ecf8427e"));
    CHECK(hex_is(r.sha1, 20, "da39a3ee5e6b4b0d3255bfef95601890afd80709"));
    CHECK(hex_is(r.sha256, 32,
                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK(imt_hash_file(h, "/nonexistent/file", &r) == IMT_E_NOT_FOUND);
    CHECK(strstr(imt_hasher_last_error(h), "cannot open") != NULL);
    imt_hasher_free(h);
    imt_hasher_free(NULL);
}

/* A stream over memory that hands out at most `step` bytes a call and can
 * fail after `fail_at` bytes. */
typedef struct memstream {
    const unsigned char *p;
    size_t len, pos, step, fail_at;
} memstream;

static imt_err ms_read(void *ctx, void *buf, size_t cap, size_t *got)
{
    memstream *m = ctx;
    size_t n = m->len - m->pos;
    if (n > cap) n = cap;
    if (n > m->step) n = m->step;
    if (m->fail_at && m->pos + n > m->fail_at) return IMT_E_IO;
    memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    *got = n;
    return IMT_OK;
}

/* imt_hash_stream gives what imt_hash_memory gives over the same bytes,
 * whatever the stream's read sizes; a failed read and a short stream are
 * said so. */
static void test_hasher_stream(void)
{
    /* c.png: 1.2 MB, so reads cross the hasher's 256 KiB chunks */
    const char *path = tu_shared("vectors/pdq/images/misc-images/c.png");
    if (!path) {
        tu_skip("PDQ vectors absent: imt_hash_stream not checked");
        return;
    }
    size_t len = 0;
    unsigned char *bytes = tu_read_file(path, &len);
    REQUIRE(bytes && len > 600000);
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.digests = IMT_DIGEST_ALL;
    imt_hasher *h = NULL;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    imt_hash_result want, got;
    CHECK(imt_hash_memory(h, bytes, len, &want) == IMT_OK);
    CHECK(want.has_pdq);
    static const size_t steps[] = {509, 4093, 65536, 1u << 20};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        memstream m = {bytes, len, 0, steps[i], 0};
        imt_stream st = {ms_read, &m, i % 2 ? len : 0};
        CHECK(imt_hash_stream(h, &st, &got) == IMT_OK);
        CHECK(got.has_pdq && memcmp(got.pdq, want.pdq, sizeof want.pdq) == 0);
        CHECK(got.quality == want.quality && got.file_size == len);
        CHECK(memcmp(got.md5, want.md5, 16) == 0 && memcmp(got.sha256, want.sha256, 32) == 0);
        CHECK(!got.partial);
    }
    /* A read that fails: no digests, the error and where. */
    memstream bad = {bytes, len, 0, 1000, 3000};
    imt_stream sb = {ms_read, &bad, len};
    CHECK(imt_hash_stream(h, &sb, &got) == IMT_E_IO);
    CHECK(got.digests == 0 && !got.has_pdq);
    CHECK(strstr(got.detail, "read failed after 3000 bytes") != NULL);
    /* Announced larger than it is: digests of what there was, flagged. */
    memstream shortm = {bytes, len, 0, 65536, 0};
    imt_stream ss = {ms_read, &shortm, (uint64_t)len + 100};
    imt_hash_stream(h, &ss, &got);
    CHECK(got.partial && got.file_size == len && got.digests == IMT_DIGEST_ALL);
    CHECK(memcmp(got.md5, want.md5, 16) == 0);
    CHECK(strstr(got.detail, "ended after") != NULL);
    /* Announced smaller: no more than announced is read. */
    memstream longm = {bytes, len, 0, 65536, 0};
    imt_stream sl = {ms_read, &longm, 100};
    imt_hash_stream(h, &sl, &got);
    CHECK(got.file_size == 100);
    CHECK(imt_hash_stream(h, NULL, &got) == IMT_E_INVALID);
    imt_hasher_free(h);
    free(bytes);
}

int main(void)
{
    imt_tune_allocator(); /* public, callable once at start; results unchanged */
    test_errors();
    test_sniff();
    test_hex_decode();
    test_pdq_hex();
    test_hasher_digests();
    test_hasher_stream();
    return tu_done("test_api");
}
