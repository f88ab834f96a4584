/* AVX2 implementation (avx2 + fma), compiled per function with target attributes and chosen at
   run time. Same structure as the AVX-512 one: each accumulator lane is one element's fmaf chain. */
#include "nwk_internal.h"

#ifdef NWK_X86
#include <immintrin.h>
#include <math.h>

#define T256 __attribute__((target("avx2,fma")))
#define MR 6
#define NR 16

/* Lane mask for the first n (clamped to 0..8) of 8 floats. */
T256 static inline __m256i mask8(int64_t n) {
    const int nn = n <= 0 ? 0 : n >= 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(nn), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 6 x 16 micro-tile: 12 ymm accumulators. */
T256 static void micro(int64_t kc, const float *ap, const float *bp, float *c, int64_t c_rs,
                       int mr, int nr, int load) {
    const __m256i m0 = mask8(nr), m1 = mask8(nr - 8);
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        if (load == NWK_LOAD && r < mr) {
            acc[r][0] = _mm256_maskload_ps(c + r * c_rs, m0);
            acc[r][1] = _mm256_maskload_ps(c + r * c_rs + 8, m1);
        } else {
            acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        }
    }
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            const __m256 av = _mm256_broadcast_ss(ap + r);
            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
        }
        ap += MR;
        bp += NR;
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        if (r < mr) {
            _mm256_maskstore_ps(c + r * c_rs, m0, acc[r][0]);
            _mm256_maskstore_ps(c + r * c_rs + 8, m1, acc[r][1]);
        }
    }
}

/* M rows x up to 32 columns (4 ymm per row), B rows read in place. */
T256 static inline __attribute__((always_inline)) void small_body(
    const int M, int64_t kc, const float *a, int64_t a_rs, int64_t a_cs, const float *b, int64_t b_rs,
    float *c, int64_t c_rs, int n, int load) {
    __m256i mk[4];
    for (int t = 0; t < 4; t++) mk[t] = mask8(n - 8 * t);
    __m256 acc[NWK_SMALL_M][4];
#pragma GCC unroll 4
    for (int r = 0; r < M; r++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            acc[r][t] = load ? _mm256_maskload_ps(c + r * c_rs + 8 * t, mk[t]) : _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        const float *bk = b + k * b_rs;
        __m256 bv[4];
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) bv[t] = _mm256_maskload_ps(bk + 8 * t, mk[t]);
#pragma GCC unroll 4
        for (int r = 0; r < M; r++) {
            const __m256 av = _mm256_set1_ps(a[r * a_rs + k * a_cs]);
#pragma GCC unroll 4
            for (int t = 0; t < 4; t++) acc[r][t] = _mm256_fmadd_ps(av, bv[t], acc[r][t]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < M; r++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) _mm256_maskstore_ps(c + r * c_rs + 8 * t, mk[t], acc[r][t]);
}

T256 static void small(int m, int64_t kc, const float *a, int64_t a_rs, int64_t a_cs,
                       const float *b, int64_t b_rs, float *c, int64_t c_rs, int n, int load) {
    switch (m) {
    case 1: small_body(1, kc, a, a_rs, a_cs, b, b_rs, c, c_rs, n, load); break;
    case 2: small_body(2, kc, a, a_rs, a_cs, b, b_rs, c, c_rs, n, load); break;
    case 3: small_body(3, kc, a, a_rs, a_cs, b, b_rs, c, c_rs, n, load); break;
    default: small_body(4, kc, a, a_rs, a_cs, b, b_rs, c, c_rs, n, load); break;
    }
}

/* In-register 8 x 8 transpose: r[i] holds row i; afterwards r[j] holds column j. */
T256 static inline void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 2; g++) {
        u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int e = 0; e < 4; e++) {
        r[e] = _mm256_permute2f128_ps(u[e], u[4 + e], 0x20);
        r[4 + e] = _mm256_permute2f128_ps(u[e], u[4 + e], 0x31);
    }
}

