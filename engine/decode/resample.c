/* engine/decode/resample.c -- the reference pipeline's resampling and luma
 * constants, shared by the format decoders (a leaf: calls nothing else of
 * engine/decode). */
#include "decode.h"

const float imt__luma_r = 0.299f, imt__luma_g = 0.587f, imt__luma_b = 0.114f;

void imt__nn_map(int src, int dst, int *map)
{
    for (int i = 0; i < dst; i++)
        map[i] = (int)(((uint64_t)i * (uint64_t)src) / (uint64_t)dst);
}

int imt__compat_side(uint32_t side, uint32_t w, uint32_t h)
{
    return (w > 512 || h > 512) ? 512 : (int)side;
}
