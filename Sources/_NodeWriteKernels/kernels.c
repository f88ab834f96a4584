/* nodewrite float32 kernels: the portable scalar implementation, the runtime choice of
   implementation, the blocked (Goto/BLIS style) and small-m drivers (their threads: pool.c).
   See include/nw_kernels.h for the contract: every element is the k-ordered fmaf chain from +0. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#include "nw_kernels.h"
#include "nwk_internal.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- scalar implementation */

#define SMR 4
#define SNR 16

static void scalar_micro(int64_t kc, const float *ap, const float *bp, float *c, int64_t c_rs,
                         int mr, int nr, int load) {
    float acc[SMR][SNR];
    for (int r = 0; r < SMR; r++)
        for (int j = 0; j < SNR; j++) acc[r][j] = (load == NWK_LOAD && r < mr && j < nr) ? c[r * c_rs + j] : 0.0f;
    for (int64_t k = 0; k < kc; k++, ap += SMR, bp += SNR)
        for (int r = 0; r < SMR; r++)
            for (int j = 0; j < SNR; j++) acc[r][j] = fmaf(ap[r], bp[j], acc[r][j]);
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) c[r * c_rs + j] = acc[r][j];
}

static void scalar_small(int m, int64_t kc, const float *a, int64_t a_rs, int64_t a_cs,
                         const float *b, int64_t b_rs, float *c, int64_t c_rs, int n, int load) {
    for (int r = 0; r < m; r++) {
        float *cr = c + r * c_rs;
        if (!load)
            for (int j = 0; j < n; j++) cr[j] = 0.0f;
        for (int64_t k = 0; k < kc; k++) {
            const float av = a[r * a_rs + k * a_cs];
            const float *bk = b + k * b_rs;
            for (int j = 0; j < n; j++) cr[j] = fmaf(av, bk[j], cr[j]);
        }
    }
}

static void scalar_pack_t(int64_t kc, int nc, int w, const float *b, int64_t b_cs, float *dst) {
    for (int64_t k = 0; k < kc; k++)
        for (int j = nc; j < w; j++) dst[k * w + j] = 0.0f;
    for (int j = 0; j < nc; j++) {
        const float *bj = b + (int64_t)j * b_cs;
        for (int64_t k = 0; k < kc; k++) dst[k * w + j] = bj[k];
    }
}

static void scalar_scale_row(int64_t n, float s, const float *b, int64_t b_cs, float *c) {
    for (int64_t j = 0; j < n; j++) c[j] = fmaf(s, b[j * b_cs], 0.0f);
}

static void scalar_scale_by(int64_t n, const float *s, const float *f, float *c) {
    for (int64_t i = 0; i < n; i++) c[i] = f[i] == 0.0f ? 0.0f : s[i] * f[i];
}

static void scalar_pairs(int64_t nk, int heads, const float *p, const float *t, int64_t t_hs, float *c) {
    for (int64_t k = 0; k < nk; k++)
        for (int h = 0; h < heads; h++) {
            const float f = t[h * t_hs + k];
            c[k * heads + h] = f == 0.0f ? 0.0f : p[k * heads + h] * f;
        }
}

static void scalar_pair_sums(int64_t nk, int heads, const float *p, const float *t, int64_t t_hs, float *sums) {
    for (int64_t k = 0; k < nk; k++)
        for (int h = 0; h < heads; h++) sums[h] = fmaf(p[k * heads + h], t[h * t_hs + k], sums[h]);
}

/* The reference order of nwk_quad_norms: lane j of eight sums takes c = 8i + j, as an FMA in
   float64 (x = 0 past n); the vector paths do exactly this. */
static float quad_norm_row(int64_t n, const float *x, int64_t x_cs, const float *y, int64_t y_cs) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t c0 = 0; c0 < n; c0 += 8)
        for (int j = 0; j < 8; j++) {
            const int64_t c = c0 + j;
            const double xv = c < n ? (double)x[c * x_cs] : 0.0, yv = c < n ? (double)y[c * y_cs] : 0.0;
            s[j] = fma(xv, yv, s[j]);
        }
    return nwk_quad_finish(s);
}

static void scalar_quad_norms(int64_t rows, int64_t n, const float *x, int64_t x_rs, const float *y, int64_t y_rs,
                              float *out, int64_t out_stride) {
    for (int64_t i = 0; i < rows; i++) out[i * out_stride] = quad_norm_row(n, x + i * x_rs, 1, y + i * y_rs, 1);
}

static int scalar_any_nonzero(int64_t n, const float *x) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        if (u & 0x7FFFFFFFu) return 1;
    }
    return 0;
}

