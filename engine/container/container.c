/* engine/container/container.c -- archives and compressed files through
 * libarchive, read from an imt__io with read and seek callbacks (so ZIP's
 * central directory is used), every member streamed to the sink; members
 * that are containers themselves held in memory and expanded after them;
 * the limits of imt_container_opts checked as bytes pass. */
#include "container.h"

#include <archive.h>
#include <archive_entry.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define RD_CHUNK (64u << 10)
#define RATIO_FLOOR (64ull << 20) /* a ratio trips only past this many bytes */
#define PDF_MAX_OBJECTS 1000000u
/* Not an error: a PDF image callback's way to stop the walk over objects. */
#define PDF_STOP IMT_E__COUNT

void imt__container_opts_init(imt_container_opts *o)
{
    memset(o, 0, sizeof *o);
    o->enabled = 1;
    o->max_depth = 8;
    o->max_members = 100000;
    o->max_total_bytes = 16ull << 30;
    o->max_ratio = 200;
    o->max_buffer = 64ull << 20;
    o->max_held_bytes = 64ull << 20;
}

const char *imt_container_limit_name(int bit)
{
    static const char *const n[IMT_CLIMIT__COUNT] = {"total-bytes", "members", "depth",
                                                     "ratio", "buffer", "pdf-size"};
    return bit >= 0 && bit < IMT_CLIMIT__COUNT ? n[bit] : "unknown";
}

/* The state of one walked file's expansion, all depths. */
typedef struct xstate {
    const imt_container_opts *o;
    const volatile int *stop;
    const imt__csink *sink;
    uint64_t members, bytes;   /* member records and bytes so far */
    uint64_t buffered;         /* bytes held in nested buffers now */
    unsigned trip;             /* TOTAL_BYTES / MEMBERS: everything stops;
                                  RATIO: up to ratio_at */
    const void *ratio_at;      /* the frame whose ratio tripped */
} xstate;

/* One container being expanded. */
typedef struct cframe {
    imt_container_info ci;
    char note[256];
    uint64_t own_size;         /* the container's bytes (for the ratio) */
    uint64_t bytes;            /* its members' bytes so far, all depths */
    struct cframe *up;         /* the container holding it; NULL: the walked file */
} cframe;

static void note(cframe *f, const char *fmt, const char *a, const char *b)
{
    if (f->note[0]) return; /* the first reason stands */
    imt__set_detail(f->note, sizeof f->note, fmt, a, b);
}

/* ---- libarchive over an imt__io ------------------------------------------ */
typedef struct iorc {
    const imt__io *io;
    uint64_t pos;
    imt_err err;
    uint8_t buf[RD_CHUNK];
} iorc;

static la_ssize_t io_read(struct archive *a, void *ctx, const void **out)
{
    iorc *r = ctx;
    size_t got = 0;
    *out = r->buf;
    if (r->pos >= r->io->size) return 0;
    uint64_t left = r->io->size - r->pos;
    size_t want = left < RD_CHUNK ? (size_t)left : RD_CHUNK;
    imt_err e = r->io->pread(r->io->ctx, r->pos, r->buf, want, &got);
    if (e) {
        r->err = e;
        archive_set_error(a, EIO, "the container could not be read at byte %llu: %s",
                          (unsigned long long)r->pos, imt_strerror(e));
        return -1;
    }
    r->pos += got;
    return (la_ssize_t)got;
}

static la_int64_t io_seek(struct archive *a, void *ctx, la_int64_t off, int whence)
{
    iorc *r = ctx;
    (void)a;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)r->pos
                                                                 : (int64_t)r->io->size;
    int64_t to = base + off;
    if (to < 0) return ARCHIVE_FATAL;
    r->pos = (uint64_t)to;
    return to;
}

static la_int64_t io_skip(struct archive *a, void *ctx, la_int64_t n)
{
    iorc *r = ctx;
    (void)a;
    if (n <= 0) return 0;
    uint64_t left = r->pos < r->io->size ? r->io->size - r->pos : 0;
    if ((uint64_t)n > left) n = (la_int64_t)left;
    r->pos += (uint64_t)n;
    return n;
}

/* An imt__io over memory (a nested container held in a buffer). */
typedef struct memio {
    const uint8_t *p;
    size_t n;
} memio;

