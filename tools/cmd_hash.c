/* tools/cmd_hash.c -- `imgtriage hash`: PDQ hashes and digests of files. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef IMT_HAVE_OPENMP
#include <omp.h>
#endif

static void usage(FILE *f)
{
    fprintf(f,
"Usage: imgtriage hash [OPTIONS] PATH...\n"
"Compute PDQ perceptual hashes (and optionally MD5/SHA-1/SHA-256 digests) of\n"
"image files. Directories are recursed (symbolic links inside them are not\n"
"followed). The format is sniffed from the bytes, never the file name.\n"
"Decoded formats: JPEG, PNG, HEIF/HEIC, AVIF.\n"
"\n"
"Options:\n"
"  -m, --mode MODE        fast (default): decode only what the hash needs;\n"
"                         compat: the reference hasher's pipeline, bit-identical\n"
"                         to Meta's pdq-photo-hasher (ImageMagick build)\n"
"  -d, --dihedral         also print the 7 rotated/flipped hashes\n"
"  -c, --crypto           also compute MD5, SHA-1 and SHA-256 of every file\n"
"  -t, --threads N        worker threads (default: all cores; 1 = serial)\n"
"  -f, --format FMT       csv (default) or jsonl\n"
"  -i, --files-from FILE  read paths, one per line, from FILE ('-' = stdin)\n"
"      --max-pixels N     larger images are 'too-large' (default 1073741824)\n"
"      --max-dimension N  images with a side over N are 'too-large' (default 100000)\n"
"      --max-file-size N  files over N bytes are not decoded (default 2147483648)\n"
"      --time-budget MS   per-file decode+hash budget, 0 = none (default 60000)\n"
"  -h, --help             show this help and exit\n"
"\n"
"CSV output, one line per hashed file, as pdq-photo-hasher prints it:\n"
"  HASH,QUALITY,PATH\n"
"with --crypto:    HASH,QUALITY,MD5,SHA1,SHA256,PATH\n"
"with --dihedral:  8 lines per file, in the order original, rotate90,\n"
"                  rotate180, rotate270, flipx, flipy, flip-plus1, flip-minus1.\n"
"Files that cannot be hashed get no CSV line (never an all-zero hash): a\n"
"message on stderr names the file and the reason (not-an-image, corrupt,\n"
"truncated, unsupported-format, too-large, unreadable, ...).\n"
"JSONL output: one object per file with path, status, error, format, width,\n"
"height, size, mode, quality, pdq (or pdq_dihedral), md5, sha1, sha256.\n"
"Output order is the sorted walk order, whatever the thread count.\n"
"Hashes with quality below 50 are unreliable for matching (upstream advice).\n"
"\n"
"Exit status: 0 every file was hashed; 1 some files could not be hashed;\n"
"2 usage error or no input could be read.\n");
}

/* ---- collecting paths ------------------------------------------------- */
typedef struct pathlist {
    char **v;
    size_t n, cap;
} pathlist;

