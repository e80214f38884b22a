/* tests/olecf_check.c -- test_thumbcache's independent check of the
 * generated Thumbs.db (tests/data/thumbcache) through libolecf: every
 * thumbnail stream holds its picture file's bytes after its header, and the
 * Catalog stream is there. A program of its own, linked with libolecf only:
 * libewf (linked by the library) exports an old copy of libbfio's functions
 * that libolecf's calls would bind to. Usage: olecf_check DATA_DIR; exit 0
 * when every check holds. */
#include "testutil.h"

#include <libolecf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    const char *data = argv[1];
    char path[1024];
    snprintf(path, sizeof path, "%s/Thumbs.db", data);
    libolecf_file_t *f = NULL;
    libolecf_item_t *root = NULL;
    REQUIRE(libolecf_file_initialize(&f, NULL) == 1);
    REQUIRE(libolecf_file_open(f, path, LIBOLECF_OPEN_READ, NULL) == 1);
    REQUIRE(libolecf_file_get_root_item(f, &root, NULL) == 1);
    const struct {
        const char *stream, *picture;
        size_t head;
    } s[] = {{"1", "p1.jpg", 12}, {"2", "p3.jpg", 12}, {"21", "p4.jpg", 24}};
    for (size_t i = 0; i < 3; i++) {
        libolecf_item_t *it = NULL;
        CHECKF(libolecf_item_get_sub_item_by_utf8_name(root, (const uint8_t *)s[i].stream,
                                                       strlen(s[i].stream), &it, NULL) == 1,
               "libolecf: no stream %s", s[i].stream);
        if (!it) continue;
        char pp[1024];
        snprintf(pp, sizeof pp, "%s/%s", data, s[i].picture);
        size_t pn = 0;
        uint8_t *p = tu_read_file(pp, &pn);
        REQUIRE(p != NULL);
        uint32_t size = 0;
        libolecf_item_get_size(it, &size, NULL);
        uint8_t *b = malloc(size + 1);
        REQUIRE(b != NULL);
        ssize_t got = libolecf_stream_read_buffer(it, b, size, NULL);
        CHECKF(got == (ssize_t)size && size == s[i].head + pn && !memcmp(b + s[i].head, p, pn),
               "libolecf: stream %s is not %s after a %zu-byte header", s[i].stream,
               s[i].picture, s[i].head);
        free(b);
        free(p);
        libolecf_item_free(&it, NULL);
    }
    libolecf_item_t *cat = NULL;
    CHECK(libolecf_item_get_sub_item_by_utf8_name(root, (const uint8_t *)"Catalog", 7, &cat,
                                                  NULL) == 1);
    if (cat) libolecf_item_free(&cat, NULL);
    libolecf_item_free(&root, NULL);
    libolecf_file_close(f, NULL);
    libolecf_file_free(&f, NULL);
    return tu_done("olecf_check");
}