static imt_err mem_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    const memio *m = ctx;
    *got = 0;
    if (off >= m->n) return IMT_OK;
    size_t k = m->n - (size_t)off < cap ? m->n - (size_t)off : cap;
    memcpy(buf, m->p + off, k);
    *got = k;
    return IMT_OK;
}

/* ---- a member's stream ---------------------------------------------------- */
enum { HOLD_DECIDE, HOLD_KEEP, HOLD_DROP };

typedef struct mstream {
    struct archive *a;         /* NULL: a memory member (PDF image) */
    const uint8_t *mem;
    size_t mem_len, mem_pos;
    xstate *xs;
    cframe *f;
    uint32_t depth;            /* the member's */
    int eof;
    char cut[200];
    /* holding a member that may be a container */
    int hold;
    uint8_t *buf;
    size_t len, cap;
    imt_format fmt;            /* sniffed from its head */
    unsigned trip;             /* DEPTH or BUFFER: held but not expanded */
    int oom;                   /* the held bytes could not grow */
} mstream;

static void hold_free(mstream *m)
{
    if (m->buf) {
        m->xs->buffered -= m->cap;
        imt__free(m->buf);
    }
    m->buf = NULL;
    m->len = m->cap = 0;
}

/* Append to the held bytes while they may be (or are) a container. */
static void hold_bytes(mstream *m, const uint8_t *d, size_t n, int at_end)
{
    if (m->hold == HOLD_DROP) return;
    if (n) {
        if (m->len + n > m->cap) {
            size_t nc = m->cap ? m->cap : 4096;
            while (nc < m->len + n) nc *= 2;
            if (m->xs->buffered - m->cap + nc > m->xs->o->max_buffer) {
                /* not worth holding unless it is a container: only then a limit */
                if (m->hold == HOLD_KEEP) m->trip |= IMT_CLIMIT_BUFFER;
                m->hold = HOLD_DROP;
                hold_free(m);
                return;
            }
            uint8_t *nb = imt__realloc(m->buf, nc);
            if (!nb) { /* out of memory: the expansion fails with it */
                m->oom = 1;
                m->hold = HOLD_DROP;
                hold_free(m);
                return;
            }
            m->xs->buffered += nc - m->cap;
            m->buf = nb;
            m->cap = nc;
        }
        memcpy(m->buf + m->len, d, n);
        m->len += n;
    }
    if (m->hold == HOLD_DECIDE && (m->len >= IMT_SNIFF_BYTES || at_end)) {
        m->fmt = imt_sniff(m->buf, m->len);
        if (!imt_format_is_container(m->fmt)) {
            m->hold = HOLD_DROP;
            hold_free(m);
        } else if (m->depth >= m->xs->o->max_depth) {
            m->trip |= IMT_CLIMIT_DEPTH;
            m->hold = HOLD_DROP;
            hold_free(m);
        } else {
            m->hold = HOLD_KEEP;
        }
    }
}

static void cut(mstream *m, unsigned bit, const char *why)
{
    m->xs->trip |= bit & (IMT_CLIMIT_TOTAL_BYTES | IMT_CLIMIT_MEMBERS);
    m->f->ci.limits |= bit;
    if (!m->cut[0]) imt__set_detail(m->cut, sizeof m->cut, "%s", why);
    if (!m->f->note[0]) imt__set_detail(m->f->note, sizeof m->f->note, "%s", why);
    m->hold = HOLD_DROP;
    hold_free(m);
}

