/* tools/cmd_index.c -- `imgtriage index create|import|compact|stats|verify|export|query`. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
"Usage: imgtriage index SUBCOMMAND [OPTIONS] INDEX ...\n"
"Build and query an index of known hashes (an LMDB directory).\n"
"\n"
"Subcommands:\n"
"  create INDEX              make an empty index\n"
"  import INDEX FILE...      add each FILE as one list (one transaction each)\n"
"  import-files INDEX DIR    hash known files (PDQ, MD5, SHA-1) into one list;\n"
"                            --blocks: also their 4 KiB block hashes\n"
"  compact INDEX             fold the levels that imports added into one\n"
"                            (full query speed again; readers keep working)\n"
"  stats INDEX               print the meta record and the list inventory\n"
"  verify INDEX              check every structure against the entries\n"
"  export INDEX              write entries (JSON lines, or a list format)\n"
"  query INDEX HASH...       look hashes up (PDQ within a radius, or digests)\n"
"\n"
"'imgtriage index SUBCOMMAND --help' describes each one.\n"
"Exit status: 0 success (query: nothing found); 1 query: something found;\n"
"2 error (bad usage, unreadable or malformed input, corrupt index).\n");
}

static void usage_create(FILE *f)
{
    fprintf(f,
"Usage: imgtriage index create [--map-size BYTES] INDEX\n"
"Create an empty index in the directory INDEX (made if absent). Fails if an\n"
"index is there already.\n"
"  --map-size BYTES   largest size the index may grow to (default 64 GiB;\n"
"                     the file only takes the space it uses)\n");
}

static void usage_import(FILE *f)
{
    const char *const *fm = imt_index_formats();
    fprintf(f,
"Usage: imgtriage index import [OPTIONS] INDEX FILE...\n"
"Import each FILE as one list, in one transaction: on any error (or if the\n"
"process is killed) the index keeps exactly its previous content.\n"
"The same hash in several lists is one entry with several memberships.\n"
"\n"
"Options:\n"
"  -f, --format FMT    the list format (default: detected; input that two\n"
"                      formats could read differently is an error asking\n"
"                      for --format); one of:\n"
"                      ");
    for (int i = 1; fm[i]; i++) fprintf(f, "%s%s", fm[i], fm[i + 1] ? ", " : "\n");
    fprintf(f,
"      --name NAME     list name (default: the file name)\n"
"      --video-id ID   vpdq: the known video's id (default: the hash file's\n"
"                      name without its extension). FILE may be a folder of\n"
"                      vPDQ hash files (vpdq-hash-video's FRAME,QUALITY,\n"
"                      PDQ_HEX,TIMESTAMP lines): one list, a video per file\n"
"      --version V     list version (NSRL: its VERSION row by default)\n"
"      --scheme S      category scheme: projectvic (VICS default), caid, custom\n"
"      --category N    category of records that give none\n"
"      --alert CATS    memberships of these categories alert (the file is a hit)\n"
"      --info CATS     these are informational (reported, not a hit)\n"
"      --ignore CATS   these are ignorable (the file is marked known-good)\n"
"                      CATS: comma-separated N, N-M, N+, 'none' (no numeric\n"
"                      category) or '*' (all); painted over the scheme's\n"
"                      default policy in the order given (later wins)\n"
"      --known-good    the list is known-good (default for NSRL only)\n"
"      --known-bad     the list is known-bad (default for other formats)\n"
"      --skip-bad      skip bad records, import the rest, report how many\n"
"      --again         import a file whose SHA-256 is on a list already (by\n"
"                      default refused: its matches would count twice)\n"
"      --compact       rebuild the search tables now, as one level (delta\n"
"                      segment and smaller levels merged into level 0)\n"
"      --no-compact    never rebuild during this import (by default a delta\n"
"                      past 65,536 PDQ hashes becomes a level of its own)\n"
"      --create        create the index if it does not exist\n"
"      --memory-budget BYTES  memory for the list's records while importing\n"
"                      (suffix K, M, G; default 1G, at least 4M): a larger\n"
"                      list is merged in batches, still in one transaction,\n"
"                      with sorted runs in unnamed files in $TMPDIR (or /tmp);\n"
"                      LMDB adds up to 512 MiB of pages, PDQ 36 B per hash\n"
"  -q, --quiet         no summary line\n"
"\n"
"Formats: pdq-csv (hash,quality[,...] as pdq-photo-hasher and HMA print,\n"
"or tab-separated), te ('pdq <hex>' lines), md5sum/sha1sum/sha256sum output,\n"
"hashdeep ('%%%%%%%% HASHDEEP-1.0'), plain hex (md5-hex, sha1-hex, pdq-hex, sha256-hex;\n"
"'hex' picks MD5 or SHA-1 by length; 64-digit lists must be named), vics\n"
"(Project VIC VICS JSON 1.x and 2.0), nsrl (NIST RDSv3 SQLite, known-good),\n"
"jsonl (this tool's export: its lists come back with every field). A file\n"
"already imported (same SHA-256) is refused unless --again. A bad record\n"
"stops the import with FILE:LINE and the reason (hash-length, not-hex,\n"
"duplicate, parse, json-shape, ...). A record repeating an earlier record\n"
"of the same list (the same hashes) is one membership, counted in the summary:\n"
"when their categories or labels differ the most severe by the list's policy\n"
"stays (alert, then info, then ignore; the earlier on a tie), and the first\n"
"conflict is printed; the earlier name or MediaID stays. A record sharing\n"
"some hashes of an earlier record of the list but not all is a bad record\n"
"(duplicate).\n"
"\n"
"Default category policies ('index stats' shows each list's):\n"
"  projectvic  alert=none,1-2 info=3+ ignore=0   (VIC 0 non-pertinent)\n"
"  caid        alert=none,1-3 info=0,4+          (1-3: categories A, B, C)\n"
"  custom      alert=none,0+\n"
"  known-good  ignore=none,0+                    (NSRL, --known-good)\n"
"'none' is a membership without a numeric category: it alerts unless the\n"
"list is known-good or a policy says otherwise.\n");
}

static void usage_stats(FILE *f)
{
    fprintf(f,
"Usage: imgtriage index stats [--json] INDEX\n"
"Print the meta record (format version, creating tool, identity digest,\n"
"counts, segments) and the list inventory, with each list's category\n"
"policy (which categories alert, inform or are ignored).\n");
}

static void usage_verify(FILE *f)
{
    fprintf(f,
"Usage: imgtriage index verify INDEX\n"
"Check the header, list inventory and counts, every entry record, the\n"
"digest tables both ways, the PDQ segments, every MIH bucket and the\n"
"stored checksum. Exit 0 when sound, 2 with the first problem otherwise.\n");
}

static void usage_export(FILE *f)
{
    fprintf(f,
"Usage: imgtriage index export [OPTIONS] INDEX\n"
"Write entries in entry order.\n"
"  -f, --format FMT   jsonl (default: every field and the list inventory:\n"
"                     importing it gives the lists back as they were, names,\n"
"                     versions, schemes, policies, known-good flags and\n"
"                     all), pdq-csv, te, md5sum, sha1sum,\n"
"                     sha256sum, pdq-hex, md5-hex, sha1-hex, sha256-hex\n"
"  -l, --list ID      only entries of list ID (see 'index stats')\n"
"  -o, --output FILE  write to FILE instead of standard output\n");
}

static void usage_query(FILE *f)
{
    fprintf(f,
"Usage: imgtriage index query [OPTIONS] INDEX HASH...\n"
"Look each HASH up: 64 hex digits are a PDQ hash (searched within the\n"
"radius), 32 an MD5, 40 a SHA-1; a SHA-256 needs --sha256.\n"
"  -r, --radius R     PDQ Hamming radius 0..256 (default 31)\n"
"  -d, --dihedral     each PDQ argument is followed by its 7 other dihedral\n"
"                     variants (8 hashes, as 'imgtriage hash -d' prints)\n"
"      --sha256       64-digit arguments are SHA-256 digests\n"
"  -m, --method M     auto (default), mih or scan (same results)\n"
"Output, one CSV line per match:\n"
"  QUERY,KIND,DISTANCE,VARIANT,ENTRY,LIST_ID,LIST_NAME,CATEGORY,EXTERNAL_ID,DISPOSITION\n"
"LIST_NAME, EXTERNAL_ID and a text CATEGORY are quoted, with '\"' doubled, '\\'\n"
"as '\\\\' and control bytes (terminal escapes) and non-UTF-8 bytes as \\xNN, as\n"
"in scan reports. DISPOSITION is the list's policy for the category: alert,\n"
"info or ignore (see 'index import --help').\n");
}

static int open_index(imt_index **idx, const char *path, int writable, int create)
{
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = !writable;
    o.create = create;
    imt_err e = imt_index_open(idx, path, &o);
    if (e != IMT_OK) {
        cli_err("%s (%s)", *imt_index_open_error() ? imt_index_open_error() : path,
                imt_err_name(e));
        return 0;
    }
    return 1;
}

static void usage_compact(FILE *f)
{
    fprintf(f,
"Usage: imgtriage index compact [-q] INDEX\n"
"Rebuild the PDQ search tables as one level: the delta segment and the\n"
"levels that delta imports added are merged into level 0, and the digest\n"
"deltas into the main digest tables. The lists and every answer stay the\n"
"same; only the speed changes. An import of a delta costs time in\n"
"proportion to the delta because it builds a small level of its own\n"
"instead of rebuilding level 0; each such level costs every PDQ query a\n"
"search of its own (about a fifth more time per query at 10M hashes:\n"
"docs/INDEX.md), until a later import or this command folds it in.\n"
"\n"
"One transaction, as long as a full rebuild (about 75 s for 30 million PDQ\n"
"hashes): processes that have the index open keep answering from the\n"
"snapshot they opened, and see the compacted index at their next open; an\n"
"import in another process waits for it. If it is interrupted the index\n"
"keeps its previous content. 'index stats' shows the levels.\n"
"  -q, --quiet   no summary line\n");
}

/* The arguments of a subcommand that takes one INDEX and at most one flag
 * (flag_name NULL: none; short_opt 0: no short form): returns -1 to go on
 * (*flag set, argv[optind] the index), else the exit status (--help, bad
 * usage, the usage printed). */
