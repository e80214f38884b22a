/* engine/common/err.c -- the one table of error names and messages. */
#include "common.h"

static const struct {
    const char *name;
    const char *msg;
} errtab[IMT_E__COUNT] = {
    [IMT_OK] = {"ok", "success"},
    [IMT_E_NOMEM] = {"out-of-memory", "out of memory"},
    [IMT_E_INVALID] = {"invalid-argument", "invalid argument"},
    [IMT_E_IO] = {"unreadable", "the file could not be read"},
    [IMT_E_NOT_FOUND] = {"not-found", "the file does not exist or vanished"},
    [IMT_E_EMPTY] = {"empty", "the file is empty"},
    [IMT_E_NOT_IMAGE] = {"not-an-image", "not a recognised image format"},
    [IMT_E_UNSUPPORTED] = {"unsupported-format",
                           "an image format this build does not decode"},
    [IMT_E_CORRUPT] = {"corrupt", "the image data is invalid"},
    [IMT_E_TRUNCATED] = {"truncated", "the image data ends early"},
    [IMT_E_TOO_LARGE] = {"too-large", "over a configured size limit"},
    [IMT_E_TIMEOUT] = {"timeout", "over the per-file time budget"},
    [IMT_E_INTERNAL] = {"internal", "internal error (a bug in imgtriage)"},
    [IMT_E_INTERRUPTED] = {"interrupted", "stopped on request"},
    [IMT_E_TOO_SMALL] = {"too-small", "the image is too small to hash"},
    [IMT_E_INDEX_FORMAT] = {"index-format",
                            "not an imgtriage index, or an unknown version"},
    [IMT_E_INDEX_CORRUPT] = {"index-corrupt",
                             "the index failed a consistency check"},
    [IMT_E_PARSE] = {"parse", "the hash list could not be parsed"},
    [IMT_E_DUPLICATE] = {"duplicate", "duplicate entry"},
    [IMT_E_EXISTS] = {"exists", "the object exists already"},
    [IMT_E_READONLY] = {"read-only", "the handle is read-only"},
    [IMT_E_DB] = {"database", "the database layer failed"},
    [IMT_E_HASH_LENGTH] = {"hash-length", "a hash has the wrong number of digits"},
    [IMT_E_NOT_HEX] = {"not-hex", "a hash has a character that is not a hex digit"},
    [IMT_E_JSON_SHAPE] = {"json-shape", "the JSON does not have the expected structure"},
    [IMT_E_BUSY] = {"busy", "the index has open cursors"},
    [IMT_E_INDEX_CHANGED] = {"index-changed",
                             "the index changed since it was opened; open it again"},
    [IMT_E_WRITE] = {"write-failed", "the output could not be written"},
    [IMT_E_ENCRYPTED] = {"encrypted", "encrypted: not examined"},
};

const char *imt_strerror(imt_err err)
{
    if ((int)err < 0 || err >= IMT_E__COUNT || !errtab[err].msg)
        return "unknown error code";
    return errtab[err].msg;
}

const char *imt_err_name(imt_err err)
{
    if ((int)err < 0 || err >= IMT_E__COUNT || !errtab[err].name)
        return "unknown";
    return errtab[err].name;
}

const char *imt_version(void)
{
    return IMT_VERSION_STRING;
}