static imt_err ms_read(void *ctx, void *buf, size_t cap, size_t *got)
{
    mstream *m = ctx;
    const imt_container_opts *o = m->xs->o;
    *got = 0;
    if (m->eof) return IMT_OK;
    if (m->cut[0]) return IMT_E_TOO_LARGE;
    la_ssize_t n;
    if (m->a) {
        n = archive_read_data(m->a, buf, cap);
        if (n < 0) {
            imt__set_detail(m->cut, sizeof m->cut, "the archive's data could not be read: %s",
                            archive_error_string(m->a) ? archive_error_string(m->a)
                                                       : "unknown error");
            m->eof = 1;
            m->hold = HOLD_DROP;
            hold_free(m);
            return IMT_E_CORRUPT;
        }
    } else {
        size_t left = m->mem_len - m->mem_pos;
        n = (la_ssize_t)(left < cap ? left : cap);
        memcpy(buf, m->mem + m->mem_pos, (size_t)n);
        m->mem_pos += (size_t)n;
    }
    if (n == 0) {
        m->eof = 1;
        hold_bytes(m, NULL, 0, 1);
        return IMT_OK;
    }
    m->xs->bytes += (uint64_t)n;
    /* The ratio of every container around: a nested bomb (42.zip) amplifies
     * by layers, each modest alone; the walked file sees the product. */
    cframe *over = NULL;
    for (cframe *c = m->f; c; c = c->up) {
        c->bytes += (uint64_t)n;
        if (!over && o->max_ratio && c->bytes > RATIO_FLOOR && c->own_size &&
            c->bytes / c->own_size >= o->max_ratio)
            over = c;
    }
    char why[200];
    if (m->xs->bytes > o->max_total_bytes) {
        imt__set_detail(why, sizeof why, "expansion stopped: the members of this walked file "
                        "hold more than %llu bytes (--max-expanded-bytes): digests not made",
                        (unsigned long long)o->max_total_bytes);
        cut(m, IMT_CLIMIT_TOTAL_BYTES, why);
        return IMT_E_TOO_LARGE;
    }
    if (over) {
        imt__set_detail(why, sizeof why, "expansion stopped: the members%s hold over %u "
                        "times the %llu bytes of %s (--max-ratio): digests not made",
                        over == m->f ? "" : " (all depths)", (unsigned)o->max_ratio,
                        (unsigned long long)over->own_size,
                        over == m->f ? "the container" : "a container around it");
        cut(m, IMT_CLIMIT_RATIO, why);
        if (over != m->f) {
            m->xs->trip |= IMT_CLIMIT_RATIO; /* stop the layers up to it */
            m->xs->ratio_at = over;
        }
        return IMT_E_TOO_LARGE;
    }
    hold_bytes(m, buf, (size_t)n, 0);
    *got = (size_t)n;
    return IMT_OK;
}

/* ---- expansion ------------------------------------------------------------ */
static imt_err expand(xstate *xs, const imt__io *io, imt_format fmt, const char *path,
                      uint32_t depth, cframe *f);

/* path + "!" + name; NULL when out of memory. */
static char *join(const char *path, const char *name)
{
    size_t a = strlen(path), b = strlen(name);
    char *s = imt__malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, path, a);
    s[a] = '!';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

/* Hand one member to the sink; then, when it was held as a container,
 * expand it. m->stream may be NULL (a member that cannot be read). */
static imt_err give(xstate *xs, cframe *f, imt__member *mb, mstream *ms)
{
    imt_err err = IMT_OK;
    size_t id = 0;
    imt_stream st = {ms_read, ms, 0};
    if (xs->members >= xs->o->max_members) {
        xs->trip |= IMT_CLIMIT_MEMBERS;
        f->ci.limits |= IMT_CLIMIT_MEMBERS;
        imt__set_detail(f->note, sizeof f->note, "expansion stopped after %llu members "
                        "(--max-members)", (unsigned long long)xs->members);
        return IMT_OK;
    }
    xs->members++;
    f->ci.members++;
    if (mb->status == IMT_OK) mb->stream = &st;
    mb->cut = ms->cut;
    IMT_TRY(xs->sink->member(xs->sink->ctx, mb, &id));
    if (mb->status != IMT_OK) return IMT_OK;
    if (ms->oom) { err = IMT_E_NOMEM; goto cleanup; }
    /* The sink may have stopped reading early (no digests): the member is
     * read to its end, so the limits count the same bytes whatever the sink
     * read (the scan's second pass reads nothing), and a held container is
     * whole. */
    while (!ms->eof && !ms->cut[0]) {
        uint8_t tmp[16384];
        size_t got;
        if (ms_read(ms, tmp, sizeof tmp, &got) != IMT_OK) break;
    }
    if (ms->oom) { err = IMT_E_NOMEM; goto cleanup; }
    if (ms->hold == HOLD_KEEP && ms->eof && !ms->cut[0]) {
        cframe sub;
        memset(&sub, 0, sizeof sub);
        sub.up = f;
        memio mi = {ms->buf, ms->len};
        imt__io nio = {mem_pread, &mi, ms->len};
        err = expand(xs, &nio, ms->fmt, mb->path, mb->depth, &sub);
        f->ci.members += sub.ci.members;
        sub.ci.note = sub.note;
        xs->sink->info(xs->sink->ctx, id, &sub.ci);
        if (err) goto cleanup;
    } else if (ms->trip) {
        cframe sub;
        memset(&sub, 0, sizeof sub);
        sub.ci.limits = ms->trip;
        if (ms->trip & IMT_CLIMIT_DEPTH)
            imt__set_detail(sub.note, sizeof sub.note, "a %s container nested deeper than "
                            "%u levels (--max-depth): not expanded", imt_format_name(ms->fmt),
                            (unsigned)xs->o->max_depth);
        else
            imt__set_detail(sub.note, sizeof sub.note, "a nested container larger than the "
                            "%llu bytes that may be held in memory (--max-container-buffer): "
                            "not expanded", (unsigned long long)xs->o->max_buffer);
        sub.ci.note = sub.note;
        xs->sink->info(xs->sink->ctx, id, &sub.ci);
    }
cleanup:
    hold_free(ms);
    return err;
}