static int index_only_args(int argc, char **argv, const char *flag_name, int short_opt, int *flag,
                           void (*usage_of)(FILE *))
{
    struct option lo[3] = {{"help", 0, 0, 'h'}, {0, 0, 0, 0}, {0, 0, 0, 0}};
    if (flag_name) lo[1] = (struct option){flag_name, 0, 0, short_opt ? short_opt : 1};
    char so[3] = {'h', (char)short_opt, 0};
    int c;
    while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
        if (c == 'h') { usage_of(stdout); return CLI_EXIT_OK; }
        if (flag_name && c == (short_opt ? short_opt : 1)) { *flag = 1; continue; }
        usage_of(stderr);
        return CLI_EXIT_ERROR;
    }
    if (optind + 1 != argc) {
        usage_of(stderr);
        return CLI_EXIT_ERROR;
    }
    return -1;
}

/* ---- create -------------------------------------------------------------- */
static int do_create(int argc, char **argv)
{
    static const struct option lo[] = {{"map-size", 1, 0, 'M'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    unsigned long long ms = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'h') { usage_create(stdout); return CLI_EXIT_OK; }
        if (c == 'M' && cli_parse_u64(optarg, &ms)) continue;
        usage_create(stderr);
        return CLI_EXIT_ERROR;
    }
    if (optind + 1 != argc) {
        usage_create(stderr);
        return CLI_EXIT_ERROR;
    }
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = 0;
    o.create = 1;
    o.exclusive = 1;
    o.map_size = ms;
    imt_index *idx;
    imt_err e = imt_index_open(&idx, argv[optind], &o);
    if (e != IMT_OK) {
        cli_err("%s (%s)", imt_index_open_error(), imt_err_name(e));
        return CLI_EXIT_ERROR;
    }
    imt_index_close(idx);
    return CLI_EXIT_OK;
}

