/* tests/test_index_evict.c -- issue 11: evidence read by a scan must not
 * evict the index from the page cache. Hashing a regular file drops the
 * pages it has read (posix_fadvise DONTNEED behind the reader, in
 * engine/scan/hashfile.c), so a file hashed while cached is not cached
 * afterwards (mincore of a mapping of it), while a file only read is; the
 * digests are those of the bytes (checked against a second hashing from
 * memory). A file system that ignores DONTNEED (tmpfs keeps its pages) is
 * a skip, a failure under CI=true. */
#include "testutil.h"

#include <imgtriage.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (24u << 20) /* three of the reader's drop steps */

/* Pages of the file at fd resident in the page cache. */
static size_t resident(int fd, size_t size)
{
    long ps = sysconf(_SC_PAGESIZE);
    size_t np = (size + (size_t)ps - 1) / (size_t)ps, n = 0;
    void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char *v = malloc(np);
    if (m == MAP_FAILED || !v || mincore(m, size, v) != 0) {
        if (m != MAP_FAILED) munmap(m, size);
        free(v);
        return (size_t)-1;
    }
    for (size_t i = 0; i < np; i++) n += v[i] & 1;
    munmap(m, size);
    free(v);
    return n;
}

static void read_all(int fd, unsigned char *buf, size_t size)
{
    size_t got = 0;
    REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        REQUIRE(r > 0);
        got += (size_t)r;
    }
}

int main(void)
{
    char path[64];
    snprintf(path, sizeof path, "imt_evict_%d.bin", (int)getpid()); /* in the build folder, not tmpfs */
    unsigned char *buf = malloc(SIZE);
    REQUIRE(buf);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < SIZE; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, buf, SIZE) == (ssize_t)SIZE);
    REQUIRE(fdatasync(fd) == 0); /* clean pages: DONTNEED drops only those */
    long ps = sysconf(_SC_PAGESIZE);
    size_t np = SIZE / (size_t)ps;

    /* does this file system drop pages on request? */
    read_all(fd, buf, SIZE);
    size_t before = resident(fd, SIZE);
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    size_t dropped = resident(fd, SIZE);
    if (before == (size_t)-1 || before < np / 2 || dropped > np / 8) {
        unlink(path);
        close(fd);
        free(buf);
        char why[160];
        snprintf(why, sizeof why, "the file system of the build folder ignores DONTNEED (%zu of %zu "
                 "pages cached after it)", dropped, np);
        return tu_skip(why);
    }

    /* cached, then hashed: not cached after */
    read_all(fd, buf, SIZE);
    CHECKF(resident(fd, SIZE) >= np / 2, "the file should be cached after a read");
    imt_hasher *h = NULL;
    imt_hash_opts ho;
    imt_hash_opts_init(&ho);
    ho.digests = IMT_DIGEST_ALL;
    REQUIRE(imt_hasher_create(&h, &ho) == IMT_OK);
    imt_hash_result r1, r2;
    REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
    imt_hash_fd(h, fd, &r1);
    CHECK(r1.digests == IMT_DIGEST_ALL && r1.file_size == SIZE);
    uint8_t md5[16], sha1[20], sha256[32];
    memcpy(md5, r1.md5, 16);
    memcpy(sha1, r1.sha1, 20);
    memcpy(sha256, r1.sha256, 32);
    size_t after = resident(fd, SIZE);
    CHECKF(after <= np / 16, "%zu of %zu pages still cached after hashing the file", after, np);
    imt_hash_memory(h, buf, SIZE, &r2);
    CHECK(r2.digests == IMT_DIGEST_ALL && !memcmp(md5, r2.md5, 16) && !memcmp(sha1, r2.sha1, 20) &&
          !memcmp(sha256, r2.sha256, 32));
    imt_hasher_free(h);
    close(fd);
    unlink(path);
    free(buf);
    return tu_done("test_index_evict");
}