/* The name of the one member of a compressed file: its container's last
 * name without the compression suffix. */
static void raw_name(const char *path, char *out, size_t cap)
{
    const char *b = strrchr(path, '!');
    const char *s = strrchr(path, '/');
    if (!b || (s && s > b)) b = s;
    b = b ? b + 1 : path;
    static const char *const suf[] = {".gz", ".tgz", ".bz2", ".xz", ".zst", ".zstd", ".z"};
    size_t n = strlen(b);
    for (size_t i = 0; i < sizeof suf / sizeof *suf; i++) {
        size_t k = strlen(suf[i]);
        if (n > k && !strcasecmp(b + n - k, suf[i])) {
            imt__set_detail(out, cap, "%.*s%s", (int)(n - k), b,
                            !strcasecmp(suf[i], ".tgz") ? ".tar" : "");
            return;
        }
    }
    imt__set_detail(out, cap, "data");
}

typedef struct pdfctx {
    xstate *xs;
    cframe *f;
    const char *path;
    uint32_t depth;
    uint64_t index;
} pdfctx;

static imt_err pdf_image(void *ctx, int obj, const char *ext, imt_err status, const char *why,
                         const uint8_t *data, size_t len)
{
    pdfctx *p = ctx;
    char name[48];
    snprintf(name, sizeof name, "obj%d.%s", obj, ext);
    char *path = join(p->path, name);
    if (!path) return IMT_E_NOMEM;
    imt__member mb;
    memset(&mb, 0, sizeof mb);
    mb.path = path;
    mb.depth = p->depth + 1;
    mb.index = p->index++;
    mb.size = len;
    mb.status = status;
    mb.detail = why;
    mstream ms;
    memset(&ms, 0, sizeof ms);
    ms.mem = data;
    ms.mem_len = len;
    ms.xs = p->xs;
    ms.f = p->f;
    ms.depth = mb.depth;
    ms.hold = HOLD_DROP; /* a PDF's image is a picture, never expanded */
    imt_err err = give(p->xs, p->f, &mb, &ms);
    imt__free(path);
    if (!err && (p->xs->trip || (p->f->ci.limits & IMT_CLIMIT_RATIO))) err = PDF_STOP;
    return err;
}