const nwk_impl nwk_impl_scalar = {"scalar", SMR, SNR, 64, scalar_micro, scalar_small, NULL, scalar_pack_t,
                                  scalar_scale_row, 0, scalar_scale_by, scalar_pairs, scalar_pair_sums,
                                  scalar_quad_norms, NULL, NULL, scalar_any_nonzero, NULL, NULL, NULL};

/* ---------------------------------------------------------------- choosing the implementation */

static const nwk_impl *g_auto;
static pthread_once_t g_auto_once = PTHREAD_ONCE_INIT;
static _Atomic(const nwk_impl *) g_forced;

static int cpu_has_avx512(void) {
#ifdef NWK_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static int cpu_has_avx2(void) {
#ifdef NWK_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static void choose_auto(void) {
#ifdef NWK_X86
    if (cpu_has_avx512()) { g_auto = &nwk_impl_avx512; return; }
    if (cpu_has_avx2()) { g_auto = &nwk_impl_avx2; return; }
#endif
    g_auto = &nwk_impl_scalar;
}

const nwk_impl *nwk_current(void) {
    const nwk_impl *f = atomic_load_explicit(&g_forced, memory_order_acquire);
    if (f) return f;
    pthread_once(&g_auto_once, choose_auto);
    return g_auto;
}

const char *nwk_path(void) { return nwk_current()->name; }

int nwk_force_path(const char *name) {
    const nwk_impl *im = NULL;
    if (name == NULL || strcmp(name, "auto") == 0) im = NULL;
    else if (strcmp(name, "scalar") == 0) im = &nwk_impl_scalar;
#ifdef NWK_X86
    else if (strcmp(name, "avx2") == 0 && cpu_has_avx2()) im = &nwk_impl_avx2;
    else if (strcmp(name, "avx512") == 0 && cpu_has_avx512()) im = &nwk_impl_avx512;
#endif
    else return -1;
    atomic_store_explicit(&g_forced, im, memory_order_release);
    return 0;
}

/* ---------------------------------------------------------------- thread count */

static atomic_int g_threads; /* 0 = not set: use the default */
static int g_default_threads = 1;
static pthread_once_t g_default_once = PTHREAD_ONCE_INIT;

static void read_default_threads(void) {
    const char *env = getenv("NODEWRITE_NUM_THREADS");
    if (env && *env) {
        char *end = NULL;
        long v = strtol(env, &end, 10);
        if (end && *end == '\0' && v > 0 && v <= 4096) { g_default_threads = (int)v; return; }
    }
    g_default_threads = nwk_cpu_count();
}

int nwk_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    const int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

void nwk_set_threads(int n) {
    if (n >= 0) atomic_store(&g_threads, n);
}

int64_t nwk_next_task(int64_t *counter) { return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }

int nwk_threads(void) {
    int n = atomic_load(&g_threads);
    if (n > 0) return n;
    pthread_once(&g_default_once, read_default_threads);
    return g_default_threads;
}

/* ---------------------------------------------------------------- drivers */

/* Blocking of the packed path: B block kc x NC (per thread), A block MC x kc, where kc is KC, or
   KC_CACHED when all of C stays in cache (at most CACHED_C_BYTES): then the extra passes over C
   that shorter k blocks cost are cheap, and a B micro-panel (KC_CACHED x nr) stays in L1 while
   the A block streams past it (measured: 13 % faster for the (1024 x 768) @ (768 x 3072)
   gradient projection; 21 % slower for a 200 MB token-writes output, hence the size test).
   MC is a multiple of every mr (8, 6, 4), NC of every nr (48, 16). -DNWK_KC, -DNWK_KC_CACHED,
   -DNWK_CACHED_C_BYTES and -DNWK_MC override them for tuning and for the test build with tiny blocks (any positive
   values are correct). */
#ifndef NWK_KC
#define NWK_KC 384
#endif
#define KC NWK_KC
#ifndef NWK_KC_CACHED
#define NWK_KC_CACHED 128
#endif
#define KC_CACHED NWK_KC_CACHED
#ifndef NWK_CACHED_C_BYTES
#define NWK_CACHED_C_BYTES (32.0 * 1024 * 1024)
#endif
#define CACHED_C_BYTES NWK_CACHED_C_BYTES
#ifndef NWK_MC
#define NWK_MC 192
#endif
#define MC NWK_MC
#ifndef NWK_NC
#define NWK_NC 3072
#endif
#define NC NWK_NC
/* A packed B block up to this size (256 K floats = 1 MB, half of a 2 MB L2) is walked row-panel first. */
#ifndef B_BLOCK_L2_FLOATS
#define B_BLOCK_L2_FLOATS (INT64_C(256) * 1024)
#endif
/* The rows path (an implementation with micro_rows, rows of A contiguous in k, k <= KFULL) takes
   the whole k in one block: each tile is final after one micro-kernel call (no reloads of C, the
   scaling fused, non-temporal stores possible) and A is read in place, never packed. B is packed
   k x nc columns at a time, at most ROWS_B_FLOATS (768 KB, in L2), while every 8-row panel of A
   passes it. The (1024 x 768) @ (768 x 3072) gradient projection, scaled, against MKL's SGEMM
   (unscaled) in the same process, calls alternating: the packed path took 1.29-1.45x MKL's time on
   one thread and 1.26-1.46x on two; this path 0.92-0.95x and 1.03-1.08x (with the split tail of
   rows_queue). B blocks of 96 to 480 columns, k unrolled by 2 or 4, and software prefetch of B,
   of the next A panel or of the scales measured the same as these (README, "Kernels and threads"). */
