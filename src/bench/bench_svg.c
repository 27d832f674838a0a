/* bench_svg.c — a hand-written SVG chart of a rate sweep (no dependencies): three
 * panels side by side — p50/p99 TTFT and the p99 TTFT of short prompts vs achieved
 * request throughput, p50/p99 TPOT vs achieved request throughput, and goodput +
 * achieved throughput vs offered rate (with the ideal y = x line). Each panel has axes from 0, "nice" 1-2-5 ticks, gridlines,
 * axis labels and a legend; p99 curves are dashed. */
#include "bench/bench.h"
#include <errno.h>
#include <math.h>
#include <string.h>

#define PANEL_W 460
#define PANEL_H 420
#define TOP 56
#define ML 72
#define MR 22
#define MT 62
#define MB 58

typedef struct series {
    const char *label, *color;
    int dashed;
    const double *x, *y; /* (n) NaN entries skipped */
    int n;
    const double *tag;   /* (n) offered rate written beside each point, or NULL */
} series;

/* A 1-2-5 step giving about 5 intervals up to max; axis end = ceil(max/step)*step. */
static double nice_step(double max) {
    if (!(max > 0) || !isfinite(max)) return 1;
    double raw = max / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

static void fmt_tick(char *buf, size_t cap, double v, double step) {
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6) dec = 6;
    snprintf(buf, cap, "%.*f", dec, v);
}

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void panel(FILE *f, int ox, const char *title, const char *xlabel, const char *ylabel, const series *s, int ns,
                  int diagonal) {
    double xmax = 0, ymax = 0;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            if (isfinite(s[k].x[i]) && isfinite(s[k].y[i])) {
                if (s[k].x[i] > xmax) xmax = s[k].x[i];
                if (s[k].y[i] > ymax) ymax = s[k].y[i];
            }
        }
    if (diagonal && xmax > ymax) ymax = xmax;
    double xs = nice_step(xmax * 1.05), ys = nice_step(ymax * 1.05);
    double xend = xs * ceil(xmax * 1.05 / xs), yend = ys * ceil(ymax * 1.05 / ys);
    if (!(xend > 0)) xend = xs;
    if (!(yend > 0)) yend = ys;
    double px0 = ox + ML, px1 = ox + PANEL_W - MR, py0 = TOP + PANEL_H - MB, py1 = TOP + MT;
#define SX(v) (px0 + (v) / xend * (px1 - px0))
#define SY(v) (py0 - (v) / yend * (py0 - py1))
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">", (px0 + px1) / 2, TOP + 20);
    xml_text(f, title);
    fprintf(f, "</text>\n");
    char buf[32];
    for (double v = 0; v <= xend + xs * 1e-9; v += xs) {
        fmt_tick(buf, sizeof buf, v, xs);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", SX(v), py0, SX(v), py1);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">%s</text>\n", SX(v), py0 + 17, buf);
    }
    for (double v = 0; v <= yend + ys * 1e-9; v += ys) {
        fmt_tick(buf, sizeof buf, v, ys);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", px0, SY(v), px1, SY(v));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"12\">%s</text>\n", px0 - 6, SY(v) + 4, buf);
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", px0, py0, px1, py0);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", px0, py0, px0, py1);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">%s</text>\n", (px0 + px1) / 2, py0 + 40, xlabel);
    fprintf(f, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">%s</text>\n",
            (double)ox + 18, (py0 + py1) / 2, ylabel);
    if (diagonal) {
        double d = xend < yend ? xend : yend;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"2,4\"/>\n",
                SX(0), SY(0), SX(d), SY(d));
    }
    for (int k = 0; k < ns; k++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", s[k].color,
                s[k].dashed ? " stroke-dasharray=\"7,4\"" : "");
        for (int i = 0; i < s[k].n; i++)
            if (isfinite(s[k].x[i]) && isfinite(s[k].y[i])) fprintf(f, "%.1f,%.1f ", SX(s[k].x[i]), SY(s[k].y[i]));
        fprintf(f, "\"/>\n");
        for (int i = 0; i < s[k].n; i++)
            if (isfinite(s[k].x[i]) && isfinite(s[k].y[i]))
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", SX(s[k].x[i]), SY(s[k].y[i]), s[k].color);
    }
    for (int k = 0; k < ns; k++) {
        if (!s[k].tag) continue;
        for (int i = 0; i < s[k].n; i++)
            if (isfinite(s[k].x[i]) && isfinite(s[k].y[i]))
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#555\">%g/s</text>\n", SX(s[k].x[i]) + 6,
                        SY(s[k].y[i]) - 6, s[k].tag[i]);
    }
    /* legend: one row between the title and the plot, so it never hides a point */
    double lx = px0;
    for (int k = 0; k <= ns - (diagonal ? 0 : 1); k++) {
        double ly = TOP + 44;
        const char *color = k < ns ? s[k].color : "#999";
        const char *dash = k < ns ? (s[k].dashed ? " stroke-dasharray=\"7,4\"" : "") : " stroke-dasharray=\"2,4\"";
        const char *label = k < ns ? s[k].label : "ideal (y = x)";
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                lx, ly, lx + 26, ly, color, dash);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">%s</text>\n", lx + 31, ly + 4, label);
        lx += 31 + 7.0 * (double)strlen(label) + 16;
    }
