/* engine/triage/classify.c -- the likelihood class of a file from its path:
 * pictures and videos by extension, user-content folders before ordinary
 * ones before system and program folders. Pure; no I/O. The lists are in
 * README ("Preview"). */
#include "triage.h"

#include <string.h>

static const char *const class_names[IMT_CLASS__COUNT] = {
    "user-media", "media", "user-other", "system-media", "other", "system-other",
    "deleted-media", "deleted-other"};

/* Deleted files right after the living of their kind in user folders: a
 * deleted picture tells as much as one in a user folder, and the rest of
 * the deleted as much as other user content (README, "Preview"). */
static const imt_triage_class read_order[IMT_CLASS__COUNT] = {
    IMT_CLASS_USER_MEDIA, IMT_CLASS_DELETED_MEDIA, IMT_CLASS_MEDIA, IMT_CLASS_USER_OTHER,
    IMT_CLASS_DELETED_OTHER, IMT_CLASS_SYSTEM_MEDIA, IMT_CLASS_OTHER, IMT_CLASS_SYSTEM_OTHER};

imt_triage_class imt_triage_class_at(int i)
{
    return i >= 0 && i < IMT_CLASS__COUNT ? read_order[i] : IMT_CLASS__COUNT;
}

const char *imt_triage_class_name(imt_triage_class c)
{
    return (unsigned)c < IMT_CLASS__COUNT ? class_names[c] : "unknown";
}

/* Folder names (compared without case) that hold what people keep, take,
 * download, receive or deleted. */
static const char *const user_dirs[] = {
    "dcim", "camera", "pictures", "my pictures", "photos", "screenshots",
    "downloads", "download", "desktop", "documents", "my documents", "movies", "videos",
    "my videos", "whatsapp", "whatsapp images", "whatsapp video", "telegram",
    "telegram desktop", "telegram images", "signal", "messenger", "snapchat", "instagram",
    "viber", "kik", "wickr", "threema", "discord", "skype", "wechat", "session", "element",
    /* thumbnail caches */
    ".thumbnails", "thumbnails", ".thumbdata", "thumbcache",
    /* browser caches */
    "cache2", "inetcache", "temporary internet files", "webcache", "cache_data",
    /* recycle bins and orphans */
    "$recycle.bin", "recycler", "recycled", ".trash", "trash", ".trashes", "lost+found",
    NULL};

/* System and program folders: read last (unless a user folder is also on
 * the path: a browser cache under AppData stays user content). */
static const char *const system_dirs[] = {
    "windows", "program files", "program files (x86)", "programdata", "system32",
    "syswow64", "winsxs", "system volume information", "usr", "bin", "sbin", "lib",
    "lib32", "lib64", "libexec", "etc", "boot", "opt", "proc", "sys", "dev", "run", "snap",
    "var", "system", "applications", "library", "node_modules", ".git", "site-packages",
    "dist-packages", "__pycache__", ".cache", "appdata", NULL};

/* Folders holding people's home folders, and profiles there that are no
 * one's (templates). */
static const char *const homes[] = {"users", "home", "documents and settings", NULL};
static const char *const profile_templates[] = {"default", "default user", "all users",
                                                "defaultapppool", NULL};

static const char *const media_ext[] = {
    /* pictures */
    "jpg", "jpeg", "jpe", "jfif", "pjpeg", "png", "apng", "gif", "bmp", "dib", "tif", "tiff",
    "webp", "heic", "heif", "hif", "avif", "jxl", "jp2", "j2k", "dng", "cr2", "nef", "arw",
    "orf", "rw2",
    /* videos */
    "mp4", "m4v", "mov", "avi", "mkv", "wmv", "flv", "webm", "3gp", "3g2", "mpg", "mpeg",
    "m2ts", "mts", "vob", "asf", NULL};

/* Is the n bytes at s, lower-cased, one of list? */
static int in_list(const char *s, size_t n, const char *const *list)
{
    char low[40];
    if (n == 0 || n >= sizeof low) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        low[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    low[n] = '\0';
    for (size_t i = 0; list[i]; i++)
        if (!strcmp(low, list[i])) return 1;
    return 0;
}

static int has_prefix_ci(const char *s, size_t n, const char *pfx)
{
    size_t k = strlen(pfx);
    if (n < k) return 0;
    for (size_t i = 0; i < k; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != pfx[i]) return 0;
    }
    return 1;
}

imt_triage_class imt_triage_classify(const char *path)
{
    if (!path) return IMT_CLASS_OTHER;
    int user = 0, sys = 0, browser = 0, cache = 0, home = 0, after_homes = 0;
    const char *name = path, *p = path;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash) {
            name = p;
            break;
        }
        size_t n = (size_t)(slash - p);
        /* a person's home folder, Users/NAME/ or home/NAME/: user content,
         * but weaker than a system folder below it (AppData, .cache) */
        if (after_homes && n && !in_list(p, n, profile_templates)) home = 1;
        after_homes = in_list(p, n, homes);
        if (in_list(p, n, user_dirs) || has_prefix_ci(p, n, ".trash-")) user = 1;
        if (in_list(p, n, system_dirs)) sys = 1;
        static const char *const browsers[] = {"chrome", "chromium", "google-chrome", "mozilla",
                                               "firefox", "edge", "opera", "brave", "safari",
                                               "vivaldi", NULL};
        static const char *const caches[] = {"cache", "caches", "code cache", "gpucache", NULL};
        if (in_list(p, n, browsers)) browser = 1;
        if (in_list(p, n, caches)) cache = 1;
        p = slash + 1;
    }
    if (browser && cache) user = 1;
    size_t nl = strlen(name);
    if (has_prefix_ci(name, nl, "thumbcache_") || in_list(name, nl, (const char *const[]){"thumbs.db", NULL}))
        user = 1;
    const char *dot = strrchr(name, '.');
    int media = dot && dot != name && in_list(dot + 1, strlen(dot + 1), media_ext);
    if (user) return media ? IMT_CLASS_USER_MEDIA : IMT_CLASS_USER_OTHER;
    if (sys) return media ? IMT_CLASS_SYSTEM_MEDIA : IMT_CLASS_SYSTEM_OTHER;
    if (home) return media ? IMT_CLASS_USER_MEDIA : IMT_CLASS_USER_OTHER;
    return media ? IMT_CLASS_MEDIA : IMT_CLASS_OTHER;
}

imt_triage_class imt_triage_classify_image(const char *fs_path, imt_alloc_status alloc)
{
    imt_triage_class c = imt_triage_classify(fs_path);
    if (alloc == IMT_ALLOC_ALLOCATED) return c;
    int media = c == IMT_CLASS_USER_MEDIA || c == IMT_CLASS_MEDIA || c == IMT_CLASS_SYSTEM_MEDIA;
    return media ? IMT_CLASS_DELETED_MEDIA : IMT_CLASS_DELETED_OTHER;
}
