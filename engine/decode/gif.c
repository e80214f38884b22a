/* engine/decode/gif.c -- GIF -> luma plane, through giflib's low-level API.
 *
 * Compat mode reproduces what the reference hasher sees. CImg reads a .gif
 * with load_gif_external: ImageMagick 6.9.11 `convert FILE tmp.png` writes
 * one PNG per frame (tmp.png, or tmp-0.png, tmp-1.png, ...), each is read
 * back through `convert tmp-K.png pnm:-`, and the frames are appended along
 * z (CImgList::get_append('z', 0)); PDQ then hashes slice z = 0. So:
 *  - the picture is the first frame at its own size (ImageMagick keeps
 *    frames frame-sized, the offset only in the page geometry); nothing of
 *    the logical screen, the background, disposal or later frames shows in
 *    it, except
 *  - its size: the appended volume is as wide and high as the largest frame,
 *    frame 0 at (0,0), the rest of slice 0 zero;
 *  - its channels: a frame is a PGM (1 channel) when every one of its pixels
 *    has R == G == B, else a PPM (3). The volume has 3 channels when any
 *    frame has, and a one-channel frame 0 then fills channel 0 only: the
 *    luma is 0.299f * grey (G = B = 0). With 1 channel, luma = the value;
 *    with 3, 0.299f*R + 0.587f*G + 0.114f*B as for PNG and JPEG;
 *  - a pixel is its palette entry's colour (the frame's local table, else
 *    the global one); transparent pixels keep that colour (the PNM has no
 *    alpha); an index past the table reads entry 0 (ImageMagick's
 *    ConstrainColormapIndex);
 *  - then the nearest-neighbour resize to 512x512 when a side is over 512.
 * Verified against the reference over tests/data/formats/webp_gif (static,
 * 16-colour, grey, interlaced, transparent, animated, optimised, local
 * tables, a first frame smaller than later ones and the screen).
 *
 * Memory: O(width). Frame 0 is decoded row by row (interlaced rows put at
 * their true place) and only the rows and columns the resize keeps are
 * stored. Later frames are read only for their size and, while every pixel
 * so far is grey, their colours (rows are decoded until a non-grey pixel
 * turns up; a frame whose table is all grey is skipped unread). Frame 0 is
 * decoded assuming it is the largest frame; when a later frame is larger,
 * or a later frame makes the volume colour while frame 0 is grey, frame 0
 * is decoded again from a copy of the file's bytes up to its end, kept
 * while reading (at most IMT_GIF_COPY_CAP bytes; a file needing more is
 * too-large). giflib's per-frame records are freed after each frame, so an
 * animation of many frames takes no more memory than one. The logical
 * screen and every frame's size are checked against the limits before
 * anything is allocated for them.
 *
 * Fast mode gives the same plane: LZW decoding is the whole cost whatever
 * is kept, as for PNG.
 */
#include "decode.h"

#include <gif_lib.h>
#include <string.h>

#define COMPAT_SIDE 512
#ifndef IMT_GIF_COPY_CAP
#define IMT_GIF_COPY_CAP ((size_t)64 << 20)
#endif

struct imt_gif_state {
    uint8_t *line;   /* one row of palette indices */
    size_t line_cap;
    uint8_t *px;     /* the kept samples, RGB */
    size_t px_cap;
    float *plane;
    size_t plane_cap;
    uint8_t *copy;   /* the file's bytes up to the end of frame 0 */
    size_t copy_cap;
    int xmap[COMPAT_SIDE], ymap[COMPAT_SIDE];
};

