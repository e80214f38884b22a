/* tools/cmd_sample.c -- `imgtriage scan --sample-blocks N --index IDX IMAGE`:
 * read N random 4 KiB places of a raw disk image, look up the blocks at each
 * 512-byte alignment in the index's block hashes (index import-files
 * --blocks), and report the blocks hit, the known files they belong to (each
 * confirmed by its full MD5 when it lies whole at the place its block
 * implies), and the probability that N samples find a collection of a given
 * size. The report (JSON lines) never lands in the image or the index. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
"Usage: imgtriage scan --sample-blocks N --index IDX [OPTIONS] IMAGE\n"
"Block sampling (Garfinkel and McCarrin, DFRWS 2015): read N random 4 KiB\n"
"places of the raw disk image IMAGE (a file or block device, only read), in\n"
"offset order; at each, look up the 4 KiB blocks starting at every 512-byte\n"
"boundary a file could start on in the block hashes of IDX (made by 'imgtriage\n"
"index import-files --blocks'). No file system is needed: deleted files and\n"
"damaged file systems are sampled alike.\n"
"\n"
"Options:\n"
"      --sample-blocks N  places to read (4 KiB-aligned, distinct, random)\n"
"  -x, --index DIR        the index with block hashes (required)\n"
"      --seed N           which places (default 1)\n"
"      --budget DURATION  stop after the round that runs past DURATION (300,\n"
"                         90s, 5m, 1h): the N places are dealt at random into 16\n"
"                         rounds (at least 1024 places each), each read in\n"
"                         offset order, so the rounds read are a random sample\n"
"                         and the probability is stated for them\n"
"  -o, --out FILE         the report (default: standard output); refused inside\n"
"                         IMAGE's folder tree or the index, or over a report\n"
"                         without --force\n"
"      --force            overwrite an existing report\n"
"  -q, --quiet            no human summary\n"
"  -h, --help             show this help and exit\n"
"\n"
"The report: a header, one \"block\" record per block found (its offset, the\n"
"known file and block), one \"known_file\" record per known file hit (blocks\n"
"hit; \"confirmed\": true when the whole file lies at the place its block\n"
"implies and its MD5 matches, or, for an image with a file system, when a file\n"
"whose byte runs hold one of its hit blocks has its MD5: \"confirmed_via\":\n"
"\"file system\" with that file's path), and a summary\n"
"with the detection probability: P(N samples find a collection) = 1 - C(P-M,N)\n"
"/ C(P,N), P the places in the image, M those under the collection's stored\n"
"blocks, for collections of 1 MiB to 1 GiB of stored blocks and for all the\n"
"blocks in the index.\n"
"\n"
"Exit status: 0 nothing found; 1 known blocks found; 2 error.\n");
}

typedef struct fhit {
    uint32_t list_id, file_id;
    uint64_t blocks_hit, first_offset;
    uint32_t first_block;
    int ok;                    /* whole at the place its block implies */
    uint64_t start;
    uint8_t md5[16];
    char *fs_path;             /* confirmed through the file system: the file */
    int fs_alloc;
} fhit;

/* imt_sample_locate's findings: a file holding a hit's block whose MD5 is
 * the known file's confirms it. */
typedef struct locate_ctx {
    const imt_sample_result *res;
    fhit *fh;
    size_t nf;
    const size_t *which;       /* the offsets given: their hit indexes */
} locate_ctx;

static int on_located(void *ctx, const imt_sample_located *l)
{
    locate_ctx *c = ctx;
    const imt_sample_hit *h = &c->res->hits[c->which[l->hit]];
    for (size_t k = 0; k < c->nf; k++) {
        fhit *f = &c->fh[k];
        if (f->list_id != h->at.list_id || f->file_id != h->at.file_id) continue;
        if (!f->ok && !f->fs_path && l->read_ok && !memcmp(l->md5, f->md5, 16)) {
            f->fs_path = strdup(l->path);
            f->fs_alloc = (int)l->alloc;
        }
        break;
    }
    return 0;
}

static int fhit_cmp(const void *a, const void *b)
{
    const fhit *x = a, *y = b;
    if (x->list_id != y->list_id) return x->list_id < y->list_id ? -1 : 1;
    return x->file_id < y->file_id ? -1 : x->file_id > y->file_id;
}

