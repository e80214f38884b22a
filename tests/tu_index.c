/* tests/tu_index.c -- testutil's helpers that need the library (the test_*
 * programs link it; olecf_check, which shares testutil.c, must not). */
#include "testutil.h"

#include <imgtriage.h>

#include <string.h>

static struct imt_index *open_rw(const char *dir, int create, uint64_t map_size)
{
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = 0;
    o.create = create;
    if (map_size) o.map_size = map_size;
    imt_index *idx = NULL;
    imt_err e = imt_index_open(&idx, dir, &o);
    if (e != IMT_OK) {
        fprintf(stderr, "open %s: %s\n", dir, imt_index_open_error());
        exit(1);
    }
    return idx;
}

struct imt_index *tu_index_rw(const char *dir, int create)
{
    return open_rw(dir, create, 0);
}

struct imt_index *tu_index_new(const char *dir, uint64_t map_size)
{
    return open_rw(dir, 1, map_size);
}

uint64_t tu_xorshift(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

void tu_rand_pdq(uint64_t *state, imt_pdq *h)
{
    for (int i = 0; i < 32; i += 8) {
        uint64_t r = tu_xorshift(state);
        memcpy(h->bytes + i, &r, 8);
    }
}

void tu_flip_pdq(uint64_t *state, imt_pdq *h, int k)
{
    uint8_t used[256] = {0};
    while (k > 0) {
        int b = (int)(tu_xorshift(state) % 256);
        if (used[b]) continue;
        used[b] = 1;
        h->bytes[b >> 3] ^= (uint8_t)(1u << (b & 7));
        k--;
    }
}