T256 static void pack_t(int64_t kc, int nc, int w, const float *b, int64_t b_cs, float *dst) {
    for (int j0 = 0; j0 < w; j0 += 8) {
        const int nj = nc - j0 < 0 ? 0 : nc - j0 > 8 ? 8 : nc - j0;
        for (int64_t k0 = 0; k0 < kc; k0 += 8) {
            const int64_t nk = kc - k0 > 8 ? 8 : kc - k0;
            const __m256i km = mask8(nk);
            __m256 r[8];
            for (int j = 0; j < 8; j++)
                r[j] = j < nj ? _mm256_maskload_ps(b + (int64_t)(j0 + j) * b_cs + k0, km) : _mm256_setzero_ps();
            transpose8(r);
            for (int64_t k = 0; k < nk; k++) _mm256_storeu_ps(dst + (k0 + k) * w + j0, r[k]);
        }
    }
}

T256 static void scale_row(int64_t n, float s, const float *b, int64_t b_cs, float *c) {
    if (b_cs == 1) {
        const __m256 sv = _mm256_set1_ps(s), z = _mm256_setzero_ps();
        int64_t j = 0;
        for (; j + 32 <= n; j += 32) {
            _mm256_storeu_ps(c + j, _mm256_fmadd_ps(sv, _mm256_loadu_ps(b + j), z));
            _mm256_storeu_ps(c + j + 8, _mm256_fmadd_ps(sv, _mm256_loadu_ps(b + j + 8), z));
            _mm256_storeu_ps(c + j + 16, _mm256_fmadd_ps(sv, _mm256_loadu_ps(b + j + 16), z));
            _mm256_storeu_ps(c + j + 24, _mm256_fmadd_ps(sv, _mm256_loadu_ps(b + j + 24), z));
        }
        for (; j < n; j += 8) {
            const __m256i mk = mask8(n - j);
            _mm256_maskstore_ps(c + j, mk, _mm256_fmadd_ps(sv, _mm256_maskload_ps(b + j, mk), z));
        }
    } else {
        for (int64_t j = 0; j < n; j++) c[j] = fmaf(s, b[j * b_cs], 0.0f);
    }
}

/* x where it is not zero (or NaN), else +0: product lanes of zero factors are cleared. */
T256 static inline __m256 keep_nonzero(__m256 product, __m256 f) {
    return _mm256_and_ps(product, _mm256_cmp_ps(f, _mm256_setzero_ps(), _CMP_NEQ_UQ));
}

T256 static void scale_by(int64_t n, const float *s, const float *f, float *c) {
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i mk = mask8(n - i);
        const __m256 fv = _mm256_maskload_ps(f + i, mk);
        _mm256_maskstore_ps(c + i, mk, keep_nonzero(_mm256_mul_ps(_mm256_maskload_ps(s + i, mk), fv), fv));
    }
}

/* As in the AVX-512 version, 8 lanes at a time. */
T256 static void pairs(int64_t nk, int heads, const float *p, const float *t, int64_t t_hs, float *c) {
    int32_t h0[8], i0[8];
    for (int j = 0; j < 8; j++) { h0[j] = j % heads; i0[j] = (int32_t)(h0[j] * t_hs + j / heads); }
    __m256i hv = _mm256_loadu_si256((const __m256i *)h0), idx = _mm256_loadu_si256((const __m256i *)i0);
    const __m256i step_h = _mm256_set1_epi32(8 % heads), last_h = _mm256_set1_epi32(heads - 1);
    const __m256i nheads = _mm256_set1_epi32(heads);
    const __m256i step = _mm256_set1_epi32((int32_t)((8 % heads) * t_hs + 8 / heads));
    const __m256i wrap = _mm256_set1_epi32((int32_t)(1 - heads * t_hs));
    const int64_t n = nk * heads;
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i mk = mask8(n - i);
        const __m256 fv = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), t, idx, _mm256_castsi256_ps(mk), 4);
        _mm256_maskstore_ps(c + i, mk, keep_nonzero(_mm256_mul_ps(_mm256_maskload_ps(p + i, mk), fv), fv));
        hv = _mm256_add_epi32(hv, step_h);
        idx = _mm256_add_epi32(idx, step);
        const __m256i over = _mm256_cmpgt_epi32(hv, last_h);
        hv = _mm256_sub_epi32(hv, _mm256_and_si256(over, nheads));
        idx = _mm256_add_epi32(idx, _mm256_and_si256(over, wrap));
    }
}

