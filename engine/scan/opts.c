/* engine/scan/opts.c -- the scan's default options (imt_scan_run and
 * imt_matcher use them). */
#include "scan.h"
#include "container/container.h"

#include <string.h>

void imt_scan_opts_init(imt_scan_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->threads = 0;
    imt_hash_opts_init(&o->hash);
    o->hash.dihedral = 1;
    o->hash.digests = IMT_DIGEST_MD5 | IMT_DIGEST_SHA1;
    o->one_file_system = 0;
    o->pdq_distance = IMT_PDQ_MATCH_DISTANCE;
    o->min_quality = IMT_PDQ_MIN_QUALITY;
    imt_vpdq_opts_init(&o->vpdq);
    o->max_matches = 100;
    o->batch_files = 256;
    imt__container_opts_init(&o->containers);
}
