/* Output store policy, measured with the read that follows (what every caller does next):
   12 per-head products (m x 64) @ (64 x 768) into one (12 m x 768) output, the node-set shape of
   "every (key <= q, head)", then a sum over the whole output, with non-temporal stores (streamed)
   and with cached stores, the two alternating call by call in one process; output sizes from
   0.6 MB to 144 MB (this machine's L2 and L3 sizes are what to compare them with: lscpu).
   Prints median ms of (product + read) per policy and cached time / streamed time.
   Usage: build/bench_store_policy [threads [samples]]   (make bench-store-policy BENCH_ARGS="2 15")
   The library's choice (NWK_STREAM_MIN_BYTES in nw_kernels.h) comes from these figures. */
#define _GNU_SOURCE
#include "nw_kernels.h"

#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

enum { HEADS = 12, D_HEAD = 64, D_MODEL = 768, MAX_SAMPLES = 99 };

typedef struct {
    int64_t m, out_bytes; /* out_bytes: what the products are told the whole output is (the policy) */
    const float *a, *b;
    float *c;
    int lanes;
    volatile float sums[64];
} ctx;

/* Heads over the lanes, one thread each (as node_writes runs them when there are enough heads). */
static void heads_lane(void *p, int lane) {
    ctx *x = p;
    for (int h = lane; h < HEADS; h += x->lanes)
        nwk_gemm_scaled_part(x->m, D_MODEL, D_HEAD, x->a + (size_t)h * (size_t)x->m * D_HEAD, D_HEAD, 1,
                             x->b + (size_t)h * D_HEAD * D_MODEL, D_MODEL, 1, NULL, 0,
                             x->c + (size_t)h * (size_t)x->m * D_MODEL, D_MODEL, 1, x->out_bytes);
}

/* The reader: a sum over this lane's share of the output, four vector accumulators. */
__attribute__((target("avx2"))) static void read_lane(void *p, int lane) {
    ctx *x = p;
    const size_t n = (size_t)HEADS * (size_t)x->m * D_MODEL;
    size_t i = n * (size_t)lane / (size_t)x->lanes;
    const size_t end = n * (size_t)(lane + 1) / (size_t)x->lanes;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; i + 32 <= end; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x->c + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x->c + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x->c + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x->c + i + 24));
    }
    float lanes8[8];
    _mm256_storeu_ps(lanes8, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    float r = 0;
    for (int j = 0; j < 8; j++) r += lanes8[j];
    for (; i < end; i++) r += x->c[i];
    x->sums[lane] = r;
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 1;
    int samples = argc > 2 ? atoi(argv[2]) : 15;
    if (threads < 1 || threads > 64 || samples < 1) { fprintf(stderr, "usage: %s [threads 1..64 [samples]]\n", argv[0]); return 2; }
    if (samples > MAX_SAMPLES) samples = MAX_SAMPLES;
    nwk_set_threads(threads);
    static const int64_t rows[] = {16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
    printf("store policy: 12 heads x (m x 64) @ (64 x 768), then a read of the output; %d thread(s), %d samples\n",
           threads, samples);
    printf("%10s %14s %14s %16s\n", "output MB", "streamed ms", "cached ms", "cached/streamed");
    for (size_t si = 0; si < sizeof rows / sizeof rows[0]; si++) {
        const int64_t m = rows[si];
        const size_t na = (size_t)HEADS * (size_t)m * D_HEAD, nb = (size_t)HEADS * D_HEAD * D_MODEL,
                     nc = (size_t)HEADS * (size_t)m * D_MODEL;
        float *a = NULL, *b = NULL, *c = NULL;
        if (posix_memalign((void **)&a, 64, na * 4) || posix_memalign((void **)&b, 64, nb * 4) ||
            posix_memalign((void **)&c, 64, nc * 4)) { fprintf(stderr, "out of memory\n"); return 1; }
        for (size_t i = 0; i < na; i++) a[i] = (float)(i % 13) * 0.1f - 0.6f;
        for (size_t i = 0; i < nb; i++) b[i] = (float)(i % 7) * 0.01f - 0.03f;
        memset(c, 0, nc * 4);
        ctx x = {m, 0, a, b, c, threads, {0}};
        const int inner = nc * 4 < ((size_t)1 << 22) ? 20 : nc * 4 < ((size_t)1 << 25) ? 4 : 1;
        double t[2][MAX_SAMPLES];
        for (int r = -2; r < samples; r++)
            for (int policy = 0; policy < 2; policy++) {
                x.out_bytes = policy == 0 ? INT64_MAX : 0; /* 0: streamed, 1: cached */
                const double t0 = now();
                for (int i = 0; i < inner; i++) {
                    nwk_run_lanes(heads_lane, &x, threads);
                    nwk_run_lanes(read_lane, &x, threads);
                }
                if (r >= 0) t[policy][r] = (now() - t0) / inner;
            }
        qsort(t[0], (size_t)samples, sizeof(double), cmp_double);
        qsort(t[1], (size_t)samples, sizeof(double), cmp_double);
        const double ts = t[0][samples / 2], tc = t[1][samples / 2];
        printf("%10.1f %14.3f %14.3f %16.2f\n", (double)nc * 4 / 1048576.0, ts * 1e3, tc * 1e3, tc / ts);
        fflush(stdout);
        free(a); free(b); free(c);
    }
    return 0;
}
