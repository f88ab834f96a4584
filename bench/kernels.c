/* Kernel bench: nodewrite's float32 kernels vs OpenBLAS cblas_sgemm at GPT-2-small shapes,
   1 and 2 threads. Prints median ms, GFLOP/s (2 flops per multiply-add) and ours/OpenBLAS.
   Usage: build/bench_kernels [samples [path]]   (make bench-kernels BENCH_ARGS="15 avx2")
   path forces one of our implementations (avx512, avx2, scalar); default: the runtime choice.
   OpenBLAS is a bench-only dependency; libnodewrite never links it. */
#define _GNU_SOURCE
#include "nw_kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int samples = 15;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

typedef void (*run_fn)(void *ctx, int threads);

/* Fastest sample of the last median_time call: on a shared machine the minimum shows what the
   code can do, the median what a caller saw. */
static double last_min;

/* Median seconds per call: each sample runs enough calls to last >= 2 ms. */
static double median_time(run_fn f, void *ctx, int threads) {
    f(ctx, threads); /* warm-up */
    double t0 = now();
    f(ctx, threads);
    double one = now() - t0;
    int inner = one >= 2e-3 ? 1 : (int)(2e-3 / (one > 1e-7 ? one : 1e-7)) + 1;
    double *s = malloc(sizeof(double) * (size_t)samples);
    for (int i = 0; i < samples; i++) {
        t0 = now();
        for (int r = 0; r < inner; r++) f(ctx, threads);
        s[i] = (now() - t0) / inner;
    }
    qsort(s, (size_t)samples, sizeof(double), cmp_double);
    double med = s[samples / 2];
    last_min = s[0];
    free(s);
    return med;
}

static float *rand_buf(size_t n) {
    float *p = malloc(n * sizeof(float));
    uint64_t x = 0x2545F4914F6CDD1Dull ^ n;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = (float)((double)(x >> 11) / 9007199254740992.0) - 0.5f;
    }
    return p;
}

/* A gemm problem (row-major A; B row-major or transposed), possibly several "heads" of it. */
typedef struct {
    int64_t heads, m, n, k;
    int b_trans;         /* 0: B is k x n row-major; 1: B(k,j) = b[j*k + k'] */
    float *a, *b, *c;    /* a: heads x m x k, b: heads x (k x n), c: heads x m x n */
} gemm_case;

static void ours_gemm(void *ctx, int threads) {
    gemm_case *g = ctx;
    for (int64_t h = 0; h < g->heads; h++) {
        const float *a = g->a + h * g->m * g->k, *b = g->b + h * g->k * g->n;
        float *c = g->c + h * g->m * g->n;
        int rc = g->b_trans ? nwk_gemm(g->m, g->n, g->k, a, g->k, 1, b, 1, g->k, c, g->n, threads)
                            : nwk_gemm(g->m, g->n, g->k, a, g->k, 1, b, g->n, 1, c, g->n, threads);
        if (rc != 0) { fprintf(stderr, "nwk_gemm failed\n"); exit(1); }
    }
}

static void blas_gemm(void *ctx, int threads) {
    gemm_case *g = ctx;
    openblas_set_num_threads(threads);
    for (int64_t h = 0; h < g->heads; h++) {
        const float *a = g->a + h * g->m * g->k, *b = g->b + h * g->k * g->n;
        float *c = g->c + h * g->m * g->n;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, g->b_trans ? CblasTrans : CblasNoTrans, (int)g->m, (int)g->n,
                    (int)g->k, 1.0f, a, (int)g->k, b, g->b_trans ? (int)g->k : (int)g->n, 0.0f, c, (int)g->n);
    }
}

typedef struct {
    int64_t m, n;
    float *s, *b, *c;
    int64_t *row;
} rows_case;

static void ours_rows(void *ctx, int threads) {
    rows_case *r = ctx;
    nwk_scaled_rows(r->m, r->n, r->s, r->row, r->b, r->n, 1, r->c, r->n, threads);
}

/* OpenBLAS has no K = 1 row-gather GEMM; the nearest is scopy + sscal per row (two passes over C). */
static void blas_rows(void *ctx, int threads) {
    rows_case *r = ctx;
    openblas_set_num_threads(threads);
    for (int64_t i = 0; i < r->m; i++) {
        cblas_scopy((int)r->n, r->b + r->row[i] * r->n, 1, r->c + i * r->n, 1);
        cblas_sscal((int)r->n, r->s[i], r->c + i * r->n, 1);
    }
}

static void memcpy_rows(void *ctx, int threads) {
    (void)threads;
    rows_case *r = ctx;
    memcpy(r->c, r->b, (size_t)(r->m * r->n) * sizeof(float));
}

static double ours_min[2], blas_min[2];
static void print_row(const char *name, double flops, double ours[2], double blas[2]) {
    for (int t = 0; t < 2; t++)
        printf("%-47s %d | %9.4f %7.1f | %9.4f %7.1f | %5.2f | %9.4f %9.4f %5.2f\n", name, t + 1, ours[t] * 1e3,
               flops / ours[t] * 1e-9, blas[t] * 1e3, flops / blas[t] * 1e-9, ours[t] / blas[t], ours_min[t] * 1e3,
               blas_min[t] * 1e3, ours_min[t] / blas_min[t]);
}

