/* tests/test_blocks.c -- block hashes and block sampling: the verdict on
 * constructed blocks (zeros, a counter ramp, a small alphabet, a repeated
 * pattern, random bytes); a generated raw FAT image (mkfs.vfat, 512-byte
 * clusters, so files start off the 4 KiB grid) holding a collection of
 * known files among others, one of them deleted (mdel), sampled whole: every
 * known file found and confirmed by its MD5, also with the boot sector and
 * FATs overwritten; over many seeded runs of n samples, the share that finds
 * the collection matches 1 - C(P-M, n)/C(P, n), with M counted from the
 * files' sizes (random content: every whole block probative). */
#include "testutil.h"
#include "imgtriage.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rs = 12345;
static uint64_t rnd(void)
{
    uint64_t z = (rs += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void test_verdicts(void)
{
    uint8_t b[IMT_BLOCK_SIZE];
    memset(b, 0, sizeof b);
    CHECK(imt_block_classify(b) == IMT_BLOCK_FEW_VALUES);
    memset(b, ' ', sizeof b);
    CHECK(imt_block_classify(b) == IMT_BLOCK_FEW_VALUES);
    for (uint32_t i = 0; i < IMT_BLOCK_SIZE / 4; i++) { /* a table of counters */
        uint32_t v = 1000 + 7 * i;
        memcpy(b + 4 * i, &v, 4);
    }
    CHECK(imt_block_classify(b) == IMT_BLOCK_RAMP);
    for (uint32_t i = 0; i < IMT_BLOCK_SIZE / 2; i++) { /* falling 16-bit words */
        uint16_t v = (uint16_t)(60000 - 3 * i);
        memcpy(b + 2 * i, &v, 2);
    }
    CHECK(imt_block_classify(b) == IMT_BLOCK_RAMP);
    for (int i = 0; i < IMT_BLOCK_SIZE; i++) b[i] = (uint8_t)('a' + rnd() % 20); /* 4.3 bits */
    CHECK(imt_block_classify(b) == IMT_BLOCK_LOW_ENTROPY);
    for (int i = 0; i < 64; i++) b[i] = (uint8_t)rnd();
    for (int i = 64; i < IMT_BLOCK_SIZE; i++) b[i] = b[i % 64]; /* 16 distinct words */
    CHECK(imt_block_classify(b) == IMT_BLOCK_REPEATING);
    for (int i = 0; i < IMT_BLOCK_SIZE; i++) b[i] = (uint8_t)rnd();
    CHECK(imt_block_classify(b) == IMT_BLOCK_PROBATIVE);
    CHECK(imt_block_key(b) != 0 && imt_block_key(b) == imt_block_key(b));
    /* the predicted probability against its product form */
    double q = 1.0;
    for (int i = 0; i < 20; i++) q *= (double)(2000 - 100 - i) / (double)(2000 - i);
    CHECK(fabs(imt_sample_detect_probability(2000, 100, 20) - (1.0 - q)) < 1e-9);
    CHECK(imt_sample_detect_probability(2000, 0, 20) == 0.0);
    CHECK(imt_sample_detect_probability(2000, 100, 1901) == 1.0);
}

static char root[256];

static int sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

static void write_random(const char *path, size_t n)
{
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    for (size_t i = 0; i < n; i++) fputc((int)(rnd() & 0xff), f);
    fclose(f);
}

/* Sample the image with n positions under seed: did any block hit? */
static int found(imt_index *idx, const char *img, uint64_t n, uint64_t seed,
                 imt_sample_result *keep)
{
    imt_sample_opts o;
    imt_sample_opts_init(&o);
    o.samples = n;
    o.seed = seed;
    imt_sample_result r;
    char det[256];
    REQUIRE(imt_sample_image(idx, img, &o, &r, det, sizeof det) == IMT_OK);
    int any = r.n_hits > 0;
    if (keep) *keep = r;
    else imt_sample_result_free(&r);
    return any;
}

static int test_image(void)
{
    if (system("command -v mkfs.vfat >/dev/null && command -v mcopy >/dev/null && "
               "command -v mdel >/dev/null") != 0)
        return tu_skip("mkfs.vfat and mtools (scripts/setup.sh installs dosfstools, mtools)");
    snprintf(root, sizeof root, "/tmp/imt-blocks-XXXXXX");
    REQUIRE(mkdtemp(root));
    char p[512], cmd[2048];
    snprintf(p, sizeof p, "%s/known", root);
    REQUIRE(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/other", root);
    REQUIRE(mkdir(p, 0755) == 0);
    enum { NK = 10, NO = 24 };
    uint64_t M = 0;
    for (int i = 0; i < NK; i++) {
        size_t n = 20000 + (size_t)(rnd() % 60000);
        snprintf(p, sizeof p, "%s/known/k%02d.bin", root, i);
        write_random(p, n);
        M += n / IMT_BLOCK_SIZE;
    }
    for (int i = 0; i < NO; i++) {
        snprintf(p, sizeof p, "%s/other/o%02d.bin", root, i);
        write_random(p, 30000 + (size_t)(rnd() % 40000));
    }
    /* An 8 MiB FAT with 512-byte clusters: others first (they take the
     * start of the data area), then the known files; k09 deleted. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkfs.vfat -C -s 1 -S 512 img.raw 8192 >/dev/null && "
             "mcopy -i img.raw other/*.bin ::/ && mcopy -i img.raw known/*.bin ::/ && "
             "mdel -i img.raw ::/k09.bin && cp img.raw damaged.raw && "
             "dd if=/dev/zero of=damaged.raw bs=1024 count=64 conv=notrunc status=none && "
             "mkfs.vfat -C -s 1 -S 512 none.raw 8192 >/dev/null && mcopy -i none.raw other/*.bin ::/ && "
             "'%s' index import-files -q --blocks --create '%s/idx' '%s/known'",
             root, IMT_CLI, root, root);
    REQUIRE(sh(cmd) == 0);
    snprintf(p, sizeof p, "%s/idx", root);
    imt_index *idx = NULL;
    imt_index_opts io;
    imt_index_opts_init(&io);
    REQUIRE(imt_index_open(&idx, p, &io) == IMT_OK);
    imt_block_reader *br = NULL;
    REQUIRE(imt_block_reader_open(&br, idx) == IMT_OK);
    uint64_t nf = 0, nb = 0;
    CHECK(imt_block_reader_counts(br, &nf, &nb) == IMT_OK);
    CHECKF(nf == NK && nb == M, "the index holds %llu files, %llu blocks (want %d, %llu)",
           (unsigned long long)nf, (unsigned long long)nb, NK, (unsigned long long)M);

    static const char *const imgs[] = {"img.raw", "damaged.raw"};
    for (int k = 0; k < 2; k++) {
        char img[512];
        snprintf(img, sizeof img, "%s/%s", root, imgs[k]);
        /* Every place read: every stored block found, each file whole. */
        imt_sample_result r;
        found(idx, img, UINT64_MAX / 2, 1, &r);
        CHECK(r.samples == r.positions && r.positions == (8u << 20) / IMT_BLOCK_SIZE);
        CHECKF(r.n_hits == M, "%s: %zu blocks found of %llu", imgs[k], r.n_hits,
               (unsigned long long)M);
        unsigned char seen[NK + 1] = {0};
        for (size_t i = 0; i < r.n_hits; i++) {
            const imt_sample_hit *h = &r.hits[i];
            if (h->at.file_id > NK || seen[h->at.file_id]) continue;
            seen[h->at.file_id] = 1;
            imt_block_file bf;
            REQUIRE(imt_block_file_get(br, h->at.list_id, h->at.file_id, &bf) == IMT_OK);
            int match = 0;
            uint64_t start = h->offset - (uint64_t)h->at.block * IMT_BLOCK_SIZE;
            CHECK(imt_sample_confirm(img, start, bf.size, bf.md5, &match) == IMT_OK && match);
            CHECK(start % 512 == 0);
        }
        int all = 1, off_grid = 0;
        for (int i = 1; i <= NK; i++) all &= seen[i];
        for (size_t i = 0; i < r.n_hits; i++) off_grid |= r.hits[i].offset % IMT_BLOCK_SIZE != 0;
        CHECKF(all, "%s: every known file (the deleted one too) found", imgs[k]);
        CHECK(off_grid); /* some file starts off the 4 KiB grid: the 512 alignments matter */
        imt_sample_result_free(&r);

        /* n samples, 300 seeds: the share that finds the collection is the
         * predicted probability. */
        uint64_t P = (8u << 20) / IMT_BLOCK_SIZE, n = 0;
        double pred = 0;
        while (pred < 0.6) {
            n++;
            double q = 1.0;
            for (uint64_t i = 0; i < n; i++) q *= (double)(P - M - i) / (double)(P - i);
            pred = 1.0 - q;
        }
        const int R = 300;
        int hits = 0;
        for (int s = 0; s < R; s++) hits += found(idx, img, n, 1000 + (uint64_t)s, NULL);
        double obs = (double)hits / R, tol = 4.0 * sqrt(pred * (1 - pred) / R);
        fprintf(stderr, "%s: P=%llu M=%llu n=%llu: predicted %.3f, found in %.3f of %d runs\n",
                imgs[k], (unsigned long long)P, (unsigned long long)M, (unsigned long long)n,
                pred, obs, R);
        CHECKF(fabs(obs - pred) <= tol, "observed %.3f vs predicted %.3f (tolerance %.3f)", obs,
               pred, tol);
        CHECK(fabs(imt_sample_detect_probability(P, M, n) - pred) < 1e-9);
    }
    /* A budget stops after whole rounds, dealt at random: half the places
     * read find about half the blocks (in offset order they would be the
     * lower half of the image, where every known file lies: all of them). */
    {
        char img[512];
        snprintf(img, sizeof img, "%s/img.raw", root);
        imt_sample_opts o;
        imt_sample_opts_init(&o);
        o.samples = UINT64_MAX / 2;
        o.budget_ms = 1;
        imt_sample_result r;
        char det[256];
        REQUIRE(imt_sample_image(idx, img, &o, &r, det, sizeof det) == IMT_OK);
        CHECKF(r.budget_hit && r.samples == 1024, "budget: %llu places read",
               (unsigned long long)r.samples);
        CHECKF(r.n_hits > M / 4 && r.n_hits < 3 * M / 4, "budget: %zu of %llu blocks found",
               r.n_hits, (unsigned long long)M);
        imt_sample_result_free(&r);
    }
    /* An image without the collection: nothing. */
    snprintf(p, sizeof p, "%s/none.raw", root);
    imt_sample_result r;
    found(idx, p, UINT64_MAX / 2, 1, &r);
    CHECK(r.n_hits == 0 && r.samples == r.positions);
    imt_sample_result_free(&r);

    /* The CLI: exit 1, the report's records; the list import-files made
     * flags the known files (by MD5) and none of the others in a scan. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' scan --sample-blocks 100000 --index idx --quiet -o s.jsonl damaged.raw; "
             "[ $? -eq 1 ] && [ $(grep -c '\"record\":\"known_file\"' s.jsonl) -eq %d ] && "
             "[ $(grep -c '\"confirmed\":true' s.jsonl) -eq %d ] && "
             "tail -n 1 s.jsonl | grep -q '\"blocks_hit\":%llu' && "
             "'%s' scan --sample-blocks 100000 --index idx --quiet -o n.jsonl none.raw; [ $? -eq 0 ] && "
             "'%s' scan --index idx --quiet -o k.jsonl known other; [ $? -eq 1 ] && "
             "tail -n 1 k.jsonl | grep -q '\"hit_files\":%d,'",
             root, IMT_CLI, NK, NK, (unsigned long long)M, IMT_CLI, IMT_CLI, NK);
    CHECK(sh(cmd) == 0);
    imt_block_reader_close(br);
    imt_index_close(idx);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    sh(cmd);
    return 0;
}

int main(void)
{
    test_verdicts();
    int st = test_image();
    if (st && !tu_failures) return st;
    return tu_done("test_blocks");
}