#ifndef NWK_KFULL
#define NWK_KFULL 1024
#endif
#ifndef NWK_ROWS_B_FLOATS
#define NWK_ROWS_B_FLOATS (INT64_C(192) * 1024)
#endif
/* Below this many multiply-adds a call runs on the calling thread only. */
#define MIN_PARALLEL_MADDS (INT64_C(1) << 21)
#define MIN_PARALLEL_STREAM (INT64_C(1) << 17)

#ifdef NWK_TESTING
/* Test hooks (tests_c/kernels.c builds the sources with -DNWK_TESTING): a thread threshold of 0
   makes tiny shapes use threads; a positive fail_alloc makes the next scratch allocation fail. */
int64_t nwk_test_min_parallel = MIN_PARALLEL_MADDS;
#undef MIN_PARALLEL_MADDS
#undef MIN_PARALLEL_STREAM
#define MIN_PARALLEL_MADDS nwk_test_min_parallel
#define MIN_PARALLEL_STREAM nwk_test_min_parallel
#endif

typedef struct {
    int64_t m, n, k;
    const float *a; int64_t a_rs, a_cs;
    const float *b; int64_t b_rs, b_cs;
    float *c; int64_t c_rs;
    const float *s; int64_t s_rs; /* NULL, or the scales of nwk_gemm_scaled (column stride 1) */
    int stream;  /* C may be written with non-temporal stores (an output of NWK_STREAM_MIN_BYTES or more, rows 64-byte aligned) */
    int64_t kb;  /* the k block: KC or KC_CACHED */
    int rows;    /* the rows path */
} gemm_args;

/* C[i0 + r, j0 + j] = scale_by(S[i0 + r, j0 + j], C[...]) for r < rows, j < cols: a tile whose
   chains are complete, while it is still in L1. */
static void scale_tile(const nwk_impl *im, const gemm_args *g, int64_t i0, int64_t j0, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float *c = g->c + (i0 + r) * g->c_rs + j0;
        im->scale_by(cols, g->s + (i0 + r) * g->s_rs + j0, c, c);
    }
}

/* Orders this thread's non-temporal stores before what follows (the join). */
static void nwk_store_fence(void) {
#ifdef NWK_X86
    __builtin_ia32_sfence();
#endif
}

static int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }
static int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }

void nwk_pack_b(const nwk_impl *im, int64_t kc, int nc, int w, const float *b, int64_t b_rs,
                   int64_t b_cs, float *dst) {
    if (b_cs == 1) {
        for (int64_t k = 0; k < kc; k++) {
            memcpy(dst + k * w, b + k * b_rs, (size_t)nc * sizeof(float));
            memset(dst + k * w + nc, 0, (size_t)(w - nc) * sizeof(float));
        }
    } else if (b_rs == 1) {
        im->pack_t(kc, nc, w, b, b_cs, dst);
    } else {
        for (int64_t k = 0; k < kc; k++) {
            for (int j = 0; j < nc; j++) dst[k * w + j] = b[k * b_rs + j * b_cs];
            for (int j = nc; j < w; j++) dst[k * w + j] = 0.0f;
        }
    }
}

/* dst[k*mr + r] = A(r, k) for k < kc, r < rows; zero for rows <= r < mr. */
static void pack_a(const nwk_impl *im, int64_t kc, int rows, int mr, const float *a, int64_t a_rs, int64_t a_cs,
                   float *dst) {
    if (a_cs == 1 && im->pack_a) { im->pack_a(kc, rows, a, a_rs, dst); return; }
    if (a_rs == 1) { /* columns of A contiguous (a transposed weight): one short copy per k */
        for (int64_t k = 0; k < kc; k++) {
            memcpy(dst + k * mr, a + k * a_cs, (size_t)rows * sizeof(float));
            memset(dst + k * mr + rows, 0, (size_t)(mr - rows) * sizeof(float));
        }
        return;
    }
    for (int r = rows; r < mr; r++)
        for (int64_t k = 0; k < kc; k++) dst[k * mr + r] = 0.0f;
    for (int r = 0; r < rows; r++) {
        const float *ar = a + r * a_rs;
        if (a_cs == 1)
            for (int64_t k = 0; k < kc; k++) dst[k * mr + r] = ar[k];
        else
            for (int64_t k = 0; k < kc; k++) dst[k * mr + r] = ar[k * a_cs];
    }
}