T256 static void pair_sums(int64_t nk, int heads, const float *p, const float *t, int64_t t_hs, float *sums) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int h0 = 0; h0 < heads; h0 += 8) {
        const __m256i mk = mask8(heads - h0);
        __m256i idx = _mm256_mullo_epi32(_mm256_add_epi32(lane, _mm256_set1_epi32(h0)), _mm256_set1_epi32((int32_t)t_hs));
        const __m256i one = _mm256_set1_epi32(1);
        __m256 acc = _mm256_maskload_ps(sums + h0, mk);
        for (int64_t k = 0; k < nk; k++) {
            const __m256 fv = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), t, idx, _mm256_castsi256_ps(mk), 4);
            acc = _mm256_fmadd_ps(_mm256_maskload_ps(p + k * heads + h0, mk), fv, acc);
            idx = _mm256_add_epi32(idx, one);
        }
        _mm256_maskstore_ps(sums + h0, mk, acc);
    }
}

/* Lanes 0-3 and 4-7 of the reference order in two float64 vectors. */
T256 static void quad_norms(int64_t rows, int64_t n, const float *x, int64_t x_rs, const float *y, int64_t y_rs,
                            float *out, int64_t out_stride) {
    for (int64_t i = 0; i < rows; i++) {
        const float *xr = x + i * x_rs, *yr = y + i * y_rs;
        __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
        for (int64_t c = 0; c < n; c += 8) {
            const __m256i mk = mask8(n - c);
            const __m256 xv = _mm256_maskload_ps(xr + c, mk), yv = _mm256_maskload_ps(yr + c, mk);
            lo = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(xv)), _mm256_cvtps_pd(_mm256_castps256_ps128(yv)), lo);
            hi = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(yv, 1)), hi);
        }
        double s[8];
        _mm256_storeu_pd(s, lo);
        _mm256_storeu_pd(s + 4, hi);
        out[i * out_stride] = nwk_quad_finish(s);
    }
}

T256 static int any_nonzero(int64_t n, const float *x) {
    const __m256i magnitude = _mm256_set1_epi32(0x7FFFFFFF);
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i a = _mm256_castps_si256(_mm256_maskload_ps(x + i, mask8(n - i)));
        if (!_mm256_testz_si256(a, magnitude)) return 1;
    }
    return 0;
}

/* As in the AVX-512 version, four rows at a time. */
T256 static void quad_norms_cols(int64_t rows, int64_t n, const float *x, int64_t x_rs, int64_t x_cs,
                                 const float *y, int64_t y_cs, float *out, int64_t out_stride) {
    const __m128i idx = _mm_mullo_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32((int32_t)x_rs));
    const __m256d zero = _mm256_setzero_pd();
    for (int64_t i0 = 0; i0 < rows; i0 += 4) {
        const int nv = rows - i0 >= 4 ? 4 : (int)(rows - i0);
        const __m128i mk = _mm_cmpgt_epi32(_mm_set1_epi32(nv), _mm_setr_epi32(0, 1, 2, 3));
        __m256d acc[8];
        for (int j = 0; j < 8; j++) acc[j] = zero;
        const float *xi = x + i0 * x_rs, *yi = y + i0;
        for (int64_t c = 0; c < ((n + 7) & ~(int64_t)7); c++) {
            __m256d xv = zero, yv = zero;
            if (c < n) {
                xv = _mm256_cvtps_pd(_mm_mask_i32gather_ps(_mm_setzero_ps(), xi + c * x_cs, idx, _mm_castsi128_ps(mk), 4));
                yv = _mm256_cvtps_pd(_mm_maskload_ps(yi + c * y_cs, mk));
            }
            acc[c & 7] = _mm256_fmadd_pd(xv, yv, acc[c & 7]);
        }
        const __m256d sum = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3])),
                                          _mm256_add_pd(_mm256_add_pd(acc[4], acc[5]), _mm256_add_pd(acc[6], acc[7])));
        double s4[4];
        _mm256_storeu_pd(s4, sum);
        for (int j = 0; j < nv; j++)
            out[(i0 + j) * out_stride] = (float)(s4[j] > 0 ? __builtin_sqrt(s4[j]) : s4[j] != s4[j] ? s4[j] : 0.0);
    }
}

