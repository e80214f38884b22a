/* engine/index/import.c -- imt_index_import: a list is read whole into
 * the sink first (records + a string arena; bad records and in-list
 * duplicates rejected or skipped), then merged into the index inside ONE
 * LMDB write transaction (writer.c): on any error, crash or SIGKILL
 * nothing of it is visible. New PDQ hashes go to the delta segment
 * (scanned linearly); when it grows past IDX_DELTA_MAX, or on request, the
 * compacted segment is rebuilt from both in the same transaction
 * (compact.c). */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Above this many delta hashes an import compacts (auto mode). A query
 * scans the delta linearly: 64k hashes = 2 MiB, about 0.1 ms per query. */
#define IDX_DELTA_MAX 65536u

static imt_err file_sha256(idx_sink *s, int fd, char out[65])
{
    imt_err err = IMT_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = imt__malloc(1 << 20);
    if (!md || !buf) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    if (lseek(fd, 0, SEEK_SET) < 0) {
        err = idx_sink_fail(s, IMT_E_IO, "cannot seek: %s", strerror(errno));
        goto cleanup;
    }
    for (;;) {
        ssize_t r = read(fd, buf, 1 << 20);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            err = idx_sink_fail(s, IMT_E_IO, "read error: %s", strerror(errno));
            goto cleanup;
        }
        if (r == 0) break;
        EVP_DigestUpdate(md, buf, (size_t)r);
    }
    unsigned char dg[32];
    unsigned dn;
    EVP_DigestFinal_ex(md, dg, &dn);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", dg[i]);
cleanup:
    EVP_MD_CTX_free(md);
    imt__free(buf);
    return err;
}

void imt_import_opts_init(imt_import_opts *o)
{
    memset(o, 0, sizeof *o);
    o->known_good = -1;
    o->category = -1;
    o->compact = -1;
}

/* The lists of an export's inventory, with the options over them: they name
 * one list, so they apply only to an export of one. */
static imt_err inventory_lists(idx_sink *s, const imt_import_opts *o, idx_list_meta **out,
                               size_t *nout)
{
    int over = (o->name && *o->name) || (o->version && *o->version) || (o->scheme && *o->scheme) ||
               o->policy || o->known_good >= 0 || o->category >= 0 || o->import_time;
    if (over && s->nlists > 1) {
        idx_set_err(s->idx, "%s: an export of %zu lists: --name, --version, --scheme, "
                    "--category, --known-good/--known-bad and policies name one list",
                    s->path, s->nlists);
        return IMT_E_INVALID;
    }
    idx_list_meta *m = s->lists;
    if (s->nlists == 1) {
        char msg[160];
        int redefault = (o->scheme && *o->scheme) || o->known_good >= 0;
        if (o->name && *o->name) snprintf(m->name, sizeof m->name, "%s", o->name);
        if (o->version && *o->version) snprintf(m->version, sizeof m->version, "%s", o->version);
        if (o->scheme && *o->scheme) snprintf(m->scheme, sizeof m->scheme, "%s", o->scheme);
        if (o->known_good >= 0) m->known_good = o->known_good;
        if (o->import_time) m->import_time = o->import_time;
        char base[IDX_POLICY_MAX];
        snprintf(base, sizeof base, "%s",
                 redefault ? idx_policy_default(m->scheme, m->known_good) : m->policy);
        if (idx_policy_resolve(base, o->policy, m->policy, sizeof m->policy, msg, sizeof msg) !=
            IMT_OK) {
            idx_set_err(s->idx, "category policy: %s", msg);
            return IMT_E_INVALID;
        }
    }
    *out = s->lists;
    *nout = s->nlists;
    s->lists = NULL; /* now the caller's */
    s->nlists = 0;
    return IMT_OK;
}