/* m <= NWK_SMALL_M rows: no panel packing. Rows of B are read in place when b_cs == 1, otherwise
   an NWK_SMALL_KC x ns tile at a time is packed on the stack (a k-block continues the chains).
   load: the chains continue from C (nwk_gemm_continue) instead of starting from +0. */
static void gemm_small_load(const nwk_impl *im, const gemm_args *g, int load) {
    _Alignas(64) float tile[NWK_SMALL_KC * NWK_MAX_NS];
    const int ns = im->ns;
    for (int64_t j0 = 0; j0 < g->n; j0 += ns) {
        const int nj = (int)min64(ns, g->n - j0);
        float *cj = g->c + j0;
        if (g->b_cs == 1) {
            im->small((int)g->m, g->k, g->a, g->a_rs, g->a_cs, g->b + j0, g->b_rs, cj, g->c_rs, nj, load);
            continue;
        }
        if (g->b_rs == 1 && im->small_t && !load) {
            im->small_t((int)g->m, g->k, g->a, g->a_rs, g->a_cs, g->b + j0 * g->b_cs, g->b_cs, cj, g->c_rs, nj);
            continue;
        }
        for (int64_t k0 = 0; k0 < g->k; k0 += NWK_SMALL_KC) {
            const int64_t kc = min64(NWK_SMALL_KC, g->k - k0);
            nwk_pack_b(im, kc, nj, ns, g->b + k0 * g->b_rs + j0 * g->b_cs, g->b_rs, g->b_cs, tile);
            im->small((int)g->m, kc, g->a + k0 * g->a_cs, g->a_rs, g->a_cs, tile, ns, cj, g->c_rs, nj, load || k0 > 0);
        }
    }
}

static void gemm_small(const nwk_impl *im, const gemm_args *g) { gemm_small_load(im, g, 0); }

void nwk_gemm_continue(int64_t m, int64_t n, int64_t k_dim,
                       const float *a, int64_t a_rs, int64_t a_cs,
                       const float *b, int64_t b_rs, int64_t b_cs,
                       float *c, int64_t c_rs) {
    if (m <= 0 || n <= 0 || k_dim <= 0) return;
    const nwk_impl *im = nwk_current();
    for (int64_t i0 = 0; i0 < m; i0 += NWK_SMALL_M) {
        const gemm_args g = {min64(NWK_SMALL_M, m - i0), n, k_dim, a + i0 * a_rs, a_rs, a_cs, b, b_rs, b_cs,
                             c + i0 * c_rs, c_rs, NULL, 0, 0, 0, 0};
        gemm_small_load(im, &g, 1);
    }
}

static int use_rows(const nwk_impl *im, int64_t k, int64_t a_cs) {
    return im->micro_rows != NULL && a_cs == 1 && k <= NWK_KFULL;
}

/* Columns of B per packed block of the rows path (a multiple of nr). */
static int64_t rows_nc(const nwk_impl *im, int64_t k) {
    const int64_t nc = NWK_ROWS_B_FLOATS / k / im->nr * im->nr;
    return nc < im->nr ? im->nr : nc;
}

/* Scratch floats one thread of the packed or rows path needs for a part with n columns. */
static size_t packed_scratch(const nwk_impl *im, int64_t n, int64_t k, int64_t kb, int rows) {
    if (rows) return (size_t)(k * ceil_div(min64(rows_nc(im, k), n), im->nr) * im->nr) + 16;
    const int64_t kc = min64(kb, k), nc = min64(NC, n);
    return (size_t)(MC * kc + kc * ceil_div(nc, im->nr) * im->nr) + 16;
}

/* The rows path's work, handed out one unit at a time to whichever thread asks next (a core
   slowed by its neighbours takes fewer): the first `whole` column blocks (ncb columns, one
   packed B block each) whole, then each remaining block in `split` parts of rows_per rows, so
   that the last units are short and the threads finish together. Which thread computes a tile
   does not change its value. */
typedef struct {
    int64_t next; /* nwk_next_task's counter */
    int64_t units, whole, split, rows_per, ncb;
} rows_queue;

