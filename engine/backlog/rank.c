/* engine/backlog/rank.c -- the order devices are worked in: pure.
 *
 * Group 0, devices with known material (a hit in the preview or the full
 * scan), by priority (the full scan's once done, else the preview's),
 * then distinct known items, then waiting time; group 1, devices not yet
 * previewed, by waiting time (received date, else the time added); group
 * 2, devices previewed clean, by waiting time. The id breaks ties, so the
 * order is total and the same in every process. */
#include "backlog/backlog.h"

#include <stdlib.h>
#include <string.h>

static const imt_bl_result *latest(const imt_bl_device *d)
{
    return d->scan.have ? &d->scan : &d->preview;
}

int imt__bl_group(const imt_bl_device *d)
{
    if ((d->scan.have && d->scan.hit_files > 0) || (d->preview.have && d->preview.hit_files > 0))
        return 0;
    if (!d->preview.have && !d->scan.have) return 1;
    return 2;
}

static const char *waiting_since(const imt_bl_device *d)
{
    return d->received && d->received[0] ? d->received : d->added ? d->added : "";
}

int imt__bl_rank_cmp(const void *a, const void *b)
{
    const imt_bl_device *x = a, *y = b;
    int gx = imt__bl_group(x), gy = imt__bl_group(y);
    if (gx != gy) return gx < gy ? -1 : 1;
    if (gx == 0) {
        const imt_bl_result *rx = latest(x), *ry = latest(y);
        if (rx->priority != ry->priority) return rx->priority > ry->priority ? -1 : 1;
        if (rx->known_items != ry->known_items) return rx->known_items > ry->known_items ? -1 : 1;
    }
    int c = strcmp(waiting_since(x), waiting_since(y));
    if (c) return c < 0 ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

void imt__bl_rank(imt_bl_device *v, size_t n)
{
    if (n) qsort(v, n, sizeof *v, imt__bl_rank_cmp);
    for (size_t i = 0; i < n; i++) v[i].group = imt__bl_group(&v[i]);
}

void imt_bl_rank(imt_bl_device *v, size_t n)
{
    if (v) imt__bl_rank(v, n);
}
