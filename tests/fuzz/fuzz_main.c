/* tests/fuzz/fuzz_main.c -- the libFuzzer entry point; IMT_FUZZ_FN names the
 * target body (targets.c), set per executable by CMake. */
#include "targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    return IMT_FUZZ_FN(data, len);
}
