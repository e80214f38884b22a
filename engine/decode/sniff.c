/* engine/decode/sniff.c -- format identification from magic bytes only. */
#include "decode.h"

#include <string.h>

static int has(const uint8_t *p, size_t len, size_t off, const char *magic, size_t n)
{
    return len >= off + n && memcmp(p + off, magic, n) == 0;
}

imt_format imt_sniff(const void *data, size_t len)
{
    const uint8_t *p = data;
    if (!p) return IMT_FMT_UNKNOWN;
    /* JPEG: SOI then any marker (0xFF). Truncated/odd JPEGs still start so. */
    if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return IMT_FMT_JPEG;
    if (has(p, len, 0, "\x89PNG\r\n\x1a\n", 8)) return IMT_FMT_PNG;
    if (has(p, len, 0, "GIF87a", 6) || has(p, len, 0, "GIF89a", 6)) return IMT_FMT_GIF;
    if (has(p, len, 0, "RIFF", 4) && has(p, len, 8, "WEBP", 4)) return IMT_FMT_WEBP;
    if (has(p, len, 0, "II*\0", 4) || has(p, len, 0, "MM\0*", 4) ||
        has(p, len, 0, "II+\0", 4) || has(p, len, 0, "MM\0+", 4))
        return IMT_FMT_TIFF;
    /* BMP: "BM", then a plausible DIB header size at offset 14. */
    if (has(p, len, 0, "BM", 2) && len >= 18) {
        uint32_t dib = (uint32_t)p[14] | (uint32_t)p[15] << 8 |
                       (uint32_t)p[16] << 16 | (uint32_t)p[17] << 24;
        if (dib == 12 || dib == 40 || dib == 52 || dib == 56 || dib == 64 ||
            dib == 108 || dib == 124)
            return IMT_FMT_BMP;
    }
    /* ISO-BMFF: size, "ftyp", major brand. */
    if (has(p, len, 4, "ftyp", 4) && len >= 12) {
        const uint8_t *b = p + 8;
        if (!memcmp(b, "avif", 4) || !memcmp(b, "avis", 4)) return IMT_FMT_AVIF;
        if (!memcmp(b, "heic", 4) || !memcmp(b, "heix", 4) || !memcmp(b, "hevc", 4) ||
            !memcmp(b, "hevx", 4) || !memcmp(b, "heim", 4) || !memcmp(b, "heis", 4) ||
            !memcmp(b, "mif1", 4) || !memcmp(b, "msf1", 4))
            return IMT_FMT_HEIF;
        if (memcmp(b, "crx ", 4) != 0) return IMT_FMT_MP4; /* not Canon's CR3 raw */
    }
    /* Video containers (engine/video). QuickTime before ftyp: moov/mdat/wide first. */
    if (len >= 8 && (has(p, len, 4, "moov", 4) || has(p, len, 4, "mdat", 4) ||
                     has(p, len, 4, "wide", 4)))
        return IMT_FMT_MP4;
    if (has(p, len, 0, "\x1a\x45\xdf\xa3", 4)) return IMT_FMT_MATROSKA;
    if (has(p, len, 0, "RIFF", 4) && has(p, len, 8, "AVI ", 4)) return IMT_FMT_AVI;
    if (has(p, len, 0, "\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c", 16))
        return IMT_FMT_ASF;
    if (has(p, len, 0, "FLV\x01", 4)) return IMT_FMT_FLV;
    /* MPEG-TS: the sync byte on three packets in a row (M2TS: 4 bytes first) */
    for (size_t lead = 0; lead <= 4; lead += 4) {
        size_t step = 188 + lead;
        if (len >= lead + 2 * step + 1 && p[lead] == 0x47 && p[lead + step] == 0x47 &&
            p[lead + 2 * step] == 0x47)
            return IMT_FMT_MPEGTS;
    }
    /* Containers of pictures (hashfile.c hashes them as sub-items). */
    if (has(p, len, 0, "CMMM", 4)) return IMT_FMT_THUMBCACHE;
    if (has(p, len, 0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8)) return IMT_FMT_OLE2;
    if (has(p, len, 0, "\xff\x0a", 2) ||
        has(p, len, 0, "\0\0\0\x0cJXL \r\n\x87\n", 12))
        return IMT_FMT_JXL;
    /* Containers (expanded by engine/container). */
    if (has(p, len, 0, "PK\3\4", 4) || has(p, len, 0, "PK\5\6", 4) ||
        has(p, len, 0, "PK\7\x08", 4))
        return IMT_FMT_ZIP;
    if (has(p, len, 0, "Rar!\x1a\x07\x00", 7) || has(p, len, 0, "Rar!\x1a\x07\x01\x00", 8))
        return IMT_FMT_RAR;
    if (has(p, len, 0, "7z\xbc\xaf\x27\x1c", 6)) return IMT_FMT_7Z;
    if (has(p, len, 0, "\x1f\x8b\x08", 3)) return IMT_FMT_GZIP;
    if (has(p, len, 0, "BZh", 3) && len >= 4 && p[3] >= '1' && p[3] <= '9') return IMT_FMT_BZIP2;
    if (has(p, len, 0, "\xfd" "7zXZ\0", 6)) return IMT_FMT_XZ;
    if (has(p, len, 0, "\x28\xb5\x2f\xfd", 4)) return IMT_FMT_ZSTD;
    if (has(p, len, 0, "070707", 6) || has(p, len, 0, "070701", 6) ||
        has(p, len, 0, "070702", 6))
        return IMT_FMT_CPIO;
    if (has(p, len, 0, "%PDF-", 5)) return IMT_FMT_PDF;
    if (has(p, len, 257, "ustar", 5)) return IMT_FMT_TAR;
    return IMT_FMT_UNKNOWN;
}

const char *imt_format_name(imt_format fmt)
{
    static const char *const names[IMT_FMT__COUNT] = {
        "unknown", "jpeg", "png", "gif", "bmp", "webp", "tiff", "heif", "avif", "jxl",
        "zip", "rar", "7z", "tar", "gzip", "bzip2", "xz", "zstd", "cpio", "pdf",
        "mp4", "matroska", "avi", "asf", "flv", "mpegts",
        "thumbcache", "ole2"};
    if ((int)fmt < 0 || fmt >= IMT_FMT__COUNT) return "unknown";
    return names[fmt];
}

int imt_format_decodable(imt_format fmt)
{
    return fmt == IMT_FMT_JPEG || fmt == IMT_FMT_PNG || fmt == IMT_FMT_BMP ||
           fmt == IMT_FMT_TIFF || fmt == IMT_FMT_WEBP || fmt == IMT_FMT_GIF ||
           fmt == IMT_FMT_HEIF || fmt == IMT_FMT_AVIF;
}

int imt_format_is_container(imt_format fmt)
{
    return fmt >= IMT_FMT_ZIP && fmt <= IMT_FMT_PDF;
}

int imt_format_is_video(imt_format fmt)
{
    return fmt >= IMT_FMT_MP4 && fmt <= IMT_FMT_MPEGTS;
}