/* Bits of C after 1 and 2 OpenBLAS threads (and ours) for the same problem. */
static void bit_check(const char *name, gemm_case *g) {
    size_t len = (size_t)(g->heads * g->m * g->n);
    float *c1 = malloc(len * sizeof(float)), *c2 = malloc(len * sizeof(float)), *o = malloc(len * sizeof(float));
    blas_gemm(g, 1); memcpy(c1, g->c, len * sizeof(float));
    blas_gemm(g, 2); memcpy(c2, g->c, len * sizeof(float));
    ours_gemm(g, 1); memcpy(o, g->c, len * sizeof(float));
    ours_gemm(g, 2);
    size_t blas_diff = 0, ours_diff = 0, vs = 0;
    for (size_t i = 0; i < len; i++) {
        blas_diff += memcmp(&c1[i], &c2[i], 4) != 0;
        ours_diff += memcmp(&o[i], &g->c[i], 4) != 0;
        vs += memcmp(&o[i], &c1[i], 4) != 0;
    }
    printf("  %-42s OpenBLAS 1 vs 2 threads: %s (%zu of %zu differ); ours 1 vs 2: %s; ours vs OpenBLAS: %zu differ\n",
           name, blas_diff ? "DIFFERENT" : "identical", blas_diff, len, ours_diff ? "DIFFERENT" : "identical",
           vs);
    free(c1); free(c2); free(o);
}

int main(int argc, char **argv) {
    if (argc > 1) samples = atoi(argv[1]) > 0 ? atoi(argv[1]) : samples;
    if (argc > 2 && nwk_force_path(argv[2]) != 0) {
        fprintf(stderr, "bench_kernels: path %s unknown or not supported by this CPU\n", argv[2]);
        return 2;
    }
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("nodewrite kernels: path %s; OpenBLAS %s, core %s; OPENBLAS_CORETYPE=%s; %d samples\n",
           nwk_path(), openblas_get_config(), openblas_get_corename(), ct ? ct : "(unset)", samples);
    FILE *la = fopen("/proc/loadavg", "r");
    char load[64] = "?";
    if (la) { if (!fgets(load, sizeof load, la)) load[0] = 0; fclose(la); }
    printf("load average at start: %s", load);
    printf("%-47s %s | %9s %7s | %9s %7s | %5s | %9s %9s %5s\n", "shape (median, then fastest sample)", "T",
           "ours ms", "GFLOP/s", "BLAS ms", "GFLOP/s", "ratio", "ours min", "BLAS min", "ratio");

    struct { const char *name; int64_t heads, m, n, k; int trans; } cases[] = {
        {"1. heads: 12 x (1024x64 @ 64x768) B row-major", 12, 1024, 768, 64, 0},
        {"1. heads: 12 x (1024x64 @ 64x768) B transposed", 12, 1024, 768, 64, 1},
        {"3. dense: 1024x768 @ W_out^T (768x3072)", 1, 1024, 3072, 768, 1},
        {"4. node: 1x64 @ 64x768 B row-major", 1, 1, 768, 64, 0},
        {"4. node: 1x64 @ 64x768 B transposed", 1, 1, 768, 64, 1},
        {"4. latent: 1x3072 @ 3072x768 B row-major", 1, 1, 768, 3072, 0},
        {"4. latent: 1x3072 @ 3072x768 B transposed", 1, 1, 768, 3072, 1},
    };
    const int ncases = (int)(sizeof cases / sizeof cases[0]);
    gemm_case g[sizeof cases / sizeof cases[0]];
    for (int i = 0; i < ncases; i++) {
        g[i] = (gemm_case){cases[i].heads, cases[i].m, cases[i].n, cases[i].k, cases[i].trans, NULL, NULL, NULL};
        g[i].a = rand_buf((size_t)(g[i].heads * g[i].m * g[i].k));
        g[i].b = rand_buf((size_t)(g[i].heads * g[i].k * g[i].n));
        g[i].c = calloc((size_t)(g[i].heads * g[i].m * g[i].n), sizeof(float));
        double ours[2], blas[2];
        for (int t = 0; t < 2; t++) {
            ours[t] = median_time(ours_gemm, &g[i], t + 1); ours_min[t] = last_min;
            blas[t] = median_time(blas_gemm, &g[i], t + 1); blas_min[t] = last_min;
        }
        print_row(cases[i].name, 2.0 * (double)(g[i].heads * g[i].m * g[i].n * g[i].k), ours, blas);
    }
    {
        rows_case r = {3072, 768, rand_buf(3072), rand_buf(3072 * 768), calloc(3072 * 768, 4), malloc(3072 * 8)};
        for (int64_t i = 0; i < r.m; i++) r.row[i] = i;
        double ours[2], blas[2], mc = median_time(memcpy_rows, &r, 1);
        for (int t = 0; t < 2; t++) {
            ours[t] = median_time(ours_rows, &r, t + 1); ours_min[t] = last_min;
            blas[t] = median_time(blas_rows, &r, t + 1); blas_min[t] = last_min;
        }
        print_row("2. neurons 3072x768 (BLAS: scopy+sscal/row)", 3072.0 * 768, ours, blas);
        printf("   (memcpy of the same 9.4 MB: %.4f ms, %.1f GB/s read+write)\n", mc * 1e3,
               2.0 * 3072 * 768 * 4 / mc * 1e-9);
    }
    printf("bit reproducibility across thread counts:\n");
    for (int i = 0; i < ncases; i++) bit_check(cases[i].name, &g[i]);
    return 0;
}
