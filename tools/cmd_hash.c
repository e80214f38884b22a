/* tools/cmd_hash.c -- `imgtriage hash`: PDQ hashes and digests of files.
 *
 * Walking, reading and the worker threads are the scan engine's
 * (imt_scan_run without an index): one walker for both commands, so hash
 * gets its descriptor-relative walk (no PATH_MAX limit), bounded memory (no
 * list of the whole tree) and its loop handling. Only the output is here. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
"Usage: imgtriage hash [OPTIONS] PATH...\n"
"Compute PDQ perceptual hashes (and optionally MD5/SHA-1/SHA-256 digests) of\n"
"image files. Directories are recursed (symbolic links inside them are not\n"
"followed; every name of a hard-linked file is printed) with the walker of\n"
"'imgtriage scan': no path-length limit, a PATH given twice or inside another\n"
"is read once. The format is sniffed from the bytes, never the file name.\n"
"Decoded: JPEG, PNG, TIFF (the first page), BMP, WebP (lossy, lossless, alpha;\n"
"an animation's first frame), GIF (its first frame, as the reference reads it)\n"
"and HEIF/HEIC and AVIF (libheif). JPEG XL is recognised and reported as\n"
"unsupported-format. Pictures inside a file are hashed as its sub-items (jsonl\n"
"\"embedded\"): EXIF thumbnails, MPF previews, HEIF thumbnails, a TIFF's later\n"
"pages, and every picture of a Windows thumbnail cache (thumbcache_*.db, Vista\n"
"to 11; Thumbs.db) with its cache entry id; a cache file itself is not-an-image.\n"
"unsupported-format. Videos (MP4/MOV/3GP, MKV/WebM, AVI, WMV/ASF, FLV, MPEG-TS,\n"
"through FFmpeg's libraries) are hashed as vPDQ: one PDQ hash per sampled frame.\n"
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
"      --seconds-per-hash S  videos: hash one frame every S seconds (default 1)\n"
"      --video-format FMT none (default: videos only in jsonl, as \"frames\") or\n"
"                         vpdq: each video's frames as vPDQ's hash file lines,\n"
"                         FRAME,QUALITY,PDQ_HEX,TIMESTAMP, exactly as the\n"
"                         reference's vpdq-hash-video writes them (give one\n"
"                         video to get one such file); images print nothing\n"
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
"height, size, mode, quality, pdq (or pdq_dihedral), md5, sha1, sha256; for a\n"
"video, duration and frames ([{frame, quality, pdq, timestamp}]).\n"
"Output order is the sorted walk order, whatever the thread count.\n"
"Hashes with quality below 50 are unreliable for matching (upstream advice).\n"
"\n"
"Exit status: 0 every file was hashed; 1 some files could not be hashed;\n"
"2 usage error or no input could be read.\n");
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

/* vPDQ's hash file (vpdqio.cpp outputVPDQFeatureToFile): frame number,
 * quality, hash, timestamp with 3 decimals. */
