/* engine/video/video.h -- video bytes -> a sequence of sampled frame lumas
 * (libavformat, libavcodec, libswscale), ready for the PDQ stage.
 *
 * The container is read through an imt__io (random access: a folder file's
 * descriptor, a file inside a disk image, a buffer in memory) by a custom
 * AVIOContext; nothing else is ever opened (external references in a
 * container are refused). One frame per seconds_per_hash is chosen by
 * presentation timestamp: the first frame at or after each multiple of it
 * from the stream's start, so variable frame-rate video is sampled evenly.
 * Each chosen frame goes through vPDQ's pixel path (swscale to RGB24 at the
 * frame's own size, SWS_AREA; then 0.299R+0.587G+0.114B in float) and is
 * handed to the caller, who hashes it. A result is a function of the bytes
 * and the options only: the decoder starts from fresh state per file, and
 * the frames skipped for speed are never ones the sampling could choose.
 */
#ifndef IMT_VIDEO_H
#define IMT_VIDEO_H

#include "common/common.h"

typedef struct imt__video_opts {
    double seconds_per_hash;   /* > 0 */
    uint64_t max_pixels;       /* a frame over this: IMT_E_TOO_LARGE */
    uint32_t max_dimension;    /* a side over this: IMT_E_TOO_LARGE */
    uint32_t max_frames;       /* sampled frames kept at most (more: stop, note) */
    uint64_t deadline_ms;      /* imt__now_ms() past this: IMT_E_TIMEOUT; 0 none */
    const volatile int *stop;  /* non-zero: IMT_E_INTERRUPTED */
    int threads;               /* codec threads (1: none) */
    int no_skip;               /* decode every frame (bench_video's comparison) */
} imt__video_opts;

typedef struct imt__video_info {
    uint32_t width, height;    /* of the video stream */
    double duration;           /* seconds, from the container; 0 unknown */
    char container[32];        /* libavformat's demuxer name */
    char codec[32];            /* the decoder's name */
    uint64_t decoded;          /* frames the decoder produced */
    int frames_capped;         /* stopped at max_frames */
    int partial;               /* decoding errors were skipped; detail says which */
} imt__video_info;

/* A sampled frame: luma is rows x cols floats (overwritable: the PDQ
 * stage's buffer 1), valid during the call. i is the frame's place among
 * the sampled frames (0, 1, ...), timestamp its presentation time in
 * seconds from the stream's start. Return IMT_OK to go on, anything else
 * stops decoding with that error. */
typedef imt_err (*imt__video_frame_fn)(void *ctx, float *luma, int rows, int cols,
                                       uint64_t i, double timestamp);

/* When decoding ends well: sampled frame i's number, the frames presented
 * before it, counted from the packets' timestamps (so skipped frames count). */
typedef void (*imt__video_number_fn)(void *ctx, uint64_t i, uint64_t number);

/* Decode io's video and call fn for each sampled frame, in timestamp
 * order, then num (may be NULL) for each. info is filled as far as known (also on errors). Errors:
 * IMT_E_CORRUPT (no video stream, undecodable), IMT_E_UNSUPPORTED (no
 * decoder for the codec), IMT_E_TOO_LARGE, IMT_E_TIMEOUT,
 * IMT_E_INTERRUPTED, IMT_E_IO (io failed), IMT_E_NOMEM; detail[cap] says
 * why. Never more than one frame's buffers (RGB24 and float luma) plus
 * the decoder's own state are held. */
imt_err imt__video_decode(const imt__io *io, const imt__video_opts *o,
                          imt__video_frame_fn fn, void *ctx, imt__video_info *info,
                          imt__video_number_fn num, char *detail, size_t cap);

#endif
