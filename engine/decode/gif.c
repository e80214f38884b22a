/* engine/decode/gif.c -- GIF -> luma plane: giflib's low-level API for the
 * structure, ImageMagick's rules for the pixels.
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
 *    the global one of the size the screen descriptor declares, black where
 *    the file gives none); transparent pixels keep that colour (the PNM has
 *    no alpha); an index past the table reads entry 0 (ConstrainColormapIndex),
 *    and a transparent index equal to the table's size adds a black entry;
 *  - then the nearest-neighbour resize to 512x512 when a side is over 512.
 * giflib reads the header, each image descriptor with its colour table and
 * the raw data blocks; the pixels come from ImageMagick's LZW rules and the
 * walk between records is ImageMagick's (see walk() and lzw_byte()), so
 * broken files are read, or refused, as the reference reads them.
 * Verified against the reference over tests/data/formats/webp_gif (static,
 * 16-colour, grey, interlaced, transparent, animated, optimised, local
 * tables, a first frame smaller than later ones and the screen, each also
 * cut short) and over the 607 GIFs of ../shared/corpus (corpus_reference.csv).
 *
 * Memory: O(width). Frame 0 is decoded row by row (interlaced rows put at
 * their true place) and only the rows and columns the resize keeps are
 * stored. Every later frame is decoded too (ImageMagick fails the file on a
 * broken one), keeping nothing but, while every pixel so far is grey,
 * whether one is not. Frame 0 is decoded assuming it is the largest frame;
 * when a later frame is larger, or a later frame makes the volume colour
 * while frame 0 is grey, frame 0 is decoded again from a copy of the file's
 * bytes up to its end, kept while reading (at most IMT_GIF_COPY_CAP bytes;
 * a file needing more is too-large). giflib's per-frame records are freed
 * after each frame, so an animation of many frames takes no more memory
 * than one. The logical screen and every frame's size are checked against
 * the limits before anything is allocated for them.
 *
 * Differences left: a minimum LZW code size of 9 to 12 (ImageMagick reads
 * it, giflib refuses it: corrupt here).
 *
 * The size reported is the logical screen until the first frame's
 * descriptor is read, then that of the picture hashed: the first frame,
 * grown to the largest frame's size as later frames are read.
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
    int copying;       /* append what is read to st->copy */
    int copy_over;     /* the copy outgrew IMT_GIF_COPY_CAP */
    size_t copy_len;
    const uint8_t *mem; /* redo: read from here */
    size_t mem_len, mem_pos;
    int from_mem;
    uint8_t head[13];  /* signature and screen descriptor */
    int opacity;       /* the transparent index of the next frame, -1 if none */
    /* the current frame's colours, as ImageMagick builds them: ncolors
     * entries, an index at or past ncolors reads entry 0 */
    unsigned ncolors;
    uint8_t fpal[257 * 3];
    uint8_t fgrey[257];
    /* frame 0 */
    uint32_t w0, h0;
    int all_grey0;
    /* ImageMagick's LZW decoder (coders/gif.c ReadBlobLZWByte), fed with
     * giflib's raw data blocks */
    struct {
        uint8_t buf[2 + 255 + 2];
        size_t count, bit;
        int eof;          /* the zero block (or the end of the data) was read */
        unsigned data_size, maxv, clear, end, bits, maxcode, slot;
        int genesis;
        int first, last;
        uint16_t prefix[4096];
        uint16_t suffix[4096];
        uint16_t stack[2 * 4096];
        int sp;
    } z;
    /* the volume */
    uint32_t dx, dy;
    int colour_later;  /* a later frame has a non-grey pixel */
    uint32_t rows_done;
} gctx;

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
                break;
            }
            c->chunk = d;
            c->chunk_len = n;
            c->chunk_pos = 0;
        }
        size_t k = c->chunk_len - c->chunk_pos;
        if (k > (size_t)(len - got)) k = (size_t)(len - got);
        memcpy(buf + got, c->chunk + c->chunk_pos, k);
        if (c->consumed < sizeof c->head) {
            size_t hk = sizeof c->head - (size_t)c->consumed;
            memcpy(c->head + c->consumed, c->chunk + c->chunk_pos, hk < k ? hk : k);
        }
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

