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

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

imt_err imt_pdq_from_hex(imt_pdq *h, const char *hex, size_t len)
{
    if (!h || !hex || len != IMT_PDQ_HEX_LEN) return IMT_E_PARSE;
    for (int i = 0; i < 32; i++) {
        int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0) return IMT_E_PARSE;
        h->bytes[i] = (uint8_t)(a << 4 | b);
    }
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
