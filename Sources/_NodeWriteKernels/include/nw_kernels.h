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

/* C[i, j] = fmaf(s[i], B(row[i], j), +0.0f) for i < m, j < n: the K = 1 case, a memory stream.
   B(r, j) = b[r*b_rs + j*b_cs]. Always returns 0 (no scratch). */
int nwk_scaled_rows(int64_t m, int64_t n, const float *s, const int64_t *row,
                    const float *b, int64_t b_rs, int64_t b_cs,
                    float *c, int64_t c_rs, int n_threads);

/* Process-wide thread count for callers that have no better idea. nwk_set_threads(n > 0) sets it;
   nwk_set_threads(0) (or never calling it) = default: the environment variable
   NODEWRITE_NUM_THREADS if it is a positive integer (read once), else the CPUs in this
   process's affinity mask. Negative n is ignored. */
void nwk_set_threads(int n);
int nwk_threads(void);

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
