/* bench_stats.c — random numbers (xoshiro256** seeded by splitmix64), the arrival-gap
 * generator (gamma with shape B and scale 1/(rate*B), so B = 1 is Poisson), and the
 * summary statistics of a report: mean and numpy-default (linear) percentiles. */
#include "bench/bench.h"
#include <math.h>
#include <stdlib.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void bench_rng_seed(bench_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t bench_rng_next(bench_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

double bench_rng_uniform(bench_rng *r) { return (double)(bench_rng_next(r) >> 11) * 0x1.0p-53; }

int bench_rng_range(bench_rng *r, int lo, int hi) {
    if (hi <= lo) return lo;
    return lo + (int)(bench_rng_next(r) % (uint64_t)(hi - lo + 1));
}

double bench_rng_normal(bench_rng *r) {
    double u1 = 1.0 - bench_rng_uniform(r), u2 = bench_rng_uniform(r); /* u1 in (0, 1] */
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Marsaglia & Tsang (2000); shape < 1 via the boost gamma(a) = gamma(a+1) * U^(1/a). */
double bench_rng_gamma(bench_rng *r, double shape, double scale) {
    if (shape < 1.0) {
        double u = 1.0 - bench_rng_uniform(r);
        return bench_rng_gamma(r, shape + 1.0, scale) * pow(u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do { x = bench_rng_normal(r); v = 1.0 + c * x; } while (v <= 0);
        v = v * v * v;
        double u = 1.0 - bench_rng_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * scale;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v * scale;
    }
}

double bench_arrival_gap(bench_rng *r, double rate, double burstiness) {
    if (!(rate > 0) || isinf(rate)) return 0.0;
    if (burstiness == 1.0) return -log(1.0 - bench_rng_uniform(r)) / rate; /* exponential */
    return bench_rng_gamma(r, burstiness, 1.0 / (rate * burstiness));
}

double bench_percentile(const double *sorted, size_t n, double q) {
    if (n == 0) return NAN;
    if (q <= 0) return sorted[0];
    if (q >= 100) return sorted[n - 1];
    double h = (double)(n - 1) * q / 100.0;
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n) return sorted[n - 1];
    return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_stat_compute(double *vals, size_t n, bench_stat *st) {
    st->n = (int)n;
    if (n == 0) { st->mean = st->p50 = st->p90 = st->p99 = NAN; return; }
    qsort(vals, n, sizeof *vals, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += vals[i];
    st->mean = sum / (double)n;
    st->p50 = bench_percentile(vals, n, 50);
    st->p90 = bench_percentile(vals, n, 90);
    st->p99 = bench_percentile(vals, n, 99);
}