#undef SX
#undef SY
}

int bench_svg_write(const char *path, bench_report *const *reports, int n, sw_err *err) {
    if (n <= 0 || n > 1000) return sw_err_set(err, SW_ERR_ARG, "chart needs 1..1000 reports");
    double x[1000], rate[1000], t50[1000], t99[1000], ts99[1000], p50[1000], p99[1000], good[1000];
    for (int i = 0; i < n; i++) {
        const bench_report *r = reports[i];
        x[i] = r->request_throughput;
        rate[i] = r->cfg.rate;
        t50[i] = r->ttft.p50; t99[i] = r->ttft.p99;
        ts99[i] = r->ttft_short.p99;
        p50[i] = r->tpot.p50; p99[i] = r->tpot.p99;
        good[i] = r->goodput;
    }
    FILE *f = fopen(path, "w");
    if (!f) return sw_err_set(err, SW_ERR_IO, "%s: %s", path, strerror(errno));
    int W = 3 * PANEL_W, H = TOP + PANEL_H;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"Helvetica, Arial, sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
               W, H, W, H);
    const bench_report *r0 = reports[0];
    fprintf(f, "<text x=\"%d\" y=\"30\" text-anchor=\"middle\" font-size=\"18\" font-weight=\"bold\">swiftlet bench sweep: ", W / 2);
    xml_text(f, bench_workload_kind_name(r0->cfg.workload));
    fputs(" on ", f);
    xml_text(f, r0->model[0] ? r0->model : (r0->cfg.url ? r0->cfg.url : "?"));
    fprintf(f, " (burstiness %g, %s)</text>\n", r0->cfg.burstiness, r0->cfg.endpoint == BENCH_EP_CHAT ? "chat" : "completions");
    char short_label[48];
    snprintf(short_label, sizeof short_label, "p99 prompt \u2264 %d", r0->short_prompt_tokens);
    series ttft[3] = {{"TTFT p50", "#1f77b4", 0, x, t50, n, rate}, {"TTFT p99", "#1f77b4", 1, x, t99, n, NULL},
                      {short_label, "#ff7f0e", 1, x, ts99, n, NULL}};
    series tpot[2] = {{"TPOT p50", "#d62728", 0, x, p50, n, rate}, {"TPOT p99", "#d62728", 1, x, p99, n, NULL}};
    series gp[2] = {{"goodput", "#2ca02c", 0, rate, good, n, NULL}, {"achieved throughput", "#7f7f7f", 0, rate, x, n, NULL}};
    char gtitle[128] = "Goodput";
    if (r0->cfg.slo_ttft_ms > 0 || r0->cfg.slo_tpot_ms > 0) {
        int k = snprintf(gtitle, sizeof gtitle, "Goodput (");
        if (r0->cfg.slo_ttft_ms > 0) k += snprintf(gtitle + k, sizeof gtitle - (size_t)k, "TTFT \u2264 %g ms", r0->cfg.slo_ttft_ms);
        if (r0->cfg.slo_tpot_ms > 0)
            k += snprintf(gtitle + k, sizeof gtitle - (size_t)k, "%sTPOT \u2264 %g ms", r0->cfg.slo_ttft_ms > 0 ? ", " : "", r0->cfg.slo_tpot_ms);
        snprintf(gtitle + k, sizeof gtitle - (size_t)k, ")");
    } else {
        snprintf(gtitle, sizeof gtitle, "Goodput (no SLO given: = throughput)");
    }
    panel(f, 0, "Time to first token (labels: offered rate)", "achieved throughput (req/s)", "TTFT (ms)", ttft, 3, 0);
    panel(f, PANEL_W, "Time per output token (labels: offered rate)", "achieved throughput (req/s)", "TPOT (ms)", tpot, 2, 0);
    panel(f, 2 * PANEL_W, gtitle, "offered rate (req/s)", "req/s", gp, 2, 1);
    fprintf(f, "</svg>\n");
    if (fclose(f)) return sw_err_set(err, SW_ERR_IO, "%s: write failed", path);
    return SW_OK;
}