/* The PDQ levels of an index: "30000000 + 900000 (delta 0)". */
static void print_levels(const imt_index_stats *s)
{
    for (int l = 0; l < s->pdq_levels; l++)
        printf("%s%llu", l ? " + " : "", (unsigned long long)s->pdq_level[l]);
    if (!s->pdq_levels) printf("none");
    printf(" (delta %llu)", (unsigned long long)s->pdq_delta);
}

/* ---- import ------------------------------------------------------------ */
static int do_import(int argc, char **argv)
{
    enum { O_NAME = 256, O_VERSION, O_SCHEME, O_CATEGORY, O_GOOD, O_BAD, O_SKIP, O_COMPACT,
           O_NOCOMPACT, O_CREATE, O_ALERT, O_INFO, O_IGNORE, O_AGAIN, O_MEMORY, O_VIDEO_ID };
    static const struct option lo[] = {
        {"format", 1, 0, 'f'},      {"name", 1, 0, O_NAME},         {"version", 1, 0, O_VERSION},
        {"scheme", 1, 0, O_SCHEME}, {"category", 1, 0, O_CATEGORY}, {"known-good", 0, 0, O_GOOD},
        {"known-bad", 0, 0, O_BAD}, {"skip-bad", 0, 0, O_SKIP},     {"compact", 0, 0, O_COMPACT},
        {"no-compact", 0, 0, O_NOCOMPACT}, {"create", 0, 0, O_CREATE}, {"quiet", 0, 0, 'q'},
        {"alert", 1, 0, O_ALERT},   {"info", 1, 0, O_INFO},         {"ignore", 1, 0, O_IGNORE},
        {"again", 0, 0, O_AGAIN},   {"memory-budget", 1, 0, O_MEMORY},
        {"video-id", 1, 0, O_VIDEO_ID},
        {"help", 0, 0, 'h'},        {0, 0, 0, 0}};
    imt_import_opts io;
    imt_import_opts_init(&io);
    int c, create = 0, quiet = 0;
    unsigned long long v;
    char policy[1024] = "";
    size_t plen = 0;
    while ((c = getopt_long(argc, argv, "f:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'h': usage_import(stdout); return CLI_EXIT_OK;
        case O_ALERT: case O_INFO: case O_IGNORE: {
            /* one term per option, in order; the library checks them */
            const char *d = c == O_ALERT ? "alert" : c == O_INFO ? "info" : "ignore";
            int n = snprintf(policy + plen, sizeof policy - plen, "%s%s=%s", plen ? " " : "", d, optarg);
            if (n < 0 || (size_t)n >= sizeof policy - plen || strpbrk(optarg, " ;\t=")) {
                cli_err("--%s: '%s' is not a list of categories", d, optarg);
                return CLI_EXIT_ERROR;
            }
            plen += (size_t)n;
            io.policy = policy;
            break;
        }
        case 'f': io.format = optarg; break;
        case O_NAME: io.name = optarg; break;
        case O_VIDEO_ID: io.video_id = optarg; break;
        case O_VERSION: io.version = optarg; break;
        case O_SCHEME: io.scheme = optarg; break;
        case O_CATEGORY:
            if (!cli_parse_u64(optarg, &v) || v > 0x7fffffff) {
                if (strcmp(optarg, "0") != 0) {
                    cli_err("--category: '%s' is not a non-negative integer", optarg);
                    return CLI_EXIT_ERROR;
                }
                v = 0;
            }
            io.category = (int32_t)v;
            break;
        case O_GOOD: io.known_good = 1; break;
        case O_BAD: io.known_good = 0; break;
        case O_SKIP: io.skip_bad = 1; break;
        case O_AGAIN: io.again = 1; break;
        case O_MEMORY: {
            char *end;
            errno = 0;
            unsigned long long b = strtoull(optarg, &end, 10), mul = 1;
            if (*end == 'K' || *end == 'k') mul = 1ull << 10;
            else if (*end == 'M' || *end == 'm') mul = 1ull << 20;
            else if (*end == 'G' || *end == 'g') mul = 1ull << 30;
            if (mul > 1) end++;
            if (errno || end == optarg || *end || optarg[0] == '-' || b > UINT64_MAX / mul ||
                b * mul < IMT_IMPORT_MEMORY_MIN) {
                cli_err("--memory-budget: '%s' is not a size of at least 4M", optarg);
                return CLI_EXIT_ERROR;
            }
            io.memory_budget = b * mul;
            break;
        }
        case O_COMPACT: io.compact = 1; break;
        case O_NOCOMPACT: io.compact = 0; break;
        case O_CREATE: create = 1; break;
        case 'q': quiet = 1; break;
        default: usage_import(stderr); return CLI_EXIT_ERROR;
        }
    }
    if (argc - optind < 2) {
        usage_import(stderr);
        return CLI_EXIT_ERROR;
    }
    if (io.name && argc - optind > 2) {
        cli_err("--name names one list: import one FILE at a time with it");
        return CLI_EXIT_ERROR;
    }
    imt_index *idx;
    if (!open_index(&idx, argv[optind], 1, create)) return CLI_EXIT_ERROR;
    int rc = CLI_EXIT_OK;
    for (int i = optind + 1; i < argc; i++) {
        imt_import_stats st;
        imt_err e = imt_index_import(idx, argv[i], &io, &st);
        if (e != IMT_OK && st.list_id) { /* committed, then the handle failed */
            cli_err("%s (%s)", imt_index_last_error(idx), imt_err_name(e));
            rc = CLI_EXIT_ERROR;
            break;
        }
        if (e != IMT_OK) {
            cli_err("%s (%s); nothing of it was imported", imt_index_last_error(idx), imt_err_name(e));
            rc = CLI_EXIT_ERROR;
            break;
        }
        if (!quiet) {
            if (st.lists > 1)
                printf("%s: lists %u-%u, ", argv[i], (unsigned)st.list_id,
                       (unsigned)(st.list_id + st.lists - 1));
            else
                printf("%s: list %u, ", argv[i], (unsigned)st.list_id);
            printf("format %s, %llu records, %llu new entries, %llu merged", st.format,
                   (unsigned long long)st.records, (unsigned long long)st.new_entries,
                   (unsigned long long)st.merged);
            if (st.duplicates)
                printf(", %llu repeated earlier records of the list (one membership each)",
                       (unsigned long long)st.duplicates);
            if (st.pdq_shared)
                printf(", %llu sharing a PDQ hash with an entry of other digests (entries of their own)",
                       (unsigned long long)st.pdq_shared);
            if (st.compacted)
                printf(", compacted (%llu PDQ hashes written into a level)",
                       (unsigned long long)st.pdq_written);
            imt_index_stats is;
            imt_index_stats_get(idx, &is);
            if (st.compacted && is.pdq_levels > 1) {
                printf("; PDQ levels ");
                print_levels(&is);
                printf(", each searched by every query until 'index compact'");
            }
            printf("\n");
        }
        if (st.conflicts)
            cli_err("%s: %llu repeated records gave another category or label; the first: %s",
                    argv[i], (unsigned long long)st.conflicts, st.conflict_example);
        if (st.bad) {
            cli_err("%s: skipped %llu bad records; the first:", argv[i], (unsigned long long)st.bad);
            for (int k = 0; k < IMT_IMPORT_BAD_EXAMPLES && (uint64_t)k < st.bad; k++)
                fprintf(stderr, "  %s\n", st.bad_examples[k]);
        }
    }
    imt_index_close(idx);
    return rc;
}

/* ---- stats ------------------------------------------------------------- */
static int do_stats(int argc, char **argv)
{
    int json = 0, rc = index_only_args(argc, argv, "json", 0, &json, usage_stats);
    if (rc >= 0) return rc;
    imt_index *idx;
    if (!open_index(&idx, argv[optind], 0, 0)) return CLI_EXIT_ERROR;
    imt_index_stats s;
    char ident[65];
    imt_index_stats_get(idx, &s);
    imt_index_identity(idx, ident);
    size_t nl = imt_index_list_count(idx);
    if (json) {
        printf("{\"format_version\":%u,\"tool\":", (unsigned)s.format_version);
        cli_json_str(stdout, s.tool_version);
        printf(",\"identity\":\"%s\",\"created\":%lld,\"generation\":%llu,\"entries\":%llu,"
               "\"pdq\":%llu,\"md5\":%llu,\"sha1\":%llu,\"sha256\":%llu,\"memberships\":%llu,"
               "\"pdq_compacted\":%llu,\"pdq_delta\":%llu,\"mih_tables\":%d,\"file_bytes\":%llu,"
               "\"pdq_levels\":[",
               ident, (long long)s.created, (unsigned long long)s.generation,
               (unsigned long long)s.entries, (unsigned long long)s.pdq,
               (unsigned long long)s.md5, (unsigned long long)s.sha1,
               (unsigned long long)s.sha256, (unsigned long long)s.memberships,
               (unsigned long long)s.pdq_main, (unsigned long long)s.pdq_delta, s.mih_tables,
               (unsigned long long)s.file_bytes);
        for (int l = 0; l < s.pdq_levels; l++)
            printf("%s%llu", l ? "," : "", (unsigned long long)s.pdq_level[l]);
        printf("],\"lists\":[");
        for (size_t i = 0; i < nl; i++) {
            imt_list_info li;
            imt_index_list_get(idx, i, &li);
            printf("%s{\"id\":%u,\"name\":", i ? "," : "", (unsigned)li.id);
            cli_json_str(stdout, li.name);
            printf(",\"version\":");
            cli_json_str(stdout, li.version);
            printf(",\"format\":");
            cli_json_str(stdout, li.format);
            printf(",\"scheme\":");
            cli_json_str(stdout, li.scheme);
            printf(",\"known_good\":%s,\"import_time\":%lld,\"entries\":%llu,\"file_sha256\":\"%s\","
                   "\"policy\":\"%s\"}",
                   li.known_good ? "true" : "false", (long long)li.import_time,
                   (unsigned long long)li.entries, li.file_sha256, li.policy);
        }
        printf("]}\n");
    } else {
        printf("index:          %s\n", argv[optind]);
        printf("format version: %u (created by %s)\n", (unsigned)s.format_version, s.tool_version);
        printf("identity:       %s\n", ident);
        printf("generation:     %llu\n", (unsigned long long)s.generation);
        printf("entries:        %llu (pdq %llu, md5 %llu, sha1 %llu, sha256 %llu; %llu memberships)\n",
               (unsigned long long)s.entries, (unsigned long long)s.pdq,
               (unsigned long long)s.md5, (unsigned long long)s.sha1,
               (unsigned long long)s.sha256, (unsigned long long)s.memberships);
        printf("pdq segments:   %llu compacted (%d MIH tables in level 0), %llu in the delta\n",
               (unsigned long long)s.pdq_main, s.mih_tables, (unsigned long long)s.pdq_delta);
        printf("pdq levels:     %d (", s.pdq_levels);
        for (int l = 0; l < s.pdq_levels; l++)
            printf("%s%llu", l ? ", " : "", (unsigned long long)s.pdq_level[l]);
        printf(")\n");
        printf("file size:      %llu bytes", (unsigned long long)s.file_bytes);
        if (s.entries) printf(" (%.1f per entry)", (double)s.file_bytes / (double)s.entries);
        char vt[32] = "";
        time_t vat = (time_t)s.verified_at;
        struct tm vtm;
        if (s.verified_at && gmtime_r(&vat, &vtm)) strftime(vt, sizeof vt, "%Y-%m-%dT%H:%M:%SZ", &vtm);
        printf("\nopen check:     %s; PDQ content %s%s%s\n",
               s.pages_from_record ? "meta and branch pages (the leaves unchanged since a full "
                                     "check recorded on this machine)" : "every page",
               !s.content_verified ? "not verified"
               : s.content_from_record ? "verified by this machine at " : "verified at open ",
               s.content_verified ? vt : "", s.content_from_record ? ", unchanged since" : "");
        printf("lists:          %zu\n", nl);
        printf("  id  good  entries  \"format\" \"scheme\" imported  \"name\" (\"version\") sha256\n");
        for (size_t i = 0; i < nl; i++) {
            imt_list_info li;
            imt_index_list_get(idx, i, &li);
            char tb[32];
            time_t t = (time_t)li.import_time;
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(tb, sizeof tb, "%Y-%m-%dT%H:%M:%SZ", &tm);
            /* strings from the index are quoted and escaped (CSV rules): a
             * list name may hold terminal escapes */
            printf("  %-3u %-5s %-8llu ", (unsigned)li.id, li.known_good ? "good" : "bad",
                   (unsigned long long)li.entries);
            imt_csv_write_str(stdout, li.format);
            printf(" ");
            imt_csv_write_str(stdout, li.scheme);
            printf(" %s  ", tb);
            imt_csv_write_str(stdout, li.name);
            if (*li.version) {
                printf(" (");
                imt_csv_write_str(stdout, li.version);
                printf(")");
            }
            printf(" %s\n", li.file_sha256);
            printf("      policy: %s\n", li.policy);
        }
    }
    imt_index_close(idx);
    return CLI_EXIT_OK;
}

/* ---- compact ----------------------------------------------------------- */
static int do_compact(int argc, char **argv)
{
    int quiet = 0, rc = index_only_args(argc, argv, "quiet", 'q', &quiet, usage_compact);
    if (rc >= 0) return rc;
    imt_index *idx;
    if (!open_index(&idx, argv[optind], 1, 0)) return CLI_EXIT_ERROR;
    imt_index_stats before, after;
    imt_index_stats_get(idx, &before);
    if (!quiet && isatty(STDERR_FILENO))
        fprintf(stderr, "compacting %llu PDQ hashes...\n",
                (unsigned long long)(before.pdq_main + before.pdq_delta));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    imt_err e = imt_index_compact(idx);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (e != IMT_OK) {
        cli_err("%s (%s)", imt_index_last_error(idx), imt_err_name(e));
        imt_index_close(idx);
        return CLI_EXIT_ERROR;
    }
    imt_index_stats_get(idx, &after);
    if (!quiet) {
        printf("%s: PDQ levels ", argv[optind]);
        print_levels(&before);
        printf(" -> ");
        print_levels(&after);
        printf(", %.1f s\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    }
    imt_index_close(idx);
    return CLI_EXIT_OK;
}

/* ---- verify ------------------------------------------------------------ */
static int do_verify(int argc, char **argv)
{
    int rc = index_only_args(argc, argv, NULL, 0, NULL, usage_verify);
    if (rc >= 0) return rc;
    /* without the open-time content check: verify checks the same arrays
     * against the entries and names the first bad record; every page is
     * checked (no verified-state record) */
    imt_index *idx;
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.skip_content_check = 1;
    o.full_check = 1;
    imt_err e = imt_index_open(&idx, argv[optind], &o);
    if (e != IMT_OK) {
        cli_err("%s (%s)", imt_index_open_error(), imt_err_name(e));
        return CLI_EXIT_ERROR;
    }
    e = imt_index_verify(idx);
    if (e != IMT_OK) cli_err("%s (%s)", imt_index_last_error(idx), imt_err_name(e));
    else {
        imt_index_stats s;
        imt_index_stats_get(idx, &s);
        printf("%s: ok (%llu entries, %zu lists)\n", argv[optind], (unsigned long long)s.entries,
               imt_index_list_count(idx));
    }
    imt_index_close(idx);
    return e == IMT_OK ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

/* ---- export ------------------------------------------------------------ */
static int do_export(int argc, char **argv)
{
    static const struct option lo[] = {{"format", 1, 0, 'f'}, {"list", 1, 0, 'l'},
                                       {"output", 1, 0, 'o'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    imt_export_opts eo;
    imt_export_opts_init(&eo);
    const char *outp = NULL;
    unsigned long long v;
    int c;
    while ((c = getopt_long(argc, argv, "f:l:o:h", lo, NULL)) != -1) {
        switch (c) {
        case 'h': usage_export(stdout); return CLI_EXIT_OK;
        case 'f': eo.format = optarg; break;
        case 'l':
            if (!cli_parse_u64(optarg, &v)) {
                cli_err("--list: '%s' is not a list id", optarg);
                return CLI_EXIT_ERROR;
            }
            eo.list_id = (int64_t)v;
            break;
        case 'o': outp = optarg; break;
        default: usage_export(stderr); return CLI_EXIT_ERROR;
        }
    }
    if (optind + 1 != argc) {
        usage_export(stderr);
        return CLI_EXIT_ERROR;
    }
    imt_index *idx;
    if (!open_index(&idx, argv[optind], 0, 0)) return CLI_EXIT_ERROR;
    int fd = 1;
    if (outp && strcmp(outp, "-") != 0) {
        fd = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) {
            cli_err("%s: cannot create", outp);
            imt_index_close(idx);
            return CLI_EXIT_ERROR;
        }
    }
    fflush(stdout);
    imt_err e = imt_index_export(idx, fd, &eo);
    if (e != IMT_OK) cli_err("%s (%s)", imt_index_last_error(idx), imt_err_name(e));
    if (fd != 1 && close(fd) != 0 && e == IMT_OK) {
        cli_err("%s: write error", outp);
        e = IMT_E_IO;
    }
    imt_index_close(idx);
    return e == IMT_OK ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

/* ---- query ------------------------------------------------------------- */
static void print_matches(imt_index *idx, const char *q, const imt_match *m, size_t n)
{
    size_t nl = imt_index_list_count(idx);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < m[i].n_members; k++) {
            const imt_membership *ms = &m[i].members[k];
            const char *lname = "?";
            for (size_t j = 0; j < nl; j++) {
                imt_list_info li;
                if (imt_index_list_get(idx, j, &li) == IMT_OK && li.id == ms->list_id) lname = li.name;
            }
            /* the list's strings are quoted and escaped as in scan reports:
             * a name may hold commas, quotes or terminal escapes */
            printf("%s,%s,%d,%s,%llu,%u,", q, imt_hash_kind_name(m[i].kind), m[i].distance,
                   m[i].kind == IMT_KIND_PDQ ? imt_dihedral_name(m[i].variant) : "",
                   (unsigned long long)m[i].entry, (unsigned)ms->list_id);
            imt_csv_write_str(stdout, lname);
            putchar(',');
            if (ms->category >= 0) printf("%d", (int)ms->category);
            else if (*ms->category_label) imt_csv_write_str(stdout, ms->category_label);
            putchar(',');
            imt_csv_write_str(stdout, ms->external_id);
            printf(",%s\n", imt_disposition_name(ms->disposition));
        }
}

static int do_query(int argc, char **argv)
{
    enum { O_SHA256 = 256 };
    static const struct option lo[] = {{"radius", 1, 0, 'r'}, {"dihedral", 0, 0, 'd'},
                                       {"sha256", 0, 0, O_SHA256}, {"method", 1, 0, 'm'},
                                       {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c, dihedral = 0, sha256 = 0, radius = IMT_PDQ_MATCH_DISTANCE;
    imt_search_method method = IMT_SEARCH_AUTO;
    unsigned long long v;
    while ((c = getopt_long(argc, argv, "r:dm:h", lo, NULL)) != -1) {
        switch (c) {
        case 'h': usage_query(stdout); return CLI_EXIT_OK;
        case 'r':
            if ((!cli_parse_u64(optarg, &v) && strcmp(optarg, "0")) || v > 256) {
                cli_err("--radius: '%s' is not 0..256", optarg);
                return CLI_EXIT_ERROR;
            }
            radius = strcmp(optarg, "0") ? (int)v : 0;
            break;
        case 'd': dihedral = 1; break;
        case O_SHA256: sha256 = 1; break;
        case 'm':
            if (!strcmp(optarg, "auto")) method = IMT_SEARCH_AUTO;
            else if (!strcmp(optarg, "mih")) method = IMT_SEARCH_MIH;
            else if (!strcmp(optarg, "scan")) method = IMT_SEARCH_SCAN;
            else {
                cli_err("--method: auto, mih or scan");
                return CLI_EXIT_ERROR;
            }
            break;
        default: usage_query(stderr); return CLI_EXIT_ERROR;
        }
    }
    if (argc - optind < 2) {
        usage_query(stderr);
        return CLI_EXIT_ERROR;
    }
    imt_index *idx;
    if (!open_index(&idx, argv[optind], 0, 0)) return CLI_EXIT_ERROR;
    imt_cursor *cur;
    imt_err ce = imt_cursor_open(&cur, idx);
    if (ce != IMT_OK) {
        cli_err("%s: cannot query the index: %s", argv[optind], imt_strerror(ce));
        imt_index_close(idx);
        return CLI_EXIT_ERROR;
    }
    imt_cursor_set_method(cur, method);
    int rc = CLI_EXIT_OK;
    for (int i = optind + 1; i < argc && rc != CLI_EXIT_ERROR;) {
        const char *a = argv[i];
        size_t len = strlen(a);
        const imt_match *m = NULL;
        size_t n = 0;
        imt_err e;
        if (len == 64 && !sha256) {
            imt_pdq q[8];
            int nq = dihedral ? 8 : 1;
            if (argc - i < nq) {
                cli_err("--dihedral: each query is 8 PDQ hashes");
                rc = CLI_EXIT_ERROR;
                break;
            }
            for (int k = 0; k < nq; k++)
                if (imt_pdq_from_hex(&q[k], argv[i + k], strlen(argv[i + k])) != IMT_OK) {
                    cli_err("'%s' is not a PDQ hash (64 hex digits)", argv[i + k]);
                    rc = CLI_EXIT_ERROR;
                }
            if (rc == CLI_EXIT_ERROR) break;
            e = imt_query_pdq(cur, q, nq, radius, &m, &n);
            i += nq;
        } else {
            uint8_t d[32];
            imt_hash_kind k = len == 32 ? IMT_KIND_MD5 : len == 40 ? IMT_KIND_SHA1 : IMT_KIND_SHA256;
            if ((len != 32 && len != 40 && len != 64) || imt_hex_decode(d, len / 2, a, len) != IMT_OK) {
                cli_err("'%s' is not a PDQ hash or an MD5/SHA-1/SHA-256 digest", a);
                rc = CLI_EXIT_ERROR;
                break;
            }
            e = imt_query_digest(cur, k, d, &m, &n);
            i++;
        }
        if (e != IMT_OK) {
            cli_err("query failed: %s", imt_strerror(e));
            rc = CLI_EXIT_ERROR;
            break;
        }
        print_matches(idx, a, m, n);
        if (n) rc = CLI_EXIT_FOUND;
    }
    imt_cursor_close(cur);
    imt_index_close(idx);
    return rc;
}

int cmd_index(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_ERROR;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    argc--;
    argv++;
    optind = 1;
    if (!strcmp(sub, "create")) return do_create(argc, argv);
    if (!strcmp(sub, "import")) return do_import(argc, argv);
    if (!strcmp(sub, "import-files")) return cmd_index_import_files(argc, argv);
    if (!strcmp(sub, "compact")) return do_compact(argc, argv);
    if (!strcmp(sub, "stats")) return do_stats(argc, argv);
    if (!strcmp(sub, "verify")) return do_verify(argc, argv);
    if (!strcmp(sub, "export")) return do_export(argc, argv);
    if (!strcmp(sub, "query")) return do_query(argc, argv);
    cli_err("index: unknown subcommand '%s'; try 'imgtriage index --help'", sub);
    return CLI_EXIT_ERROR;
}