static void print_vpdq(FILE *f, const imt_hash_result *r)
{
    char hx[IMT_PDQ_HEX_LEN + 1];
    for (size_t i = 0; i < r->n_frames; i++) {
        const imt_video_frame *v = &r->frames[i];
        imt_pdq_to_hex(&v->pdq, hx);
        fprintf(f, "%llu,%d,%s,%.3f\n", (unsigned long long)v->number, v->quality, hx,
                v->timestamp);
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
    /* As the scan report writes them: a partial decode, a file that changed
     * while read, and the embedded pictures with their hashes. */
    if (r->status == IMT_OK && (r->partial || r->changed) && r->detail[0]) {
        if (r->partial) fputs(",\"partial\":true", f);
        if (r->changed) fputs(",\"changed_during_read\":true", f);
        fputs(",\"detail\":", f);
        cli_json_str(f, r->detail);
    }
    if (r->thumbnail_differs) fputs(",\"flags\":[\"thumbnail-differs\"]", f);
    if (r->n_frames) {
        fprintf(f, ",\"duration\":%.3f,\"frames\":[", r->duration);
        for (size_t i = 0; i < r->n_frames; i++) {
            const imt_video_frame *v = &r->frames[i];
            imt_pdq_to_hex(&v->pdq, hx);
            fprintf(f, "%s{\"frame\":%llu,\"quality\":%d,\"pdq\":\"%s\",\"timestamp\":%.3f}",
                    i ? "," : "", (unsigned long long)v->number, v->quality, hx, v->timestamp);
        }
        fputc(']', f);
    }
    if (r->n_sub) {
        fputs(",\"embedded\":[", f);
        for (size_t i = 0; i < r->n_sub; i++) {
            const imt_subitem *u = &r->sub[i];
            fprintf(f, "%s{\"kind\":\"%s\",\"index\":%u,\"offset\":%llu,\"size\":%llu,"
                       "\"status\":\"%s\"", i ? "," : "", imt_subitem_kind_name(u->kind),
                    (unsigned)u->index, (unsigned long long)u->offset,
                    (unsigned long long)u->size, imt_err_name(u->status));
            if (u->entry_id) fprintf(f, ",\"entry_id\":\"%016llx\"", (unsigned long long)u->entry_id);
            if (u->status != IMT_OK && u->detail[0]) {
                fputs(",\"detail\":", f);
                cli_json_str(f, u->detail);
            }
            if (u->width) fprintf(f, ",\"width\":%u,\"height\":%u", u->width, u->height);
            if (u->has_pdq) {
                imt_pdq_to_hex(&u->pdq[0], hx);
                fprintf(f, ",\"pdq\":\"%s\",\"quality\":%d", hx, u->quality);
            }
            if (u->distance >= 0)
                fprintf(f, ",\"distance\":%d,\"differs\":%s", u->distance,
                        u->differs ? "true" : "false");
            fputc('}', f);
        }
        fputc(']', f);
    }
    fputs("}\n", f);
}

/* ---- records from the scan engine ------------------------------------- */
typedef struct out_ctx {
    int jsonl;
    int vpdq;                   /* --video-format vpdq */
    const char *mode;
    const imt_hash_opts *opts;
    imt_hasher *again;          /* for the second name of a hard link */
    size_t files, failed, errors;
    const char *const *args;
    size_t n_args;
} out_ctx;

static void print_result(out_ctx *oc, const char *p, const imt_hash_result *r)
{
    oc->files++;
    if (r->status != IMT_OK) {
        oc->failed++;
        cli_err("%s: %s: %s", p, imt_err_name(r->status), r->detail);
    }
    if (oc->vpdq) print_vpdq(stdout, r);
    else if (oc->jsonl) print_jsonl(stdout, p, r, oc->mode);
    else if (r->has_pdq) print_csv(stdout, p, r);
}

static int is_arg(const out_ctx *oc, const char *p)
{
    for (size_t i = 0; i < oc->n_args; i++)
        if (!strcmp(oc->args[i], p)) return 1;
    return 0;
}

static int on_record(void *ctx, const imt_scan_record *rec)
{
    out_ctx *oc = ctx;
    if (rec->hash) { /* a regular file, read */
        print_result(oc, rec->path, rec->hash);
        return 0;
    }
    switch (rec->type) {
    case IMT_ENTRY_FILE:
        if (rec->status == IMT_OK) {
            /* A PATH repeated or inside another: read once, there. */
            cli_err("%s: %s", rec->path, rec->detail);
        } else {
            /* Could not be opened: a result without bytes, as imt_hash_file gives. */
            imt_hash_result r;
            memset(&r, 0, sizeof r);
            r.status = rec->status;
            snprintf(r.detail, sizeof r.detail, "%s", rec->detail);
            print_result(oc, rec->path, &r);
        }
        return 0;
    case IMT_ENTRY_HARDLINK: {
        /* Every name is printed, as the first one was: hash it again. */
        imt_hash_result r;
        if (!oc->again && imt_hasher_create(&oc->again, oc->opts) != IMT_OK) return 1;
        imt_hash_file(oc->again, rec->path, &r);
        print_result(oc, rec->path, &r);
        return 0;
    }
    case IMT_ENTRY_SYMLINK: case IMT_ENTRY_FIFO: case IMT_ENTRY_SOCKET:
    case IMT_ENTRY_CHARDEV: case IMT_ENTRY_BLOCKDEV:
        /* Not regular files: skipped inside folders; named as a PATH, an error. */
        if (is_arg(oc, rec->path)) {
            imt_hash_result r;
            memset(&r, 0, sizeof r);
            r.status = IMT_E_IO;
            snprintf(r.detail, sizeof r.detail, "not a regular file");
            print_result(oc, rec->path, &r);
        }
        return 0;
    default: /* folders and entries that could not be read */
        if (rec->status != IMT_OK) {
            oc->errors++;
            cli_err("%s: %s", rec->path, rec->detail);
        }
        return 0;
    }
}

static void flush_progress(void *ctx, const imt_scan_progress *p)
{
    (void)ctx;
    (void)p;
    fflush(stdout);
}

static int push_path_owned(char ***v, size_t *n, size_t *cap, char *p)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        char **nv = realloc(*v, nc * sizeof *nv);
        if (!nv) return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = p;
    return 0;
}