/* The current frame's colours as ImageMagick's GIF reader builds them:
 * the local table's size, else the global size the screen descriptor
 * declares (also when it has no table: then every entry is black), one more
 * (black) when the transparent index is that size; entries the file does
 * not give are black; an index past them reads entry 0. */
static void load_palette(gctx *c, const GifFileType *gif)
{
    const ColorMapObject *m = gif->Image.ColorMap ? gif->Image.ColorMap : gif->SColorMap;
    unsigned n = gif->Image.ColorMap ? (unsigned)gif->Image.ColorMap->ColorCount
                                     : 1u << ((c->head[10] & 7) + 1);
    if (n > 256) n = 256;
    memset(c->fpal, 0, sizeof c->fpal);
    int have = m ? m->ColorCount : 0;
    for (int i = 0; i < have && i < 256; i++) {
        c->fpal[3 * i] = m->Colors[i].Red;
        c->fpal[3 * i + 1] = m->Colors[i].Green;
        c->fpal[3 * i + 2] = m->Colors[i].Blue;
    }
    if (c->opacity >= 0 && (unsigned)c->opacity == n) n++;
    c->ncolors = n;
    for (unsigned i = 0; i < 257; i++)
        c->fgrey[i] = c->fpal[3 * i] == c->fpal[3 * i + 1] &&
                      c->fpal[3 * i + 1] == c->fpal[3 * i + 2];
}

/* ---- ImageMagick's LZW decoder -------------------------------------------
 * giflib's own decoder differs from ImageMagick's on broken streams (codes
 * after the end code, a first code past the table, data running on past the
 * image), so the pixels come from a decoder with ImageMagick's rules, over
 * the data blocks giflib hands out (DGifGetCode / DGifGetCodeNext). */
static void lzw_reset(gctx *c)
{
    c->z.bits = c->z.data_size + 1;
    c->z.maxcode = 1u << c->z.bits;
    c->z.slot = c->z.maxv + 3;
    c->z.genesis = 1;
}

/* Start a frame's data (its descriptor read): the minimum code size and the
 * first data block, which ImageMagick reads at once too. */
static int lzw_start(gctx *c, GifFileType *gif)
{
    memset(&c->z, 0, sizeof c->z);
    c->z.count = 2;
    c->z.bit = 16;
    int size = 0;
    GifByteType *blk = NULL;
    if (DGifGetCode(gif, &size, &blk) != GIF_OK) return GIF_ERROR;
    c->z.data_size = (unsigned)size;
    c->z.maxv = (1u << size) - 1;
    c->z.clear = c->z.maxv + 1;
    c->z.end = c->z.maxv + 2;
    for (unsigned i = 0; i <= c->z.maxv; i++) c->z.suffix[i] = (uint16_t)i;
    lzw_reset(c);
    if (!blk) {
        c->z.eof = 1;
    } else {
        memcpy(c->z.buf + 2, blk + 1, blk[0]);
        c->z.count += blk[0];
    }
    return GIF_OK;
}

static int lzw_next_block(gctx *c, GifFileType *gif, GifByteType **blk)
{
    (void)c;
    return DGifGetCodeNext(gif, blk);
}

