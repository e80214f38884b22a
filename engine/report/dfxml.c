/* engine/report/dfxml.c -- DFXML 2.0.0-beta.0 (Digital Forensics XML):
 * one fileobject per record, in the order fileobject_type requires
 * (filename, error, id, name_type, filesize, alloc, inode, mode, nlink,
 * uid, gid, mtime, ctime, link_target, hashdigest), then imgtriage's own
 * facts (format, PDQ, matches) in the imgtriage namespace, which the schema
 * admits at the end of a fileobject (xs:any ##other, lax).
 *
 * Hostile names: every string goes through imt__buf_xml_str. What XML 1.0
 * cannot hold becomes U+FFFD and the element gets imgtriage:hex, the exact
 * bytes, so nothing is lost. byte_runs, partition, alloc/orphan, atime and
 * crtime only for files read from a disk image (a mounted file system gives
 * no image offsets). */
#include "report.h"

#include <string.h>
#include <time.h>

#define NS_IMT "https://github.com/imgtriage/imgtriage/ns/report/2"

/* <tag>s</tag>, with imgtriage:hex when s needed replacing. */
static void put_text(imt__buf *b, const char *tag, const char *s)
{
    imt__buf tmp = {0};
    int lossy = imt__buf_xml_str(&tmp, s);
    imt__buf_printf(b, "<%s", tag);
    if (lossy) {
        imt__buf_puts(b, " imgtriage:hex=\"");
        imt__buf_hex(b, (const uint8_t *)s, strlen(s));
        imt__buf_puts(b, "\"");
    }
    imt__buf_puts(b, ">");
    if (tmp.len) imt__buf_put(b, tmp.p, tmp.len);
    if (tmp.oom) b->oom = 1;
    imt__buf_printf(b, "</%s>", tag);
    imt__buf_free(&tmp);
}

/* name="s" (and name_hex="..." when lossy): for the imgtriage elements. */
static void put_attr(imt__buf *b, const char *name, const char *s)
{
    imt__buf tmp = {0};
    int lossy = imt__buf_xml_str(&tmp, s);
    imt__buf_printf(b, " %s=\"", name);
    if (tmp.len) imt__buf_put(b, tmp.p, tmp.len);
    if (tmp.oom) b->oom = 1;
    imt__buf_puts(b, "\"");
    if (lossy) {
        imt__buf_printf(b, " %s_hex=\"", name);
        imt__buf_hex(b, (const uint8_t *)s, strlen(s));
        imt__buf_puts(b, "\"");
    }
    imt__buf_free(&tmp);
}

static void put_time(imt__buf *b, const char *tag, int64_t s, int32_t ns)
{
    time_t t = (time_t)s;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999) return;
    imt__buf_printf(b, "<%s>%04d-%02d-%02dT%02d:%02d:%02d.%09dZ</%s>", tag, tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ns, tag);
}

static const char *name_type(imt_entry_type t)
{
    switch (t) {
    case IMT_ENTRY_FILE: case IMT_ENTRY_HARDLINK: return "r";
    case IMT_ENTRY_SYMLINK: return "l";
    case IMT_ENTRY_DIR: return "d";
    case IMT_ENTRY_FIFO: return "p";
    case IMT_ENTRY_SOCKET: return "s";
    case IMT_ENTRY_CHARDEV: return "c";
    case IMT_ENTRY_BLOCKDEV: return "b";
    default: return NULL;
    }
}

static imt_err dfxml_begin(imt__conv *c)
{
    imt__buf *b = &c->b;
    yajl_val h = c->header;
    imt__buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<dfxml xmlns=\"http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML\""
                     " xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:imgtriage=\"" NS_IMT "\""
                     " version=\"2.0.0-beta.0\">\n<metadata>\n  <dc:type>File system walk"
                     "</dc:type>\n  ");
    put_text(b, "imgtriage:device", imt__jstr(h, "device") ? imt__jstr(h, "device") : "");
    imt__buf_puts(b, "\n  ");
    put_text(b, "imgtriage:case", imt__jstr(h, "case") ? imt__jstr(h, "case") : "");
    const char *ip[] = {"index", "identity", NULL};
    yajl_val id = yajl_tree_get(h, ip, yajl_t_string);
    if (id) {
        imt__buf_puts(b, "\n  ");
        put_text(b, "imgtriage:index_identity", id->u.string);
    }
    imt__buf_puts(b, "\n</metadata>\n<creator>\n  <program>imgtriage</program>\n  ");
    put_text(b, "version", imt__jstr(h, "version") ? imt__jstr(h, "version") : "");
    imt__buf_puts(b, "\n  <execution_environment>\n    ");
    if (imt__jstr(h, "host")) {
        put_text(b, "host", imt__jstr(h, "host"));
        imt__buf_puts(b, "\n    ");
    }
    if (imt__jstr(h, "command_line")) {
        put_text(b, "command_line", imt__jstr(h, "command_line"));
        imt__buf_puts(b, "\n    ");
    }
    if (imt__jstr(h, "user")) {
        put_text(b, "username", imt__jstr(h, "user"));
        imt__buf_puts(b, "\n    ");
    }
    if (imt__jstr(h, "start_time")) put_text(b, "start_time", imt__jstr(h, "start_time"));
    imt__buf_puts(b, "\n  </execution_environment>\n</creator>\n<source>\n");
    yajl_val ps = imt__jget(h, "paths", yajl_t_array);
    for (size_t i = 0; ps && i < ps->u.array.len; i++) {
        if (!YAJL_IS_STRING(ps->u.array.values[i])) continue;
        imt__buf_puts(b, "  ");
        put_text(b, "image_filename", ps->u.array.values[i]->u.string);
        imt__buf_puts(b, "\n");
    }
    imt__buf_puts(b, "</source>\n");
    return imt__conv_flush(c);
}

