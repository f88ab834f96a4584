/* nodewrite float32 kernels: implementation-only (used by NodeWriteCore), not part of the C ABI.
 *
 * THE CONTRACT. Every output element is exactly the float32 fused-multiply-add chain
 *     acc = +0.0f; for (k = 0; k < K; k++) acc = fmaf(A(i,k), B(k,j), acc);
 * in k order. Every implementation (AVX-512, AVX2, scalar), every tiling and every thread
 * count gives identical bits; threads split output rows or column tiles, never k.
 * (NaN payloads follow the hardware/libm rule for which NaN operand propagates; a NaN result
 * is NaN on every path, but its payload bits are not part of the contract.)
 *
 * Strides are in elements and may be 0 or negative. C is row-major with row stride c_rs
 * (column stride 1); elements of C outside the m x n block are never touched.
 * Functions returning int return 0, or -1 if scratch memory could not be allocated, in which
 * case C is untouched. Nothing here aborts; nothing keeps state between calls except the
 * process-wide thread count and the forced path (both atomics).
 */
#ifndef NW_KERNELS_H
#define NW_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* C[i, j] = sum_k A(i,k) * B(k,j) (the FMA chain above) for i < m, j < n, k < k_dim.
   A(i,k) = a[i*a_rs + k*a_cs], B(k,j) = b[k*b_rs + j*b_cs]. Overwrites C; k_dim == 0 writes
   zeros. n_threads < 1 counts as 1; small products run on the calling thread only. */
int nwk_gemm(int64_t m, int64_t n, int64_t k_dim,
             const float *a, int64_t a_rs, int64_t a_cs,
             const float *b, int64_t b_rs, int64_t b_cs,
             float *c, int64_t c_rs, int n_threads);

/* fn(ctx, lane) for lane < lanes, at most 64 (more count as 64): lane 0 on the calling thread,
   the others on the kernels' helper threads (kept between calls, as for every threaded kernel
   here). Returns when all have returned. */
void nwk_run_lanes(void (*fn)(void *ctx, int lane), void *ctx, int lanes);

/* Products of at most this many rows (m) take no scratch memory: nwk_gemm and nwk_gemm_scaled
   cannot fail for them (B is read in place, or packed a small tile at a time on the stack). */
#define NWK_SMALL_M 4

/* nwk_gemm, then each element scaled as nwk_scale_by does: C[i, j] = chain == 0 ? +0 :
   S[i, j] * chain, with S[i, j] = s[i*s_rs + j] (or plain nwk_gemm when s is NULL). The scaling
   happens per tile while it is in cache: no second pass over C. */
int nwk_gemm_scaled(int64_t m, int64_t n, int64_t k_dim,
                    const float *a, int64_t a_rs, int64_t a_cs,
                    const float *b, int64_t b_rs, int64_t b_cs,
                    const float *s, int64_t s_rs,
                    float *c, int64_t c_rs, int n_threads);

/* nwk_gemm_scaled for a product that is one part of an output of out_bytes bytes written by the
   same call (one head's rows of a node set): the store policy below follows out_bytes, not the
   part's own m * n * 4 (which is what nwk_gemm_scaled passes). Same values either way. */
int nwk_gemm_scaled_part(int64_t m, int64_t n, int64_t k_dim,
                         const float *a, int64_t a_rs, int64_t a_cs,
                         const float *b, int64_t b_rs, int64_t b_cs,
                         const float *s, int64_t s_rs,
                         float *c, int64_t c_rs, int n_threads, int64_t out_bytes);

/* C[i, j] = fmaf(s[i], B(row[i], j), +0.0f) for i < m, j < n: the K = 1 case, a memory stream.
   B(r, j) = b[r*b_rs + j*b_cs]. Always returns 0 (no scratch). */
int nwk_scaled_rows(int64_t m, int64_t n, const float *s, const int64_t *row,
                    const float *b, int64_t b_rs, int64_t b_cs,
                    float *c, int64_t c_rs, int n_threads);

/* c[i] = f[i] == 0 ? +0.0f : s[i] * f[i] for i < n (an exactly zero factor gives an exact zero
   whatever s[i] is; c may be f). Runs on the calling thread. */
void nwk_scale_by(int64_t n, const float *s, const float *f, float *c);

/* Outputs from this size (bytes) are large: written with non-temporal stores where they are final
   after one pass (nwk_gemm's single-k-block products, nwk_scale_by_stream's rows), so their cache
   lines are not read before being overwritten. Smaller outputs stay in cache for the caller, who
   reads them next: measured with that read (bench/store_policy.c), cached stores were ahead up to
   9 MB and streams from 36 MB on a 32 MB L3; the threshold is half that L3. */
#define NWK_STREAM_MIN_BYTES (16 << 20)

/* One row of a large output: c[i] as nwk_scale_by for i < n, then c[n + j] = +0 for j < zeros;
   the 64-byte-aligned part written with non-temporal stores where the CPU has them (same values;
   the cache lines are not read first), then a store fence. c does not alias s or f. */
void nwk_scale_by_stream(int64_t n, const float *s, const float *f, float *c, int64_t zeros);

/* out[i*out_stride] = sqrt(sum_c x[i*x_rs + c*x_cs] * y[i*y_rs + c*y_cs]) for i < rows, c < n:
   the norm ||x_i @ B|| when y_i = x_i (B B^T); +0 when the sum is <= 0, NaN when it is NaN.
   Summed in float64 in one fixed order (eight partial sums, lane j taking c = 8m + j, combined
   pairwise), the same on every path. Fast when x and y are row-contiguous, or when y is stored
   by columns (y_rs == 1: y^T row-major, as a product G x^T gives it). */
