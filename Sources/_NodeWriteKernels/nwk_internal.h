/* Internal to _NodeWriteKernels: one table of function pointers per instruction set. */
#ifndef NWK_INTERNAL_H
#define NWK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nw_kernels.h"

/* Small-m path: at most NWK_SMALL_M rows (nw_kernels.h), B streamed (or packed a tile at a time on
   the stack). */
/* k-block of the stack-packed tile in the small-m path (NWK_SMALL_KC * ns floats on the stack). */
#define NWK_SMALL_KC 128

/* The micro-kernel's `load` argument. */
#define NWK_ZERO 0
#define NWK_LOAD 1
#define NWK_STREAM 2

typedef struct nwk_impl {
    const char *name;
    int mr, nr;     /* micro-tile of the packed path: mr rows x nr columns of accumulators */
    int ns;         /* column tile of the small-m path (multiple of 16, <= 64) */
    /* C[0:mr, 0:nr] (= or, if load == NWK_LOAD, continue from C) chains over kc packed steps
       (load == NWK_STREAM: start from zero and write C with non-temporal stores where aligned,
       for outputs that are final after this call and larger than the caches; same values):
       ap[k*MR + r] (MR = this impl's mr, rows zero-padded), bp[k*NR + j] (columns zero-padded).
       mr_valid <= mr rows and nr_valid <= nr columns of C are read/written. */
    void (*micro)(int64_t kc, const float *ap, const float *bp, float *c, int64_t c_rs,
                  int mr_valid, int nr_valid, int load);
    /* m <= NWK_SMALL_M rows, n <= ns columns: C[i, j] (= or continue) chains over kc steps of
       A(i,k) = a[i*a_rs + k*a_cs] and B(k,j) = b[k*b_rs + j] (contiguous rows, any row stride). */
    void (*small)(int m, int64_t kc, const float *a, int64_t a_rs, int64_t a_cs,
                  const float *b, int64_t b_rs, float *c, int64_t c_rs, int n, int load);
    /* Optional (NULL: pack tiles instead). Same as small, but B(k,j) = b[j*b_cs + k] (transposed,
       contiguous in k), read in place for the whole kc (C is written, never continued). */
    void (*small_t)(int m, int64_t kc, const float *a, int64_t a_rs, int64_t a_cs,
                    const float *b, int64_t b_cs, float *c, int64_t c_rs, int n);
    /* Transposed pack: dst[k*w + j] = b[j*b_cs + k] for k < kc, j < nc; dst[k*w + j] = 0 for
       nc <= j < w. w is a multiple of 16 (w >= nc). */
    void (*pack_t)(int64_t kc, int nc, int w, const float *b, int64_t b_cs, float *dst);
    /* c[j] = fmaf(s, b[j*b_cs], +0) for j < n. */
    void (*scale_row)(int64_t n, float s, const float *b, int64_t b_cs, float *c);
    /* Whether micro honours NWK_STREAM (otherwise it is NWK_ZERO). */
    int streams;
    /* c[i] = f[i] == 0 ? +0.0f : s[i] * f[i] for i < n (c may be f). */
    void (*scale_by)(int64_t n, const float *s, const float *f, float *c);
    /* One query row of attention pairs from per-head tiles, f = t[h*t_hs + k]:
       c[k*heads + h] = f == 0 ? +0.0f : p[k*heads + h] * f for k < nk, h < heads.
       heads * t_hs + nk < 2^31. */
    void (*pairs)(int64_t nk, int heads, const float *p, const float *t, int64_t t_hs, float *c);
    /* The same row summed over keys: sums[h] continues its chain fmaf(p[k*heads + h], f, sums[h])
       for k = 0, 1, ..., nk - 1 in order. */
    void (*pair_sums)(int64_t nk, int heads, const float *p, const float *t, int64_t t_hs, float *sums);
    /* out[i*out_stride] = nwk_quad_norms's value for row i (x rows contiguous: x_cs == 1). */
    void (*quad_norms)(int64_t rows, int64_t n, const float *x, int64_t x_rs, const float *y, int64_t y_rs,
                       float *out, int64_t out_stride);
    /* Optional (NULL: the scalar reference): nwk_quad_norms for y stored by columns (y_rs == 1),
       eight rows at a time; any x strides with 8 * |x_rs| + n * |x_cs| < 2^31. */
    void (*quad_norms_cols)(int64_t rows, int64_t n, const float *x, int64_t x_rs, int64_t x_cs, const float *y,
                            int64_t y_cs, float *out, int64_t out_stride);
    /* Optional (NULL: scalar loops): the A pack for rows of A contiguous in k (a_cs == 1):
       dst[k*mr + r] = a[r*a_rs + k] for k < kc, r < rows; zero for rows <= r < mr. */
    void (*pack_a)(int64_t kc, int rows, const float *a, int64_t a_rs, float *dst);
    /* Whether any of x[0..n) has magnitude bits set (is not +-0; NaN counts). */
    int (*any_nonzero)(int64_t n, const float *x);
    /* Optional (NULL: the packed path only). C[0:mr_valid, 0:nr_valid] = the chains from zero over
       all kc steps of A(r,k) = a[r*a_rs + k] (rows read in place) and bp[k*NR + j] (a packed B
       micro-panel); then, if s is not NULL, scale_by with S(r, j) = s[r*s_rs + j]. stream: whole
       64-byte-aligned rows of the tile are written with non-temporal stores (same values). */
    void (*micro_rows)(int64_t kc, const float *a, int64_t a_rs, const float *bp, float *c, int64_t c_rs,
                       const float *s, int64_t s_rs, int mr_valid, int nr_valid, int stream);
    /* Optional (NULL: scale_by, then memset): nwk_scale_by_stream without its fence. */
    void (*scale_by_stream)(int64_t n, const float *s, const float *f, float *c, int64_t zeros);
    /* Optional (NULL: the scalar reference): nwk_pair_latents without its fence. */
    void (*pair_latents)(int64_t nq, int heads, int64_t n, const float *w, int64_t w_qs, const float *m, int64_t m_hs,
                         const float *live, int64_t live_qs, float *out, const int64_t *out_off, int stream);
} nwk_impl;