static int pl_add(pathlist *pl, const char *p)
{
    if (pl->n == pl->cap) {
        size_t nc = pl->cap ? pl->cap * 2 : 256;
        char **nv = realloc(pl->v, nc * sizeof *nv);
        if (!nv) return -1;
        pl->v = nv;
        pl->cap = nc;
    }
    if (!(pl->v[pl->n] = strdup(p))) return -1;
    pl->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append regular files under dir, sorted by name at every level. */
static int walk(pathlist *pl, const char *dir, int *errors)
{
    DIR *d = opendir(dir);
    if (!d) {
        cli_err("%s: cannot open directory: %s", dir, strerror(errno));
        (*errors)++;
        return 0;
    }
    pathlist names = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (pl_add(&names, e->d_name)) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    if (names.n) qsort(names.v, names.n, sizeof *names.v, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < names.n && rc == 0; i++) {
        size_t len = strlen(dir) + strlen(names.v[i]) + 2;
        char *p = malloc(len);
        if (!p) { rc = -1; break; }
        snprintf(p, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", names.v[i]);
        struct stat st;
        if (lstat(p, &st) != 0) {
            cli_err("%s: %s", p, strerror(errno));
            (*errors)++;
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk(pl, p, errors);
        } else if (S_ISREG(st.st_mode)) {
            rc = pl_add(pl, p);
        } /* symlinks, FIFOs, sockets, devices: skipped */
        free(p);
    }
    for (size_t i = 0; i < names.n; i++) free(names.v[i]);
    free(names.v);
    return rc;
}

static int add_arg(pathlist *pl, const char *p, int *errors)
{
    struct stat st;
    if (stat(p, &st) != 0) {
        cli_err("%s: %s", p, strerror(errno));
        (*errors)++;
        return 0;
    }
    if (S_ISDIR(st.st_mode)) return walk(pl, p, errors);
    return pl_add(pl, p);
}

/* ---- output ----------------------------------------------------------- */
static void hex(FILE *f, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) fprintf(f, "%02x", b[i]);
}

static void print_csv(FILE *f, const char *path, const imt_hash_result *r)
{
    char hx[IMT_PDQ_HEX_LEN + 1];
    for (int k = 0; k < r->n_pdq; k++) {
        imt_pdq_to_hex(&r->pdq[k], hx);
        fprintf(f, "%s,%d,", hx, r->quality);
        if (r->digests) {
            hex(f, r->md5, 16);
            fputc(',', f);
            hex(f, r->sha1, 20);
            fputc(',', f);
            hex(f, r->sha256, 32);
            fputc(',', f);
        }
        fprintf(f, "%s\n", path);
    }
}

static void print_jsonl(FILE *f, const char *path, const imt_hash_result *r,
                        const char *mode)
{
    char hx[IMT_PDQ_HEX_LEN + 1];
    fputs("{\"path\":", f);
    cli_json_str(f, path);
    fprintf(f, ",\"status\":\"%s\"", r->status == IMT_OK ? "ok" : "error");
    if (r->status != IMT_OK) {
        fprintf(f, ",\"error\":\"%s\",\"detail\":", imt_err_name(r->status));
        cli_json_str(f, r->detail);
    }
    fprintf(f, ",\"format\":\"%s\",\"size\":%llu", imt_format_name(r->format),
            (unsigned long long)r->file_size);
    if (r->width) fprintf(f, ",\"width\":%u,\"height\":%u", r->width, r->height);
    fprintf(f, ",\"mode\":\"%s\"", mode);
    if (r->has_pdq) {
        imt_pdq_to_hex(&r->pdq[0], hx);
        fprintf(f, ",\"pdq\":\"%s\",\"quality\":%d", hx, r->quality);
        if (r->n_pdq > 1) {
            fputs(",\"pdq_dihedral\":{", f);
            for (int k = 0; k < r->n_pdq; k++) {
                imt_pdq_to_hex(&r->pdq[k], hx);
                fprintf(f, "%s\"%s\":\"%s\"", k ? "," : "",
                        imt_dihedral_name((imt_dihedral)k), hx);
            }
            fputc('}', f);
        }
    }
    if (r->digests & IMT_DIGEST_MD5) { fputs(",\"md5\":\"", f); hex(f, r->md5, 16); fputc('"', f); }
    if (r->digests & IMT_DIGEST_SHA1) { fputs(",\"sha1\":\"", f); hex(f, r->sha1, 20); fputc('"', f); }
    if (r->digests & IMT_DIGEST_SHA256) { fputs(",\"sha256\":\"", f); hex(f, r->sha256, 32); fputc('"', f); }
    fputs("}\n", f);
}

/* ---- main ------------------------------------------------------------- */
int cmd_hash(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"mode", required_argument, NULL, 'm'},
        {"dihedral", no_argument, NULL, 'd'},
        {"crypto", no_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"format", required_argument, NULL, 'f'},
        {"files-from", required_argument, NULL, 'i'},
        CLI_LIMIT_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    imt_hash_opts opts;
    imt_hash_opts_init(&opts);
    int jsonl = 0, threads = 0, c;
    const char *files_from = NULL;
    unsigned long long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:dct:f:i:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (!strcmp(optarg, "fast")) opts.mode = IMT_PDQ_FAST;
            else if (!strcmp(optarg, "compat")) opts.mode = IMT_PDQ_COMPAT;
            else { cli_err("hash: --mode must be fast or compat, not '%s'", optarg); return CLI_EXIT_ERROR; }
            break;
        case 'd': opts.dihedral = 1; break;
        case 'c': opts.digests = IMT_DIGEST_ALL; break;
        case 't':
            if (!cli_parse_u64(optarg, &v) || v < 1 || v > 4096) {
                cli_err("hash: --threads needs a number from 1 to 4096");
                return CLI_EXIT_ERROR;
            }
            threads = (int)v;
            break;
        case 'f':
            if (!strcmp(optarg, "csv")) jsonl = 0;
            else if (!strcmp(optarg, "jsonl")) jsonl = 1;
            else { cli_err("hash: --format must be csv or jsonl, not '%s'", optarg); return CLI_EXIT_ERROR; }
            break;
        case 'i': files_from = optarg; break;
        case CLI_OPT_MAXPIX: case CLI_OPT_MAXDIM: case CLI_OPT_MAXFILE: case CLI_OPT_BUDGET:
            if (!cli_parse_u64(optarg, &v)) {
                cli_err("hash: %s needs a non-negative number", argv[optind - 1]);
                return CLI_EXIT_ERROR;
            }
            cli_set_limit(&opts, c, v);
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_ERROR;
        }
    }
    if (optind >= argc && !files_from) {
        cli_err("hash: no PATH given; try 'imgtriage hash --help'");
        return CLI_EXIT_ERROR;
    }

    pathlist pl = {0};
    int errors = 0;
    for (int i = optind; i < argc; i++)
        if (add_arg(&pl, argv[i], &errors)) { cli_err("out of memory"); return CLI_EXIT_ERROR; }
    if (files_from) {
        FILE *in = strcmp(files_from, "-") ? fopen(files_from, "r") : stdin;
        if (!in) { cli_err("%s: %s", files_from, strerror(errno)); return CLI_EXIT_ERROR; }
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, in)) > 0) {
            while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
            if (n && add_arg(&pl, line, &errors)) { cli_err("out of memory"); return CLI_EXIT_ERROR; }
        }
        free(line);
        if (in != stdin) fclose(in);
    }
    if (pl.n == 0) return errors ? CLI_EXIT_ERROR : CLI_EXIT_OK;

