/* cmd_bench.c — `swiftlet bench`: load-test any OpenAI-compatible server (swiftlet,
 * vLLM, llama.cpp's server) with a built-in workload, open-loop (Poisson / gamma
 * arrivals) or closed-loop, and report TTFT / TPOT / ITL / end-to-end latency,
 * throughput, goodput and SLO attainment, short-prompt TTFT and HTTP 503 rejections
 * (table on stdout, JSON with --out); --send-slo tells a swiftlet server the SLOs. --sweep
 * runs several rates and writes a JSON array plus an SVG chart next to it. */
#include "bench/bench.h"
#include "cli/cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: swiftlet bench --url http://HOST:PORT --workload NAME\n"
            "         (--rate R [--burstiness B] | --concurrency C | --sweep R1,R2,...)\n"
            "         (--requests N | --duration S)\n"
            "         [--model NAME] [--api-key K] [--slo-ttft MS] [--slo-tpot MS] [--seed S]\n"
            "         [--out report.json] [--endpoint completions|chat] [--extra-body JSON]\n"
            "         [--timeout S] [--send-slo] [--short-prompt N] [--quiet]\n"
            "workloads: chat-shared-prefix, mixed-lengths, long-prompt\n"
            "  --rate R         open loop: arrivals at R req/s; gaps gamma(shape B, scale 1/(R*B)),\n"
            "                   --burstiness B (default 1 = Poisson; < 1 burstier)\n"
            "  --concurrency C  closed loop: C requests in flight\n"
            "  --sweep LIST     open loop at each rate (point k uses seed S+k, so no point warms\n"
            "                   another's prefix cache); --out gets a JSON array and an .svg chart\n"
            "  --model NAME     default: the first id of GET /v1/models\n"
            "  --extra-body J   JSON object merged into every request (e.g. '{\"priority\":1}')\n"
            "  --timeout S      per connect / read, default 600\n"
            "  --send-slo       put \"slo_ttft_ms\" / \"slo_tpot_ms\" (the --slo-ttft / --slo-tpot given) in\n"
            "                   every request: swiftlet schedules by them (other servers may reject them)\n"
            "  --short-prompt N TTFT is also reported over requests with prompts of <= N tokens\n"
            "                   (usage.prompt_tokens), default 256\n"
            "HTTP 503 answers count as failed and, separately, as rejected; they are never good.\n"
            "Percentiles interpolate linearly between closest ranks (numpy's default).\n");
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    double v;
    if (parse_double(s, &v) || v < lo || v > hi || v != floor(v)) return -1;
    *out = (int)v;
    return 0;
}

/* Parses "R1,R2,..." into rates (up to cap); returns the count or -1. */
static int parse_rates(const char *s, double *rates, int cap) {
    int n = 0;
    char buf[1024];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == cap || parse_double(t, &rates[n]) || !(rates[n] > 0)) return -1;
        n++;
    }
    return n ? n : -1;
}

static int write_json(const char *path, json_t *j) {
    int rc = json_dump_file(j, path, JSON_INDENT(2) | JSON_REAL_PRECISION(8));
    if (rc) fprintf(stderr, "bench: cannot write %s\n", path);
    return rc;
}

