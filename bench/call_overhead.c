/* call_overhead.c — the cost of one crossing of the ABI (the thread-local call count
 * included): nanoseconds per call of two trivial exports and of a small nw_node_write.
 *
 *   cc -std=c11 -O2 -Iinclude -o build/call_overhead bench/call_overhead.c -L.build/release -lnodewrite \
 *      -Wl,-rpath,$PWD/.build/release
 *   build/call_overhead [which [runs [reps]]]   which: 0, 1, 2 or -1 (all); median of `runs` runs
 *
 * On a shared machine the times are noise; instructions per call are not (valgrind reads the
 * library only without its DWARF 5 debug info):
 *   objcopy --strip-debug .build/release/libnodewrite.so /tmp/nw/libnodewrite.so
 *   for n in 20000 40000; do LD_LIBRARY_PATH=/tmp/nw valgrind --tool=callgrind \
 *     --callgrind-out-file=/dev/null build/call_overhead 2 1 $n 2>&1 | grep Collected; done
 *   (the difference of the two counts / 20000 = instructions per call)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nodewrite.h"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

enum { T = 5, D = 8, H = 2, DH = 4, FF = 16 };
static float w_out[FF * D], post[T * FF], out[T * D];

int main(int argc, char **argv) {
    nw_model_dims dims = {1, D, H, DH, FF};
    nw_model *m; nw_store *s;
    int64_t s_out[2] = {FF, D}, s_post[2] = {T, FF};
    nw_tensor_view b = {w_out, NW_DTYPE_F32, 2, s_out, NULL}, pp = {post, NW_DTYPE_F32, 2, s_post, NULL};
    for (int i = 0; i < FF * D; i++) w_out[i] = (float)i / 7;
    for (int i = 0; i < T * FF; i++) post[i] = 1.5f;
    if (nw_model_create(&dims, &m) || nw_store_create(&s) || nw_model_set_weight(m, NW_WEIGHT_MLP_TO_RESIDUAL, 0, &b, NW_BORROW) ||
        nw_store_put(s, NW_ACT_MLP_POST_ACT, 0, &pp)) return 2;
    nw_node_index node = {NW_NODE_MLP_NEURON, 0, 2, 0, {3, 5, 0, 0}};
    volatile int32_t sink = 0;
    const char *what[3] = {"nw_get_num_threads", "nw_node_type_index_count", "nw_node_write (T=5, d_model=8)"};
    long reps[3] = {20000000, 20000000, 1000000};
    int only = argc > 1 ? atoi(argv[1]) : -1, runs = argc > 2 ? atoi(argv[2]) : 7;
    if (argc > 3) for (int f = 0; f < 3; f++) reps[f] = atol(argv[3]);
    for (int f = 0; f < 3; f++) {
        if (only >= 0 && f != only) continue;
        double t[64];
        if (runs > 64) runs = 64;
        for (int r = 0; r < runs; r++) {
            double t0 = now();
            for (long i = 0; i < reps[f]; i++) {
                if (f == 0) sink += nw_get_num_threads();
                else if (f == 1) sink += nw_node_type_index_count((int32_t)(i & 3));
                else sink += nw_node_write(m, s, &node, out, T * D);
            }
            t[r] = (now() - t0) / reps[f] * 1e9;
        }
        qsort(t, (size_t)runs, sizeof *t, cmp);
        printf("%-34s %8.2f ns/call (median of %d; min %.2f)\n", what[f], t[runs / 2], runs, t[0]);
    }
    nw_store_destroy(s); nw_model_destroy(m);
    return sink == 12345;
}