static imt_err expand_pdf(xstate *xs, const imt__io *io, const char *path, uint32_t depth,
                          cframe *f)
{
    imt_err err = IMT_OK;
    uint8_t *buf = NULL;
    const uint8_t *p;
    int own = 0;
    if (io->pread == mem_pread) {
        p = ((const memio *)io->ctx)->p; /* a held member: no second copy */
    } else {
        if (io->size > xs->o->max_buffer - xs->buffered || io->size > SIZE_MAX) {
            f->ci.limits |= IMT_CLIMIT_PDF_SIZE;
            imt__set_detail(f->note, sizeof f->note, "a PDF of %llu bytes: over the %llu "
                            "bytes read whole (--max-container-buffer), images not examined",
                            (unsigned long long)io->size, (unsigned long long)xs->o->max_buffer);
            return IMT_OK;
        }
        buf = imt__malloc(io->size ? (size_t)io->size : 1);
        if (!buf) return IMT_E_NOMEM;
        own = 1;
        xs->buffered += io->size;
        for (uint64_t at = 0; at < io->size;) {
            size_t got = 0;
            size_t want = io->size - at > RD_CHUNK ? RD_CHUNK : (size_t)(io->size - at);
            err = io->pread(io->ctx, at, buf + at, want, &got);
            if (err || !got) {
                imt__set_detail(f->note, sizeof f->note, "the PDF could not be read at byte "
                                "%llu: %s", (unsigned long long)at,
                                err ? imt_strerror(err) : "it ended early");
                err = IMT_OK;
                goto cleanup;
            }
            at += got;
        }
        p = buf;
    }
    pdfctx pc = {xs, f, path, depth, 0};
    err = imt__pdf_images(p, (size_t)io->size, PDF_MAX_OBJECTS, xs->stop, pdf_image, &pc,
                          f->note, sizeof f->note);
    if (err == IMT_E_ENCRYPTED) {
        f->ci.encrypted = 1;
        err = IMT_OK;
    } else if (err == IMT_E_CORRUPT || err == PDF_STOP) {
        err = IMT_OK;
    }
cleanup:
    if (own) {
        xs->buffered -= io->size;
        imt__free(buf);
    }
    return err;
}

static int compressed_only(imt_format fmt)
{
    return fmt == IMT_FMT_GZIP || fmt == IMT_FMT_BZIP2 || fmt == IMT_FMT_XZ ||
           fmt == IMT_FMT_ZSTD;
}

