/* tests/test_malformed.c -- every file of the hostile corpus, both modes.
 *
 * Walks ../shared/corpus (malformed/ and samecontent/) and hashes every file
 * in fast and compat mode with digests and dihedral hashes on. Each file must
 * hash or give a named per-file error with a reason; nothing may crash, leak,
 * hang or allocate without bound (this test also runs under ASan+UBSan). The
 * PngSuite x*.png files are broken on purpose: each must be an error. */
#include "imgtriage.h"
#include "testutil.h"

#include <string.h>
#include <sys/stat.h>

static imt_hasher *hs[2];
static int nfiles, nok, nerr[IMT_E__COUNT];

static void one(const char *path, const char *name)
{
    for (int m = 0; m < 2; m++) {
        imt_hash_result r;
        imt_err e = imt_hash_file(hs[m], path, &r);
        CHECKF(e == r.status, "%s: return %d != status %d", path, e, r.status);
        CHECKF((int)r.status >= 0 && r.status < IMT_E__COUNT, "%s: status %d", path, r.status);
        if (r.status == IMT_OK) {
            CHECKF(r.has_pdq && r.n_pdq == 8 && r.quality >= 0 && r.quality <= 100,
                   "%s: ok without a hash", path);
            /* a side under PDQ's 5 hashes only when the other is over 512:
             * the reference stretches the image to 512x512 (it hashes the
             * corpus's 1x1892 WebP so) */
            CHECKF((r.width >= 5 && r.height >= 5) || r.width > 512 || r.height > 512,
                   "%s: ok with %ux%u", path, r.width, r.height);
            if (r.partial) CHECKF(r.detail[0] != '\0', "%s: partial without a reason", path);
            if (m == 0) nok++;
        } else {
            CHECKF(!r.has_pdq, "%s: a hash with an error", path);
            CHECKF(r.detail[0] != '\0', "%s: %s without a reason", path, imt_err_name(r.status));
            if (m == 0) nerr[r.status]++;
        }
        if (r.status != IMT_E_IO && r.status != IMT_E_NOT_FOUND)
            CHECKF(r.digests == IMT_DIGEST_ALL, "%s: digests missing", path);
        if (!strncmp(name, "x", 1) && strstr(path, "pngsuite/") && strstr(name, ".png"))
            CHECKF(r.status != IMT_OK, "%s: a broken PngSuite file hashed", path);
    }
    nfiles++;
}

static void one_file(const char *p, const char *name, void *ctx)
{
    (void)ctx;
    one(p, name);
}

int main(void)
{
    const char *mal = tu_shared("corpus/malformed");
    const char *same = tu_shared("corpus/samecontent");
    if (!mal || !same) return tu_skip("../shared/corpus is absent");
    for (int m = 0; m < 2; m++) {
        imt_hash_opts o;
        imt_hash_opts_init(&o);
        o.mode = m ? IMT_PDQ_COMPAT : IMT_PDQ_FAST;
        o.dihedral = 1;
        o.digests = IMT_DIGEST_ALL;
        o.time_budget_ms = 20000;
        REQUIRE(imt_hasher_create(&hs[m], &o) == IMT_OK);
    }
    tu_walk(mal, one_file, NULL);
    tu_walk(same, one_file, NULL);
    imt_hasher_free(hs[0]);
    imt_hasher_free(hs[1]);
    printf("%d files: %d hashed;", nfiles, nok);
    for (int e = 1; e < IMT_E__COUNT; e++)
        if (nerr[e]) printf(" %s %d;", imt_err_name((imt_err)e), nerr[e]);
    printf("\n");
    CHECK(nfiles > 2000);
    CHECK(nok > 300);
    return tu_done("test_malformed");
}