typedef struct gctx {
    imt_gif_state *st;
    const imt_reader *r;
    const imt_decode_limits *lim;
    /* input: the stream, or (redo) the copy */
    const uint8_t *chunk;
    size_t chunk_len, chunk_pos;
    uint64_t consumed;
    imt_err read_err;
    int eof;
    int in_data;       /* reading a frame's pixel data */
    int zero_given;    /* the synthetic block terminator was handed out */
    int copying;       /* append what is read to st->copy */
    int copy_over;     /* the copy outgrew IMT_GIF_COPY_CAP */
    size_t copy_len;
    const uint8_t *mem; /* redo: read from here */
    size_t mem_len, mem_pos;
    int from_mem;
    /* frame 0 */
    uint32_t w0, h0;
    int all_grey0;
    uint8_t pal[256 * 3];
    uint8_t pal_grey[256];
    /* the volume */
    uint32_t dx, dy;
    int colour_later;  /* a later frame has a non-grey pixel */
    uint32_t rows_done;
} gctx;

static imt_err grow(void **p, size_t *cap, size_t bytes)
{
    if (bytes <= *cap && *p) return IMT_OK;
    void *q = imt__malloc(bytes ? bytes : 1);
    if (!q) return IMT_E_NOMEM;
    imt__free(*p);
    *p = q;
    *cap = bytes;
    return IMT_OK;
}

static void copy_append(gctx *c, const uint8_t *d, size_t n)
{
    imt_gif_state *st = c->st;
    if (c->copy_over || !n) return;
    if (c->copy_len + n > IMT_GIF_COPY_CAP) {
        c->copy_over = 1;
        return;
    }
    if (c->copy_len + n > st->copy_cap) {
        size_t cap = st->copy_cap ? st->copy_cap : 64 * 1024;
        while (cap < c->copy_len + n) cap *= 2;
        if (cap > IMT_GIF_COPY_CAP) cap = IMT_GIF_COPY_CAP;
        uint8_t *q = imt__malloc(cap);
        if (!q) {
            c->copy_over = 1; /* reported as too-large only if a redo needs it */
            return;
        }
        if (c->copy_len) memcpy(q, st->copy, c->copy_len);
        imt__free(st->copy);
        st->copy = q;
        st->copy_cap = cap;
    }
    memcpy(st->copy + c->copy_len, d, n);
    c->copy_len += n;
}

/* giflib's read callback: returns the bytes copied; fewer than asked ends
 * giflib's call with D_GIF_ERR_READ_FAILED. */
static int gif_read(GifFileType *gif, GifByteType *buf, int len)
{
    gctx *c = gif->UserData;
    int got = 0;
    if (c->from_mem) {
        size_t k = c->mem_len - c->mem_pos;
        if (k > (size_t)len) k = (size_t)len;
        memcpy(buf, c->mem + c->mem_pos, k);
        c->mem_pos += k;
        return (int)k;
    }
    while (got < len) {
        if (c->chunk_pos == c->chunk_len && c->eof && c->in_data && !c->zero_given &&
            !c->read_err) {
            /* ImageMagick accepts a frame whose data lacks only the final
             * zero-length block (and the trailer): hand giflib that block.
             * If pixels are still missing, giflib then stops with an image
             * defect, which is reported as the truncation it is. */
            buf[got++] = 0;
            c->zero_given = 1;
            if (c->copying) copy_append(c, buf + got - 1, 1);
            continue;
        }
        if (c->chunk_pos == c->chunk_len) {
            if (c->eof || c->read_err) break;
            const uint8_t *d = NULL;
            size_t n = 0;
            imt_err e = c->r->pull(c->r->ctx, &d, &n);
            if (e != IMT_OK) {
                c->read_err = e;
                break;
            }
            if (n == 0) {
                c->eof = 1;
                continue; /* the synthetic terminator, if due, else stop */
            }
            c->chunk = d;
            c->chunk_len = n;
            c->chunk_pos = 0;
        }
        size_t k = c->chunk_len - c->chunk_pos;
        if (k > (size_t)(len - got)) k = (size_t)(len - got);
        memcpy(buf + got, c->chunk + c->chunk_pos, k);
        if (c->copying) copy_append(c, c->chunk + c->chunk_pos, k);
        c->chunk_pos += k;
        c->consumed += k;
        got += (int)k;
    }
    return got;
}