int cli_bench(int argc, char **argv) {
    bench_config cfg = {0};
    cfg.burstiness = 1.0;
    cfg.timeout_s = 600;
    cfg.workload = -1;
    const char *out = NULL, *sweep = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "--quiet")) { cfg.quiet = 1; continue; }
        if (!strcmp(a, "--send-slo")) { cfg.send_slo = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "bench: %s needs a value (or is unknown)\n", a); usage(stderr); return 2; }
        const char *v = argv[++i];
        int bad = 0;
        if (!strcmp(a, "--url")) cfg.url = v;
        else if (!strcmp(a, "--model")) cfg.model = v;
        else if (!strcmp(a, "--api-key")) cfg.api_key = v;
        else if (!strcmp(a, "--workload")) bad = bench_workload_kind_parse(v, &cfg.workload) != 0;
        else if (!strcmp(a, "--rate")) bad = parse_double(v, &cfg.rate) || !(cfg.rate > 0);
        else if (!strcmp(a, "--burstiness")) bad = parse_double(v, &cfg.burstiness) || !(cfg.burstiness > 0);
        else if (!strcmp(a, "--concurrency")) bad = parse_int(v, 1, 4096, &cfg.concurrency);
        else if (!strcmp(a, "--requests")) bad = parse_int(v, 1, 1000000, &cfg.n_requests);
        else if (!strcmp(a, "--duration")) bad = parse_double(v, &cfg.duration_s) || !(cfg.duration_s > 0);
        else if (!strcmp(a, "--slo-ttft")) bad = parse_double(v, &cfg.slo_ttft_ms) || !(cfg.slo_ttft_ms > 0);
        else if (!strcmp(a, "--slo-tpot")) bad = parse_double(v, &cfg.slo_tpot_ms) || !(cfg.slo_tpot_ms > 0);
        else if (!strcmp(a, "--seed")) { char *e; errno = 0; cfg.seed = strtoull(v, &e, 10); bad = errno || *e || e == v || v[0] == '-'; }
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--sweep")) sweep = v;
        else if (!strcmp(a, "--endpoint")) {
            if (!strcmp(v, "completions")) cfg.endpoint = BENCH_EP_COMPLETIONS;
            else if (!strcmp(v, "chat")) cfg.endpoint = BENCH_EP_CHAT;
            else bad = 1;
        }
        else if (!strcmp(a, "--extra-body")) cfg.extra_body = v;
        else if (!strcmp(a, "--short-prompt")) bad = parse_int(v, 1, 10000000, &cfg.short_prompt_tokens);
        else if (!strcmp(a, "--timeout")) bad = parse_double(v, &cfg.timeout_s) || !(cfg.timeout_s > 0);
        else { fprintf(stderr, "bench: unknown option %s\n", a); usage(stderr); return 2; }
        if (bad) { fprintf(stderr, "bench: bad value for %s: '%s'\n", a, v); return 2; }
    }
    if (!cfg.url) { fprintf(stderr, "bench: --url is required\n"); usage(stderr); return 2; }
    if (cfg.workload < 0) { fprintf(stderr, "bench: --workload chat-shared-prefix|mixed-lengths|long-prompt is required\n"); return 2; }
    int modes = (cfg.rate > 0) + (cfg.concurrency > 0) + (sweep != NULL);
    if (modes != 1) { fprintf(stderr, "bench: give exactly one of --rate, --concurrency, --sweep\n"); return 2; }
    if ((cfg.n_requests > 0) == (cfg.duration_s > 0)) { fprintf(stderr, "bench: give exactly one of --requests, --duration\n"); return 2; }
    if (cfg.send_slo && !(cfg.slo_ttft_ms > 0) && !(cfg.slo_tpot_ms > 0)) {
        fprintf(stderr, "bench: --send-slo needs --slo-ttft and/or --slo-tpot\n");
        return 2;
    }

    if (!sweep) {
        bench_report *rep;
        sw_err err = {0};
        if (bench_run(&cfg, &rep, &err)) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
        bench_report_print(rep, stdout);
        int rc = 0;
        if (out) {
            json_t *j = bench_report_json(rep);
            rc = !j || write_json(out, j);
            json_decref(j);
        }
        int none = rep->completed == 0;
        bench_report_destroy(rep);
        return rc || none ? 1 : 0;
    }

    double rates[64];
    int n = parse_rates(sweep, rates, 64);
    if (n < 0) { fprintf(stderr, "bench: bad --sweep list '%s' (up to 64 positive rates)\n", sweep); return 2; }
    if (!out) { fprintf(stderr, "bench: --sweep needs --out FILE.json (the chart goes next to it)\n"); return 2; }
    bench_report *reps[64];
    uint64_t seed0 = cfg.seed;
    char svg[4096];
    size_t l = strlen(out);
    if (l > 5 && !strcmp(out + l - 5, ".json")) snprintf(svg, sizeof svg, "%.*s.svg", (int)(l - 5), out);
    else snprintf(svg, sizeof svg, "%s.svg", out);
    int done = 0, rc = 0;
    json_t *arr = json_array();
    for (; done < n; done++) {
        cfg.rate = rates[done];
        cfg.seed = seed0 + (uint64_t)done; /* fresh prompts per point: no point warms another's prefix cache */
        if (!cfg.quiet) fprintf(stderr, "bench: sweep %d/%d at %g req/s\n", done + 1, n, cfg.rate);
        sw_err err = {0};
        if (bench_run(&cfg, &reps[done], &err)) { fprintf(stderr, "bench: %s\n", err.msg); rc = 1; break; }
        bench_report_print(reps[done], stdout);
        fflush(stdout);
        json_array_append_new(arr, bench_report_json(reps[done]));
        /* JSON and chart rewritten after every point, so a run cut short keeps its results */
        if (write_json(out, arr)) { rc = 1; done++; break; }
        if (bench_svg_write(svg, reps, done + 1, &err)) { fprintf(stderr, "bench: %s\n", err.msg); rc = 1; done++; break; }
    }
    if (!rc && !cfg.quiet) fprintf(stderr, "bench: wrote %s and %s\n", out, svg);
    for (int i = 0; i < done; i++) bench_report_destroy(reps[i]);
    json_decref(arr);
    return rc;
}