static int lzw_code(gctx *c, GifFileType *gif, unsigned bits)
{
    while (c->z.bit + bits > 8 * c->z.count && !c->z.eof) {
        c->z.buf[0] = c->z.buf[c->z.count - 2];
        c->z.buf[1] = c->z.buf[c->z.count - 1];
        c->z.bit -= 8 * (c->z.count - 2);
        c->z.count = 2;
        GifByteType *blk = NULL;
        if (lzw_next_block(c, gif, &blk) != GIF_OK || !blk) {
            c->z.eof = 1;
        } else {
            memcpy(c->z.buf + 2, blk + 1, blk[0]);
            c->z.count += blk[0];
        }
    }
    if (c->z.bit + bits > 8 * c->z.count) return -1;
    /* bits <= 12 from bit: within 3 bytes (buf has 2 spare bytes at its end;
     * bits past count are masked off) */
    const uint8_t *p = c->z.buf + c->z.bit / 8;
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
    int code = (int)((v >> (c->z.bit % 8)) & ((1u << bits) - 1));
    c->z.bit += bits;
    return code;
}

static void lzw_push(gctx *c, unsigned v)
{
    if (c->z.sp < (int)(sizeof c->z.stack / sizeof c->z.stack[0])) c->z.stack[c->z.sp++] = (uint16_t)v;
}

