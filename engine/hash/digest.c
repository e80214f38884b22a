/* engine/hash/digest.c -- MD5, SHA-1 and SHA-256 of file bytes through
 * OpenSSL's EVP interface. The EVP contexts are made once per hasher and
 * re-initialised per file, so hashing a file allocates nothing. */
#include "hash.h"

#include <openssl/evp.h>

#include <string.h>

struct imt_digest {
    EVP_MD_CTX *ctx[3]; /* md5, sha1, sha256 */
    unsigned active;
};

static const EVP_MD *md_of(int i)
{
    return i == 0 ? EVP_md5() : i == 1 ? EVP_sha1() : EVP_sha256();
}

imt_err imt__digest_create(imt_digest **out)
{
    if (!out) return IMT_E_INVALID;
    imt_digest *d = imt__calloc(1, sizeof *d);
    if (!d) return IMT_E_NOMEM;
    for (int i = 0; i < 3; i++) {
        d->ctx[i] = EVP_MD_CTX_new();
        if (!d->ctx[i]) {
            imt__digest_free(d);
            return IMT_E_NOMEM;
        }
    }
    *out = d;
    return IMT_OK;
}

void imt__digest_free(imt_digest *d)
{
    if (!d) return;
    for (int i = 0; i < 3; i++) EVP_MD_CTX_free(d->ctx[i]);
    imt__free(d);
}

imt_err imt__digest_begin(imt_digest *d, unsigned which)
{
    d->active = 0;
    for (int i = 0; i < 3; i++) {
        if (!(which & (1u << i))) continue;
        if (EVP_DigestInit_ex(d->ctx[i], md_of(i), NULL) != 1) return IMT_E_INTERNAL;
        d->active |= 1u << i;
    }
    return IMT_OK;
}

void imt__digest_update(imt_digest *d, const void *data, size_t len)
{
    if (!len) return;
    for (int i = 0; i < 3; i++)
        if (d->active & (1u << i)) EVP_DigestUpdate(d->ctx[i], data, len);
}

imt_err imt__digest_end(imt_digest *d, uint8_t md5[16], uint8_t sha1[20],
                        uint8_t sha256[32])
{
    uint8_t *dst[3] = {md5, sha1, sha256};
    imt_err err = IMT_OK;
    for (int i = 0; i < 3; i++) {
        if (!(d->active & (1u << i))) continue;
        unsigned char tmp[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        if (EVP_DigestFinal_ex(d->ctx[i], tmp, &n) != 1) err = IMT_E_INTERNAL;
        else memcpy(dst[i], tmp, n);
    }
    d->active = 0;
    return err;
}