/* nwk_pair_latents: 8 latents at a time; the key's heads x 8 values of m loaded once and used by
   every query; the last latents as the scalar reference (the same fmaf chain). */
#define PAIR_HEADS_HELD 32
T256 static inline void pair_store(float *dst, __m256 acc, const float *live, int stream) {
    const __m256 x = _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(live), _mm256_setzero_ps(), _CMP_GT_OQ), acc);
    if (stream && ((uintptr_t)dst & 31) == 0) _mm256_stream_ps(dst, x);
    else _mm256_storeu_ps(dst, x);
}

/* Four queries at a time (four independent chains sharing each load of m). */
T256 static void pair_latents(int64_t nq, int heads, int64_t n, const float *w, int64_t w_qs, const float *m, int64_t m_hs,
                              const float *live, int64_t live_qs, float *out, const int64_t *out_off, int stream) {
    const __m256 z = _mm256_setzero_ps();
    __m256 mv[PAIR_HEADS_HELD];
    const int held = heads <= PAIR_HEADS_HELD;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        if (held)
            for (int h = 0; h < heads; h++) mv[h] = _mm256_loadu_ps(m + h * m_hs + j);
        int64_t i = 0;
        for (; i + 4 <= nq; i += 4) {
            const float *w0 = w + i * w_qs, *w1 = w0 + w_qs, *w2 = w1 + w_qs, *w3 = w2 + w_qs;
            __m256 a0 = z, a1 = z, a2 = z, a3 = z;
            for (int h = 0; h < heads; h++) {
                const __m256 mh = held ? mv[h] : _mm256_loadu_ps(m + h * m_hs + j);
                a0 = _mm256_fmadd_ps(_mm256_set1_ps(w0[h]), mh, a0);
                a1 = _mm256_fmadd_ps(_mm256_set1_ps(w1[h]), mh, a1);
                a2 = _mm256_fmadd_ps(_mm256_set1_ps(w2[h]), mh, a2);
                a3 = _mm256_fmadd_ps(_mm256_set1_ps(w3[h]), mh, a3);
            }
            pair_store(out + out_off[i] + j, a0, live + i * live_qs + j, stream);
            pair_store(out + out_off[i + 1] + j, a1, live + (i + 1) * live_qs + j, stream);
            pair_store(out + out_off[i + 2] + j, a2, live + (i + 2) * live_qs + j, stream);
            pair_store(out + out_off[i + 3] + j, a3, live + (i + 3) * live_qs + j, stream);
        }
        for (; i < nq; i++) {
            const float *wi = w + i * w_qs;
            __m256 acc = z;
            for (int h = 0; h < heads; h++)
                acc = _mm256_fmadd_ps(_mm256_set1_ps(wi[h]), held ? mv[h] : _mm256_loadu_ps(m + h * m_hs + j), acc);
            pair_store(out + out_off[i] + j, acc, live + i * live_qs + j, stream);
        }
    }
    for (; j < n; j++)
        for (int64_t i = 0; i < nq; i++) {
            const float *wi = w + i * w_qs;
            float acc = 0.0f;
            for (int h = 0; h < heads; h++) acc = fmaf(wi[h], m[h * m_hs + j], acc);
            out[out_off[i] + j] = live[i * live_qs + j] > 0 ? acc : 0.0f;
        }
}

const nwk_impl nwk_impl_avx2 = {"avx2", MR, NR, 32, micro, small, NULL, pack_t, scale_row, 0,
                                scale_by, pairs, pair_sums, quad_norms, quad_norms_cols, NULL, any_nonzero, NULL, NULL,
                                pair_latents};
#endif
