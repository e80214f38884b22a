/* engine/video/video.c -- demux, decode and sample a video through libav*.
 *
 * How the bytes get in: a custom AVIOContext whose read and seek callbacks
 * pread the item's imt__io; io_open is refused, so a container that names
 * another file (MOV data references, playlists) can open nothing. Only
 * the demuxers of the formats the sniffer recognises are allowed.
 *
 * Which frames: vPDQ's reference (vpdq/cpp/hashing/filehasher.cpp) takes
 * every (int)(seconds_per_hash * fps)-th decoded frame and stamps it
 * number / fps; on constant frame-rate video with an integer rate that is
 * the first frame at or after each multiple of seconds_per_hash, which is
 * what is taken here for any video, by presentation timestamp (so a
 * variable frame-rate phone video is sampled evenly in time, and a
 * 29.97 fps one does not drift). The frame's number is the count of
 * frames presented before it (counted from the packets' timestamps, so it
 * stays right when frames are skipped).
 *
 * Asking the decoder for less: a packet whose timestamp is before the next
 * sampled time can never be chosen, so when the codec can skip frames no
 * other frame refers to (H.264, MPEG-1/2/4, single-layer HEVC: see open_decoder),
 * those are not decoded
 * (skip_frame = AVDISCARD_NONREF for that packet only). The chosen frame
 * is never one of them, so the hashes do not depend on it. Seeking to the
 * next sampled time is not used: with the 1 s default and phone GOPs of
 * 1-2 s it would decode the same reference frames again.
 *
 * Pixels: the reference converts each chosen frame with swscale to RGB24
 * at the frame's own size (SWS_AREA), then takes 0.299R+0.587G+0.114B in
 * float (pdqbufferhasher.cpp); so does this file, so hashes agree with the
 * reference's bit for bit when the same frame is chosen.
 *
 * Limits: frame size checked from the stream header before the decoder is
 * opened and again on every decoded frame (resolution can change mid-
 * stream); the time budget is checked in the read callback, libav's
 * interrupt callback and per packet (an endless or looping stream ends
 * with IMT_E_TIMEOUT); at most max_frames frames are sampled.
 */
#include "video.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>

#define IOBUF 65536
/* Consecutive packets the decoder rejects before the video is corrupt. */
#define MAX_BAD_PACKETS 64
/* Buckets of the frame-number count (one per sampled time); past this the
 * count goes to the last bucket (a stream over 4 M sampled times long). */
#define MAX_BUCKETS ((size_t)1 << 22)

static const char *const demuxers =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,asf,flv,mpegts";

typedef struct vctx {
    const imt__io *io;
    uint64_t pos;
    imt_err ioerr;
    const imt__video_opts *o;
    imt_err why;                 /* what the interrupt callback stopped for */
} vctx;

static int stopped(vctx *v)
{
    if (v->o->stop && *v->o->stop) {
        v->why = IMT_E_INTERRUPTED;
        return 1;
    }
    if (v->o->deadline_ms && imt__now_ms() > v->o->deadline_ms) {
        v->why = IMT_E_TIMEOUT;
        return 1;
    }
    return 0;
}

static int interrupt_cb(void *p)
{
    return stopped(p);
}

static int vio_read(void *opaque, uint8_t *buf, int size)
{
    vctx *v = opaque;
    if (stopped(v)) return AVERROR_EXIT;
    if (size <= 0) return 0;
    if (v->pos >= v->io->size) return AVERROR_EOF;
    size_t got = 0;
    uint64_t left = v->io->size - v->pos;
    size_t want = (uint64_t)size < left ? (size_t)size : (size_t)left;
    imt_err e = v->io->pread(v->io->ctx, v->pos, buf, want, &got);
    if (e != IMT_OK) {
        v->ioerr = e;
        return AVERROR(EIO);
    }
    if (got == 0) return AVERROR_EOF;
    if (got > want) {
        v->ioerr = IMT_E_INTERNAL;
        return AVERROR(EIO);
    }
    v->pos += got;
    return (int)got;
}