static void rows_queue_init(rows_queue *q, const nwk_impl *im, int64_t m, int64_t n, int64_t k, int nt) {
    /* At least 4 units per thread: narrower column blocks first (each B column is then packed
       once), rows split only when blocks of nr columns are still too few; otherwise the last
       nt blocks are split in 8 (measured: 2-5 % off the dense MLP projection on 2 threads, the
       spawned thread's core being the slower one here). */
    q->ncb = rows_nc(im, k);
    if (ceil_div(n, q->ncb) < 4 * nt) q->ncb = min64(q->ncb, ceil_div(ceil_div(n, 4 * nt), im->nr) * im->nr);
    const int64_t col_blocks = ceil_div(n, q->ncb), panels = ceil_div(m, im->mr);
    int64_t split;
    if (col_blocks >= 4 * nt) {
        q->whole = nt > 1 ? col_blocks - nt : col_blocks;
        split = min64(panels, 8);
    } else {
        q->whole = 0;
        split = min64(panels, ceil_div(4 * nt, col_blocks));
    }
    q->rows_per = ceil_div(panels, split) * im->mr;
    q->split = ceil_div(m, q->rows_per);
    q->units = q->whole + (col_blocks - q->whole) * q->split;
    q->next = 0;
}

static void gemm_rows(const nwk_impl *im, const gemm_args *g, rows_queue *q, float *bp) {
    const int mr = im->mr, nr = im->nr;
    int64_t packed = -1; /* the column block in bp */
    for (;;) {
        const int64_t u = nwk_next_task(&q->next);
        if (u >= q->units) break;
        const int64_t tail = u - q->whole, part = tail < 0 ? 0 : tail % q->split;
        const int64_t jc = (tail < 0 ? u : q->whole + tail / q->split) * q->ncb;
        const int64_t i0 = tail < 0 ? 0 : part * q->rows_per, i1 = tail < 0 ? g->m : min64(g->m, i0 + q->rows_per);
        const int64_t nc = min64(q->ncb, g->n - jc), npan = ceil_div(nc, nr);
        if (jc != packed) {
            for (int64_t p = 0; p < npan; p++)
                nwk_pack_b(im, g->k, (int)min64(nr, nc - p * nr), nr, g->b + (jc + p * nr) * g->b_cs, g->b_rs,
                           g->b_cs, bp + p * g->k * nr);
            packed = jc;
        }
        for (int64_t i = i0; i < i1; i += mr)
            for (int64_t p = 0; p < npan; p++) {
                const int64_t j = jc + p * nr;
                im->micro_rows(g->k, g->a + i * g->a_rs, g->a_rs, bp + p * g->k * nr, g->c + i * g->c_rs + j, g->c_rs,
                               g->s ? g->s + i * g->s_rs + j : NULL, g->s_rs, (int)min64(mr, i1 - i),
                               (int)min64(nr, nc - p * nr), g->stream);
            }
    }
}

static void gemm_packed(const nwk_impl *im, const gemm_args *g, float *scratch) {
    const int mr = im->mr, nr = im->nr;
    const int64_t KB = g->kb;
    const int stream = g->k <= KB && g->stream && g->s == NULL;
    float *ap = scratch;
    float *bp = scratch + MC * min64(KB, g->k);
    for (int64_t jc = 0; jc < g->n; jc += NC) {
        const int64_t nc = min64(NC, g->n - jc), npan = ceil_div(nc, nr);
        for (int64_t pc = 0; pc < g->k; pc += KB) {
            const int64_t kc = min64(KB, g->k - pc);
            const int last = g->s != NULL && pc + kc >= g->k; /* chains complete after this block */
            for (int64_t p = 0; p < npan; p++)
                nwk_pack_b(im, kc, (int)min64(nr, nc - p * nr), nr, g->b + pc * g->b_rs + (jc + p * nr) * g->b_cs,
                       g->b_rs, g->b_cs, bp + p * kc * nr);
            for (int64_t ic = 0; ic < g->m; ic += MC) {
                const int64_t mc = min64(MC, g->m - ic), nap = ceil_div(mc, mr);
                for (int64_t q = 0; q < nap; q++)
                    pack_a(im, kc, (int)min64(mr, mc - q * mr), mr, g->a + (ic + q * mr) * g->a_rs + pc * g->a_cs,
                           g->a_rs, g->a_cs, ap + q * kc * mr);
                if (kc * npan * nr <= B_BLOCK_L2_FLOATS) {
                    /* Small packed B block (short k: the per-head case): it stays in L2 whichever
                       way we go, so walk C row-panel by row-panel; C is then written as whole
                       contiguous rows, which streams to memory far better than column strips. */
                    for (int64_t q = 0; q < nap; q++)
                        for (int64_t p = 0; p < npan; p++) {
                            im->micro(kc, ap + q * kc * mr, bp + p * kc * nr,
                                      g->c + (ic + q * mr) * g->c_rs + jc + p * nr, g->c_rs,
                                      (int)min64(mr, mc - q * mr), (int)min64(nr, nc - p * nr),
                                      pc > 0 ? NWK_LOAD : stream ? NWK_STREAM : NWK_ZERO);
                            if (last)
                                scale_tile(im, g, ic + q * mr, jc + p * nr, (int)min64(mr, mc - q * mr), (int)min64(nr, nc - p * nr));
                        }
                } else {
                    /* BLIS order: one B micro-panel (L1) against the whole A block (L2). */
                    for (int64_t p = 0; p < npan; p++)
                        for (int64_t q = 0; q < nap; q++) {
                            im->micro(kc, ap + q * kc * mr, bp + p * kc * nr,
                                      g->c + (ic + q * mr) * g->c_rs + jc + p * nr, g->c_rs,
                                      (int)min64(mr, mc - q * mr), (int)min64(nr, nc - p * nr),
                                      pc > 0 ? NWK_LOAD : stream ? NWK_STREAM : NWK_ZERO);
                            if (last)
                                scale_tile(im, g, ic + q * mr, jc + p * nr, (int)min64(mr, mc - q * mr), (int)min64(nr, nc - p * nr));
                        }
                }
            }
        }
    }
}

