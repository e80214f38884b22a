/* tools/cmd_index_files.c -- `imgtriage index import-files [--blocks] INDEX
 * DIR`: hash the known files under DIR (PDQ of pictures, MD5 and SHA-1 of
 * every file) through the scan pipeline, import them as one list (written as
 * a VICS 2.0 file in $TMPDIR, unlinked after the import), and with --blocks
 * store their probative 4 KiB block hashes for scan --sample-blocks. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
"Usage: imgtriage index import-files [OPTIONS] INDEX DIR\n"
"Hash the known files under DIR (only read) and add them to INDEX as one list:\n"
"for each regular file its MD5 and SHA-1, and for a picture its PDQ hash, one\n"
"entry per file (its MediaID is its number in walk order). For an agency that\n"
"holds the material and builds its lists itself.\n"
"\n"
"Options:\n"
"      --blocks        also store the 4 KiB block hashes of each file (from its\n"
"                      start; a tail shorter than 4 KiB is not a block) for\n"
"                      'imgtriage scan --sample-blocks'; blocks that cannot tell\n"
"                      files apart are dropped: fewer than 16 byte values, a\n"
"                      ramp of 16/32/64-bit words, entropy under 5 bits/byte,\n"
"                      fewer than 64 distinct 32-bit words, or in more than one\n"
"                      known file. Prints what was dropped, the bytes per stored\n"
"                      block and the lookups/s of the table\n"
"      --name NAME     list name (default: DIR's base name)\n"
"      --scheme S      category scheme (default custom: every file alerts)\n"
"      --category N    category of every file (default: none)\n"
"      --create        create INDEX if it does not exist\n"
"  -q, --quiet         no summary\n"
"  -h, --help          show this help and exit\n"
"\n"
"Exit status: 0 success; 2 error (nothing is imported then; blocks are written\n"
"after the list, in their own transaction).\n");
}

typedef struct gather {
    FILE *vics;
    const char *dir;
    imt_blockset *bs;
    uint64_t files, pictures, unreadable;
    int write_failed;
    imt_err block_err;
    char block_why[512];
} gather;

static void hex(FILE *f, const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) fprintf(f, "%02x", d[i]);
}

static int on_record(void *ctx, const imt_scan_record *r)
{
    gather *g = ctx;
    const imt_hash_result *h = r->hash;
    if (r->type != IMT_ENTRY_FILE || !h) return 0;
    if (r->status == IMT_E_IO || r->status == IMT_E_NOT_FOUND) {
        g->unreadable++;
        return 0;
    }
    uint32_t id = (uint32_t)(r->seq + 1);
    fprintf(g->vics, "%s{\"MediaID\":%u,\"MD5\":\"", g->files ? ",\n" : "", (unsigned)id);
    hex(g->vics, h->md5, 16);
    fprintf(g->vics, "\",\"SHA1\":\"");
    hex(g->vics, h->sha1, 20);
    fprintf(g->vics, "\",\"MediaSize\":%llu", (unsigned long long)h->file_size);
    if (h->has_pdq) {
        char ph[65];
        imt_pdq_to_hex(&h->pdq[0], ph);
        fprintf(g->vics, ",\"AlternativeHashes\":[{\"HashName\":\"PDQ\",\"HashValue\":\"%s\"}]", ph);
        g->pictures++;
    }
    fputc('}', g->vics);
    if (ferror(g->vics)) g->write_failed = 1;
    g->files++;
    if (g->bs && !g->block_err) {
        int fd = open(r->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        const char *rel = r->path;
        size_t dl = strlen(g->dir);
        if (!strncmp(rel, g->dir, dl) && rel[dl] == '/') rel += dl + 1;
        imt_err e = fd < 0 ? IMT_E_IO
                           : imt_blockset_add_fd(g->bs, id, rel, fd, h->file_size, h->md5, h->sha1);
        if (fd >= 0) close(fd);
        if (e) {
            g->block_err = e;
            snprintf(g->block_why, sizeof g->block_why, "%s: %s", r->path, imt_strerror(e));
        }
    }
    return g->write_failed;
}

int cmd_index_import_files(int argc, char **argv)
{
    enum { O_BLOCKS = 1000, O_NAME, O_SCHEME, O_CAT, O_CREATE };
    static const struct option lo[] = {
        {"blocks", 0, 0, O_BLOCKS}, {"name", 1, 0, O_NAME}, {"scheme", 1, 0, O_SCHEME},
        {"category", 1, 0, O_CAT}, {"create", 0, 0, O_CREATE}, {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int blocks = 0, create = 0, quiet = 0, c, rc = CLI_EXIT_ERROR;
    const char *name = NULL, *scheme = "custom";
    long long category = -1;
    unsigned long long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
        switch (c) {
        case O_BLOCKS: blocks = 1; break;
        case O_NAME: name = optarg; break;
        case O_SCHEME: scheme = optarg; break;
        case O_CAT:
            if (!cli_parse_u64(optarg, &v) || v > 2147483647ull) {
                cli_err("index import-files: --category needs a number");
                return CLI_EXIT_ERROR;
            }
            category = (long long)v;
            break;
        case O_CREATE: create = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_ERROR;
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        return CLI_EXIT_ERROR;
    }
    const char *ipath = argv[optind], *dir = argv[optind + 1];
    char *dirc = strdup(dir);
    if (!dirc) return CLI_EXIT_ERROR;
    size_t dl = strlen(dirc);
    while (dl > 1 && dirc[dl - 1] == '/') dirc[--dl] = '\0';
    const char *base = strrchr(dirc, '/');
    base = base && base[1] ? base + 1 : dirc;

    imt_index *idx = NULL;
    imt_blockset *bs = NULL;
    FILE *vf = NULL;
    char tmpl[4096] = "";
    const char *td = getenv("TMPDIR");
    gather g;
    memset(&g, 0, sizeof g);
    imt_index_opts io;
    imt_index_opts_init(&io);
    io.read_only = 0;
    io.create = create;
    imt_err e = imt_index_open(&idx, ipath, &io);
    if (e) {
        cli_err("index import-files: cannot open %s: %s", ipath,
                imt_index_open_error()[0] ? imt_index_open_error() : imt_strerror(e));
        goto cleanup;
    }
    /* The list goes through a VICS file: not inside DIR or the index. */
    snprintf(tmpl, sizeof tmpl, "%s/imgtriage-files-XXXXXX", td && *td ? td : "/tmp");
    char why[1024];
    const char *dirs[] = {dirc};
    cli_output chk = {0};
    if (cli_open_output(tmpl, dirs, 1, ipath, 0, &chk, why, sizeof why) != 0) {
        cli_output_free(&chk);
        cli_err("index import-files: TMPDIR: %s", why);
        tmpl[0] = '\0';
        goto cleanup;
    }
    cli_output_free(&chk);
    int fd = mkstemp(tmpl);
    if (fd < 0 || !(vf = fdopen(fd, "w"))) {
        cli_err("index import-files: cannot create a temporary file in %s: %s",
                td && *td ? td : "/tmp", strerror(errno));
        if (fd >= 0) close(fd);
        if (fd >= 0) unlink(tmpl);
        tmpl[0] = '\0';
        goto cleanup;
    }
    if (blocks && imt_blockset_create(&bs) != IMT_OK) {
        cli_err("index import-files: out of memory");
        goto cleanup;
    }
    fprintf(vf, "{\"@odata.context\":\"http://github.jparrowsec.cn/VICSDATAMODEL/ProjectVic/DataModels/"
                "2.0.xml/Default/$metadata#Media\",\n\"value\":[\n");
    g.vics = vf;
    g.dir = dirc;
    g.bs = bs;
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.hash.dihedral = 0;
    char detail[256];
    const char *paths[] = {dirc};
    e = imt_scan_run(NULL, paths, 1, &so, on_record, &g, detail, sizeof detail);
    fprintf(vf, "\n]}\n");
    if (fflush(vf) != 0 || g.write_failed) {
        cli_err("index import-files: cannot write %s: %s", tmpl, strerror(errno));
        goto cleanup;
    }
    if (e) {
        cli_err("index import-files: reading %s: %s", dir, detail[0] ? detail : imt_strerror(e));
        goto cleanup;
    }
    if (g.unreadable) {
        cli_err("index import-files: %llu files under %s could not be read: nothing imported",
                (unsigned long long)g.unreadable, dir);
        goto cleanup;
    }
    if (g.block_err) {
        cli_err("index import-files: block hashes: %s", g.block_why);
        goto cleanup;
    }
    if (!g.files) {
        cli_err("index import-files: no file under %s", dir);
        goto cleanup;
    }
    imt_import_opts im;
    imt_import_opts_init(&im);
    im.name = name ? name : base;
    im.format = "vics";
    im.scheme = scheme;
    im.known_good = 0;
    im.category = (int32_t)category;
    imt_import_stats ist;
    memset(&ist, 0, sizeof ist);
    e = imt_index_import(idx, tmpl, &im, &ist);
    if (e) {
        cli_err("index import-files: %s", imt_index_last_error(idx)[0] ? imt_index_last_error(idx)
                                                                       : imt_strerror(e));
        goto cleanup;
    }
    if (!quiet)
        printf("list %u \"%s\": %llu files (%llu pictures with PDQ), %llu new entries, %llu merged\n",
               (unsigned)ist.list_id, im.name, (unsigned long long)g.files,
               (unsigned long long)g.pictures, (unsigned long long)ist.new_entries,
               (unsigned long long)ist.merged);
    if (bs) {
        imt_blockset_stats bst;
        e = imt_index_add_blocks(idx, bs, ist.list_id, &bst);
        if (e) {
            cli_err("index import-files: the list was imported, its blocks not: %s",
                    imt_index_last_error(idx));
            goto cleanup;
        }
        if (!quiet) {
            printf("blocks: %llu whole 4 KiB blocks in %llu files; stored %llu; repeats %llu; "
                   "dropped", (unsigned long long)bst.blocks, (unsigned long long)bst.files,
                   (unsigned long long)bst.stored, (unsigned long long)bst.repeats);
            for (int k = 1; k < IMT_BLOCK__COUNT; k++)
                printf(" %s %llu%s", imt_block_verdict_name((imt_block_verdict)k),
                       (unsigned long long)bst.dropped[k], k + 1 < IMT_BLOCK__COUNT ? "," : "\n");
            printf("blocks table: %llu bytes, %.1f bytes per record\n",
                   (unsigned long long)bst.db_bytes, bst.bytes_per_block);
            /* lookups/s of the table as stored: random keys (misses, what a
             * sample mostly is) for about a fifth of a second */
            imt_block_reader *br = NULL;
            if (imt_block_reader_open(&br, idx) == IMT_OK) {
                uint64_t x = 88172645463325252ull, n = 0;
                struct timespec t0, t1;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                double el = 0;
                do {
                    for (int i = 0; i < 4096; i++, n++) {
                        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                        imt_block_hit h;
                        int found;
                        imt_block_lookup(br, x, &h, &found);
                    }
                    clock_gettime(CLOCK_MONOTONIC, &t1);
                    el = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
                } while (el < 0.2);
                printf("lookups: %.0f/s (one thread, %llu random keys)\n", (double)n / el,
                       (unsigned long long)n);
                imt_block_reader_close(br);
            }
        }
    }
    rc = CLI_EXIT_OK;
cleanup:
    if (vf) fclose(vf);
    if (tmpl[0]) unlink(tmpl);
    imt_blockset_free(bs);
    imt_index_close(idx);
    free(dirc);
    return rc;
}
