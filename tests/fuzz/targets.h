/* tests/fuzz/targets.h -- the bodies of the libFuzzer targets, as plain
 * functions so that the same code runs under libFuzzer (fuzz_main.c) and in
 * the regression test that replays minimised inputs in every build
 * (tests/test_fuzz_regress.c). Each returns 0; a broken invariant aborts. */
#ifndef IMT_FUZZ_TARGETS_H
#define IMT_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

int imt_fuzz_jpeg(const uint8_t *data, size_t len);
int imt_fuzz_png(const uint8_t *data, size_t len);
int imt_fuzz_bmp(const uint8_t *data, size_t len);
int imt_fuzz_tiff(const uint8_t *data, size_t len);
int imt_fuzz_webp(const uint8_t *data, size_t len);
int imt_fuzz_gif(const uint8_t *data, size_t len);
int imt_fuzz_heif(const uint8_t *data, size_t len);
int imt_fuzz_jpeg_embedded(const uint8_t *data, size_t len);
/* Windows thumbnail caches: thumbcache_*.db (thumbcache.c, in pieces and
 * whole) and Thumbs.db (thumbsdb.c over libolecf), then the pipeline. */
int imt_fuzz_thumbcache(const uint8_t *data, size_t len);
int imt_fuzz_thumbsdb(const uint8_t *data, size_t len);
int imt_fuzz_sniff(const uint8_t *data, size_t len);
/* The input as a container (engine/container): every member hashed. */
int imt_fuzz_container(const uint8_t *data, size_t len);
/* Video containers and codecs (libav*), from memory through engine/video. */
int imt_fuzz_video(const uint8_t *data, size_t len);
/* Hash lists, through imt_index_import of a file holding the input. */
int imt_fuzz_list_auto(const uint8_t *data, size_t len);
int imt_fuzz_list_pdq_csv(const uint8_t *data, size_t len);
int imt_fuzz_list_te(const uint8_t *data, size_t len);
int imt_fuzz_list_sums(const uint8_t *data, size_t len);
int imt_fuzz_list_hashdeep(const uint8_t *data, size_t len);
int imt_fuzz_list_hex(const uint8_t *data, size_t len);
int imt_fuzz_list_vics(const uint8_t *data, size_t len);
int imt_fuzz_list_jsonl(const uint8_t *data, size_t len);
int imt_fuzz_list_nsrl(const uint8_t *data, size_t len);
/* An index whose data.mdb holds the input: open, inspect, query, verify. */
int imt_fuzz_index_open(const uint8_t *data, size_t len);
/* The same input through the page-graph check alone (no LMDB). */
int imt_fuzz_index_pagecheck(const uint8_t *data, size_t len);
/* Category policy text (policy.c), over every scheme's default. */
int imt_fuzz_policy(const uint8_t *data, size_t len);
/* A JSONL report through imgtriage report's conversion into every format. */
int imt_fuzz_report(const uint8_t *data, size_t len);
/* The carver over the input (engine/source/carve.c), and its hits hashed. */
int imt_fuzz_carve(const uint8_t *data, size_t len);
/* Disk images through the scan path (engine/source): a small FAT, ext4 or
 * NTFS image, or an E01, written to a file and scanned as a PATH. Seeds:
 * tests/fuzz/make_image_seeds.sh, run by run_target.sh. */
int imt_fuzz_image_fat(const uint8_t *data, size_t len);
int imt_fuzz_image_ext4(const uint8_t *data, size_t len);
int imt_fuzz_image_ntfs(const uint8_t *data, size_t len);
int imt_fuzz_image_e01(const uint8_t *data, size_t len);
/* Write generated seeds for target into outdir (index_open and
 * index_pagecheck have some). */
void imt_fuzz_make_seeds(const char *target, const char *outdir);

typedef struct imt_fuzz_target {
    const char *name;
    int (*fn)(const uint8_t *data, size_t len);
} imt_fuzz_target;

/* Every target, ending with {NULL, NULL}. */
extern const imt_fuzz_target imt_fuzz_targets[];

#endif