static int64_t vio_seek(void *opaque, int64_t off, int whence)
{
    vctx *v = opaque;
    whence &= ~AVSEEK_FORCE;
    int64_t base;
    switch (whence) {
    case AVSEEK_SIZE: return (int64_t)v->io->size;
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)v->pos; break;
    case SEEK_END: base = (int64_t)v->io->size; break;
    default: return AVERROR(EINVAL);
    }
    if ((off > 0 && base > INT64_MAX - off) || base + off < 0) return AVERROR(EINVAL);
    v->pos = (uint64_t)(base + off);
    return (int64_t)v->pos;
}

/* No container may make libav open anything (a MOV data reference, an
 * HLS or concat playlist): evidence is this item's bytes only. */
static int deny_open(struct AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                     AVDictionary **options)
{
    (void)s; (void)pb; (void)url; (void)flags; (void)options;
    return AVERROR(EPERM);
}

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;
static void quiet(void)
{
    av_log_set_level(AV_LOG_QUIET); /* the library never writes to stderr */
}

static void averr(char *detail, size_t cap, const char *what, int rc)
{
    char buf[AV_ERROR_MAX_STRING_SIZE] = "";
    av_strerror(rc, buf, sizeof buf);
    imt__set_detail(detail, cap, "%s: %s", what, buf);
}

/* The state of one decode. */
typedef struct vdec {
    vctx v;
    AVFormatContext *fc;
    AVIOContext *avio;
    AVCodecContext *cc;
    AVPacket *pkt;
    AVFrame *fr;
    struct SwsContext *sws;
    uint8_t *rgb;
    size_t rgb_cap;
    float *luma;
    size_t luma_cap;
    int stream;
    AVRational tb;
    int64_t start;               /* stream start in tb; AV_NOPTS_VALUE: first frame's */
    uint64_t k;                  /* the next sampled time is k * seconds_per_hash */
    uint32_t *bucket;            /* packets per sampled-time bucket (frame numbers) */
    size_t nbucket;
    uint64_t *sample_k;          /* bucket of each sampled frame */
    size_t nsampled;
    int skip_ok;                 /* the codec can discard non-reference frames */
    imt__video_frame_fn fn;
    void *ctx;
    imt__video_info *info;
    char *detail;
    size_t cap;
} vdec;

/* Seconds from the stream's start of a timestamp in tb. */
static double rel_seconds(const vdec *d, int64_t ts)
{
    /* in double: a damaged stream's timestamps may be any int64 */
    return ((double)ts - (double)d->start) * av_q2d(d->tb);
}

/* The bucket of a presentation time: the sampled times at or before it. */
static size_t bucket_of(const vdec *d, double rel)
{
    if (rel < 0) return 0;
    double b = floor(rel / d->v.o->seconds_per_hash + 1e-9) + 1.0;
    return b >= (double)(MAX_BUCKETS - 1) ? MAX_BUCKETS - 1 : (size_t)b;
}

static imt_err count_packet(vdec *d, int64_t ts)
{
    if (ts == AV_NOPTS_VALUE || d->start == AV_NOPTS_VALUE) ts = d->start;
    size_t b = ts == AV_NOPTS_VALUE ? 0 : bucket_of(d, rel_seconds(d, ts));
    if (b >= d->nbucket) {
        size_t n = d->nbucket ? d->nbucket : 64;
        while (n <= b) n *= 2;
        if (n > MAX_BUCKETS) n = MAX_BUCKETS;
        uint32_t *p = imt__realloc(d->bucket, n * sizeof *p);
        if (!p) return IMT_E_NOMEM;
        memset(p + d->nbucket, 0, (n - d->nbucket) * sizeof *p);
        d->bucket = p;
        d->nbucket = n;
    }
    if (d->bucket[b] < UINT32_MAX) d->bucket[b]++;
    return IMT_OK;
}