typedef struct {
    const nwk_impl *im;
    gemm_args g;      /* this part's sub-problem (the rows path: the whole problem) */
    float *scratch;   /* NULL: small-m path */
    rows_queue *queue; /* the rows path's shared work */
} gemm_part;

static void *run_gemm_part(void *arg) {
    gemm_part *p = arg;
    if (p->g.m > 0 && p->g.n > 0) {
        if (p->scratch && p->g.rows) {
            gemm_rows(p->im, &p->g, p->queue, p->scratch);
        } else if (p->scratch) {
            gemm_packed(p->im, &p->g, p->scratch);
        } else {
            gemm_small(p->im, &p->g);
            if (p->g.s) scale_tile(p->im, &p->g, 0, 0, (int)p->g.m, (int)p->g.n);
        }
        if (p->g.stream) nwk_store_fence();  /* non-temporal stores visible before the join */
    }
    return NULL;
}

int nwk_gemm(int64_t m, int64_t n, int64_t k_dim,
             const float *a, int64_t a_rs, int64_t a_cs,
             const float *b, int64_t b_rs, int64_t b_cs,
             float *c, int64_t c_rs, int n_threads) {
    return nwk_gemm_scaled(m, n, k_dim, a, a_rs, a_cs, b, b_rs, b_cs, NULL, 0, c, c_rs, n_threads);
}

int nwk_gemm_scaled(int64_t m, int64_t n, int64_t k_dim,
                    const float *a, int64_t a_rs, int64_t a_cs,
                    const float *b, int64_t b_rs, int64_t b_cs,
                    const float *s, int64_t s_rs,
                    float *c, int64_t c_rs, int n_threads) {
    const double bytes = (double)m * (double)n * sizeof(float);
    return nwk_gemm_scaled_part(m, n, k_dim, a, a_rs, a_cs, b, b_rs, b_cs, s, s_rs, c, c_rs, n_threads,
                                bytes > 9e18 ? INT64_MAX : (int64_t)bytes);
}