/* giflib's error code -> ours, with a sentence. */
static imt_err gif_fail(gctx *c, int code, const char *where, char *detail, size_t cap)
{
    if (c->read_err) {
        imt__set_detail(detail, cap, "GIF read failed: %s", imt_strerror(c->read_err));
        return c->read_err;
    }
    const char *m = GifErrorString(code);
    if (code == D_GIF_ERR_NOT_ENOUGH_MEM) {
        imt__set_detail(detail, cap, "giflib: out of memory (%s)", where);
        return IMT_E_NOMEM;
    }
    if (c->eof || code == D_GIF_ERR_EOF_TOO_SOON) {
        imt__set_detail(detail, cap, "GIF data ends %s (%llu bytes)", where,
                        (unsigned long long)c->consumed);
        return IMT_E_TRUNCATED;
    }
    imt__set_detail(detail, cap, "giflib: %s (%s)", m ? m : "error", where);
    return IMT_E_CORRUPT;
}

/* The frame's palette as ImageMagick builds it. */
static void load_palette(const GifFileType *gif, uint8_t *pal, uint8_t *pal_grey)
{
    const ColorMapObject *m = gif->Image.ColorMap ? gif->Image.ColorMap : gif->SColorMap;
    int n = m ? m->ColorCount : 0;
    if (n > 256) n = 256;
    memset(pal, 0, 256 * 3);
    for (int i = 0; i < n; i++) {
        pal[3 * i] = m->Colors[i].Red;
        pal[3 * i + 1] = m->Colors[i].Green;
        pal[3 * i + 2] = m->Colors[i].Blue;
    }
    for (int i = n; i < 256; i++) memcpy(pal + 3 * i, pal, 3);
    for (int i = 0; i < 256; i++)
        pal_grey[i] = pal[3 * i] == pal[3 * i + 1] && pal[3 * i + 1] == pal[3 * i + 2];
}

/* Row r of an interlaced frame of h rows, in file order -> its true row. */
static uint32_t deinterlace(uint32_t r, uint32_t h)
{
    static const uint32_t start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
    for (int p = 0; p < 4; p++) {
        uint32_t n = h > start[p] ? (h - start[p] + step[p] - 1) / step[p] : 0;
        if (r < n) return start[p] + r * step[p];
        r -= n;
    }
    return h; /* not reached for r < h */
}

static int deadline_passed(const gctx *c)
{
    return c->lim->deadline_ms && imt__now_ms() > c->lim->deadline_ms;
}

/* Decode frame 0 (its descriptor just read) into st->px, sampled for a
 * volume of c->dx x c->dy; sets c->all_grey0. */
static imt_err decode_frame0(gctx *c, GifFileType *gif, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    imt_gif_state *st = c->st;
    uint32_t w = c->w0, h = c->h0;
    int ocols = imt__compat_side(c->dx, c->dx, c->dy), orows = imt__compat_side(c->dy, c->dx, c->dy);
    imt__nn_map((int)c->dx, ocols, st->xmap);
    imt__nn_map((int)c->dy, orows, st->ymap);
    IMT_TRY(grow((void **)&st->line, &st->line_cap, w));
    IMT_TRY(grow((void **)&st->px, &st->px_cap, (size_t)ocols * (size_t)orows * 3));
    memset(st->px, 0, (size_t)ocols * (size_t)orows * 3);
    c->all_grey0 = 1;
    c->rows_done = 0;
    for (uint32_t r = 0; r < h; r++) {
        if (deadline_passed(c)) {
            imt__set_detail(detail, cap, "GIF decoding stopped at the time budget");
            err = IMT_E_TIMEOUT;
            goto cleanup;
        }
        if (DGifGetLine(gif, st->line, (int)w) != GIF_OK) {
            char where[80];
            imt__set_detail(where, sizeof where, "in row %u of %u of the first frame", r, h);
            err = gif_fail(c, gif->Error, where, detail, cap);
            goto cleanup;
        }
        c->rows_done++;
        const uint8_t *ln = st->line;
        if (c->all_grey0) {
            int g = 1;
            for (uint32_t x = 0; x < w; x++) g &= c->pal_grey[ln[x]];
            c->all_grey0 = g;
        }
        uint32_t y = gif->Image.Interlace ? deinterlace(r, h) : r;
        for (int i = 0; i < orows; i++) {
            if ((uint32_t)st->ymap[i] != y) continue;
            uint8_t *dst = st->px + (size_t)i * (size_t)ocols * 3;
            for (int j = 0; j < ocols; j++) {
                uint32_t x = (uint32_t)st->xmap[j];
                if (x < w) memcpy(dst + 3 * (size_t)j, c->pal + 3 * (size_t)ln[x], 3);
            }
        }
    }
cleanup:
    return err;
}