static int push_path(char ***v, size_t *n, size_t *cap, const char *p)
{
    char *d = strdup(p);
    if (!d || push_path_owned(v, n, cap, d) != 0) {
        free(d);
        return -1;
    }
    return 0;
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
        {"seconds-per-hash", required_argument, NULL, 'S'},
        {"video-format", required_argument, NULL, 'V'},
        CLI_LIMIT_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    imt_hash_opts opts;
    imt_hash_opts_init(&opts);
    int jsonl = 0, vpdq = 0, threads = 0, c;
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
        case 'S': {
            char *end = NULL;
            double d = strtod(optarg, &end);
            if (!end || *end || !(d > 0) || d > 86400) {
                cli_err("hash: --seconds-per-hash needs a number of seconds over 0");
                return CLI_EXIT_ERROR;
            }
            opts.seconds_per_hash = d;
            break;
        }
        case 'V':
            if (!strcmp(optarg, "vpdq")) vpdq = 1;
            else if (!strcmp(optarg, "none")) vpdq = 0;
            else { cli_err("hash: --video-format must be vpdq or none, not '%s'", optarg); return CLI_EXIT_ERROR; }
            break;
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

    /* The PATHs: arguments, then --files-from lines. */
    size_t n_paths = 0, cap_paths = 0;
    char **paths = NULL;
    int rc = CLI_EXIT_ERROR;
    for (int i = optind; i < argc; i++)
        if (push_path(&paths, &n_paths, &cap_paths, argv[i]) != 0) {
            cli_err("out of memory");
            goto done;
        }
    if (files_from) {
        FILE *in = strcmp(files_from, "-") ? fopen(files_from, "r") : stdin;
        if (!in) {
            cli_err("%s: %s", files_from, strerror(errno));
            goto done;
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        int oom = 0;
        while (!oom && (n = getline(&line, &cap, in)) > 0) {
            while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
            if (n) oom = push_path(&paths, &n_paths, &cap_paths, line) != 0;
        }
        free(line);
        if (in != stdin) fclose(in);
        if (oom) {
            cli_err("out of memory");
            goto done;
        }
    }
    if (n_paths == 0) {
        rc = CLI_EXIT_OK;
        goto done;
    }

    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.hash = opts;
    so.threads = threads;
    so.progress = flush_progress;
    if (vpdq && jsonl) {
        cli_err("hash: --video-format vpdq and --format jsonl are two outputs: choose one");
        goto done;
    }
    out_ctx oc = {jsonl, vpdq, opts.mode == IMT_PDQ_COMPAT ? "compat" : "fast", &opts, NULL, 0, 0, 0,
                  (const char *const *)paths, n_paths};
    so.ctx = &oc;
    char detail[256];
    imt_err e = imt_scan_run(NULL, (const char *const *)paths, n_paths, &so, on_record, &oc,
                             detail, sizeof detail);
    imt_hasher_free(oc.again);
    if (e != IMT_OK) {
        cli_err("hash: %s", detail[0] ? detail : imt_strerror(e));
        goto done;
    }
    fflush(stdout);
    if (ferror(stdout)) {
        cli_err("error writing output");
        goto done;
    }
    if (oc.files == 0 && oc.errors) rc = CLI_EXIT_ERROR; /* no input could be read */
    else rc = (oc.failed || oc.errors) ? 1 : CLI_EXIT_OK;
done:
    for (size_t i = 0; i < n_paths; i++) free(paths[i]);
    free(paths);
    return rc;
}