static imt_err dfxml_record(imt__conv *c, const imt_scan_record *r)
{
    imt__buf *b = &c->b;
    imt__buf_puts(b, "<fileobject>\n  ");
    put_text(b, "filename", r->path);
    if (r->status != IMT_OK && r->detail && r->detail[0]) {
        imt__buf_puts(b, "\n  ");
        put_text(b, "error", r->detail);
    }
    const imt_location *l = r->loc;
    if (l && l->partition > 0)
        imt__buf_printf(b, "\n  <partition>%d</partition>", (int)l->partition);
    imt__buf_printf(b, "\n  <id>%llu</id>", (unsigned long long)r->seq + 1);
    const char *nt = name_type(r->type);
    if (nt) imt__buf_printf(b, "\n  <name_type>%s</name_type>", nt);
    if (r->have_stat) imt__buf_printf(b, "\n  <filesize>%llu</filesize>", (unsigned long long)r->size);
    /* Walked through a mounted file system every name found is allocated;
     * in a disk image the file system says; a carved item is not. */
    imt__buf_printf(b, "\n  <alloc>%d</alloc>",
                    !r->carved && (!l || l->alloc == IMT_ALLOC_ALLOCATED) ? 1 : 0);
    if (l && l->alloc == IMT_ALLOC_ORPHAN) imt__buf_puts(b, "\n  <orphan>1</orphan>");
    if (r->have_stat) {
        imt__buf_printf(b, "\n  <inode>%llu</inode>\n  <mode>%u</mode>\n  <nlink>%u</nlink>"
                        "\n  <uid>%u</uid>\n  <gid>%u</gid>\n  ", (unsigned long long)r->inode,
                        (unsigned)(r->mode & 07777), (unsigned)r->nlink, (unsigned)r->uid,
                        (unsigned)r->gid);
        put_time(b, "mtime", r->mtime_s, r->mtime_ns);
        imt__buf_puts(b, "\n  ");
        put_time(b, "ctime", r->ctime_s, r->ctime_ns);
        if (l && (l->atime_s || l->atime_ns)) {
            imt__buf_puts(b, "\n  ");
            put_time(b, "atime", l->atime_s, l->atime_ns);
        }
        if (l && (l->crtime_s || l->crtime_ns)) {
            imt__buf_puts(b, "\n  ");
            put_time(b, "crtime", l->crtime_s, l->crtime_ns);
        }
    }
    if (r->link_target) {
        imt__buf_puts(b, "\n  ");
        put_text(b, "link_target", r->link_target);
    }
    if (l && l->n_runs) {
        imt__buf_puts(b, "\n  <byte_runs>");
        for (size_t i = 0; i < l->n_runs; i++) {
            const imt_byte_run *br = &l->runs[i];
            imt__buf_printf(b, "\n    <byte_run file_offset=\"%llu\"",
                            (unsigned long long)br->file_offset);
            if (br->sparse) imt__buf_puts(b, " fill=\"0\"");
            else imt__buf_printf(b, " img_offset=\"%llu\"", (unsigned long long)br->img_offset);
            imt__buf_printf(b, " len=\"%llu\"/>", (unsigned long long)br->len);
        }
        imt__buf_puts(b, "\n  </byte_runs>");
    }
    const imt_hash_result *h = r->hash;
    if (h && (h->digests & IMT_DIGEST_MD5)) {
        imt__buf_puts(b, "\n  <hashdigest type=\"md5\">");
        imt__buf_hex(b, h->md5, 16);
        imt__buf_puts(b, "</hashdigest>");
    }
    if (h && (h->digests & IMT_DIGEST_SHA1)) {
        imt__buf_puts(b, "\n  <hashdigest type=\"sha1\">");
        imt__buf_hex(b, h->sha1, 20);
        imt__buf_puts(b, "</hashdigest>");
    }
    if (h && (h->digests & IMT_DIGEST_SHA256)) {
        imt__buf_puts(b, "\n  <hashdigest type=\"sha256\">");
        imt__buf_hex(b, h->sha256, 32);
        imt__buf_puts(b, "</hashdigest>");
    }
    imt__buf_printf(b, "\n  <imgtriage:status type=\"%s\" code=\"%s\"%s/>",
                    imt_entry_type_name(r->type), imt_err_name(r->status),
                    r->scan_error ? " scan_error=\"1\"" : "");
    if (r->hardlink_of) {
        imt__buf_puts(b, "\n  ");
        put_text(b, "imgtriage:hardlink_of", r->hardlink_of);
    }
    if (l) {
        imt__buf_puts(b, "\n  <imgtriage:location");
        put_attr(b, "image", l->image);
        imt__buf_printf(b, " partition=\"%d\" part_offset=\"%llu\"", (int)l->partition,
                        (unsigned long long)l->part_offset);
        put_attr(b, "fs", l->fs_type ? l->fs_type : "");
        if (l->volume > 0) {
            imt__buf_printf(b, " volume=\"%d\"", (int)l->volume);
            put_attr(b, "volume_name", l->volume_name ? l->volume_name : "");
        }
        if (l->stream) put_attr(b, "stream", l->stream);
        imt__buf_printf(b, " alloc=\"%s\"%s/>", imt_alloc_status_name(l->alloc),
                        l->overwritten ? " content_may_be_overwritten=\"1\"" : "");
    }
    if (h) {
        imt__buf_printf(b, "\n  <imgtriage:image format=\"%s\" read_bytes=\"%llu\"",
                        imt_format_name(h->format), (unsigned long long)h->file_size);
        if (h->width) imt__buf_printf(b, " width=\"%u\" height=\"%u\"", h->width, h->height);
        if (h->partial) imt__buf_puts(b, " partial=\"1\"");
        if (h->changed) imt__buf_puts(b, " changed_during_read=\"1\"");
        imt__buf_puts(b, "/>");
        if (h->has_pdq) {
            char hx[IMT_PDQ_HEX_LEN + 1];
            imt_pdq_to_hex(&h->pdq[0], hx);
            imt__buf_printf(b, "\n  <imgtriage:pdq quality=\"%d\"%s%s>%s</imgtriage:pdq>",
                            h->quality, r->pdq_low_quality ? " matched=\"0\"" : "",
                            r->known_good ? " skipped=\"known-good\"" : "", hx);
        }
    }
    for (size_t i = 0; i < r->n_matches; i++) {
        const imt_scan_match *m = &r->matches[i];
        imt__buf_printf(b, "\n  <imgtriage:match kind=\"%s\"", imt_hash_kind_name(m->kind));
        if (m->kind == IMT_KIND_PDQ)
            imt__buf_printf(b, " distance=\"%d\" variant=\"%s\"", m->distance,
                            imt_dihedral_name(m->variant));
        imt__buf_printf(b, " list_id=\"%u\"", (unsigned)m->list_id);
        put_attr(b, "list", m->list);
        put_attr(b, "list_version", m->list_version);
        put_attr(b, "scheme", m->scheme);
        if (m->category >= 0) imt__buf_printf(b, " category=\"%d\"", (int)m->category);
        if (m->category_label && m->category_label[0])
            put_attr(b, "category_label", m->category_label);
        if (m->external_id && m->external_id[0]) put_attr(b, "external_id", m->external_id);
        imt__buf_printf(b, " known_good=\"%d\" disposition=\"%s\" entry=\"%llu\"/>",
                        m->known_good ? 1 : 0, imt_disposition_name(m->disposition),
                        (unsigned long long)m->entry);
    }
    imt__buf_puts(b, "\n</fileobject>\n");
    return imt__conv_flush(c);
}

static imt_err dfxml_end(imt__conv *c)
{
    if (c->failed) return IMT_OK;
    imt__buf *b = &c->b;
    yajl_val s = c->summary;
    if (s) {
        yajl_val pr = imt__jget(s, "priority", yajl_t_number);
        yajl_val cp = imt__jget(s, "complete", yajl_t_any);
        imt__buf_printf(b, "<imgtriage:summary complete=\"%d\" priority=\"%s\"",
                        cp && YAJL_IS_TRUE(cp) ? 1 : 0, pr ? pr->u.number.r : "");
        if (imt__jstr(s, "priority_explanation"))
            put_attr(b, "explanation", imt__jstr(s, "priority_explanation"));
        imt__buf_puts(b, "/>\n");
    } else {
        imt__buf_puts(b, "<imgtriage:summary complete=\"0\"/>\n");
    }
    imt__buf_puts(b, "</dfxml>\n");
    return imt__conv_flush(c);
}

const imt__writer imt__writer_dfxml = {dfxml_begin, dfxml_record, dfxml_end};