/* Skip the rest of the current frame's data. */
static int skip_frame(GifFileType *gif)
{
    int code_size = 0;
    GifByteType *block = NULL;
    if (DGifGetCode(gif, &code_size, &block) != GIF_OK) return GIF_ERROR;
    while (block)
        if (DGifGetCodeNext(gif, &block) != GIF_OK) return GIF_ERROR;
    return GIF_OK;
}

/* A later frame (descriptor read): is any of its pixels non-grey? Decodes
 * rows until one is, then skips the rest. */
static int later_frame(gctx *c, GifFileType *gif, int *colour)
{
    imt_gif_state *st = c->st;
    uint8_t pal[256 * 3], grey[256];
    load_palette(gif, pal, grey);
    int all = 1;
    for (int i = 0; i < 256; i++) all &= grey[i];
    *colour = 0;
    if (all) return skip_frame(gif);
    uint32_t w = (uint32_t)gif->Image.Width, h = (uint32_t)gif->Image.Height;
    if (grow((void **)&st->line, &st->line_cap, w) != IMT_OK) return GIF_ERROR;
    for (uint32_t r = 0; r < h; r++) {
        if (DGifGetLine(gif, st->line, (int)w) != GIF_OK) return GIF_ERROR;
        for (uint32_t x = 0; x < w; x++)
            if (!grey[st->line[x]]) {
                *colour = 1;
                break;
            }
        if (*colour) {
            if (r + 1 == h) return GIF_OK; /* giflib flushed the data */
            GifByteType *block = NULL;
            do
                if (DGifGetCodeNext(gif, &block) != GIF_OK) return GIF_ERROR;
            while (block);
            return GIF_OK;
        }
    }
    return GIF_OK;
}

/* The luma plane from st->px. */
static void finish_plane(gctx *c, int ocols, int orows)
{
    imt_gif_state *st = c->st;
    size_t n = (size_t)ocols * (size_t)orows;
    const uint8_t *p = st->px;
    float *o = st->plane;
    if (c->all_grey0 && !c->colour_later) {
        for (size_t k = 0; k < n; k++) o[k] = (float)p[3 * k];
    } else if (c->all_grey0) {
        /* a PGM frame 0 in a 3-channel volume: channel 0 only */
        for (size_t k = 0; k < n; k++)
            o[k] = imt__luma_r * p[3 * k] + imt__luma_g * 0 + imt__luma_b * 0;
    } else {
        for (size_t k = 0; k < n; k++)
            o[k] = imt__luma_r * p[3 * k] + imt__luma_g * p[3 * k + 1] +
                   imt__luma_b * p[3 * k + 2];
    }
}

static imt_err check_frame(gctx *c, GifFileType *gif, int k, char *detail, size_t cap)
{
    char what[48];
    imt__set_detail(what, sizeof what, "GIF frame %d", k + 1);
    return imt__check_dims((uint64_t)(uint32_t)gif->Image.Width,
                           (uint64_t)(uint32_t)gif->Image.Height, c->lim, what, detail, cap);
}