void nwk_quad_norms(int64_t rows, int64_t n, const float *x, int64_t x_rs, int64_t x_cs,
                    const float *y, int64_t y_rs, int64_t y_cs, float *out, int64_t out_stride);

/* 1 if any of x[0..n) is not +-0 (NaN counts), else 0. */
int nwk_any_nonzero(int64_t n, const float *x);

/* The first i < n whose element x[i*stride] (stride in elements of item_size bytes: 2, 4 or 8, an
   IEEE or bfloat16 float) is not +-0 (NaN and infinities count), or -1 when there is none (or for
   another item_size). Contiguous float32 runs take the SIMD path of nwk_any_nonzero. */
int64_t nwk_first_nonzero(int64_t n, const void *x, int64_t stride, int item_size);

/* C[i, j] continues its chain from its current value: C = fmaf(A(i,k), B(k,j), C) for k < k_dim in
   order (with C zeroed first this is nwk_gemm). For a few rows (any m, done NWK_SMALL_M at a time)
   and short k; on the calling thread, without scratch memory (never fails). */
void nwk_gemm_continue(int64_t m, int64_t n, int64_t k_dim,
                       const float *a, int64_t a_rs, int64_t a_cs,
                       const float *b, int64_t b_rs, int64_t b_cs,
                       float *c, int64_t c_rs);

/* Attention pair products of one layer (the write family's projections onto per-token directions).
   For each query q < tokens with row[q] >= 0, key k <= q (every key k < tokens when all_keys != 0:
   a model that is not causal; otherwise no key k > q is read) and head h:
     f(q, k, h) = chain over d < d_head of U(row[q], h, d) * V(k, h, d)   (the FMA chain above)
     U(r, h, d) = u[r*u_rs + h*d_head + d],  V(k, h, d) = v[k*v_s0 + h*v_s1 + d*v_s2],
     P(q, k, h) = p[q*p_rs + k*heads + h], or, when p is NULL, what p_rows(p_ctx, q, k0, nk, dst)
     writes as dst[(k - k0)*heads + h] for k0 <= k < k0 + nk (any other layout or dtype).
   NWK_PAIRS:     out[off[q] + k*heads + h] = f == 0 ? +0 : P * f for the keys read, and 0 for
                  the other keys k < tail_keys (TDB's unflattened rows: tail_keys = tokens; flattened: 0).
   NWK_PAIR_SUMS: out[off[q] + h] = chain over the keys read, in key order, of P * f.
   A row with row[q] < 0 gets zeros in all those places. With zeroed != 0 (out already zero)
   zeros are not written. Returns 0, or -1 if scratch memory could not be had (out untouched). */
enum { NWK_PAIRS = 0, NWK_PAIR_SUMS = 1 };
typedef struct {
    int64_t tokens;
    int heads;
    int64_t d_head;
    const float *u; int64_t u_rs;
    const int64_t *row;
    const float *v; int64_t v_s0, v_s1, v_s2;
    const float *p; int64_t p_rs;
    void (*p_rows)(const void *p_ctx, int64_t q, int64_t k0, int64_t nk, float *dst);
    const void *p_ctx;
    int mode;
    float *out;
    const int64_t *off;
    int64_t tail_keys;
    int zeroed;
    int all_keys;
} nwk_attention_pairs_args;
int nwk_attention_pairs(const nwk_attention_pairs_args *args, int n_threads);

/* Attention pairs onto every latent of a chunk, for one key and nq queries (the batched
   attention-to-latent form): for query i < nq and latent j < n,
     out[out_off[i] + j] = live[i*live_qs + j] > 0 ? chain : +0, with chain = +0, then for
     h < heads in order chain = fmaf(w[i*w_qs + h], m[h*m_hs + j], chain)   (the FMA chain above).
   A NaN live counts as not live. The key's rows of m are read once for all the queries (held in
   registers or L1), not once per query. stream != 0 (an output of NWK_STREAM_MIN_BYTES or more):
   the 64-byte-aligned vectors are written with non-temporal stores where the CPU has them, then a
   store fence (same values). Runs on the calling thread; out does not alias the inputs. */
void nwk_pair_latents(int64_t nq, int heads, int64_t n, const float *w, int64_t w_qs, const float *m, int64_t m_hs,
                      const float *live, int64_t live_qs, float *out, const int64_t *out_off, int stream);

/* Scratch memory of one call: *p = 64-byte aligned memory of at least `bytes`, returning 0, or
   -1 when it cannot be had (*p unchanged). Released with nwk_scratch_free (NULL is ignored). Freed
   buffers are kept for reuse (at most 8, 64 MB in all), so that calls repeated in a loop do not
   fault in fresh pages; thread-safe and fork-safe. */
int nwk_scratch_alloc(void **p, size_t bytes);
void nwk_scratch_free(void *p);

/* Process-wide thread count for callers that have no better idea. nwk_set_threads(n > 0) sets it;
   nwk_set_threads(0) (or never calling it) = default: the environment variable
   NODEWRITE_NUM_THREADS if it is a positive integer (read once), else the CPUs in this
   process's affinity mask. Negative n is ignored. */
void nwk_set_threads(int n);
int nwk_threads(void);

/* The next task of a shared counter: returns *counter, then adds 1 (atomically; for work handed
   out to whichever thread asks next). */
int64_t nwk_next_task(int64_t *counter);

/* The implementation in use: "avx512", "avx2" or "scalar" (chosen once with __builtin_cpu_supports). */
const char *nwk_path(void);

/* Forces an implementation by name ("avx512", "avx2", "scalar"), or NULL / "auto" for the automatic
   choice. Returns 0, or -1 if the name is unknown or this CPU cannot run it (nothing changes then).
   For tests and benchmarks; process-wide. */
int nwk_force_path(const char *name);

#ifdef __cplusplus
}
#endif

#endif