static imt_err check_size(const vdec *d, int w, int h)
{
    const imt__video_opts *o = d->v.o;
    if (w <= 0 || h <= 0) {
        imt__set_detail(d->detail, d->cap, "video frame of %dx%d pixels", w, h);
        return IMT_E_CORRUPT;
    }
    if ((o->max_dimension && ((uint32_t)w > o->max_dimension || (uint32_t)h > o->max_dimension)) ||
        (o->max_pixels && (uint64_t)w * (uint64_t)h > o->max_pixels)) {
        imt__set_detail(d->detail, d->cap,
                        "video frames of %dx%d pixels are over the limits (--max-dimension "
                        "%u, %llu pixels a frame)", w, h, (unsigned)o->max_dimension,
                        (unsigned long long)o->max_pixels);
        return IMT_E_TOO_LARGE;
    }
    return IMT_OK;
}

/* A decoded frame: sample it if it is the first at or after the next
 * sampled time. */
static imt_err on_frame(vdec *d)
{
    AVFrame *f = d->fr;
    d->info->decoded++;
    int64_t ts = f->best_effort_timestamp;
    if (ts == AV_NOPTS_VALUE) ts = f->pts;
    if (ts == AV_NOPTS_VALUE) return IMT_OK; /* no time: cannot be placed */
    if (d->start == AV_NOPTS_VALUE) d->start = ts;
    double rel = rel_seconds(d, ts);
    double sph = d->v.o->seconds_per_hash;
    if (rel + 1e-9 < (double)d->k * sph) return IMT_OK;
    imt_err err = check_size(d, f->width, f->height);
    if (err) return err;
    if (d->nsampled >= d->v.o->max_frames) {
        d->info->frames_capped = 1;
        return IMT_E_INTERRUPTED; /* the caller's cap: stop reading (not an error) */
    }
    int w = f->width, h = f->height;
    d->sws = sws_getCachedContext(d->sws, w, h, (enum AVPixelFormat)f->format, w, h,
                                  AV_PIX_FMT_RGB24, SWS_AREA, NULL, NULL, NULL);
    if (!d->sws) {
        imt__set_detail(d->detail, d->cap, "swscale cannot convert %s frames",
                        av_get_pix_fmt_name((enum AVPixelFormat)f->format)
                            ? av_get_pix_fmt_name((enum AVPixelFormat)f->format) : "unknown");
        return IMT_E_UNSUPPORTED;
    }
    size_t stride = ((size_t)w * 3 + 63) & ~(size_t)63, need, npx;
    if (!imt__mul_ok(stride, (size_t)h, &need) || !imt__mul_ok((size_t)w, (size_t)h, &npx) ||
        npx > SIZE_MAX / sizeof(float))
        return IMT_E_TOO_LARGE;
    need += 64;
    if (need > d->rgb_cap) {
        uint8_t *p = imt__realloc(d->rgb, need);
        if (!p) return IMT_E_NOMEM;
        d->rgb = p;
        d->rgb_cap = need;
    }
    if (npx > d->luma_cap) {
        float *p = imt__realloc(d->luma, npx * sizeof *p);
        if (!p) return IMT_E_NOMEM;
        d->luma = p;
        d->luma_cap = npx;
    }
    uint8_t *dst[4] = {d->rgb, NULL, NULL, NULL};
    int dstride[4] = {(int)stride, 0, 0, 0};
    if (sws_scale(d->sws, (const uint8_t *const *)f->data, f->linesize, 0, h, dst, dstride) != h) {
        imt__set_detail(d->detail, d->cap, "swscale failed on a %dx%d frame", w, h);
        return IMT_E_CORRUPT;
    }
    for (int y = 0; y < h; y++) {
        const uint8_t *r = d->rgb + (size_t)y * stride;
        float *o = d->luma + (size_t)y * (size_t)w;
        for (int x = 0; x < w; x++)
            o[x] = 0.299f * (float)r[3 * x] + 0.587f * (float)r[3 * x + 1] +
                   0.114f * (float)r[3 * x + 2];
    }
    err = d->fn(d->ctx, d->luma, h, w, (uint64_t)d->nsampled, rel);
    if (err) return err;
    d->sample_k[d->nsampled++] = d->k;
    double next = floor(rel / sph + 1e-9) + 1;
    /* a timestamp past 2^63 sampled times (damaged): nothing after it */
    d->k = next < 9.2e18 ? (uint64_t)next : UINT64_MAX;
    return IMT_OK;
}