/* Redo: decode frame 0 again from the copy, for the final volume size. */
static imt_err redo_frame0(gctx *c, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    int gerr = 0;
    GifFileType *gif = NULL;
    c->from_mem = 1;
    c->mem = c->st->copy;
    c->mem_len = c->copy_len;
    c->mem_pos = 0;
    gif = DGifOpen(c, gif_read, &gerr);
    if (!gif) {
        err = gif_fail(c, gerr, "re-reading the header", detail, cap);
        goto cleanup;
    }
    for (;;) {
        GifRecordType rt;
        if (DGifGetRecordType(gif, &rt) != GIF_OK) {
            err = gif_fail(c, gif->Error, "re-reading", detail, cap);
            goto cleanup;
        }
        if (rt == EXTENSION_RECORD_TYPE) {
            int code;
            GifByteType *ext = NULL;
            if (DGifGetExtension(gif, &code, &ext) != GIF_OK) goto fail;
            while (ext)
                if (DGifGetExtensionNext(gif, &ext) != GIF_OK) goto fail;
            continue;
        }
        if (rt != IMAGE_DESC_RECORD_TYPE || DGifGetImageDesc(gif) != GIF_OK) goto fail;
        break;
    }
    err = decode_frame0(c, gif, detail, cap);
    goto cleanup;
fail:
    err = gif_fail(c, gif->Error, "re-reading the first frame", detail, cap);
cleanup:
    if (gif) DGifCloseFile(gif, &gerr);
    c->from_mem = 0;
    return err;
}

static imt_err decode_file(gctx *c, imt_luma *out, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    int gerr = 0;
    GifFileType *gif = NULL;
    imt_gif_state *st = c->st;
    int frames = 0;

    c->copying = 1;
    gif = DGifOpen(c, gif_read, &gerr);
    if (!gif) {
        err = gif_fail(c, gerr, "in the header", detail, cap);
        goto cleanup;
    }
    out->width = (uint32_t)gif->SWidth;
    out->height = (uint32_t)gif->SHeight;
    /* ImageMagick ignores the screen for the picture, but a screen over the
     * limits is refused as any other claimed size is. */
    IMT_TRY(imt__check_dims((uint32_t)gif->SWidth ? (uint32_t)gif->SWidth : 1,
                            (uint32_t)gif->SHeight ? (uint32_t)gif->SHeight : 1, c->lim,
                            "GIF logical screen", detail, cap));
    for (;;) {
        GifRecordType rt;
        if (DGifGetRecordType(gif, &rt) != GIF_OK) {
            /* The data ending between records: ImageMagick stops reading
             * there and keeps the frames it has. */
            if (frames > 0 && (c->eof || gif->Error == D_GIF_ERR_READ_FAILED) && !c->read_err)
                break;
            err = gif_fail(c, gif->Error, frames ? "between frames" : "before the first frame",
                           detail, cap);
            goto cleanup;
        }
        if (rt == TERMINATE_RECORD_TYPE) break;
        if (rt == EXTENSION_RECORD_TYPE) {
            int code;
            GifByteType *ext = NULL;
            if (DGifGetExtension(gif, &code, &ext) != GIF_OK) goto fail;
            while (ext)
                if (DGifGetExtensionNext(gif, &ext) != GIF_OK) goto fail;
            continue;
        }
        if (rt != IMAGE_DESC_RECORD_TYPE) continue; /* giflib rejects unknown ones */
        if (DGifGetImageDesc(gif) != GIF_OK) goto fail;
        IMT_TRY(check_frame(c, gif, frames, detail, cap));
        uint32_t fw = (uint32_t)gif->Image.Width, fh = (uint32_t)gif->Image.Height;
        c->in_data = 1;
        if (frames == 0) {
            c->w0 = c->dx = fw;
            c->h0 = c->dy = fh;
            load_palette(gif, c->pal, c->pal_grey);
            IMT_TRY(decode_frame0(c, gif, detail, cap));
            c->copying = 0;
        } else {
            if (fw > c->dx) c->dx = fw;
            if (fh > c->dy) c->dy = fh;
            int colour = 0;
            if (c->all_grey0 && !c->colour_later) {
                if (later_frame(c, gif, &colour) != GIF_OK) goto later_fail;
                c->colour_later = colour;
            } else if (skip_frame(gif) != GIF_OK) {
                goto later_fail;
            }
        }
        c->in_data = 0;
        frames++;
        /* giflib keeps a record (and a copy of the local table) per frame */
        GifFreeSavedImages(gif);
        gif->ImageCount = 0;
        if (deadline_passed(c)) {
            imt__set_detail(detail, cap, "GIF decoding stopped at the time budget");
            err = IMT_E_TIMEOUT;
            goto cleanup;
        }
        continue;
    later_fail:
        /* ImageMagick fails the whole file on a broken later frame */
        {
            char where[64];
            imt__set_detail(where, sizeof where, "in frame %d", frames + 1);
            err = gif_fail(c, gif->Error, where, detail, cap);
        }
        goto cleanup;
    }
    if (frames == 0) {
        imt__set_detail(detail, cap, "GIF without an image");
        err = IMT_E_CORRUPT;
        goto cleanup;
    }
    if (c->dx != c->w0 || c->dy != c->h0 || (c->all_grey0 && c->colour_later)) {
        if (c->copy_over) {
            imt__set_detail(detail, cap, "GIF: the first frame must be decoded again and "
                            "takes over %zu bytes to keep", (size_t)IMT_GIF_COPY_CAP);
            err = IMT_E_TOO_LARGE;
            goto cleanup;
        }
        int grey0 = c->all_grey0;
        IMT_TRY(redo_frame0(c, detail, cap));
        c->all_grey0 = grey0;
    }
    int ocols = imt__compat_side(c->dx, c->dx, c->dy), orows = imt__compat_side(c->dy, c->dx, c->dy);
    IMT_TRY(grow((void **)&st->plane, &st->plane_cap,
                 (size_t)ocols * (size_t)orows * sizeof(float)));
    finish_plane(c, ocols, orows);
    out->pix = st->plane;
    out->cols = ocols;
    out->rows = orows;
    goto cleanup;
fail:
    err = gif_fail(c, gif->Error, frames ? "in a later frame's header" : "in the first frame's header",
                   detail, cap);
cleanup:
    if (gif) DGifCloseFile(gif, &gerr);
    return err;
}

