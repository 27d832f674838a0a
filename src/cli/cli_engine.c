/* cli_engine.c — what subcommands share: the engine options of `serve` and `generate`
 * (one parser, one usage text: threads, batch budget, KV cache, scheduling policy and the
 * slo policy's objectives) and the strict integer parser every command uses. */
#include "cli/cli.h"
#include "gguf/gguf.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cli_engine_usage =
    "  --threads N             compute threads (default: all cores)\n"
    "  --max-batch-tokens N    token budget per engine step (default 128)\n"
    "  --max-seqs N            running sequences at most (default 32)\n"
    "  --kv-tokens N           KV-cache size in tokens (default 8192)\n"
    "  --kv-mem MB             KV-cache size in MiB (instead of --kv-tokens)\n"
    "  --kv-type f16|f32|q8_0  KV-cache element type (default f16; q8_0: 8-bit blocks, about\n"
    "                          half of f16's memory, needs head_dim a multiple of 32)\n"
    "  --block-size N          tokens per KV block (default 16)\n"
    "  --ctx N                 context per sequence (default: the model's)\n"
    "  --no-prefix-cache       do not share prompt prefixes between requests\n"
    "  --policy NAME           fcfs (default) | priority | slo (goodput-first: TPOT-protecting step\n"
    "                          budget, short-prompt lane, earliest deadline, fair share per user)\n"
    "  --slo-ttft SPEC         default TTFT objective in ms for requests naming none: MS for every\n"
    "                          priority class, or high=MS,normal=MS,low=MS (priority >0, 0, <0)\n"
    "  --slo-tpot SPEC         default TPOT objective in ms, same form\n"
    "  --slo-infeasible MODE   slo: best-effort (default: serve late requests after all others)\n"
    "                          or reject (answer 503 at admission when TTFT cannot be met)\n"
    "  --short-prompt N        slo: prompts with <= N tokens to compute use the short lane (256)\n"
    "  --no-calibrate          skip the start-up profile of the step-time cost model\n";

int cli_parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_ms(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v <= 1e9)) return -1;
    *out = v;
    return 0;
}

/* "MS" or "high=MS,normal=MS,low=MS" (any subset) into per-class ms [low, normal, high]. */
static int parse_slo(const char *spec, double cls[3]) {
    if (!strchr(spec, '=')) {
        double v;
        if (parse_ms(spec, &v)) return -1;
        cls[0] = cls[1] = cls[2] = v;
        return 0;
    }
    char buf[256];
    if (strlen(spec) >= sizeof buf) return -1;
    strcpy(buf, spec);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq) return -1;
        *eq = 0;
        int k = !strcmp(item, "low") ? 0 : !strcmp(item, "normal") ? 1 : !strcmp(item, "high") ? 2 : -1;
        if (k < 0 || parse_ms(eq + 1, &cls[k])) return -1;
    }
    return 0;
}

int cli_engine_option(const char *cmd, const char *a, const char *v, engine_config *c) {
    long x = 0;
    int bad = 0;
    if (!strcmp(a, "--no-prefix-cache")) { c->prefix_cache = false; return 1; }
    if (!strcmp(a, "--no-calibrate")) { c->calibrate = false; return 1; }
    static const char *const with_value[] = {"--threads", "--max-batch-tokens", "--max-seqs", "--kv-tokens",
                                             "--kv-mem", "--kv-type", "--block-size", "--ctx", "--max-ctx",
                                             "--policy", "--slo-ttft", "--slo-tpot", "--slo-infeasible",
                                             "--short-prompt"};
    bool known = false;
    for (size_t i = 0; i < sizeof with_value / sizeof with_value[0]; i++) known |= !strcmp(a, with_value[i]);
    if (!known) return 0;
    if (!v) { fprintf(stderr, "%s: %s needs a value\n", cmd, a); return -1; }
    if (!strcmp(a, "--threads")) { bad = cli_parse_long(v, 0, 1024, &x); c->n_threads = (int)x; }
    else if (!strcmp(a, "--max-batch-tokens")) { bad = cli_parse_long(v, 1, 65536, &x); c->max_batch_tokens = (int)x; }
    else if (!strcmp(a, "--max-seqs")) { bad = cli_parse_long(v, 1, 4096, &x); c->max_seqs = (int)x; }
    else if (!strcmp(a, "--kv-tokens")) { bad = cli_parse_long(v, 1, 1 << 26, &x); c->kv_tokens = (int)x; c->kv_mem_bytes = 0; }
    else if (!strcmp(a, "--kv-mem")) { bad = cli_parse_long(v, 1, 1 << 20, &x); c->kv_mem_bytes = (size_t)x << 20; }
    else if (!strcmp(a, "--block-size")) { bad = cli_parse_long(v, 1, 1024, &x); c->kv_block_size = (int)x; }
    else if (!strcmp(a, "--ctx") || !strcmp(a, "--max-ctx")) { bad = cli_parse_long(v, 1, INT_MAX, &x); c->max_ctx = (int)x; }
    else if (!strcmp(a, "--short-prompt")) { bad = cli_parse_long(v, 0, 1 << 24, &x); c->short_prompt = (int)x; }
    else if (!strcmp(a, "--slo-ttft")) bad = parse_slo(v, c->slo_ttft_ms);
    else if (!strcmp(a, "--slo-tpot")) bad = parse_slo(v, c->slo_tpot_ms);
    else if (!strcmp(a, "--kv-type")) {
        if (!strcmp(v, "f16")) c->kv_dtype = GGUF_DTYPE_F16;
        else if (!strcmp(v, "f32")) c->kv_dtype = GGUF_DTYPE_F32;
        else if (!strcmp(v, "q8_0")) c->kv_dtype = GGUF_DTYPE_Q8_0;
        else bad = 1;
    } else if (!strcmp(a, "--policy")) {
        if (!strcmp(v, "fcfs")) c->policy = ENGINE_POLICY_FCFS;
        else if (!strcmp(v, "priority")) c->policy = ENGINE_POLICY_PRIORITY;
        else if (!strcmp(v, "slo")) c->policy = ENGINE_POLICY_SLO;
        else bad = 1;
    } else if (!strcmp(a, "--slo-infeasible")) {
        if (!strcmp(v, "reject")) c->slo_reject = true;
        else if (!strcmp(v, "best-effort")) c->slo_reject = false;
        else bad = 1;
    }
    if (bad) { fprintf(stderr, "%s: bad value '%s' for %s (see --help)\n", cmd, v, a); return -1; }
    return 2;
}