imt_err imt_index_import(imt_index *idx, const char *path, const imt_import_opts *opts,
                         imt_import_stats *stats)
{
    imt_err err = IMT_OK;
    imt_import_opts o;
    imt_import_stats st;
    idx_sink s;
    idx_writer w;
    int fd = -1, snap_closed = 0;
    char sha[65] = {0}, fmtname[24] = {0}, policy[IDX_POLICY_MAX], pmsg[160];
    idx_list_meta *metas = NULL;
    size_t nmeta = 0;
    uint64_t *per_slot = NULL;
    memset(&s, 0, sizeof s);
    memset(&st, 0, sizeof st);
    memset(&w, 0, sizeof w);
    if (!idx || !path) return IMT_E_INVALID;
    if (opts) o = *opts;
    else imt_import_opts_init(&o);
    err = idx_writable(idx);
    if (err) return err;
    idx->err[0] = '\0';
    s.idx = idx;
    s.err = idx->err;
    s.errcap = sizeof idx->err;
    s.path = path;
    s.skip_bad = o.skip_bad;
    s.def_cat = o.category;
    s.progress = o.progress;
    s.progress_opaque = o.progress_opaque;
    idx_format f = IF_AUTO;
    if (o.format && *o.format && !idx_format_by_name(o.format, &f)) {
        idx_set_err(idx, "unknown format '%s'", o.format);
        err = IMT_E_INVALID;
        goto cleanup;
    }
    /* the policy is checked before the file is read (a typo costs nothing),
     * and resolved over its default once the format is known */
    if (idx_policy_resolve(idx_policy_default(NULL, 0), o.policy, policy, sizeof policy, pmsg,
                           sizeof pmsg) != IMT_OK) {
        idx_set_err(idx, "category policy: %s", pmsg);
        err = IMT_E_INVALID;
        goto cleanup;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        idx_set_err(idx, "%s: %s", path, strerror(errno));
        err = errno == ENOENT ? IMT_E_NOT_FOUND : IMT_E_IO;
        goto cleanup;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        idx_set_err(idx, "%s: not a regular file", path);
        err = IMT_E_IO;
        goto cleanup;
    }
    if (sb.st_size == 0) {
        idx_set_err(idx, "%s: the file is empty", path);
        err = IMT_E_EMPTY;
        goto cleanup;
    }
    IMT_TRY(file_sha256(&s, fd, sha));
    IMT_TRY(idx_detect(&s, fd, &f)); /* detect.c: AUTO stays only for blank text */
    if (lseek(fd, 0, SEEK_SET) < 0) {
        err = idx_sink_fail(&s, IMT_E_IO, "cannot seek: %s", strerror(errno));
        goto cleanup;
    }
    imt_err perr;
    uint64_t bad_line = 0;
    if (f == IF_NSRL) {
        perr = idx_parse_nsrl(&s, path);
        snprintf(fmtname, sizeof fmtname, "nsrl-rdsv3");
    } else if (f == IF_VICS || f == IF_JSONL) {
        perr = idx_parse_vics(&s, fd, f, fmtname, sizeof fmtname);
    } else {
        idx_format actual = f;
        perr = idx_parse_text(&s, fd, f, &actual);
        snprintf(fmtname, sizeof fmtname, "%s", idx_format_name(actual));
    }
    if (perr != IMT_OK) {
        /* the parser stopped at a bad line: an earlier duplicate wins */
        bad_line = s.n ? s.recs[s.n - 1].line + 1 : 1;
        char saved[512];
        memcpy(saved, idx->err, sizeof saved);
        imt_err d = idx_find_duplicates(&s, bad_line);
        if (d == IMT_E_DUPLICATE) err = d;
        else {
            memcpy(idx->err, saved, sizeof saved);
            err = perr;
        }
        goto cleanup;
    }
    IMT_TRY(idx_find_duplicates(&s, 0));
    if (!s.n) {
        if (s.bad) idx_set_err(idx, "%s: no valid record (%llu bad)", path, (unsigned long long)s.bad);
        else idx_set_err(idx, "%s: the list holds no hash", path);
        err = IMT_E_EMPTY;
        goto cleanup;
    }
    st.records = s.n;
    st.bad = s.bad;
    memcpy(st.bad_examples, s.examples, sizeof st.bad_examples);
    snprintf(st.format, sizeof st.format, "%s", fmtname);

    /* the lists to create: the export's inventory, or one from the options */
    if (s.nlists) {
        IMT_TRY(inventory_lists(&s, &o, &metas, &nmeta));
    } else {
        metas = imt__calloc(1, sizeof *metas);
        if (!metas) {
            err = IMT_E_NOMEM;
            goto cleanup;
        }
        nmeta = 1;
        idx_list_meta *m = &metas[0];
        if (o.name && *o.name) snprintf(m->name, sizeof m->name, "%s", o.name);
        else {
            const char *b = strrchr(path, '/');
            snprintf(m->name, sizeof m->name, "%s", b ? b + 1 : path);
        }
        snprintf(m->version, sizeof m->version, "%s", o.version && *o.version ? o.version : s.version);
        snprintf(m->format, sizeof m->format, "%s", fmtname);
        snprintf(m->file_sha256, sizeof m->file_sha256, "%s", sha);
        snprintf(m->scheme, sizeof m->scheme, "%s",
                 o.scheme && *o.scheme ? o.scheme : (f == IF_VICS ? "projectvic" : "custom"));
        m->import_time = o.import_time ? o.import_time : (int64_t)time(NULL);
        m->known_good = o.known_good >= 0 ? o.known_good : (f == IF_NSRL);
        if (idx_policy_resolve(idx_policy_default(m->scheme, m->known_good), o.policy, m->policy,
                               sizeof m->policy, pmsg, sizeof pmsg) != IMT_OK) {
            idx_set_err(idx, "category policy: %s", pmsg);
            err = IMT_E_INVALID;
            goto cleanup;
        }
    }
    per_slot = imt__calloc(nmeta, sizeof *per_slot);
    if (!per_slot) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }

    /* the write transaction: everything below is atomic */