imt_err imt__gif_decode(imt_gif_state **stp, const imt_reader *r, imt_pdq_mode mode,
                        const imt_decode_limits *lim, imt_luma *out, char *detail,
                        size_t cap)
{
    if (!stp || !r || !lim || !out) return IMT_E_INVALID;
    (void)mode; /* both modes give the reference's plane: see the file comment */
    if (!*stp) {
        *stp = imt__calloc(1, sizeof **stp);
        if (!*stp) {
            imt__set_detail(detail, cap, "out of memory creating the GIF decoder");
            return IMT_E_NOMEM;
        }
    }
    gctx *c = imt__calloc(1, sizeof *c);
    if (!c) {
        imt__set_detail(detail, cap, "out of memory creating the GIF decoder");
        return IMT_E_NOMEM;
    }
    c->st = *stp;
    c->r = r;
    c->lim = lim;
    imt_err err = decode_file(c, out, detail, cap);
    imt__free(c);
    if (err != IMT_OK) {
        out->pix = NULL;
        out->rows = out->cols = 0;
    }
    imt_gif_state *st = *stp;
    if (st->copy_cap > ((size_t)4 << 20)) {
        imt__free(st->copy);
        st->copy = NULL;
        st->copy_cap = 0;
    }
    return err;
}

void imt__gif_state_free(imt_gif_state *st)
{
    if (!st) return;
    imt__free(st->line);
    imt__free(st->px);
    imt__free(st->plane);
    imt__free(st->copy);
    imt__free(st);
}