static imt_err drain(vdec *d)
{
    for (;;) {
        int rc = avcodec_receive_frame(d->cc, d->fr);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return IMT_OK;
        if (rc < 0) {
            d->info->partial = 1;
            averr(d->detail, d->cap, "decoding failed", rc);
            return IMT_OK; /* the next packet may decode */
        }
        imt_err e = on_frame(d);
        av_frame_unref(d->fr);
        if (e) return e;
    }
}

static imt_err open_input(vdec *d)
{
    d->fc = avformat_alloc_context();
    uint8_t *iobuf = av_malloc(IOBUF);
    if (!d->fc || !iobuf) {
        av_free(iobuf);
        return IMT_E_NOMEM;
    }
    d->avio = avio_alloc_context(iobuf, IOBUF, 0, &d->v, vio_read, NULL, vio_seek);
    if (!d->avio) {
        av_free(iobuf);
        return IMT_E_NOMEM;
    }
    d->fc->pb = d->avio;
    d->fc->flags |= AVFMT_FLAG_CUSTOM_IO;
    d->fc->interrupt_callback.callback = interrupt_cb;
    d->fc->interrupt_callback.opaque = &d->v;
    d->fc->io_open = deny_open;
    AVDictionary *opt = NULL;
    av_dict_set(&opt, "format_whitelist", demuxers, 0);
    int rc = avformat_open_input(&d->fc, NULL, NULL, &opt);
    av_dict_free(&opt);
    if (rc < 0) {
        /* avformat_open_input frees the context on failure */
        d->fc = NULL;
        if (d->v.why) return d->v.why;
        if (d->v.ioerr) return d->v.ioerr;
        averr(d->detail, d->cap, "not a readable video container", rc);
        return rc == AVERROR(ENOMEM) ? IMT_E_NOMEM : IMT_E_CORRUPT;
    }
    snprintf(d->info->container, sizeof d->info->container, "%s",
             d->fc->iformat && d->fc->iformat->name ? d->fc->iformat->name : "");
    /* find_stream_info decodes a few frames itself: the pixel limit holds
     * for those decoders too (libavcodec refuses larger frames before it
     * allocates them) */
    unsigned ns = d->fc->nb_streams;
    AVDictionary **sopt = ns ? av_calloc(ns, sizeof *sopt) : NULL;
    if (ns && !sopt) return IMT_E_NOMEM;
    int64_t maxpx = d->v.o->max_pixels && d->v.o->max_pixels < INT64_MAX
                        ? (int64_t)d->v.o->max_pixels : INT64_MAX;
    for (unsigned i = 0; i < ns; i++) av_dict_set_int(&sopt[i], "max_pixels", maxpx, 0);
    rc = avformat_find_stream_info(d->fc, sopt);
    for (unsigned i = 0; i < ns; i++) av_dict_free(&sopt[i]);
    av_free(sopt);
    if (rc < 0) {
        if (d->v.why) return d->v.why;
        if (d->v.ioerr) return d->v.ioerr;
        averr(d->detail, d->cap, "cannot read the streams", rc);
        return IMT_E_CORRUPT;
    }
    return IMT_OK;
}