int nwk_gemm_scaled_part(int64_t m, int64_t n, int64_t k_dim,
                         const float *a, int64_t a_rs, int64_t a_cs,
                         const float *b, int64_t b_rs, int64_t b_cs,
                         const float *s, int64_t s_rs,
                         float *c, int64_t c_rs, int n_threads, int64_t out_bytes) {
    if (m <= 0 || n <= 0) return 0;
    if (k_dim <= 0) { /* every chain is +0, and scaling keeps it */
        for (int64_t i = 0; i < m; i++) memset(c + i * c_rs, 0, (size_t)n * sizeof(float));
        return 0;
    }
    const nwk_impl *im = nwk_current();
    const int small = m <= NWK_SMALL_M;
    int nt = n_threads < 1 ? 1 : n_threads > NWK_MAX_THREADS ? NWK_MAX_THREADS : n_threads;
    if ((double)m * (double)n * (double)k_dim < (double)MIN_PARALLEL_MADDS) nt = 1;

    /* The rows path shares its units out as the threads ask (rows_queue). Otherwise split columns
       (in tiles) when m is small or n >= m (each thread then packs only its part of B, and repacks
       A, the cheaper duplicate), else rows (in micro-tile rows). */
    const int rows = !small && use_rows(im, k_dim, a_cs);
    rows_queue queue;
    if (rows) rows_queue_init(&queue, im, m, n, k_dim, nt);
    const int by_cols = small || n >= m;
    const int64_t unit = by_cols ? (small ? im->ns : im->nr) : im->mr;
    const int64_t units = rows ? queue.units : ceil_div(by_cols ? n : m, unit);
    if (nt > units) nt = (int)units;

    const int64_t kb = (double)m * (double)n * sizeof(float) <= CACHED_C_BYTES ? KC_CACHED : KC;
    gemm_part parts[NWK_MAX_THREADS];
    float *scratch = NULL;
    size_t per = 0;
    if (!small) {
        const int64_t part_n = rows ? n : by_cols ? ceil_div(units, nt) * unit : n;
        per = (packed_scratch(im, part_n, k_dim, kb, rows) + 15) & ~(size_t)15; /* 64-byte multiples */
        if (nwk_scratch_alloc((void **)&scratch, per * sizeof(float) * (size_t)nt) != 0) return -1;
    }
    const int stream = im->streams && out_bytes >= NWK_STREAM_MIN_BYTES &&
                       ((uintptr_t)c & 63) == 0 && ((c_rs * (int64_t)sizeof(float)) & 63) == 0;
    for (int t = 0; t < nt; t++) {
        const int64_t u0 = units * t / nt, u1 = units * (t + 1) / nt;
        gemm_args g = {m, n, k_dim, a, a_rs, a_cs, b, b_rs, b_cs, c, c_rs, s, s_rs, stream, kb, rows};
        if (rows) {
            /* every part takes units from the queue */
        } else if (by_cols) {
            const int64_t j0 = u0 * unit, j1 = min64(n, u1 * unit);
            g.n = j1 - j0; g.b += j0 * b_cs; g.c += j0;
            if (s) g.s += j0;
        } else {
            const int64_t i0 = u0 * unit, i1 = min64(m, u1 * unit);
            g.m = i1 - i0; g.a += i0 * a_rs; g.c += i0 * c_rs;
            if (s) g.s += i0 * s_rs;
        }
        parts[t] = (gemm_part){im, g, small ? NULL : scratch + per * (size_t)t, rows ? &queue : NULL};
    }
    nwk_run_parts(run_gemm_part, parts, sizeof parts[0], nt);
    nwk_scratch_free(scratch);
    return 0;
}

/* ---------------------------------------------------------------- K = 1: scaled rows */

/* Rows are taken SCALED_ROWS_TASK at a time from a shared counter, so that the calling thread
   takes over the rows of a thread that starts late (70-270 us after its creation on this VM: as
   long as half the work of a 9 MB call). */
#define SCALED_ROWS_TASK 32

typedef struct {
    const nwk_impl *im;
    int64_t m, n;
    const float *s; const int64_t *row;
    const float *b; int64_t b_rs, b_cs;
    float *c; int64_t c_rs;
    int64_t *next; /* nwk_next_task's counter, shared by the parts */
} rows_part;

static void *run_rows_part(void *arg) {
    const rows_part *p = arg;
    for (;;) {
        const int64_t i0 = nwk_next_task(p->next) * SCALED_ROWS_TASK;
        if (i0 >= p->m) break;
        const int64_t i1 = min64(p->m, i0 + SCALED_ROWS_TASK);
        for (int64_t i = i0; i < i1; i++)
            p->im->scale_row(p->n, p->s[i], p->b + p->row[i] * p->b_rs, p->b_cs, p->c + i * p->c_rs);
    }
    return NULL;
}

int nwk_scaled_rows(int64_t m, int64_t n, const float *s, const int64_t *row,
                    const float *b, int64_t b_rs, int64_t b_cs, float *c, int64_t c_rs, int n_threads) {
    if (m <= 0 || n <= 0) return 0;
    const nwk_impl *im = nwk_current();
    int nt = n_threads < 1 ? 1 : n_threads > NWK_MAX_THREADS ? NWK_MAX_THREADS : n_threads;
    if ((double)m * (double)n < (double)MIN_PARALLEL_STREAM) nt = 1;
    if (nt > ceil_div(m, SCALED_ROWS_TASK)) nt = (int)ceil_div(m, SCALED_ROWS_TASK);
    int64_t next = 0;
    rows_part parts[NWK_MAX_THREADS];
    for (int t = 0; t < nt; t++) parts[t] = (rows_part){im, m, n, s, row, b, b_rs, b_cs, c, c_rs, &next};
    nwk_run_parts(run_rows_part, parts, sizeof parts[0], nt);
    return 0;
}

/* ---------------------------------------------------------------- masked scaling */

void nwk_scale_by(int64_t n, const float *s, const float *f, float *c) {
    if (n > 0) nwk_current()->scale_by(n, s, f, c);
}

void nwk_scale_by_stream(int64_t n, const float *s, const float *f, float *c, int64_t zeros) {
    const nwk_impl *im = nwk_current();
    if (n < 0) n = 0;
    if (zeros < 0) zeros = 0;
    if (im->scale_by_stream) {
        im->scale_by_stream(n, s, f, c, zeros);
        nwk_store_fence();
        return;
    }
    if (n > 0) im->scale_by(n, s, f, c);
    if (zeros > 0) memset(c + n, 0, (size_t)zeros * sizeof(float));
}

