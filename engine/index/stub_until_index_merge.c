/* engine/index/stub_until_index_merge.c -- TEMPORARY, branch scan only:
 * the index API declared in imgtriage.h, failing, so that the scan builds
 * and its tests run (without matching) before the index branch is merged.
 * Delete this file when merging branch index. */
#include "common/common.h"

void imt_index_opts_init(imt_index_opts *o)
{
    if (!o) return;
    o->read_only = 1;
    o->create = 0;
    o->map_size = 0;
}
imt_err imt_index_open(imt_index **out, const char *path, const imt_index_opts *opts)
{
    (void)path; (void)opts;
    if (out) *out = NULL;
    return IMT_E_UNSUPPORTED;
}
void imt_index_close(imt_index *idx) { (void)idx; }
const char *imt_index_last_error(const imt_index *idx) { (void)idx; return "index not built yet"; }
size_t imt_index_list_count(const imt_index *idx) { (void)idx; return 0; }
imt_err imt_index_list_get(const imt_index *idx, size_t i, imt_list_info *out)
{
    (void)idx; (void)i; (void)out;
    return IMT_E_INVALID;
}
imt_err imt_index_identity(const imt_index *idx, char out[65])
{
    (void)idx;
    out[0] = '\0';
    return IMT_E_UNSUPPORTED;
}
imt_err imt_cursor_open(imt_cursor **out, imt_index *idx)
{
    (void)idx;
    if (out) *out = NULL;
    return IMT_E_UNSUPPORTED;
}
void imt_cursor_close(imt_cursor *c) { (void)c; }
imt_err imt_query_pdq(imt_cursor *c, const imt_pdq *q, int nq, int radius,
                      const imt_match **out, size_t *n)
{
    (void)c; (void)q; (void)nq; (void)radius;
    *out = NULL;
    *n = 0;
    return IMT_E_UNSUPPORTED;
}
imt_err imt_query_digest(imt_cursor *c, imt_hash_kind kind, const uint8_t *digest,
                         const imt_match **out, size_t *n)
{
    (void)c; (void)kind; (void)digest;
    *out = NULL;
    *n = 0;
    return IMT_E_UNSUPPORTED;
}
const char *imt_hash_kind_name(imt_hash_kind k)
{
    switch (k) {
    case IMT_KIND_PDQ: return "pdq";
    case IMT_KIND_MD5: return "md5";
    case IMT_KIND_SHA1: return "sha1";
    case IMT_KIND_SHA256: return "sha256";
    }
    return "unknown";
}