static imt_err open_decoder(vdec *d)
{
    d->stream = -1;
    for (unsigned i = 0; i < d->fc->nb_streams; i++) {
        const AVStream *s = d->fc->streams[i];
        if (s->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
            !(s->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
            d->stream = (int)i;
            break;
        }
    }
    if (d->stream < 0) {
        imt__set_detail(d->detail, d->cap, "no video stream in the %s container",
                        d->info->container);
        return IMT_E_CORRUPT;
    }
    AVStream *s = d->fc->streams[d->stream];
    const AVCodecParameters *par = s->codecpar;
    d->info->width = par->width > 0 ? (uint32_t)par->width : 0;
    d->info->height = par->height > 0 ? (uint32_t)par->height : 0;
    if (d->fc->duration > 0) d->info->duration = (double)d->fc->duration / AV_TIME_BASE;
    imt_err err = check_size(d, par->width, par->height);
    if (err) return err;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec) {
        const char *n = avcodec_get_name(par->codec_id);
        imt__set_detail(d->detail, d->cap, "no decoder for %s video", n ? n : "this");
        return IMT_E_UNSUPPORTED;
    }
    snprintf(d->info->codec, sizeof d->info->codec, "%s", codec->name);
    d->cc = avcodec_alloc_context3(codec);
    if (!d->cc) return IMT_E_NOMEM;
    if (avcodec_parameters_to_context(d->cc, par) < 0) return IMT_E_NOMEM;
    d->cc->thread_count = d->v.o->threads > 0 ? d->v.o->threads : 1;
    d->cc->thread_type = FF_THREAD_SLICE | FF_THREAD_FRAME;
    d->cc->max_pixels = d->v.o->max_pixels && d->v.o->max_pixels < INT64_MAX
                            ? (int64_t)d->v.o->max_pixels : INT64_MAX;
    int rc = avcodec_open2(d->cc, codec, NULL);
    if (rc < 0) {
        averr(d->detail, d->cap, "cannot open the decoder", rc);
        return IMT_E_UNSUPPORTED;
    }
    d->tb = s->time_base;
    if (d->tb.num <= 0 || d->tb.den <= 0) {
        imt__set_detail(d->detail, d->cap, "the video stream has no time base");
        return IMT_E_CORRUPT;
    }
    d->start = s->start_time;
    /* Codecs whose non-reference frames no other frame ever uses: H.264
     * (nal_ref_idc 0), MPEG-1/2 and MPEG-4 part 2 B-frames. Not HEVC: its
     * "non-reference" NAL types are sub-layer non-reference pictures, which
     * pictures of a higher temporal sub-layer may still predict from (phones
     * record temporally scalable HEVC), so skipping them could change a
     * sampled frame's pixels -- unless the stream has one sub-layer, as its
     * hvcC record (MP4, MKV) says: numTemporalLayers, bits 5..3 of byte 21. */
    switch (par->codec_id) {
    case AV_CODEC_ID_H264: case AV_CODEC_ID_MPEG1VIDEO: case AV_CODEC_ID_MPEG2VIDEO:
    case AV_CODEC_ID_MPEG4:
        d->skip_ok = 1;
        break;
    case AV_CODEC_ID_HEVC:
        d->skip_ok = par->extradata && par->extradata_size >= 23 && par->extradata[0] == 1 &&
                     ((par->extradata[21] >> 3) & 7) == 1;
        break;
    default:
        d->skip_ok = 0;
    }
    return IMT_OK;
}