/* The next pixel value (0..4095), or -1. */
static int lzw_byte(gctx *c, GifFileType *gif)
{
    for (;;) {
        if (c->z.sp) return c->z.stack[--c->z.sp];
        if (c->z.genesis) {
            c->z.genesis = 0;
            do {
                c->z.first = lzw_code(c, gif, c->z.bits);
                c->z.last = c->z.first;
            } while (c->z.first >= 0 && (unsigned)c->z.first == c->z.clear);
            return c->z.first;
        }
        int code = lzw_code(c, gif, c->z.bits);
        if (code < 0) return code;
        if ((unsigned)code == c->z.clear) {
            lzw_reset(c);
            continue;
        }
        if ((unsigned)code == c->z.end) return -1;
        unsigned value;
        if ((unsigned)code < c->z.slot) {
            value = (unsigned)code;
        } else {
            lzw_push(c, (unsigned)c->z.first);
            value = (unsigned)c->z.last;
        }
        unsigned n = 0;
        while (value > c->z.maxv) {
            if (n++ > 4096 || value >= 4096) return -1;
            lzw_push(c, c->z.suffix[value]);
            value = c->z.prefix[value];
        }
        c->z.first = c->z.suffix[value];
        lzw_push(c, (unsigned)c->z.first);
        if (c->z.slot < 4096) {
            c->z.prefix[c->z.slot] = (uint16_t)c->z.last;
            c->z.suffix[c->z.slot] = (uint16_t)c->z.first;
            c->z.slot++;
            if (c->z.slot >= c->z.maxcode && c->z.bits < 12) {
                c->z.bits++;
                c->z.maxcode = 1u << c->z.bits;
            }
        }
        c->z.last = code;
        return c->z.stack[--c->z.sp];
    }
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

/* Decode the current frame's pixels (its descriptor just read; colours in
 * c->fpal). kind 0: frame 0, sampled into st->px for a volume of c->dx x
 * c->dy, c->all_grey0 set; kind 1: a later frame, *colour set when a pixel
 * is not grey (and check is set). Every pixel is decoded, as ImageMagick
 * does: a frame with too little data fails the file there. Reading stops
 * after the last pixel's code, where ImageMagick stops: what is left of the
 * data (the zero block, or more blocks) is walked as records next. */
static imt_err frame_pixels(gctx *c, GifFileType *gif, int kind, int check, int *colour,
                            char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    imt_gif_state *st = c->st;
    uint32_t w = (uint32_t)gif->Image.Width, h = (uint32_t)gif->Image.Height;
    int ocols = 0, orows = 0;
    if (kind == 0) {
        ocols = imt__compat_side(c->dx, c->dx, c->dy);
        orows = imt__compat_side(c->dy, c->dx, c->dy);
        imt__nn_map((int)c->dx, ocols, st->xmap);
        imt__nn_map((int)c->dy, orows, st->ymap);
        IMT_TRY(imt__grow((void **)&st->px, &st->px_cap, (size_t)ocols * (size_t)orows * 3));
        memset(st->px, 0, (size_t)ocols * (size_t)orows * 3);
        c->all_grey0 = 1;
    }
    IMT_TRY(imt__grow((void **)&st->line, &st->line_cap, w));
    if (lzw_start(c, gif) != GIF_OK) {
        err = gif_fail(c, gif->Error, kind ? "in a later frame's data" : "in the first frame's data",
                       detail, cap);
        goto cleanup;
    }
    c->rows_done = 0;
    const unsigned nc = c->ncolors;
    for (uint32_t r = 0; r < h; r++) {
        if (deadline_passed(c)) {
            imt__set_detail(detail, cap, "GIF decoding stopped at the time budget");
            err = IMT_E_TIMEOUT;
            goto cleanup;
        }
        uint8_t *ln = st->line;
        for (uint32_t x = 0; x < w; x++) {
            int v = lzw_byte(c, gif);
            if (v < 0) {
                if (c->read_err) {
                    err = c->read_err;
                    imt__set_detail(detail, cap, "GIF read failed: %s", imt_strerror(err));
                } else {
                    err = c->eof ? IMT_E_TRUNCATED : IMT_E_CORRUPT;
                    imt__set_detail(detail, cap, "GIF %s: the image data ends after %u of %u "
                                    "rows (%llu bytes)", kind ? "a later frame" : "first frame",
                                    r, h, (unsigned long long)c->consumed);
                }
                goto cleanup;
            }
            ln[x] = (uint8_t)((unsigned)v < nc ? (unsigned)v : 0u);
        }
        c->rows_done++;
        if (kind == 0) {
            if (c->all_grey0) {
                int g = 1;
                for (uint32_t x = 0; x < w; x++) g &= c->fgrey[ln[x]];
                c->all_grey0 = g;
            }
            uint32_t y = gif->Image.Interlace ? deinterlace(r, h) : r;
            for (int i = 0; i < orows; i++) {
                if ((uint32_t)st->ymap[i] != y) continue;
                uint8_t *dst = st->px + (size_t)i * (size_t)ocols * 3;
                for (int j = 0; j < ocols; j++) {
                    uint32_t x = (uint32_t)st->xmap[j];
                    if (x < w) memcpy(dst + 3 * (size_t)j, c->fpal + 3 * (size_t)ln[x], 3);
                }
            }
        } else if (check && !*colour) {
            for (uint32_t x = 0; x < w; x++)
                if (!c->fgrey[ln[x]]) {
                    *colour = 1;
                    break;
                }
        }
    }
cleanup:
    return err;
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

/* ---- the records, as ImageMagick's ReadGIFImage walks them ---------------
 * giflib reads the header, each image descriptor with its colour table and
 * the data blocks; the loop between them is ImageMagick's, because it is
 * more lenient than giflib's (bytes that start no record are skipped; the
 * data may end between records) and it resumes after a frame's last pixel,
 * not after its data's end: leftover data blocks are walked as records,
 * out of step, as ImageMagick does. giflib reads through our callback
 * without buffering, so both read the same stream. */
static int raw_byte(gctx *c, GifFileType *gif)
{
    (void)c;
    GifByteType b;
    return gif_read(gif, &b, 1) == 1 ? b : -1;
}

/* ImageMagick's ReadBlobBlock: 0 at the end, a zero block or a short one. */
static int raw_block(gctx *c, GifFileType *gif, uint8_t *buf)
{
    int n = raw_byte(c, gif);
    if (n <= 0) return 0;
    return gif_read(gif, buf, n) == n ? n : 0;
}

/* Walk the records. redo: stop after frame 0's pixels (the copy of the
 * file's start). Else every frame: frame 0 sampled, the others checked. */
static imt_err walk(gctx *c, GifFileType *gif, imt_luma *out, int redo, int *nframes,
                    char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    int frames = 0;
    uint8_t buf[256];
    c->opacity = -1;
    for (;;) {
        int b = raw_byte(c, gif);
        if (b < 0 || b == ';') break;
        if (b == '!') {
            int label = raw_byte(c, gif);
            if (label < 0) {
                if (c->read_err) {
                    err = c->read_err;
                    imt__set_detail(detail, cap, "GIF read failed: %s", imt_strerror(err));
                } else {
                    err = IMT_E_TRUNCATED;
                    imt__set_detail(detail, cap, "GIF data ends inside an extension");
                }
                goto cleanup;
            }
            memset(buf, 0, sizeof buf);
            while (raw_block(c, gif, buf)) {
            }
            /* a graphic control extension: the transparent index, from its
             * last block, when the flag bit is set */
            if (label == 0xf9 && (buf[0] & 1)) c->opacity = buf[3];
            b = label; /* ImageMagick goes on with the label byte */
        }
        if (b != ',') continue;
        if (DGifGetImageDesc(gif) != GIF_OK) {
            err = gif_fail(c, gif->Error, frames ? "in a later frame's header"
                                                 : "in the first frame's header", detail, cap);
            goto cleanup;
        }
        IMT_TRY(check_frame(c, gif, frames, detail, cap));
        uint32_t fw = (uint32_t)gif->Image.Width, fh = (uint32_t)gif->Image.Height;
        load_palette(c, gif);
        if (frames == 0) {
            if (!redo) {
                c->w0 = c->dx = fw;
                c->h0 = c->dy = fh;
                /* the picture hashed is the first frame (or the volume): its
                 * size is what is reported from here on */
                out->width = fw;
                out->height = fh;
            }
            IMT_TRY(frame_pixels(c, gif, 0, 0, NULL, detail, cap));
            c->copying = 0;
            if (redo) {
                frames++;
                break;
            }
        } else {
            if (fw > c->dx) c->dx = fw;
            if (fh > c->dy) c->dy = fh;
            out->width = c->dx;
            out->height = c->dy;
            /* ImageMagick fails the whole file on a broken later frame */
            int colour = 0;
            IMT_TRY(frame_pixels(c, gif, 1, c->all_grey0 && !c->colour_later, &colour, detail,
                                 cap));
            if (colour) c->colour_later = 1;
        }
        c->opacity = -1;
        frames++;
        /* giflib keeps a record (and a copy of the local table) per frame */
        GifFreeSavedImages(gif);
        gif->ImageCount = 0;
        if (deadline_passed(c)) {
            imt__set_detail(detail, cap, "GIF decoding stopped at the time budget");
            err = IMT_E_TIMEOUT;
            goto cleanup;
        }
    }
    if (c->read_err) {
        err = c->read_err;
        imt__set_detail(detail, cap, "GIF read failed: %s", imt_strerror(err));
    }
cleanup:
    *nframes = frames;
    return err;
}

/* Redo: decode frame 0 again from the copy, for the final volume size. */
static imt_err redo_frame0(gctx *c, imt_luma *out, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    int gerr = 0, frames = 0;
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
    err = walk(c, gif, out, 1, &frames, detail, cap);
    if (err == IMT_OK && frames != 1) {
        imt__set_detail(detail, cap, "GIF: the first frame could not be read again");
        err = IMT_E_INTERNAL;
    }
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
    IMT_TRY(walk(c, gif, out, 0, &frames, detail, cap));
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
        IMT_TRY(redo_frame0(c, out, detail, cap));
        c->all_grey0 = grey0;
    }
    int ocols = imt__compat_side(c->dx, c->dx, c->dy), orows = imt__compat_side(c->dy, c->dx, c->dy);
    IMT_TRY(imt__grow((void **)&st->plane, &st->plane_cap,
                 (size_t)ocols * (size_t)orows * sizeof(float)));
    finish_plane(c, ocols, orows);
    out->pix = st->plane;
    out->cols = ocols;
    out->rows = orows;
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