#define STAGE(name) do { if (o.stage) o.stage(o.progress_opaque, name); } while (0)
    STAGE("parsed");
    idx_snapshot_end(idx);
    snap_closed = 1;
    IMT_TRY(idx_writer_begin(idx, &w));
    STAGE("begin");
    if (!o.again) IMT_TRY(idx_writer_check_new(&w, metas, nmeta, path));
    uint32_t list_id = w.h.next_list;
    if ((uint64_t)w.h.next_list + nmeta > UINT32_MAX) {
        idx_set_err(idx, "%s: too many lists", idx->path);
        err = IMT_E_TOO_LARGE;
        goto cleanup;
    }
    w.h.next_list += (uint32_t)nmeta;
    IMT_TRY(idx_writer_merge(&w, &s, list_id, per_slot, &st));
    STAGE("entries");
    IMT_TRY(idx_writer_digests(&w, &s));
    STAGE("digests");
    IMT_TRY(idx_writer_delta(&w));
    STAGE("delta");
    int do_compact = o.compact > 0 || (o.compact < 0 && w.h.delta_n > IDX_DELTA_MAX) ||
                     (o.compact < 0 && w.h.delta_n > 4096 && w.h.main_n == 0);
    if (do_compact && (w.h.delta_n || o.compact > 0)) {
        IMT_TRY(idx_compact(&w));
        st.compacted = 1;
        STAGE("compact");
    }
    for (size_t i = 0; i < nmeta; i++) {
        const idx_list_meta *m = &metas[i];
        if (s.nlists && !s.bad && per_slot[i] != m->entries) {
            idx_set_err(idx, "%s: list %u of the export says it has %llu entries, %llu name it",
                        path, (unsigned)m->src_id, (unsigned long long)m->entries,
                        (unsigned long long)per_slot[i]);
            err = IMT_E_PARSE;
            goto cleanup;
        }
        imt_list_info li;
        memset(&li, 0, sizeof li);
        li.id = list_id + (uint32_t)i;
        li.name = m->name;
        li.version = m->version;
        li.format = m->format;
        li.file_sha256 = m->file_sha256;
        li.scheme = m->scheme;
        li.import_time = m->import_time;
        li.known_good = m->known_good;
        li.policy = m->policy;
        li.entries = per_slot[i];
        IMT_TRY(idx_writer_list(&w, &li));
    }
    IMT_TRY(idx_writer_commit(idx, &w, o.stage, o.progress_opaque));
    STAGE("done");
#undef STAGE
    st.list_id = list_id;
    st.lists = (uint32_t)nmeta;
cleanup:
    idx_writer_free(&w);
    if (snap_closed) {
        imt_err e2 = idx_snapshot_begin(idx);
        if (err == IMT_OK) err = e2;
    }
    if (fd >= 0) close(fd);
    idx_sink_free(&s);
    imt__free(metas);
    imt__free(per_slot);
    if (stats) *stats = st;
    return err;
}

