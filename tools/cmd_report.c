/* tools/cmd_report.c -- `imgtriage report FORMAT REPORT.jsonl`: a scan's
 * JSONL report in another format, without rescanning. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
"Usage: imgtriage report FORMAT REPORT.jsonl [-o OUT] [--hits-only]\n"
"Convert a scan's JSONL report (complete or interrupted) into FORMAT without\n"
"rescanning the device:\n"
"  jsonl   the records re-emitted (as the scan wrote them)\n"
"  csv     one row per entry and match, as 'scan --format csv' writes it\n"
"  dfxml   DFXML 2.0: a fileobject per entry (name, size, inode, times,\n"
"          MD5/SHA1/SHA256); PDQ and matches in the imgtriage namespace\n"
"  vics    Project VIC VICS 2.0 case export: a media object per distinct file\n"
"          read (MD5, SHA1, size, PDQ and SHA256 as AlternativeHashes, its\n"
"          paths as MediaFiles); Category only from projectvic lists. For\n"
"          Griffeye Analyze, IPED, or 'imgtriage index import'\n"
"  html    one self-contained page for people: device, case, priority and\n"
"          its explanation, hits by list and category, a sortable hit table,\n"
"          errors and findings, charts (hits and pictures over modification\n"
"          time, hits by category, top folders), the audit facts. It never\n"
"          shows a picture, loads nothing, and runs no script but its own\n"
"          table sorter (Content-Security-Policy)\n"
"\n"
"Options:\n"
"  -o, --out FILE   write to FILE (default: standard output); refused inside\n"
"                   the report's PATHs or index, over the report itself, and\n"
"                   over an existing file unless --force\n"
"      --force      overwrite an existing FILE\n"
"      --hits-only  only entries with a hit (header and summary kept)\n"
"  -h, --help       show this help and exit\n"
"\n"
"Every name from the evidence or a list is escaped for the format (HTML:\n"
"escaped, control bytes and invalid UTF-8 shown as \\xNN; XML:\n"
"escaped, what XML cannot hold as U+FFFD with the exact bytes in hex beside\n"
"it; CSV: cells starting with = + - @ or ' get a leading ').\n"
"\n"
"Exit status: 0 written, 2 error.\n");
}

int cmd_report(int argc, char **argv)
{
    static const struct option lo[] = {
        {"out", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'F'},
        {"hits-only", no_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *out_path = NULL;
    int force = 0, c;
    imt_report_opts ro;
    imt_report_opts_init(&ro);
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case 'F': force = 1; break;
        case 'H': ro.hits_only = 1; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_ERROR;
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        return CLI_EXIT_ERROR;
    }
    const char *fmt = argv[optind], *in_path = argv[optind + 1];
    static const struct { const char *name; imt_report_format f; } fmts[] = {
        {"jsonl", IMT_REPORT_JSONL}, {"csv", IMT_REPORT_CSV}, {"dfxml", IMT_REPORT_DFXML},
        {"vics", IMT_REPORT_VICS}, {"html", IMT_REPORT_HTML}};
    size_t k = 0;
    while (k < sizeof fmts / sizeof fmts[0] && strcmp(fmt, fmts[k].name)) k++;
    if (k == sizeof fmts / sizeof fmts[0]) {
        cli_err("report: unknown format '%s' (jsonl, csv, dfxml, vics, html)", fmt);
        return CLI_EXIT_ERROR;
    }
    ro.format = fmts[k].f;

    int rc = CLI_EXIT_ERROR;
    char why[512];
    FILE *out = stdout;
    cli_output co;
    memset(&co, 0, sizeof co);
    imt_report_inputs ri;
    memset(&ri, 0, sizeof ri);
    if (out_path) {
        imt_err e = imt_report_inputs_read(&ri, in_path);
        if (e != IMT_OK) {
            cli_err("report: %s: %s", in_path,
                    e == IMT_E_PARSE ? "not an imgtriage JSONL report" : imt_strerror(e));
            goto done;
        }
        /* Never over the report itself, nor into its evidence or index. */
        size_t n = ri.n_paths + 1;
        const char **ps = calloc(n, sizeof *ps);
        if (!ps) { cli_err("report: out of memory"); goto done; }
        for (size_t i = 0; i < ri.n_paths; i++) ps[i] = ri.paths[i];
        ps[ri.n_paths] = in_path;
        int bad = cli_open_output(out_path, ps, n, ri.index_path, force, &co, why, sizeof why);
        free(ps);
        if (bad) {
            cli_err("report: %s", why);
            goto done;
        }
        out = cli_output_open(&co, 0, why, sizeof why);
        if (!out) {
            out = stdout;
            cli_err("report: %s", why);
            goto done;
        }
    }
    imt_err e = imt_report_convert(in_path, out, &ro, why, sizeof why);
    if (e != IMT_OK) cli_err("report: %s", why[0] ? why : imt_strerror(e));
    else rc = CLI_EXIT_OK;
    if (out != stdout && fclose(out) != 0 && rc == CLI_EXIT_OK) {
        cli_err("report: cannot write %s: %s", out_path, strerror(errno));
        rc = CLI_EXIT_ERROR;
    }
    out = stdout;
done:
    if (out != stdout) fclose(out);
    cli_output_free(&co);
    imt_report_inputs_free(&ri);
    return rc;
}