#ifdef IMT_HAVE_OPENMP
    if (threads == 0) threads = omp_get_max_threads();
#else
    threads = 1;
#endif
    imt_hasher **hs = calloc((size_t)threads, sizeof *hs);
    const size_t batch = 1024;
    imt_hash_result *res = malloc(batch * sizeof *res);
    if (!hs || !res) { cli_err("out of memory"); return CLI_EXIT_ERROR; }
    for (int t = 0; t < threads; t++) {
        imt_err e = imt_hasher_create(&hs[t], &opts);
        if (e) { cli_err("cannot create hasher: %s", imt_strerror(e)); return CLI_EXIT_ERROR; }
    }
    const char *mode = opts.mode == IMT_PDQ_COMPAT ? "compat" : "fast";
    size_t failed = 0;
    for (size_t base = 0; base < pl.n; base += batch) {
        long cnt = (long)(pl.n - base < batch ? pl.n - base : batch);
#ifdef IMT_HAVE_OPENMP
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
#endif
        for (long i = 0; i < cnt; i++) {
            int t = 0;
#ifdef IMT_HAVE_OPENMP
            t = omp_get_thread_num();
#endif
            imt_hash_file(hs[t], pl.v[base + (size_t)i], &res[i]);
        }
        for (long i = 0; i < cnt; i++) {
            const char *p = pl.v[base + (size_t)i];
            const imt_hash_result *r = &res[i];
            if (r->status != IMT_OK) {
                failed++;
                cli_err("%s: %s: %s", p, imt_err_name(r->status), r->detail);
            }
            if (jsonl) print_jsonl(stdout, p, r, mode);
            else if (r->has_pdq) print_csv(stdout, p, r);
        }
        fflush(stdout);
    }
    for (int t = 0; t < threads; t++) imt_hasher_free(hs[t]);
    free(hs);
    free(res);
    for (size_t i = 0; i < pl.n; i++) free(pl.v[i]);
    free(pl.v);
    if (ferror(stdout)) { cli_err("error writing output"); return CLI_EXIT_ERROR; }
    return (failed || errors) ? 1 : CLI_EXIT_OK;
}
