/* cost.c — step-time cost model (see cost.h): features, prediction, and the ridge
 * least-squares refit after every observation (a 4x4 solve, microseconds). Features
 * are scaled to similar magnitudes before the fit so one ridge strength suits all. */
#include "engine/cost.h"
#include <math.h>
#include <string.h>

/* typical feature magnitudes: 1, 16 tokens, 4 logits rows, 4k attended positions */
static const double SCALE[COST_NF] = {1.0, 16.0, 4.0, 4.0};
/* ridge strength in scaled units: worth a fifth of an observation, so real steps dominate
 * where they vary and the prior holds where they do not */
#define RIDGE 0.2
#define ERR_ALPHA (1.0 / 32.0)

static void features(const cost_shape *s, double f[COST_NF]) {
    f[0] = 1.0;
    f[1] = s->tokens;
    f[2] = s->rows;
    f[3] = s->attended / 1000.0;
}

void cost_init(cost_model *c, const double prior[COST_NF]) {
    memset(c, 0, sizeof *c);
    memcpy(c->prior, prior, sizeof c->prior);
    memcpy(c->theta, prior, sizeof c->theta);
}

void cost_prior_guess(uint64_t weight_bytes, uint64_t n_params, uint64_t lm_head_params, uint64_t kv_bytes_per_token,
                      double prior[COST_NF]) {
    prior[0] = (double)weight_bytes / 20e9 * 1e3;               /* stream the weights once */
    prior[1] = 2.0 * (double)n_params / 100e9 * 1e3;            /* compute per token */
    prior[2] = 2.0 * (double)lm_head_params / 100e9 * 1e3 + 0.05; /* lm_head row + sampling */
    prior[3] = 1000.0 * (double)kv_bytes_per_token / 20e9 * 1e3; /* read K and V */
}

double cost_predict(const cost_model *c, const cost_shape *s) {
    double f[COST_NF], ms = 0;
    features(s, f);
    for (int j = 0; j < COST_NF; j++) ms += c->theta[j] * f[j];
    return ms > 0.01 ? ms : 0.01;
}

/* Solves a x = b (n = COST_NF) by Gaussian elimination with partial pivoting; a and b
 * are overwritten. Returns false when singular. */
static bool solve(double a[COST_NF][COST_NF], double b[COST_NF], double x[COST_NF]) {
    for (int k = 0; k < COST_NF; k++) {
        int p = k;
        for (int i = k + 1; i < COST_NF; i++)
            if (fabs(a[i][k]) > fabs(a[p][k])) p = i;
        if (fabs(a[p][k]) < 1e-12) return false;
        if (p != k) {
            for (int j = 0; j < COST_NF; j++) { double t = a[k][j]; a[k][j] = a[p][j]; a[p][j] = t; }
            double t = b[k]; b[k] = b[p]; b[p] = t;
        }
        for (int i = k + 1; i < COST_NF; i++) {
            double m = a[i][k] / a[k][k];
            for (int j = k; j < COST_NF; j++) a[i][j] -= m * a[k][j];
            b[i] -= m * b[k];
        }
    }
    for (int k = COST_NF - 1; k >= 0; k--) {
        double s = b[k];
        for (int j = k + 1; j < COST_NF; j++) s -= a[k][j] * x[j];
        x[k] = s / a[k][k];
    }
    return true;
}

/* theta = argmin sum (y - x.theta)^2 + RIDGE * |theta - prior|^2 in scaled units, with
 * theta >= 0 (a step never gets cheaper with more work): a term whose unconstrained fit
 * is negative is pinned at 0 and the rest refitted (active set; at most COST_NF passes). */
static void refit(cost_model *c) {
    double a0[COST_NF][COST_NF] = {{0}}, b0[COST_NF] = {0};
    for (int q = 0; q < COST_BUCKETS; q++)
        for (int i = 0; i < c->n_obs[q]; i++) {
            double u[COST_NF];
            int age = (c->head[q] - 1 - i + COST_RING) % COST_RING; /* 0 = newest */
            double w = exp2(-(double)age / COST_HALF_LIFE - (double)(c->n_total - c->when[q][i]) / COST_GLOBAL_LIFE);
            if (w < 0.1) continue; /* stale: a squared error lets even a faint outlier pull the fit */
            for (int j = 0; j < COST_NF; j++) u[j] = c->x[q][i][j] / SCALE[j];
            for (int j = 0; j < COST_NF; j++) {
                for (int k = 0; k < COST_NF; k++) a0[j][k] += w * u[j] * u[k];
                b0[j] += w * u[j] * c->y[q][i];
            }
        }
    for (int j = 0; j < COST_NF; j++) {
        a0[j][j] += RIDGE;
        b0[j] += RIDGE * c->prior[j] * SCALE[j];
    }
    bool pinned[COST_NF] = {false};
    double z[COST_NF];
    for (int pass = 0; pass < COST_NF; pass++) {
        double a[COST_NF][COST_NF], b[COST_NF];
        memcpy(a, a0, sizeof a);
        memcpy(b, b0, sizeof b);
        for (int j = 0; j < COST_NF; j++) {
            if (!pinned[j]) continue;
            for (int k = 0; k < COST_NF; k++) a[j][k] = a[k][j] = 0;
            a[j][j] = 1;
            b[j] = 0;
        }
        if (!solve(a, b, z)) return;
        bool neg = false;
        for (int j = 0; j < COST_NF; j++)
            if (z[j] < 0) { pinned[j] = true; neg = true; }
        if (!neg) break;
    }
    for (int j = 0; j < COST_NF; j++) c->theta[j] = z[j] > 0 ? z[j] / SCALE[j] : 0;
}

void cost_observe(cost_model *c, const cost_shape *s, double actual_ms) {
    if (!(actual_ms > 0) || !isfinite(actual_ms)) return;
    double pred = cost_predict(c, s);
    double err = fabs(pred - actual_ms) / actual_ms;
    c->err_mean = c->n_err++ == 0 ? err : c->err_mean + ERR_ALPHA * (err - c->err_mean);
    c->last_pred_ms = pred;
    c->last_actual_ms = actual_ms;
    int q = s->tokens <= 1 ? 0 : s->tokens <= 4 ? 1 : s->tokens <= 16 ? 2 : s->tokens <= 48 ? 3 : s->tokens <= 128 ? 4 : 5;
    features(s, c->x[q][c->head[q]]);
    c->y[q][c->head[q]] = actual_ms;
    c->when[q][c->head[q]] = c->n_total + 1; /* n_total after this observation */
    c->head[q] = (c->head[q] + 1) % COST_RING;
    if (c->n_obs[q] < COST_RING) c->n_obs[q]++;
    c->n_total++;
    refit(c);
}

void cost_set_prior_from_fit(cost_model *c) {
    memcpy(c->prior, c->theta, sizeof c->prior);
    c->err_mean = 0;
    c->n_err = 0;
}
