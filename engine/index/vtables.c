/* engine/index/vtables.c -- opening the two tables of known videos
 * ("videos", "vframes"; video.c describes them). A leaf beside meta.c, so
 * that index.c can open them with the others without depending on the
 * video query. */
#include "index.h"

imt_err imt__idx_video_dbis(imt_index *idx, MDB_txn *txn, unsigned flags)
{
    int rc = mdb_dbi_open(txn, "videos", flags, &idx->db_videos);
    if (rc == MDB_NOTFOUND && !(flags & MDB_CREATE)) {
        idx->has_videos = 0; /* an index from before videos, opened read-only */
        return IMT_OK;
    }
    if (rc) return imt__idx_mdb_err(idx, rc, "opening the videos table");
    rc = mdb_dbi_open(txn, "vframes", flags, &idx->db_vframes);
    if (rc) return imt__idx_mdb_err(idx, rc, "opening the video frames table");
    idx->has_videos = 1;
    return IMT_OK;
}
