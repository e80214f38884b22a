/* engine/hash/pdq_util.c -- hash value helpers of the public API. */
#include "hash.h"

static const char hexd[] = "0123456789abcdef";

void imt_pdq_to_hex(const imt_pdq *h, char *out)
{
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hexd[h->bytes[i] >> 4];
        out[2 * i + 1] = hexd[h->bytes[i] & 15];
    }
    out[IMT_PDQ_HEX_LEN] = '\0';
}

imt_err imt_pdq_from_hex(imt_pdq *h, const char *hex, size_t len)
{
    if (!h || !hex || imt_hex_decode(h->bytes, sizeof h->bytes, hex, len) != IMT_OK)
        return IMT_E_PARSE;
    return IMT_OK;
}

int imt_pdq_distance(const imt_pdq *a, const imt_pdq *b)
{
    int d = 0;
    for (int i = 0; i < 32; i += 8) {
        uint64_t x = 0, y = 0;
        for (int k = 0; k < 8; k++) {
            x = x << 8 | a->bytes[i + k];
            y = y << 8 | b->bytes[i + k];
        }
        d += __builtin_popcountll(x ^ y);
    }
    return d;
}

const char *imt_dihedral_name(imt_dihedral d)
{
    static const char *const names[IMT_DIH__COUNT] = {
        "original", "rotate90", "rotate180", "rotate270",
        "flipx",    "flipy",    "flip-plus1", "flip-minus1"};
    if ((int)d < 0 || d >= IMT_DIH__COUNT) return "unknown";
    return names[d];
}
