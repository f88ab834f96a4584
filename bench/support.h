/* support.h — what the C benchmarks share: a median per call over a clock the program chooses,
 * random float arrays, a status check that exits, a contiguous float32 view. Header-only (each
 * benchmark is one file). Define BENCH_CLOCK before including it: CLOCK_MONOTONIC (wall-clock
 * time) or CLOCK_THREAD_CPUTIME_ID (the calling thread's CPU time, which moves far less than
 * wall-clock time on a machine shared with other work). */
#ifndef NODEWRITE_BENCH_SUPPORT_H
#define NODEWRITE_BENCH_SUPPORT_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nodewrite.h"

#ifndef BENCH_CLOCK
#error "define BENCH_CLOCK (CLOCK_MONOTONIC or CLOCK_THREAD_CPUTIME_ID) before including bench/support.h"
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(BENCH_CLOCK, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void check(nw_status s, const char *what) {
    if (s != NW_OK) { fprintf(stderr, "%s: %s: %s\n", what, nw_status_string(s), nw_last_error_message()); exit(1); }
}

/* n floats uniform in [-0.5, 0.5) from a linear congruential generator (the same numbers on
   every machine for the same seed). */
static float *randoms(size_t n, unsigned *seed) {
    float *p = malloc(n * sizeof *p);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = (float)(*seed >> 8) / (float)(1u << 24) - 0.5f;
    }
    return p;
}

static volatile float sink;

/* Median seconds per call of `body` over `reps` (at most 64) samples of `inner` calls each. */
#define MEDIAN(result, reps, inner, body) do { \
    double samples_[64]; \
    for (int r_ = 0; r_ < (reps); r_++) { \
        double t0_ = now(); \
        for (int i_ = 0; i_ < (inner); i_++) { body; } \
        samples_[r_] = (now() - t0_) / (inner); \
    } \
    qsort(samples_, (size_t)(reps), sizeof(double), cmp); \
    result = samples_[(reps) / 2]; \
} while (0)

static nw_tensor_view view(const float *data, int ndim, const int64_t *shape) {
    nw_tensor_view v = {data, NW_DTYPE_F32, ndim, shape, NULL};
    return v;
}

#endif
