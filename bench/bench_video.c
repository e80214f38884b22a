/* bench/bench_video.c -- seconds of video hashed per CPU-second, against
 * FFmpeg's own decode at one frame a second, on the same files in one run.
 *
 *   bench_video FILE|DIR... [--reps R]
 *
 * For every video (sniffed: MP4/MOV, MKV/WebM, AVI, ASF, FLV, MPEG-TS),
 * one thread, best of R runs (default 3), CPU time of this process
 * (CLOCK_PROCESS_CPUTIME_ID) or of the child (wait4 rusage):
 *   imgtriage   imt_hash_file: vPDQ, one frame a second (what scan does,
 *               digests off): demux, decode, swscale to RGB24, PDQ
 *   no-skip     the same decode with every frame decoded (no skip_frame on
 *               frames before the next sampled time): what skipping saves
 *   ffmpeg      `ffmpeg -nostdin -loglevel error -i F -vf fps=1 -f null -`
 *               (the baseline the issue names: full decode, every frame, its
 *               own threads; its CPU time counts all of them)
 * Prints seconds of video per CPU-second for each and the ratio
 * imgtriage/ffmpeg. Files for a figure: e.g.
 *   ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=30:duration=60 \
 *          -c:v libx264 -preset veryfast -g 60 -bf 2 -pix_fmt yuv420p 720p.mp4
 * (a phone-like GOP of 2 s with B-frames), and the same with libx265. */
#include "imgtriage.h"
#include "hash/hash.h"
#include "video/video.h"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char **files;
static size_t nfiles, capfiles;

static void add(const char *p)
{
    struct stat st;
    if (stat(p, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        struct dirent **ents;
        int n = scandir(p, &ents, NULL, alphasort);
        for (int i = 0; i < n; i++) {
            if (ents[i]->d_name[0] != '.') {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", p, ents[i]->d_name);
                add(path);
            }
            free(ents[i]);
        }
        free(ents);
        return;
    }
    unsigned char head[IMT_SNIFF_BYTES];
    FILE *f = fopen(p, "rb");
    if (!f) return;
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    if (!imt_format_is_video(imt_sniff(head, n))) return;
    if (nfiles == capfiles) {
        capfiles = capfiles ? capfiles * 2 : 16;
        files = realloc(files, capfiles * sizeof *files);
    }
    files[nfiles++] = strdup(p);
}

/* The engine's decode without skipping, PDQ on each sampled frame. */
typedef struct ctx {
    imt_pdq_ctx *pdq;
} ctx;

static imt_err frame(void *c, float *luma, int rows, int cols, uint64_t i, double ts)
{
    (void)i;
    (void)ts;
    imt_pdq h[IMT_DIH__COUNT];
    int q;
    return imt__pdq_hash_luma(((ctx *)c)->pdq, luma, rows, cols, 0, h, &q);
}

static imt_err fd_pread(void *c, uint64_t off, void *buf, size_t cap, size_t *got)
{
    ssize_t n = pread(*(int *)c, buf, cap, (off_t)off);
    if (n < 0) return IMT_E_IO;
    *got = (size_t)n;
    return IMT_OK;
}

static double noskip(const char *path, ctx *c, size_t *frames)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return -1;
    imt__io io = {fd_pread, &fd, (uint64_t)st.st_size};
    imt__video_opts o = {.seconds_per_hash = 1, .max_pixels = 1u << 26, .max_dimension = 100000,
                         .max_frames = 36000, .threads = 1, .no_skip = 1};
    imt__video_info info;
    char detail[256] = "";
    double t0 = cpu_now();
    imt_err e = imt__video_decode(&io, &o, frame, c, &info, NULL, detail, sizeof detail);
    double t = cpu_now() - t0;
    close(fd);
    *frames = (size_t)info.decoded;
    return e == IMT_OK ? t : -1;
}

static double ffmpeg_cpu(const char *path)
{
    char *argv[] = {"ffmpeg", "-nostdin", "-loglevel", "error", "-i", (char *)path, "-vf", "fps=1",
                    "-f", "null", "-", NULL};
    pid_t pid;
    if (posix_spawnp(&pid, "ffmpeg", NULL, NULL, argv, environ) != 0) return -1;
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
        return -1;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else add(argv[i]);
    }
    if (!nfiles) {
        fprintf(stderr, "usage: bench_video FILE|DIR... [--reps R] (no video found)\n");
        return 2;
    }
    imt_hasher *h;
    imt_hash_opts ho;
    imt_hash_opts_init(&ho);
    if (imt_hasher_create(&h, &ho) != IMT_OK) return 1;
    ctx c;
    if (imt__pdq_ctx_create(&c.pdq) != IMT_OK) return 1;
    double tot_video = 0, tot_ours = 0, tot_noskip = 0, tot_ff = 0;
    int ff_ok = 1;
    printf("%-28s %8s %7s %10s %10s %10s %8s\n", "file", "video s", "frames", "imgtriage",
           "no-skip", "ffmpeg", "ratio");
    for (size_t i = 0; i < nfiles; i++) {
        double best = 1e300, bestns = 1e300, bestff = 1e300, dur = 0;
        size_t nfr = 0, decoded = 0;
        for (int r = 0; r < reps; r++) {
            imt_hash_result res;
            double t0 = cpu_now();
            imt_err e = imt_hash_file(h, files[i], &res);
            double t = cpu_now() - t0;
            if (e != IMT_OK) {
                fprintf(stderr, "%s: %s %s\n", files[i], imt_err_name(e), res.detail);
                break;
            }
            dur = res.duration;
            nfr = res.n_frames;
            if (t < best) best = t;
            double ns = noskip(files[i], &c, &decoded);
            if (ns >= 0 && ns < bestns) bestns = ns;
            double ff = ffmpeg_cpu(files[i]);
            if (ff < 0) ff_ok = 0;
            else if (ff < bestff) bestff = ff;
        }
        if (best == 1e300 || dur <= 0) continue;
        const char *b = strrchr(files[i], '/');
        printf("%-28.28s %8.1f %7zu %8.1f/s %8.1f/s %8.1f/s %7.2fx\n", b ? b + 1 : files[i], dur,
               nfr, dur / best, dur / bestns, ff_ok ? dur / bestff : 0.0,
               ff_ok ? bestff / best : 0.0);
        tot_video += dur;
        tot_ours += best;
        tot_noskip += bestns;
        tot_ff += bestff;
    }
    printf("total: %.1f s of video; seconds of video per CPU-second: imgtriage %.1f, no-skip %.1f, "
           "ffmpeg -vf fps=1 %.1f; imgtriage/ffmpeg %.2fx\n", tot_video, tot_video / tot_ours,
           tot_video / tot_noskip, ff_ok ? tot_video / tot_ff : 0.0,
           ff_ok ? tot_ff / tot_ours : 0.0);
    if (!ff_ok) printf("(ffmpeg not found or failed: no baseline)\n");
    imt__pdq_ctx_free(c.pdq);
    imt_hasher_free(h);
    for (size_t i = 0; i < nfiles; i++) free(files[i]);
    free(files);
    return 0;
}