/* The fixed last step of nwk_quad_norms: the eight float64 partial sums combined pairwise,
   then sqrt of a positive sum, +0 for a sum <= 0, NaN for NaN. */
static inline float nwk_quad_finish(const double s[8]) {
    const double sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    return (float)(sum > 0 ? __builtin_sqrt(sum) : sum != sum ? sum : 0.0);
}
extern const nwk_impl nwk_impl_scalar;
#if defined(__x86_64__) || defined(__i386__)
#define NWK_X86 1
extern const nwk_impl nwk_impl_avx2;
extern const nwk_impl nwk_impl_avx512;
#endif

/* Shared by the drivers (kernels.c, pairs.c). */
const nwk_impl *nwk_current(void);
/* dst[k*w + j] = B(k, j) for k < kc, j < nc; zero for nc <= j < w (w a multiple of 16). */
void nwk_pack_b(const nwk_impl *im, int64_t kc, int nc, int w, const float *b, int64_t b_rs, int64_t b_cs, float *dst);
/* The CPUs this process may run on (its affinity mask), at least 1. */
int nwk_cpu_count(void);
/* Runs fn(arg + t * size) for t < nt: part 0 on the calling thread, the others on helper threads
   kept between calls (pool.c), or started for the call when another caller has the helpers; the
   calling thread also runs every part no helper has claimed by then (and a part with no thread).
   A part's result must depend on its argument only, not on the thread running it. Returns when
   every part has. */
void nwk_run_parts(void *(*fn)(void *), void *arg, size_t size, int nt);

/* Most threads one call starts. */
#define NWK_MAX_THREADS 64

/* Largest mr and nr of any implementation (sizes of scratch and stack buffers). */
#define NWK_MAX_MR 8
#define NWK_MAX_NR 48
#define NWK_MAX_NS 64

#endif
