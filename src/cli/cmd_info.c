/* cmd_info.c - moesim info: what a trace holds. */
#include <getopt.h>
#include <jansson.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "moesim/trace.h"

static const char *usage_text =
    "usage: moesim info TRACE... [options]\n"
    "\n"
    "Loads a routing trace (a directory of per-request .npz files as vLLM/SGLang dump\n"
    "them, or .npz files) and prints requests, prompt/output tokens, layers, experts,\n"
    "top-k, the dtype of routed_experts, bytes read and the load speed.\n"
    "\n"
    "options:\n"
    "  --experts N        routed experts per layer (default: num_experts in the files,\n"
    "                     else largest id + 1); ids >= N are rejected\n"
    "  --threads N        worker threads (default: all cores)\n"
    "  --format F         table (default), json or csv\n"
    "  -o FILE            write there (atomically) instead of stdout\n"
    "  --quiet            no progress bar;  --progress: always draw it\n"
    "\n"
    "example:\n"
    "  moesim info ../shared/data/deepseek-v2-lite-puffin --format json\n";

int cmd_info(int argc, char **argv) {
    static const struct option longopts[] = {
        {"experts", required_argument, 0, 'e'}, {"threads", required_argument, 0, 't'},
        {"format", required_argument, 0, 'f'},  {"quiet", no_argument, 0, 'q'},
        {"progress", no_argument, 0, 'p'},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    cli_trace_opts to = {0};
    cli_format fmt = CLI_TABLE;
    const char *outpath = NULL;
    uint32_t threads = 0;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'e': if (cli_parse_u32("info", "--experts", optarg, &to.n_experts)) return 2; break;
        case 't': if (cli_parse_u32("info", "--threads", optarg, &threads)) return 2; to.threads = (int)threads; break;
        case 'f': if (cli_parse_format("info", optarg, &fmt)) return 2; break;
        case 'o': outpath = optarg; break;
        case 'q': to.progress = -1; break;
        case 'p': to.progress = 1; break;
        case 'h': cli_print_help(usage_text); return 0;
        default: return cli_usage("info", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage("info", "no trace given");
    ms_trace *t;
    double t0 = ms_now();
    int rc = cli_load_trace("info", argv + optind, argc - optind, &to, &t);
    if (rc) return rc;
    double secs = ms_now() - t0;
    uint64_t prompt = 0, output = 0;
    for (uint64_t r = 0; r < t->n_requests; r++) {
        prompt += t->n_prompt[r];
        output += t->n_output[r];
    }
    uint64_t events = t->n_tokens * t->n_layers * t->top_k;
    uint64_t mem = (events + t->n_tokens * t->n_layers * t->n_ranked) * 2 + t->n_requests * 28;
    ms_afile f;
    if ((rc = cli_open_output("info", outpath, &f))) {
        ms_trace_free(t);
        return rc;
    }
    double mbps = secs > 0 ? (double)t->source_bytes / secs / 1e6 : 0;
    double evps = secs > 0 ? (double)events / secs : 0;
    if (fmt == CLI_JSON) {
        char digest[17];
        snprintf(digest, sizeof digest, "%016llx", (unsigned long long)t->digest);
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:i, s:i, s:s, s:I, s:I, s:I, s:s, s:f, s:f, s:f}",
                              "source", t->label, "requests", (json_int_t)t->n_requests, "prompt_tokens",
                              (json_int_t)prompt, "output_tokens", (json_int_t)output, "rows",
                              (json_int_t)t->n_tokens, "short_rows_requests", (json_int_t)t->n_short_rows,
                              "layers", (int)t->n_layers, "experts", (int)t->n_experts, "top_k", (int)t->top_k,
                              "ranked", (int)t->n_ranked, "dtype", t->source_dtype, "bytes",
                              (json_int_t)t->source_bytes, "memory_bytes", (json_int_t)mem, "routing_events",
                              (json_int_t)events, "trace_digest", digest, "load_seconds", secs, "mb_per_second",
                              mbps, "events_per_second", evps);
        json_dumpf(o, f.fp, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        fputc('\n', f.fp);
        json_decref(o);
    } else if (fmt == CLI_CSV) {
        fprintf(f.fp, "requests,prompt_tokens,output_tokens,rows,layers,experts,top_k,ranked,dtype,bytes,"
                      "routing_events,trace_digest,load_seconds\n");
        fprintf(f.fp, "%llu,%llu,%llu,%llu,%u,%u,%u,%u,%s,%llu,%llu,%016llx,%.6f\n",
                (unsigned long long)t->n_requests, (unsigned long long)prompt, (unsigned long long)output,
                (unsigned long long)t->n_tokens, t->n_layers, t->n_experts, t->top_k, t->n_ranked, t->source_dtype,
                (unsigned long long)t->source_bytes, (unsigned long long)events, (unsigned long long)t->digest, secs);
    } else {
        fprintf(f.fp, "trace          %s\n", t->label);
        fprintf(f.fp, "requests       %llu\n", (unsigned long long)t->n_requests);
        fprintf(f.fp, "prompt tokens  %llu\n", (unsigned long long)prompt);
        fprintf(f.fp, "output tokens  %llu\n", (unsigned long long)output);
        fprintf(f.fp, "routed rows    %llu", (unsigned long long)t->n_tokens);
        if (t->n_short_rows)
            fprintf(f.fp, "  (%llu requests one row short: last token never fed back)",
                    (unsigned long long)t->n_short_rows);
        fprintf(f.fp, "\nlayers         %u\nexperts        %u\ntop-k          %u\n", t->n_layers, t->n_experts,
                t->top_k);
        if (t->n_ranked) fprintf(f.fp, "ranked choices %u\n", t->n_ranked);
        fprintf(f.fp, "dtype          %s\n", t->source_dtype);
        fprintf(f.fp, "npz bytes      %llu (%.1f MB)\n", (unsigned long long)t->source_bytes,
                (double)t->source_bytes / 1e6);
        fprintf(f.fp, "routing events %llu (held in %.1f MB)\n", (unsigned long long)events, (double)mem / 1e6);
        fprintf(f.fp, "digest         %016llx\n", (unsigned long long)t->digest);
        fprintf(f.fp, "loaded in      %.3f s (%.1f MB/s of npz, %.3g events/s)\n", secs, mbps, evps);
    }
    ms_trace_free(t);
    return cli_commit_output("info", &f);
}