int cmd_scan_sample(int argc, char **argv)
{
    enum { O_SAMPLE = 1000, O_SEED, O_FORCE, O_BUDGET };
    static const struct option lo[] = {
        {"sample-blocks", 1, 0, O_SAMPLE}, {"index", 1, 0, 'x'}, {"seed", 1, 0, O_SEED},
        {"budget", 1, 0, O_BUDGET},
        {"out", 1, 0, 'o'}, {"force", 0, 0, O_FORCE}, {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    imt_sample_opts so;
    imt_sample_opts_init(&so);
    const char *ipath = NULL, *out_path = NULL;
    int quiet = 0, force = 0, c, rc = CLI_EXIT_ERROR;
    unsigned long long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "x:o:qh", lo, NULL)) != -1) {
        switch (c) {
        case O_SAMPLE: case O_SEED:
            if (!cli_parse_u64(optarg, &v) || (c == O_SAMPLE && v == 0)) {
                cli_err("scan: %s needs a %s number", c == O_SAMPLE ? "--sample-blocks" : "--seed",
                        c == O_SAMPLE ? "positive" : "non-negative");
                return CLI_EXIT_ERROR;
            }
            if (c == O_SAMPLE) so.samples = v;
            else so.seed = v;
            break;
        case O_BUDGET: {
            char *end;
            unsigned long long b = strtoull(optarg, &end, 10);
            unsigned long long mul = !*end || !strcmp(end, "s") ? 1000 : !strcmp(end, "ms") ? 1
                                   : !strcmp(end, "m") ? 60000 : !strcmp(end, "h") ? 3600000 : 0;
            if (*optarg < '0' || *optarg > '9' || !mul || !b || b > UINT64_MAX / mul) {
                cli_err("scan: --budget needs a duration such as 300, 90s, 5m or 1h");
                return CLI_EXIT_ERROR;
            }
            so.budget_ms = b * mul;
            break;
        }
        case 'x': ipath = optarg; break;
        case 'o': out_path = optarg; break;
        case O_FORCE: force = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_ERROR;
        }
    }
    if (argc - optind != 1 || !ipath || !so.samples) {
        cli_err("scan --sample-blocks: needs N, --index IDX and one IMAGE; try "
                "'imgtriage scan --sample-blocks 1 --help'");
        return CLI_EXIT_ERROR;
    }
    const char *image = argv[optind];
    const char *paths[] = {image};
    imt_index *idx = NULL;
    imt_block_reader *br = NULL;
    imt_sample_result res;
    memset(&res, 0, sizeof res);
    FILE *out = stdout;
    cli_output co = {0};
    fhit *fh = NULL;
    size_t nf = 0;
    char why[1024], detail[512];
    imt_err e = cli_open_index(&idx, "scan", ipath);
    if (e) goto cleanup;
    if (out_path) {
        if (cli_open_output(out_path, paths, 1, ipath, force, &co, why, sizeof why) != 0 ||
            !(out = cli_output_open(&co, 0, why, sizeof why))) {
            cli_err("scan: %s", why);
            out = stdout;
            goto cleanup;
        }
    }
    cli_catch_stop();
    so.stop = &cli_stop;
    imt_err st = imt_sample_image(idx, image, &so, &res, detail, sizeof detail);
    if (st && st != IMT_E_INTERRUPTED) {
        cli_err("scan: %s", detail[0] ? detail : imt_strerror(st));
        goto cleanup;
    }
    e = imt_block_reader_open(&br, idx);
    if (e) { cli_err("scan: %s", imt_index_last_error(idx)); goto cleanup; }
    uint64_t idx_files = 0, idx_blocks = 0;
    imt_block_reader_counts(br, &idx_files, &idx_blocks);
    char ident[65] = "";
    imt_index_identity(idx, ident);

    fprintf(out, "{\"record\":\"header\",\"tool\":\"imgtriage\",\"version\":\"%s\","
                 "\"mode\":\"sample-blocks\",\"image\":", imt_version());
    cli_json_str(out, image);
    fprintf(out, ",\"image_size\":%llu,\"samples\":%llu,\"seed\":%llu,\"budget_s\":",
            (unsigned long long)res.image_size, (unsigned long long)so.samples,
            (unsigned long long)so.seed);
    if (so.budget_ms) fprintf(out, "%.3f", (double)so.budget_ms / 1000.0);
    else fputs("null", out);
    fputs(",\"index\":{\"path\":", out);
    cli_json_str(out, ipath);
    fprintf(out, ",\"identity\":\"%s\",\"block_files\":%llu,\"stored_blocks\":%llu}}\n", ident,
            (unsigned long long)idx_files, (unsigned long long)idx_blocks);
    nf = 0;
    fh = calloc(res.n_hits ? res.n_hits : 1, sizeof *fh);
    if (!fh) goto cleanup;
    for (size_t i = 0; i < res.n_hits; i++) {
        const imt_sample_hit *h = &res.hits[i];
        imt_block_file bf;
        int have = imt_block_file_get(br, h->at.list_id, h->at.file_id, &bf) == IMT_OK;
        fprintf(out, "{\"record\":\"block\",\"offset\":%llu,\"list_id\":%u,\"file_id\":%u,"
                     "\"block\":%u,\"file\":", (unsigned long long)h->offset,
                (unsigned)h->at.list_id, (unsigned)h->at.file_id, (unsigned)h->at.block);
        if (have) cli_json_str(out, bf.name);
        else fputs("null", out);
        uint64_t back = (uint64_t)h->at.block * 4096u;
        if (h->offset >= back)
            fprintf(out, ",\"file_start_if_contiguous\":%llu", (unsigned long long)(h->offset - back));
        fputs("}\n", out);
        size_t k = 0;
        while (k < nf && (fh[k].list_id != h->at.list_id || fh[k].file_id != h->at.file_id)) k++;
        if (k == nf) {
            fh[nf].list_id = h->at.list_id;
            fh[nf].file_id = h->at.file_id;
            fh[nf].first_offset = h->offset;
            fh[nf].first_block = h->at.block;
            nf++;
        }
        fh[k].blocks_hit++;
    }
    qsort(fh, nf, sizeof *fh, fhit_cmp);
    uint64_t confirmed = 0;
    /* First where its block implies (a contiguous file); the rest through
     * the image's file systems (every file holding a hit's block is read
     * and its MD5 compared), for an image with one. */
    size_t n_left = 0;
    for (size_t k = 0; k < nf; k++) {
        imt_block_file bf;
        if (imt_block_file_get(br, fh[k].list_id, fh[k].file_id, &bf) != IMT_OK) continue;
        memcpy(fh[k].md5, bf.md5, 16);
        uint64_t back = (uint64_t)fh[k].first_block * 4096u;
        if (fh[k].first_offset >= back) {
            fh[k].start = fh[k].first_offset - back;
            if (fh[k].start + bf.size <= res.image_size &&
                imt_sample_confirm(image, fh[k].start, bf.size, bf.md5, &fh[k].ok) != IMT_OK)
                fh[k].ok = 0;
        }
        n_left += !fh[k].ok;
    }
    int located = 0;
    char ldet[256] = "";
    if (n_left && res.n_hits) {
        /* the hits of the files not confirmed yet (hit indexes kept) */
        uint64_t *offs = malloc(res.n_hits * sizeof *offs);
        size_t *which = malloc(res.n_hits * sizeof *which), m = 0;
        if (!offs || !which) { free(offs); free(which); goto cleanup; }
        for (size_t i = 0; i < res.n_hits; i++) {
            fhit key = {0};
            key.list_id = res.hits[i].at.list_id;
            key.file_id = res.hits[i].at.file_id;
            const fhit *f = bsearch(&key, fh, nf, sizeof *fh, fhit_cmp);
            if (f && !f->ok) {
                offs[m] = res.hits[i].offset;
                which[m++] = i;
            }
        }
        locate_ctx lc = {&res, fh, nf, which};
        imt_err le = imt_sample_locate(image, offs, m, on_located, &lc, &cli_stop,
                                       ldet, sizeof ldet);
        free(which);
        free(offs);
        located = le == IMT_OK ? 1 : le == IMT_E_UNSUPPORTED ? -1 : -2;
    }
    for (size_t k = 0; k < nf; k++) {
        imt_block_file bf;
        if (imt_block_file_get(br, fh[k].list_id, fh[k].file_id, &bf) != IMT_OK) continue;
        int ok = fh[k].ok;
        uint64_t start = fh[k].start;
        confirmed += ok || fh[k].fs_path;
        fprintf(out, "{\"record\":\"known_file\",\"list_id\":%u,\"file_id\":%u,\"name\":",
                (unsigned)bf.list_id, (unsigned)bf.file_id);
        cli_json_str(out, bf.name);
        fprintf(out, ",\"size\":%llu,\"md5\":\"", (unsigned long long)bf.size);
        for (int i = 0; i < 16; i++) fprintf(out, "%02x", bf.md5[i]);
        fprintf(out, "\",\"blocks\":%u,\"blocks_stored\":%u,\"blocks_hit\":%llu,\"confirmed\":%s",
                (unsigned)bf.blocks, (unsigned)bf.stored, (unsigned long long)fh[k].blocks_hit,
                ok || fh[k].fs_path ? "true" : "false");
        if (ok) fprintf(out, ",\"offset\":%llu", (unsigned long long)start);
        else if (fh[k].fs_path) {
            fputs(",\"confirmed_via\":\"file system\",\"path\":", out);
            cli_json_str(out, fh[k].fs_path);
            fprintf(out, ",\"alloc\":\"%s\"", imt_alloc_status_name((imt_alloc_status)fh[k].fs_alloc));
        } else {
            fputs(",\"note\":", out);
            char note[512];
            snprintf(note, sizeof note,
                     "not whole at the place its block implies (fragmented, partly overwritten "
                     "or deleted and reused), and %s",
                     located == 1    ? "no file of the image's file systems holding its blocks "
                                       "has its MD5 (partly overwritten, or only in unallocated "
                                       "space)"
                     : located == -1 ? "the image has no file system to locate it through"
                                     : "locating it through the file system failed");
            if (located == -2 && ldet[0]) {
                size_t l = strlen(note);
                snprintf(note + l, sizeof note - l, ": %s", ldet);
            }
            cli_json_str(out, note);
        }
        fputs("}\n", out);
    }
    double secs = (double)res.elapsed_ms / 1000.0;
    fprintf(out, "{\"record\":\"summary\",\"complete\":%s,\"budget_hit\":%s,"
                 "\"image_size\":%llu,\"positions\":%llu,"
                 "\"samples\":%llu,\"lookups\":%llu,\"bytes_read\":%llu,\"elapsed_s\":%.3f,"
                 "\"lookups_per_s\":%.0f,\"blocks_hit\":%zu,\"files_hit\":%zu,"
                 "\"files_confirmed\":%llu,\"detection_probability\":[",
            st == IMT_OK && !res.budget_hit ? "true" : "false", res.budget_hit ? "true" : "false",
            (unsigned long long)res.image_size,
            (unsigned long long)res.positions, (unsigned long long)res.samples,
            (unsigned long long)res.lookups, (unsigned long long)res.bytes_read, secs,
            secs > 0 ? (double)res.lookups / secs : 0.0, res.n_hits, nf,
            (unsigned long long)confirmed);
    static const uint64_t sizes[] = {1ull << 20, 10ull << 20, 100ull << 20, 1ull << 30};
    int first = 1;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t M = sizes[i] / 4096;
        if (M > res.positions) break;
        fprintf(out, "%s{\"collection_bytes\":%llu,\"p\":%.6f}", first ? "" : ",",
                (unsigned long long)sizes[i],
                imt_sample_detect_probability(res.positions, M, res.samples));
        first = 0;
    }
    fprintf(out, "],\"detection_probability_all_stored\":{\"blocks\":%llu,\"p\":%.6f},"
                 "\"statistic\":\"P(a sample finds a collection) = 1 - C(P-M,n)/C(P,n): P "
                 "places, M of them under the collection's stored blocks (its probative "
                 "4 KiB blocks present in the image), n samples\",\"confirmation\":\"a known "
                 "file is confirmed by its MD5: where its block implies it starts (contiguous), "
                 "else through the image's file systems (the files whose byte runs hold its "
                 "blocks, allocated or deleted, read whole); one only in unallocated space and "
                 "fragmented stays unconfirmed\"}\n",
            (unsigned long long)idx_blocks,
            imt_sample_detect_probability(res.positions, idx_blocks, res.samples));
    if (fflush(out) != 0) { cli_err("scan: cannot write the report: %s", strerror(errno)); goto cleanup; }
    if (!quiet)
        fprintf(stderr, "sampled %llu of %llu places (%.1f MB read, %.2f s, %.0f lookups/s): "
                        "%zu known blocks of %zu known files found, %llu confirmed whole; "
                        "P(find 10 MiB of known blocks) = %.3f\n",
                (unsigned long long)res.samples, (unsigned long long)res.positions,
                (double)res.bytes_read / 1e6, secs, secs > 0 ? (double)res.lookups / secs : 0.0,
                res.n_hits, nf, (unsigned long long)confirmed,
                imt_sample_detect_probability(res.positions, (10u << 20) / 4096, res.samples));
    rc = st == IMT_E_INTERRUPTED ? CLI_EXIT_ERROR : res.n_hits ? CLI_EXIT_FOUND : CLI_EXIT_OK;
    if (st == IMT_E_INTERRUPTED && res.n_hits) rc = CLI_EXIT_FOUND;
cleanup:
    if (out != stdout && fclose(out) != 0 && rc != CLI_EXIT_ERROR) {
        cli_err("scan: cannot write the report: %s", strerror(errno));
        rc = CLI_EXIT_ERROR;
    }
    for (size_t k = 0; fh && k < nf; k++) free(fh[k].fs_path);
    free(fh);
    imt_sample_result_free(&res);
    imt_block_reader_close(br);
    imt_index_close(idx);
    cli_output_free(&co);
    return rc;
}