static imt_err run(vdec *d)
{
    imt_err err = IMT_OK;
    IMT_TRY(open_input(d));
    IMT_TRY(open_decoder(d));
    if (!(d->pkt = av_packet_alloc()) || !(d->fr = av_frame_alloc())) return IMT_E_NOMEM;
    size_t cap = d->v.o->max_frames ? d->v.o->max_frames : 1;
    d->sample_k = imt__calloc(cap, sizeof *d->sample_k);
    if (!d->sample_k) return IMT_E_NOMEM;
    int bad = 0;
    for (;;) {
        if (stopped(&d->v)) return d->v.why;
        int rc = av_read_frame(d->fc, d->pkt);
        if (rc == AVERROR_EOF) break;
        if (rc < 0) {
            if (d->v.why) return d->v.why;
            if (d->v.ioerr) return d->v.ioerr;
            if (rc == AVERROR(ENOMEM)) return IMT_E_NOMEM;
            d->info->partial = 1; /* damaged or cut short: what was read counts */
            averr(d->detail, d->cap, "the container ends or breaks", rc);
            break;
        }
        if (d->pkt->stream_index != d->stream) {
            av_packet_unref(d->pkt);
            continue;
        }
        int64_t ts = d->pkt->pts != AV_NOPTS_VALUE ? d->pkt->pts : d->pkt->dts;
        if (d->start == AV_NOPTS_VALUE && ts != AV_NOPTS_VALUE && d->pkt->pts == ts)
            d->start = ts; /* first presented packet (key frame) when the stream has no start */
        IMT_TRY(count_packet(d, ts));
        /* a packet presented before the next sampled time is never chosen */
        int skip = d->skip_ok && !d->v.o->no_skip && d->pkt->pts != AV_NOPTS_VALUE && d->start != AV_NOPTS_VALUE &&
                   rel_seconds(d, d->pkt->pts) + 1e-9 < (double)d->k * d->v.o->seconds_per_hash;
        d->cc->skip_frame = skip ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
        rc = avcodec_send_packet(d->cc, d->pkt);
        av_packet_unref(d->pkt);
        if (rc < 0 && rc != AVERROR(EAGAIN)) {
            if (rc == AVERROR(ENOMEM)) return IMT_E_NOMEM;
            d->info->partial = 1;
            averr(d->detail, d->cap, "a damaged video packet was skipped", rc);
            if (++bad > MAX_BAD_PACKETS) {
                averr(d->detail, d->cap, "the video does not decode", rc);
                return IMT_E_CORRUPT;
            }
        } else bad = 0;
        err = drain(d);
        if (err) goto cleanup;
    }
    d->cc->skip_frame = AVDISCARD_DEFAULT;
    if (avcodec_send_packet(d->cc, NULL) >= 0) IMT_TRY(drain(d));
cleanup:
    return err;
}

imt_err imt__video_decode(const imt__io *io, const imt__video_opts *o,
                          imt__video_frame_fn fn, void *ctx, imt__video_info *info,
                          imt__video_number_fn num, char *detail, size_t cap)
{
    if (!io || !io->pread || !o || !fn || !info || !(o->seconds_per_hash > 0) ||
        !isfinite(o->seconds_per_hash))
        return IMT_E_INVALID;
    pthread_once(&quiet_once, quiet);
    memset(info, 0, sizeof *info);
    vdec d;
    memset(&d, 0, sizeof d);
    d.v.io = io;
    d.v.o = o;
    d.fn = fn;
    d.ctx = ctx;
    d.info = info;
    d.detail = detail;
    d.cap = cap;
    d.start = AV_NOPTS_VALUE;
    imt_err err = run(&d);
    if (err == IMT_E_INTERRUPTED && info->frames_capped) err = IMT_OK;
    if (err == IMT_OK && d.nsampled == 0) {
        if (!(detail && detail[0]))
            imt__set_detail(detail, cap, "no frame of the video could be decoded");
        err = IMT_E_CORRUPT;
    }
    if (err == IMT_E_TIMEOUT)
        imt__set_detail(detail, cap, "over the time budget after %llu frames",
                        (unsigned long long)info->decoded);
    else if (err == IMT_E_INTERRUPTED)
        imt__set_detail(detail, cap, "stopped on request");
    if (num && err == IMT_OK) {
        /* frames presented before sampled frame i: the packets of buckets
         * up to its sampled time's */
        uint64_t run_sum = 0;
        size_t b = 0;
        for (size_t i = 0; i < d.nsampled; i++) {
            uint64_t k = d.sample_k[i];
            while (b < d.nbucket && b <= k) run_sum += d.bucket[b++];
            num(ctx, i, run_sum);
        }
    }
    imt__free(d.sample_k);
    imt__free(d.bucket);
    imt__free(d.rgb);
    imt__free(d.luma);
    sws_freeContext(d.sws);
    av_frame_free(&d.fr);
    av_packet_free(&d.pkt);
    avcodec_free_context(&d.cc);
    if (d.fc) avformat_close_input(&d.fc);
    if (d.avio) {
        av_freep(&d.avio->buffer);
        avio_context_free(&d.avio);
    }
    return err;
}