static imt_err expand(xstate *xs, const imt__io *io, imt_format fmt, const char *path,
                      uint32_t depth, cframe *f)
{
    imt_err err = IMT_OK;
    f->ci.expanded = 1;
    f->own_size = io->size;
    if (fmt == IMT_FMT_PDF) return expand_pdf(xs, io, path, depth, f);
    iorc *rc = imt__malloc(sizeof *rc);
    struct archive *a = archive_read_new();
    char *mpath = NULL;
    if (!rc || !a) { err = IMT_E_NOMEM; goto cleanup; }
    memset(rc, 0, offsetof(iorc, buf));
    rc->io = io;
    /* Filters libarchive has in-process (filter_all would also run external
     * programs, lrzip, lzop, grzip, for formats it has no library for). */
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_filter_xz(a);
    archive_read_support_filter_lzma(a);
    archive_read_support_filter_lzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_filter_compress(a);
    /* Every format of archive_read_support_format_all but mtree: an mtree
     * spec is text naming files on this machine, which libarchive would
     * open and read (and any text file holding a word parses as one). */
    archive_read_support_format_7zip(a);
    archive_read_support_format_ar(a);
    archive_read_support_format_cab(a);
    archive_read_support_format_cpio(a);
    archive_read_support_format_empty(a);
    archive_read_support_format_iso9660(a);
    archive_read_support_format_lha(a);
    archive_read_support_format_rar(a);
    archive_read_support_format_rar5(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_warc(a);
    archive_read_support_format_xar(a);
    archive_read_support_format_zip(a);
    if (compressed_only(fmt)) archive_read_support_format_raw(a);
    archive_read_set_read_callback(a, io_read);
    archive_read_set_seek_callback(a, io_seek);
    archive_read_set_skip_callback(a, io_skip);
    archive_read_set_callback_data(a, rc);
    if (archive_read_open1(a) != ARCHIVE_OK) {
        note(f, "not a readable %s container: %s", imt_format_name(fmt),
             archive_error_string(a) ? archive_error_string(a) : "unknown error");
        goto cleanup;
    }
    uint64_t failures = 0;
    for (uint64_t index = 0;; index++) {
        if (xs->stop && *xs->stop) { err = IMT_E_INTERRUPTED; break; }
        if (xs->trip) break;
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        /* a hostile archive must not keep us here: failed or retried
         * entries count as entries */
        if ((r == ARCHIVE_RETRY || r < ARCHIVE_WARN) && ++failures > xs->o->max_members) {
            note(f, "expansion stopped: over %s entries could not be read%s", "--max-members",
                 "");
            break;
        }
        if (r == ARCHIVE_RETRY) continue;
        if (r < ARCHIVE_WARN) {
            const char *es = archive_error_string(a) ? archive_error_string(a) : "unknown error";
            if (archive_read_has_encrypted_entries(a) > 0 || strstr(es, "ncrypt")) {
                f->ci.encrypted++;
                note(f, "the container's directory is encrypted: not examined (%s%s)", es, "");
            } else {
                char at[32];
                snprintf(at, sizeof at, "%llu", (unsigned long long)index);
                note(f, "the container could not be read past entry %s: %s", at, es);
            }
            if (r == ARCHIVE_FATAL) break;
            continue;
        }
        if (archive_entry_filetype(e) != AE_IFREG) continue; /* folders, links */
        const char *name = archive_entry_pathname(e);
        char rn[256];
        if (archive_format(a) == ARCHIVE_FORMAT_RAW) {
            raw_name(path, rn, sizeof rn);
            name = rn;
        } else if (!name || !*name) {
            snprintf(rn, sizeof rn, "#%llu", (unsigned long long)index);
            name = rn;
        }
        mpath = join(path, name);
        if (!mpath) { err = IMT_E_NOMEM; goto cleanup; }
        imt__member mb;
        memset(&mb, 0, sizeof mb);
        mb.path = mpath;
        mb.depth = depth + 1;
        mb.index = index;
        if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0)
            mb.size = (uint64_t)archive_entry_size(e);
        if (archive_entry_mtime_is_set(e)) {
            mb.has_mtime = 1;
            mb.mtime_s = (int64_t)archive_entry_mtime(e);
            mb.mtime_ns = (int32_t)archive_entry_mtime_nsec(e);
        }
        if (archive_entry_is_encrypted(e)) {
            mb.status = IMT_E_ENCRYPTED;
            mb.detail = "an encrypted member: not examined (no password is tried)";
            f->ci.encrypted++;
        }
        mstream ms;
        memset(&ms, 0, sizeof ms);
        ms.a = a;
        ms.xs = xs;
        ms.f = f;
        ms.depth = mb.depth;
        ms.hold = HOLD_DECIDE;
        err = give(xs, f, &mb, &ms);
        imt__free(mpath);
        mpath = NULL;
        if (err) goto cleanup;
        if (ms.cut[0] && !(f->ci.limits | xs->trip)) {
            /* a data error: libarchive cannot go on after a fatal one */
            if (archive_errno(a) == ARCHIVE_FATAL) break;
        }
        if (f->ci.limits & IMT_CLIMIT_RATIO) break;
    }
    if (xs->trip & ~f->ci.limits) {
        /* a limit tripped inside a nested member: of the whole walked file,
         * or the ratio of this container or one around it */
        f->ci.limits |= xs->trip;
        note(f, "expansion stopped: the %s limit was reached in a nested container%s",
             xs->trip & IMT_CLIMIT_TOTAL_BYTES ? "expanded-bytes"
             : xs->trip & IMT_CLIMIT_MEMBERS   ? "member"
                                               : "ratio", "");
    }
    if (xs->ratio_at == f) { /* the layers below stopped for this one: done */
        xs->trip &= ~IMT_CLIMIT_RATIO;
        xs->ratio_at = NULL;
    }
cleanup:
    imt__free(mpath);
    if (a) archive_read_free(a);
    imt__free(rc);
    return err;
}

imt_err imt__container_expand(const imt__io *io, imt_format fmt, const char *path,
                              const imt_container_opts *o, const volatile int *stop,
                              const imt__csink *sink)
{
    if (!io || !path || !o || !sink || !imt_format_is_container(fmt)) return IMT_E_INVALID;
    xstate xs;
    memset(&xs, 0, sizeof xs);
    xs.o = o;
    xs.stop = stop;
    xs.sink = sink;
    cframe f;
    memset(&f, 0, sizeof f);
    imt_err err = expand(&xs, io, fmt, path, 0, &f);
    f.ci.note = f.note;
    sink->info(sink->ctx, IMT__CTOP, &f.ci);
    return err;
}
