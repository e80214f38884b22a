/* engine/common/alloc.c -- allocation hooks (SQLite's sqlite3_config
 * discipline: one process-wide allocator, replaceable for tests). */
#include "common.h"

#include <stdlib.h>
#include <string.h>

static void *sys_malloc(void *opaque, size_t size)
{
    (void)opaque;
    return malloc(size);
}
static void *sys_realloc(void *opaque, void *ptr, size_t size)
{
    (void)opaque;
    return realloc(ptr, size);
}
static void sys_free(void *opaque, void *ptr)
{
    (void)opaque;
    free(ptr);
}

static const imt_allocator sys_alloc = {sys_malloc, sys_realloc, sys_free, NULL};
static imt_allocator cur = {sys_malloc, sys_realloc, sys_free, NULL};

imt_err imt_set_allocator(const imt_allocator *alloc)
{
    if (!alloc) {
        cur = sys_alloc;
        return IMT_OK;
    }
    if (!alloc->malloc_fn || !alloc->realloc_fn || !alloc->free_fn)
        return IMT_E_INVALID;
    cur = *alloc;
    return IMT_OK;
}

const imt_allocator *imt__allocator(void)
{
    return &cur;
}

void *imt__malloc(size_t size)
{
    return cur.malloc_fn(cur.opaque, size ? size : 1);
}

void *imt__calloc(size_t n, size_t size)
{
    size_t total;
    if (!imt__mul_ok(n, size, &total)) return NULL;
    void *p = imt__malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

void *imt__realloc(void *ptr, size_t size)
{
    return cur.realloc_fn(cur.opaque, ptr, size ? size : 1);
}

void imt__free(void *ptr)
{
    if (ptr) cur.free_fn(cur.opaque, ptr);
}

char *imt__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = imt__malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}
