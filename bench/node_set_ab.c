/* node_set_ab.c — "every neuron at one token" as a node set (nw_node_writes over the 3,072 MLP
 * neurons of one token, GPT-2-small shape: out (3072, 768) float32, 9.4 MB), with two builds of
 * the library loaded into one process (dlopen, RTLD_LOCAL) and alternated call by call, so that a
 * shared machine's noise falls on both alike. After every call a reader sums the output (as
 * bench_sets.py --consume does). Prints the median microseconds per call of each library and the
 * median of the per-round ratios, at each thread count.
 *
 * NODE_SET_AB_FIXED=1: the call's fixed part only. token_rows then overlaps out, which the
 * library refuses after validating and resolving every node and before writing anything, so a
 * call times argument checks and node resolution without the kernel (and nothing is read).
 *
 *   cc -std=c11 -O2 -Iinclude -o build/node_set_ab bench/node_set_ab.c -ldl
 *   build/node_set_ab OLD/libnodewrite.so NEW/libnodewrite.so [rounds [threads...]]
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nodewrite.h"

enum { T = 64, D = 768, FF = 3072, TOKEN = 37, REPS = 20 };

typedef struct {
    nw_status (*model_create)(const nw_model_dims *, nw_model **);
    nw_status (*store_create)(nw_store **);
    nw_status (*set_weight)(nw_model *, int32_t, int32_t, const nw_tensor_view *, int32_t);
    nw_status (*put)(nw_store *, int32_t, int32_t, const nw_tensor_view *);
    nw_status (*writes)(const nw_model *, const nw_store *, int32_t, int32_t, const int64_t *, size_t, size_t,
                        float *, size_t, int64_t *);
    nw_status (*threads)(int32_t);
    nw_model *m;
    nw_store *s;
} lib;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

static float w_out[FF * D], post[T * FF];
static int64_t ix[FF * 2];

static void *sym(void *h, const char *name) {
    void *p = dlsym(h, name);
    if (!p) { fprintf(stderr, "%s: %s\n", name, dlerror()); exit(2); }
    return p;
}

static void load(lib *l, const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); exit(2); }
    *(void **)&l->model_create = sym(h, "nw_model_create");
    *(void **)&l->store_create = sym(h, "nw_store_create");
    *(void **)&l->set_weight = sym(h, "nw_model_set_weight");
    *(void **)&l->put = sym(h, "nw_store_put");
    *(void **)&l->writes = sym(h, "nw_node_writes");
    *(void **)&l->threads = sym(h, "nw_set_num_threads");
    nw_model_dims dims = {1, D, 12, 64, FF};
    int64_t s_out[2] = {FF, D}, s_post[2] = {T, FF};
    nw_tensor_view b = {w_out, NW_DTYPE_F32, 2, s_out, NULL}, pp = {post, NW_DTYPE_F32, 2, s_post, NULL};
    if (l->model_create(&dims, &l->m) || l->store_create(&l->s) ||
        l->set_weight(l->m, NW_WEIGHT_MLP_TO_RESIDUAL, 0, &b, NW_BORROW) || l->put(l->s, NW_ACT_MLP_POST_ACT, 0, &pp)) {
        fprintf(stderr, "%s: setup failed\n", path);
        exit(2);
    }
}

static double consume(const float *o) {
    float acc[8] = {0};
    for (size_t i = 0; i < (size_t)FF * D; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += o[i + j];
    return acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7];
}

/* Microseconds per call (call + reader) over REPS calls. */
static int fixed_only;
static double run(lib *l, float *out, volatile double *sink) {
    double t0 = now();
    for (int r = 0; r < REPS; r++) {
        if (fixed_only) {
            if (l->writes(l->m, l->s, NW_NODE_MLP_NEURON, 0, ix, FF, 2, out, (size_t)FF * D, (int64_t *)out) == NW_OK) exit(3);
            continue;
        }
        if (l->writes(l->m, l->s, NW_NODE_MLP_NEURON, 0, ix, FF, 2, out, (size_t)FF * D, NULL)) exit(3);
        *sink += consume(out);
    }
    return (now() - t0) / REPS * 1e6;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s OLD.so NEW.so [rounds [threads...]]\n", argv[0]); return 2; }
    const char *fx = getenv("NODE_SET_AB_FIXED");
    fixed_only = fx && *fx == '1';
    int rounds = argc > 3 ? atoi(argv[3]) : 21;
    if (rounds > 999) rounds = 999;
    for (int i = 0; i < FF * D; i++) w_out[i] = (float)((int64_t)i * 7919 % 1000) / 500 - 1;
    for (int i = 0; i < T * FF; i++) post[i] = (float)((int64_t)i * 104729 % 997) / 997;
    for (int i = 0; i < FF; i++) { ix[2 * i] = TOKEN; ix[2 * i + 1] = i; }
    lib L[2];
    load(&L[0], argv[1]);
    load(&L[1], argv[2]);
    float *out[2] = {malloc(sizeof(float) * FF * D), malloc(sizeof(float) * FF * D)};
    volatile double sink = 0;
    int nthreads = argc > 4 ? argc - 4 : 2;
    for (int ti = 0; ti < nthreads; ti++) {
        int threads = argc > 4 ? atoi(argv[4 + ti]) : ti + 1;
        L[0].threads(threads);
        L[1].threads(threads);
        static double t[2][999], ratio[999];
        for (int w = 0; w < 2; w++) run(&L[w], out[w], &sink);
        for (int r = 0; r < rounds; r++) {
            int first = r & 1; /* which library goes first alternates too */
            for (int k = 0; k < 2; k++) { int w = first ^ k; t[w][r] = run(&L[w], out[w], &sink); }
            ratio[r] = t[0][r] / t[1][r];
        }
        qsort(t[0], rounds, sizeof(double), cmp);
        qsort(t[1], rounds, sizeof(double), cmp);
        qsort(ratio, rounds, sizeof(double), cmp);
        printf("threads %d: old %.1f us, new %.1f us per call+read (medians of %d rounds x %d calls); "
               "old/new median %.3f [%.3f .. %.3f]\n", threads, t[0][rounds / 2], t[1][rounds / 2], rounds, REPS,
               ratio[rounds / 2], ratio[rounds / 4], ratio[3 * rounds / 4]);
    }
    return sink == 1234.5;
}
