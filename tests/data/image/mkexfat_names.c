/* tests/data/image/mkexfat_names.c IMG N -- in an exFAT image made by
 * mkfs.exfat (exfatprogs), add a folder D0000000 to the root holding N empty
 * files F0000000 ... (N up to 2,000,000), written straight into the folder's
 * clusters: a million names in about a second, where a million files made
 * through a file system take many minutes. The folder's clusters follow
 * the highest cluster mkfs.exfat used; they are marked in the allocation
 * bitmap and chained in the FAT, and every entry set carries its name hash
 * and set checksum (exFAT specification, sections 6 and 7), so fsck.exfat
 * accepts the image. Used by tests/test_image_rss.sh. */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static int rd(FILE *f, uint64_t off, void *buf, size_t n)
{
    return fseeko(f, (off_t)off, SEEK_SET) == 0 && fread(buf, 1, n, f) == n ? 0 : -1;
}

static int wr(FILE *f, uint64_t off, const void *buf, size_t n)
{
    return fseeko(f, (off_t)off, SEEK_SET) == 0 && fwrite(buf, 1, n, f) == n ? 0 : -1;
}

/* Section 6.3.3: SetChecksum over the whole set, bytes 2 and 3 left out. */
static uint16_t set_checksum(const uint8_t *set, size_t n)
{
    uint16_t c = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 2 || i == 3) continue;
        c = (uint16_t)(((c & 1) ? 0x8000 : 0) + (c >> 1) + set[i]);
    }
    return c;
}

/* Section 7.6.4: NameHash over the up-cased name (ASCII capitals and
 * digits here: their own up-case). */
static uint16_t name_hash(const char *name)
{
    uint16_t h = 0;
    for (const char *p = name; *p; p++) {
        h = (uint16_t)(((h & 1) ? 0x8000 : 0) + (h >> 1) + (uint8_t)*p);
        h = (uint16_t)(((h & 1) ? 0x8000 : 0) + (h >> 1) + 0);
    }
    return h;
}

/* The three entries of a file or folder: File, Stream Extension, File Name. */
static void entry_set(uint8_t *e, const char *name, uint16_t attr, uint32_t first, uint64_t len)
{
    const uint32_t ts = (uint32_t)(2020 - 1980) << 25 | 1u << 21 | 1u << 16; /* 2020-01-01 */
    memset(e, 0, 96);
    e[0] = 0x85;
    e[1] = 2;
    put16(e + 4, attr);
    put32(e + 8, ts);
    put32(e + 12, ts);
    put32(e + 16, ts);
    e[32] = 0xC0;
    e[33] = 0x01; /* allocation possible, FAT chain valid */
    e[35] = (uint8_t)strlen(name);
    put16(e + 36, name_hash(name));
    put64(e + 40, len);
    put32(e + 52, first);
    put64(e + 56, len);
    e[64] = 0xC1;
    for (size_t i = 0; name[i] && i < 15; i++) put16(e + 66 + 2 * i, (uint8_t)name[i]);
    put16(e + 2, set_checksum(e, 96));
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mkexfat_names IMG N\n");
        return 2;
    }
    long n = atol(argv[2]);
    FILE *f = fopen(argv[1], "r+b");
    uint8_t bs[512];
    if (n < 0 || n > 2000000 || !f || rd(f, 0, bs, sizeof bs) || memcmp(bs + 3, "EXFAT   ", 8)) {
        fprintf(stderr, "mkexfat_names: %s is not an exFAT image (or N is out of range)\n", argv[1]);
        return 1;
    }
    uint32_t sec = 1u << bs[0x6C], cs = sec << bs[0x6D];
    uint64_t fat = (uint64_t)le32(bs + 0x50) * sec, heap = (uint64_t)le32(bs + 0x58) * sec;
    uint32_t nclus = le32(bs + 0x5C), rootc = le32(bs + 0x60);
#define CLUS(c) (heap + (uint64_t)((c) - 2) * cs)
    uint8_t *root = malloc(cs);
    if (!root || rd(f, CLUS(rootc), root, cs)) return 1;
    uint32_t bmc = 0;
    uint64_t bml = 0;
    size_t slot = 0;
    while (slot + 96 <= cs && root[slot]) {
        if (root[slot] == 0x81) {
            bmc = le32(root + slot + 20);
            bml = le64(root + slot + 24);
        }
        slot += 32;
    }
    uint8_t *bm = bml && bml <= nclus / 8 + 1 ? malloc(bml) : NULL;
    if (!bm || slot + 96 > cs || rd(f, CLUS(bmc), bm, bml)) {
        fprintf(stderr, "mkexfat_names: no allocation bitmap or no room in the root folder\n");
        return 1;
    }
    uint32_t last = 0; /* the highest cluster in use */
    for (uint32_t c = 0; c < nclus; c++)
        if (bm[c / 8] >> (c % 8) & 1) last = c + 2;
    uint64_t bytes = (uint64_t)n * 96 + 32; /* an end-of-folder entry after the last set */
    uint32_t k = (uint32_t)((bytes + cs - 1) / cs), first = last + 1;
    if ((uint64_t)first - 2 + k > nclus || bytes > 256u << 20) {
        fprintf(stderr, "mkexfat_names: %ld names do not fit\n", n);
        return 1;
    }
    /* the folder's names, one cluster-sized buffer at a time */
    uint8_t *buf = calloc(1, cs);
    char name[32];
    uint64_t pos = 0;
    for (long i = 0; i < n; i++) {
        snprintf(name, sizeof name, "F%07ld", i);
        size_t at = (size_t)(pos % cs);
        if (at + 96 <= cs) {
            entry_set(buf + at, name, 0x20, 0, 0);
        } else { /* a set across two clusters */
            uint8_t e[96];
            entry_set(e, name, 0x20, 0, 0);
            memcpy(buf + at, e, cs - at);
            if (wr(f, CLUS(first) + pos - at, buf, cs)) return 1;
            memset(buf, 0, cs);
            memcpy(buf, e + (cs - at), 96 - (cs - at));
        }
        pos += 96;
        if (pos % cs == 0) {
            if (wr(f, CLUS(first) + pos - cs, buf, cs)) return 1;
            memset(buf, 0, cs);
        }
    }
    if (wr(f, CLUS(first) + pos - pos % cs, buf, cs)) return 1; /* the rest, end marker */
    for (uint32_t c = first; c < first + k; c++) {
        uint8_t v[4];
        put32(v, c + 1 < first + k ? c + 1 : 0xFFFFFFFFu);
        if (wr(f, fat + 4ull * c, v, 4)) return 1;
        bm[(c - 2) / 8] |= (uint8_t)(1u << ((c - 2) % 8));
    }
    if (wr(f, CLUS(bmc), bm, bml)) return 1;
    entry_set(root + slot, "D0000000", 0x10, first, (uint64_t)k * cs);
    if (wr(f, CLUS(rootc), root, cs) || fclose(f)) return 1;
    free(root);
    free(bm);
    free(buf);
    return 0;
}
