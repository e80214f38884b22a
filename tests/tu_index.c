/* tests/tu_index.c -- testutil's helpers that need the library (the test_*
 * programs link it; olecf_check, which shares testutil.c, must not). */
#include "testutil.h"

#include <imgtriage.h>

struct imt_index *tu_index_rw(const char *dir, int create)
{
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = 0;
    o.create = create;
    imt_index *idx = NULL;
    imt_err e = imt_index_open(&idx, dir, &o);
    if (e != IMT_OK) {
        fprintf(stderr, "open %s: %s\n", dir, imt_index_open_error());
        exit(1);
    }
    return idx;
}