/* ---------------------------------------------------------------- pairs onto latents */

void nwk_pair_latents(int64_t nq, int heads, int64_t n, const float *w, int64_t w_qs, const float *m, int64_t m_hs,
                      const float *live, int64_t live_qs, float *out, const int64_t *out_off, int stream) {
    if (nq <= 0 || n <= 0) return;
    const nwk_impl *im = nwk_current();
    if (im->pair_latents) {
        im->pair_latents(nq, heads, n, w, w_qs, m, m_hs, live, live_qs, out, out_off, stream);
        if (stream) nwk_store_fence();
        return;
    }
    for (int64_t i = 0; i < nq; i++) {
        const float *wi = w + i * w_qs, *li = live + i * live_qs;
        float *o = out + out_off[i];
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int h = 0; h < heads; h++) acc = fmaf(wi[h], m[h * m_hs + j], acc);
            o[j] = li[j] > 0 ? acc : 0.0f;
        }
    }
}

/* ---------------------------------------------------------------- quadratic norms */

void nwk_quad_norms(int64_t rows, int64_t n, const float *x, int64_t x_rs, int64_t x_cs,
                    const float *y, int64_t y_rs, int64_t y_cs, float *out, int64_t out_stride) {
    if (rows <= 0) return;
    const nwk_impl *im = nwk_current();
    if (x_cs == 1 && y_cs == 1) { im->quad_norms(rows, n, x, x_rs, y, y_rs, out, out_stride); return; }
    const double span = 8.0 * fabs((double)x_rs) + (double)n * fabs((double)x_cs);
    if (y_rs == 1 && im->quad_norms_cols && span < 2147483647.0) {
        im->quad_norms_cols(rows, n, x, x_rs, x_cs, y, y_cs, out, out_stride);
        return;
    }
    for (int64_t i = 0; i < rows; i++) out[i * out_stride] = quad_norm_row(n, x + i * x_rs, x_cs, y + i * y_rs, y_cs);
}

int nwk_any_nonzero(int64_t n, const float *x) { return n > 0 && nwk_current()->any_nonzero(n, x); }

/* ---------------------------------------------------------------- finding non-zero entries */

/* Elements per block: OR-reduced without branches (vectorisable), then searched only if one is set. */
#define FIRST_NONZERO_BLOCK 256

/* Element i of x as an unsigned integer of its size (memcpy: the caller's memory has another type). */
#define FIRST_NONZERO(type, mask)                                                              \
    do {                                                                                       \
        const char *bytes = x;                                                                 \
        type v;                                                                                \
        for (int64_t i0 = 0; i0 < n; i0 += FIRST_NONZERO_BLOCK) {                              \
            const int64_t i1 = min64(n, i0 + FIRST_NONZERO_BLOCK);                             \
            type any = 0;                                                                      \
            for (int64_t i = i0; i < i1; i++) {                                                \
                memcpy(&v, bytes + i * stride * (int64_t)sizeof(type), sizeof v);              \
                any |= v & (mask);                                                             \
            }                                                                                  \
            if (!any) continue;                                                                \
            for (int64_t i = i0; i < i1; i++) {                                                \
                memcpy(&v, bytes + i * stride * (int64_t)sizeof(type), sizeof v);              \
                if (v & (mask)) return i;                                                      \
            }                                                                                  \
        }                                                                                      \
        return -1;                                                                             \
    } while (0)

int64_t nwk_first_nonzero(int64_t n, const void *x, int64_t stride, int item_size) {
    if (n <= 0) return -1;
    if (item_size == 4 && stride == 1) {
        const nwk_impl *im = nwk_current();
        const float *f = x;
        for (int64_t i0 = 0; i0 < n; i0 += 16 * FIRST_NONZERO_BLOCK) {
            const int64_t len = min64(16 * FIRST_NONZERO_BLOCK, n - i0);
            if (!im->any_nonzero(len, f + i0)) continue;
            for (int64_t i = i0; i < i0 + len; i++) {
                uint32_t u;
                memcpy(&u, f + i, 4);
                if (u & 0x7FFFFFFFu) return i;
            }
        }
        return -1;
    }
    switch (item_size) {
    case 2: FIRST_NONZERO(uint16_t, 0x7FFFu);
    case 4: FIRST_NONZERO(uint32_t, 0x7FFFFFFFu);
    case 8: FIRST_NONZERO(uint64_t, UINT64_C(0x7FFFFFFFFFFFFFFF));
    default: return -1;
    }
}
