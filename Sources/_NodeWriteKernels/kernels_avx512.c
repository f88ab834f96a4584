/* AVX-512 implementation (avx512f + avx512vl + fma), compiled per function with target attributes:
   the package itself is built for baseline x86-64 and this code runs only after a runtime check.
   Each accumulator lane is one output element's fmaf chain, advanced one k at a time. */
#include "nwk_internal.h"

#ifdef NWK_X86
#include <immintrin.h>
#include <math.h>

#define T512 __attribute__((target("avx512f,avx512vl,avx512dq,fma")))
#define MR 8
#define NR 48

static inline int64_t min64i(int64_t x, int64_t y) { return x < y ? x : y; }

T512 static inline __mmask16 mask16(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* 8 x 48 micro-tile: 24 zmm accumulators, 3 B loads and 8 broadcasts per k. */
T512 static void micro(int64_t kc, const float *ap, const float *bp, float *c, int64_t c_rs,
                       int mr, int nr, int load) {
    const __mmask16 m0 = mask16(nr), m1 = mask16(nr - 16), m2 = mask16(nr - 32);
    __m512 acc[MR][3];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        if (load == NWK_LOAD && r < mr) {
            const float *cr = c + r * c_rs;
            acc[r][0] = _mm512_maskz_loadu_ps(m0, cr);
            acc[r][1] = _mm512_maskz_loadu_ps(m1, cr + 16);
            acc[r][2] = _mm512_maskz_loadu_ps(m2, cr + 32);
        } else {
            acc[r][0] = acc[r][1] = acc[r][2] = _mm512_setzero_ps();
        }
    }
#pragma GCC unroll 8 /* k unrolled: see micro_rows */
    for (int64_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16), b2 = _mm512_loadu_ps(bp + 32);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            const __m512 av = _mm512_set1_ps(ap[r]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(av, b2, acc[r][2]);
        }
        ap += MR;
        bp += NR;
    }
    if (load == NWK_STREAM && nr == NR) {
        /* Whole aligned rows of an output final after this call: non-temporal stores. */
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            if (r < mr) {
                float *cr = c + r * c_rs;
                _mm512_stream_ps(cr, acc[r][0]);
                _mm512_stream_ps(cr + 16, acc[r][1]);
                _mm512_stream_ps(cr + 32, acc[r][2]);
            }
        }
        return;
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        if (r < mr) {
            float *cr = c + r * c_rs;
            _mm512_mask_storeu_ps(cr, m0, acc[r][0]);
            _mm512_mask_storeu_ps(cr + 16, m1, acc[r][1]);
            _mm512_mask_storeu_ps(cr + 32, m2, acc[r][2]);
        }
    }
}

/* The same 8 x 48 tile from rows of A read in place (a[r*a_rs + k]), from zero over the whole k,
   and, when s is not NULL, scale_by's rule applied to the accumulators before the one store.
   The S and C lines of the tile are fetched at the start, so they arrive while the chains run. */
__attribute__((target("avx512f,avx512vl,avx512dq,fma,prfchw"))) static void micro_rows(int64_t kc, const float *a, int64_t a_rs, const float *bp, float *c, int64_t c_rs,
                            const float *s, int64_t s_rs, int mr, int nr, int stream) {
    const __mmask16 m0 = mask16(nr), m1 = mask16(nr - 16), m2 = mask16(nr - 32);
    const float *ar[MR];
    __m512 acc[MR][3];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        ar[r] = a + (r < mr ? r : 0) * a_rs; /* missing rows repeat row 0 and are not stored */
        acc[r][0] = acc[r][1] = acc[r][2] = _mm512_setzero_ps();
    }
    /* The tile's scales and (unless it is streamed: a prefetch would read it only to have the
       non-temporal stores evict it; measured 3-5 % slower) its C lines, while the chains run. */
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j += 16) {
            if (s) _mm_prefetch((const char *)(s + r * s_rs + j), _MM_HINT_T0);
            if (!stream) _mm_prefetch((const char *)(c + r * c_rs + j), _MM_HINT_ET0);
        }
    /* k unrolled by 8: 287 instructions per 8 k instead of 8 x 38 (24 FMAs per k). On a core
       whose front end is shared (this VM's slow hours) that was 5-15 % of the dense MLP
       projection; on a quiet core, where the FMAs bound both, it measures the same. The chains
       are unchanged. */
#pragma GCC unroll 8
    for (int64_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16), b2 = _mm512_loadu_ps(bp + 32);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            const __m512 av = _mm512_set1_ps(ar[r][k]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(av, b2, acc[r][2]);
        }
        bp += NR;
    }
    const __m512 z = _mm512_setzero_ps();
    const __mmask16 mk[3] = {m0, m1, m2};
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        if (r >= mr) continue;
        float *cr = c + r * c_rs;
#pragma GCC unroll 3
        for (int t = 0; t < 3; t++) {
            __m512 v = acc[r][t];
            if (s) {
                const __mmask16 nz = _mm512_mask_cmp_ps_mask(mk[t], v, z, _CMP_NEQ_UQ);
                v = _mm512_maskz_mul_ps(nz, _mm512_maskz_loadu_ps(nz, s + r * s_rs + 16 * t), v);
            }
            if (stream && nr == NR) _mm512_stream_ps(cr + 16 * t, v);
            else _mm512_mask_storeu_ps(cr + 16 * t, mk[t], v);
        }
    }
}

/* M rows (compile-time after inlining) x up to 64 columns, B rows read in place. */
T512 static inline __attribute__((always_inline)) void small_body(
    const int M, int64_t kc, const float *a, int64_t a_rs, int64_t a_cs, const float *b, int64_t b_rs,
    float *c, int64_t c_rs, int n, int load) {
    __mmask16 mk[4];
    for (int t = 0; t < 4; t++) mk[t] = mask16(n - 16 * t);
    __m512 acc[NWK_SMALL_M][4];
#pragma GCC unroll 4
    for (int r = 0; r < M; r++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            acc[r][t] = load ? _mm512_maskz_loadu_ps(mk[t], c + r * c_rs + 16 * t) : _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        const float *bk = b + k * b_rs;
        __m512 bv[4];
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) bv[t] = _mm512_maskz_loadu_ps(mk[t], bk + 16 * t);
#pragma GCC unroll 4
        for (int r = 0; r < M; r++) {
            const __m512 av = _mm512_set1_ps(a[r * a_rs + k * a_cs]);
#pragma GCC unroll 4
            for (int t = 0; t < 4; t++) acc[r][t] = _mm512_fmadd_ps(av, bv[t], acc[r][t]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < M; r++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) _mm512_mask_storeu_ps(c + r * c_rs + 16 * t, mk[t], acc[r][t]);
}

T512 static void small(int m, int64_t kc, const float *a, int64_t a_rs, int64_t a_cs,
                       const float *b, int64_t b_rs, float *c, int64_t c_rs, int n, int load) {
    switch (m) {
    case 1: small_body(1, kc, a, a_rs, a_cs, b, b_rs, c, c_rs, n, load); break;
    case 2: small_body(2, kc, a, a_rs, a_cs, b, b_rs, c, c_rs, n, load); break;
    case 3: small_body(3, kc, a, a_rs, a_cs, b, b_rs, c, c_rs, n, load); break;
    default: small_body(4, kc, a, a_rs, a_cs, b, b_rs, c, c_rs, n, load); break;
    }
}

/* In-register 16 x 16 transpose: r[i] holds row i; afterwards r[j] holds column j. */
T512 static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    /* r[4g + e], 128-bit lane L = rows 4g..4g+3 of column 4L + e. */
    for (int e = 0; e < 4; e++) {
        const __m512 x = r[e], y = r[4 + e], z = r[8 + e], w = r[12 + e];
        const __m512 p = _mm512_shuffle_f32x4(x, y, 0x88), q = _mm512_shuffle_f32x4(x, y, 0xDD);
        const __m512 u = _mm512_shuffle_f32x4(z, w, 0x88), v = _mm512_shuffle_f32x4(z, w, 0xDD);
        t[e] = _mm512_shuffle_f32x4(p, u, 0x88);      /* column e      */
        t[8 + e] = _mm512_shuffle_f32x4(p, u, 0xDD);  /* column 8 + e  */
        t[4 + e] = _mm512_shuffle_f32x4(q, v, 0x88);  /* column 4 + e  */
        t[12 + e] = _mm512_shuffle_f32x4(q, v, 0xDD); /* column 12 + e */
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* Full 16 x 16 block, fewer shuffles: 128-bit loads put columns j0+4L+r (k quad q) in lane L of
   x[r]; an in-lane 4 x 4 transpose then gives k = k0+4q+e, columns j0..j0+15, in y[e]. */
T512 static inline void pack_t_block16(const float *b, int64_t b_cs, float *dst, int64_t w) {
    for (int q = 0; q < 4; q++) {
        __m512 x[4];
        for (int r = 0; r < 4; r++) {
            const float *p = b + r * b_cs + 4 * q;
            __m512 v = _mm512_castps128_ps512(_mm_loadu_ps(p));
            v = _mm512_insertf32x4(v, _mm_loadu_ps(p + 4 * b_cs), 1);
            v = _mm512_insertf32x4(v, _mm_loadu_ps(p + 8 * b_cs), 2);
            x[r] = _mm512_insertf32x4(v, _mm_loadu_ps(p + 12 * b_cs), 3);
        }
        const __m512 t0 = _mm512_unpacklo_ps(x[0], x[1]), t1 = _mm512_unpackhi_ps(x[0], x[1]);
        const __m512 t2 = _mm512_unpacklo_ps(x[2], x[3]), t3 = _mm512_unpackhi_ps(x[2], x[3]);
        _mm512_storeu_ps(dst + (4 * q + 0) * w, _mm512_shuffle_ps(t0, t2, 0x44));
        _mm512_storeu_ps(dst + (4 * q + 1) * w, _mm512_shuffle_ps(t0, t2, 0xEE));
        _mm512_storeu_ps(dst + (4 * q + 2) * w, _mm512_shuffle_ps(t1, t3, 0x44));
        _mm512_storeu_ps(dst + (4 * q + 3) * w, _mm512_shuffle_ps(t1, t3, 0xEE));
    }
}

T512 static void pack_t(int64_t kc, int nc, int w, const float *b, int64_t b_cs, float *dst) {
    for (int j0 = 0; j0 < w; j0 += 16) {
        const int nj = nc - j0 < 0 ? 0 : nc - j0 > 16 ? 16 : nc - j0;
        for (int64_t k0 = 0; k0 < kc; k0 += 16) {
            const int64_t nk = kc - k0 > 16 ? 16 : kc - k0;
            if (nj == 16 && nk == 16) {
                pack_t_block16(b + (int64_t)j0 * b_cs + k0, b_cs, dst + k0 * w + j0, w);
                continue;
            }
            const __mmask16 km = mask16(nk);
            __m512 r[16];
            for (int j = 0; j < 16; j++)
                r[j] = j < nj ? _mm512_maskz_loadu_ps(km, b + (int64_t)(j0 + j) * b_cs + k0) : _mm512_setzero_ps();
            transpose16(r);
            for (int64_t k = 0; k < nk; k++) _mm512_storeu_ps(dst + (k0 + k) * w + j0, r[k]);
        }
    }
}

/* Small m with B transposed in memory (b_rs == 1: column j is b[j*b_cs + k], contiguous in k):
   no packing at all. For each group of 16 columns and quad of k, 128-bit loads put columns
   j0+4L+r in lane L of x[r]; an in-lane 4 x 4 transpose yields, for k = k0..k0+3 in order, one
   vector of the 16 columns, which the M row chains take in k order. */
T512 static inline __m128 quad(const float *p, int valid, __mmask8 km, int full) {
    if (full) return _mm_loadu_ps(p);
    return valid ? _mm_maskz_loadu_ps(km, p) : _mm_setzero_ps();
}

T512 static inline __attribute__((always_inline)) void small_t_body(
    const int M, int64_t kc, const float *a, int64_t a_rs, int64_t a_cs, const float *b, int64_t b_cs,
    float *c, int64_t c_rs, int n) {
    for (int j0 = 0; j0 < n; j0 += 16) {
        const int nj = n - j0 > 16 ? 16 : n - j0;
        __m512 acc[NWK_SMALL_M];
        for (int r = 0; r < M; r++) acc[r] = _mm512_setzero_ps();
        const float *bj = b + (int64_t)j0 * b_cs;
        for (int64_t k0 = 0; k0 < kc; k0 += 4) {
            const int nk = kc - k0 > 4 ? 4 : (int)(kc - k0);
            const int full = nj == 16 && nk == 4;
            const __mmask8 km = (__mmask8)((1u << nk) - 1u);
            __m512 x[4];
            for (int r = 0; r < 4; r++) {
                const float *p = bj + r * b_cs + k0;
                __m512 v = _mm512_castps128_ps512(quad(p, r < nj, km, full));
                v = _mm512_insertf32x4(v, quad(p + 4 * b_cs, 4 + r < nj, km, full), 1);
                v = _mm512_insertf32x4(v, quad(p + 8 * b_cs, 8 + r < nj, km, full), 2);
                x[r] = _mm512_insertf32x4(v, quad(p + 12 * b_cs, 12 + r < nj, km, full), 3);
            }
            const __m512 t0 = _mm512_unpacklo_ps(x[0], x[1]), t1 = _mm512_unpackhi_ps(x[0], x[1]);
            const __m512 t2 = _mm512_unpacklo_ps(x[2], x[3]), t3 = _mm512_unpackhi_ps(x[2], x[3]);
            const __m512 y[4] = {_mm512_shuffle_ps(t0, t2, 0x44), _mm512_shuffle_ps(t0, t2, 0xEE),
                                 _mm512_shuffle_ps(t1, t3, 0x44), _mm512_shuffle_ps(t1, t3, 0xEE)};
            for (int e = 0; e < nk; e++)
#pragma GCC unroll 4
                for (int r = 0; r < M; r++)
                    acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * a_rs + (k0 + e) * a_cs]), y[e], acc[r]);
        }
        const __mmask16 cm = mask16(nj);
        for (int r = 0; r < M; r++) _mm512_mask_storeu_ps(c + r * c_rs + j0, cm, acc[r]);
    }
}

T512 static void small_t(int m, int64_t kc, const float *a, int64_t a_rs, int64_t a_cs,
                         const float *b, int64_t b_cs, float *c, int64_t c_rs, int n) {
    switch (m) {
    case 1: small_t_body(1, kc, a, a_rs, a_cs, b, b_cs, c, c_rs, n); break;
    case 2: small_t_body(2, kc, a, a_rs, a_cs, b, b_cs, c, c_rs, n); break;
    case 3: small_t_body(3, kc, a, a_rs, a_cs, b, b_cs, c, c_rs, n); break;
    default: small_t_body(4, kc, a, a_rs, a_cs, b, b_cs, c, c_rs, n); break;
    }
}

T512 static void scale_row(int64_t n, float s, const float *b, int64_t b_cs, float *c) {
    if (b_cs == 1) {
        const __m512 sv = _mm512_set1_ps(s), z = _mm512_setzero_ps();
        int64_t j = 0;
        /* Peel to a 64-byte aligned c: the stores of the main loop then never split a line. */
        const int64_t head = (int64_t)(((64 - ((uintptr_t)c & 63)) & 63) / 4);
        if (((uintptr_t)c & 3) == 0 && head > 0 && head < n) {
            const __mmask16 mk = mask16(head);
            _mm512_mask_storeu_ps(c, mk, _mm512_fmadd_ps(sv, _mm512_maskz_loadu_ps(mk, b), z));
            j = head;
        }
        for (; j + 64 <= n; j += 64) {
            _mm512_storeu_ps(c + j, _mm512_fmadd_ps(sv, _mm512_loadu_ps(b + j), z));
            _mm512_storeu_ps(c + j + 16, _mm512_fmadd_ps(sv, _mm512_loadu_ps(b + j + 16), z));
            _mm512_storeu_ps(c + j + 32, _mm512_fmadd_ps(sv, _mm512_loadu_ps(b + j + 32), z));
            _mm512_storeu_ps(c + j + 48, _mm512_fmadd_ps(sv, _mm512_loadu_ps(b + j + 48), z));
        }
        for (; j < n; j += 16) {
            const __mmask16 mk = mask16(n - j);
            _mm512_mask_storeu_ps(c + j, mk, _mm512_fmadd_ps(sv, _mm512_maskz_loadu_ps(mk, b + j), z));
        }
    } else {
        for (int64_t j = 0; j < n; j++) c[j] = fmaf(s, b[j * b_cs], 0.0f);
    }
}

/* scale_by's values of lanes i..i+15 that are < n and in `live` (other lanes +0); masked loads
   read nothing outside those lanes. */
T512 static inline __m512 scaled_lanes(int64_t i, int64_t n, const float *s, const float *f, __mmask16 live) {
    const __mmask16 in = live & mask16(n - i);
    const __m512 fv = _mm512_maskz_loadu_ps(in, f + i);
    const __mmask16 nz = _mm512_mask_cmp_ps_mask(in, fv, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    return _mm512_maskz_mul_ps(nz, _mm512_maskz_loadu_ps(nz, s + i), fv);
}

/* Up to c's first 64-byte boundary and after its last one: masked stores; between: streams. */
T512 static void scale_by_stream(int64_t n, const float *s, const float *f, float *c, int64_t zeros) {
    const int64_t total = n + zeros;
    int64_t i = 0;
    if (((uintptr_t)c & 3) == 0) {
        const int64_t head = min64i((int64_t)((64 - ((uintptr_t)c & 63)) & 63) / 4, total);
        if (head > 0) _mm512_mask_storeu_ps(c, mask16(head), scaled_lanes(0, n, s, f, mask16(head)));
        for (i = head; i + 16 <= total; i += 16)
            _mm512_stream_ps(c + i, i >= n ? _mm512_setzero_ps() : scaled_lanes(i, n, s, f, 0xFFFF));
    }
    for (; i < total; i += 16) _mm512_mask_storeu_ps(c + i, mask16(total - i), scaled_lanes(i, n, s, f, mask16(total - i)));
}

T512 static void scale_by(int64_t n, const float *s, const float *f, float *c) {
    const __m512 z = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 mk = mask16(n - i);
        const __m512 fv = _mm512_maskz_loadu_ps(mk, f + i);
        const __mmask16 nz = _mm512_mask_cmp_ps_mask(mk, fv, z, _CMP_NEQ_UQ);
        _mm512_mask_storeu_ps(c + i, mk, _mm512_maskz_mul_ps(nz, _mm512_maskz_loadu_ps(nz, s + i), fv));
    }
}

/* Lane j of the first vector is element j = k*heads + h of the row: tile index h*t_hs + k. Each
   vector moves 16 elements on: h by 16 % heads (wrapping into k) and k by 16 / heads. */
T512 static void pairs(int64_t nk, int heads, const float *p, const float *t, int64_t t_hs, float *c) {
    int32_t h0[16], i0[16];
    for (int j = 0; j < 16; j++) { h0[j] = j % heads; i0[j] = (int32_t)(h0[j] * t_hs + j / heads); }
    __m512i hv = _mm512_loadu_si512(h0), idx = _mm512_loadu_si512(i0);
    const __m512i step_h = _mm512_set1_epi32(16 % heads), nheads = _mm512_set1_epi32(heads);
    const __m512i step = _mm512_set1_epi32((int32_t)((16 % heads) * t_hs + 16 / heads));
    const __m512i wrap = _mm512_set1_epi32((int32_t)(1 - heads * t_hs));
    const __m512 z = _mm512_setzero_ps();
    const int64_t n = nk * heads;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 mk = mask16(n - i);
        const __m512 fv = _mm512_mask_i32gather_ps(z, mk, idx, t, 4);
        const __mmask16 nz = _mm512_mask_cmp_ps_mask(mk, fv, z, _CMP_NEQ_UQ);
        _mm512_mask_storeu_ps(c + i, mk, _mm512_maskz_mul_ps(nz, _mm512_maskz_loadu_ps(nz, p + i), fv));
        hv = _mm512_add_epi32(hv, step_h);
        idx = _mm512_add_epi32(idx, step);
        const __mmask16 over = _mm512_cmpge_epi32_mask(hv, nheads);
        hv = _mm512_mask_sub_epi32(hv, over, hv, nheads);
        idx = _mm512_mask_add_epi32(idx, over, idx, wrap);
    }
}

/* Heads in groups of 16 lanes; each lane's chain runs over k in order. */
T512 static void pair_sums(int64_t nk, int heads, const float *p, const float *t, int64_t t_hs, float *sums) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int h0 = 0; h0 < heads; h0 += 16) {
        const __mmask16 mk = mask16(heads - h0);
        __m512i idx = _mm512_mullo_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(h0)), _mm512_set1_epi32((int32_t)t_hs));
        const __m512i one = _mm512_set1_epi32(1);
        __m512 acc = _mm512_maskz_loadu_ps(mk, sums + h0);
        for (int64_t k = 0; k < nk; k++) {
            const __m512 fv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk, idx, t, 4);
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, p + k * heads + h0), fv, acc);
            idx = _mm512_add_epi32(idx, one);
        }
        _mm512_mask_storeu_ps(sums + h0, mk, acc);
    }
}

/* A pack for rows contiguous in k: 8 rows x 16 k at a time through the 16 x 16 transpose (rows
   8..15 zero), column k's 8 rows then being the low half of r[k]. */
T512 static void pack_a(int64_t kc, int rows, const float *a, int64_t a_rs, float *dst) {
    for (int64_t k0 = 0; k0 < kc; k0 += 16) {
        const int64_t nk = kc - k0 > 16 ? 16 : kc - k0;
        const __mmask16 km = mask16(nk);
        __m512 r[16];
        for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_maskz_loadu_ps(km, a + i * a_rs + k0) : _mm512_setzero_ps();
        transpose16(r);
        for (int64_t k = 0; k < nk; k++) _mm256_storeu_ps(dst + (k0 + k) * MR, _mm512_castps512_ps256(r[k]));
    }
}

/* 64 floats per step, their magnitude bits OR-ed. */
T512 static int any_nonzero(int64_t n, const float *x) {
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512i a = _mm512_or_si512(_mm512_loadu_si512(x + i), _mm512_loadu_si512(x + i + 16));
        const __m512i b = _mm512_or_si512(_mm512_loadu_si512(x + i + 32), _mm512_loadu_si512(x + i + 48));
        if (_mm512_test_epi32_mask(_mm512_or_si512(a, b), magnitude)) return 1;
    }
    for (; i < n; i += 16) {
        const __m512i a = _mm512_maskz_loadu_epi32(mask16(n - i), x + i);
        if (_mm512_test_epi32_mask(a, magnitude)) return 1;
    }
    return 0;
}

/* Eight float64 lanes: lane j takes c = 8i + j (the reference order in kernels.c). */
T512 static void quad_norms(int64_t rows, int64_t n, const float *x, int64_t x_rs, const float *y, int64_t y_rs,
                            float *out, int64_t out_stride) {
    for (int64_t i = 0; i < rows; i++) {
        const float *xr = x + i * x_rs, *yr = y + i * y_rs;
        __m512d acc = _mm512_setzero_pd();
        for (int64_t c = 0; c < n; c += 8) {
            const __mmask8 mk = (__mmask8)mask16(n - c);
            const __m512d xv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(mk, xr + c));
            const __m512d yv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(mk, yr + c));
            acc = _mm512_fmadd_pd(xv, yv, acc);
        }
        double s[8];
        _mm512_storeu_pd(s, acc);
        out[i * out_stride] = nwk_quad_finish(s);
    }
}

/* Eight rows at a time, one float64 lane each, the eight partial sums in eight vectors: lane
   for lane, the reference order (c = 8m + j into sum j, padded to a multiple of 8 with 0 * 0). */
T512 static void quad_norms_cols(int64_t rows, int64_t n, const float *x, int64_t x_rs, int64_t x_cs,
                                 const float *y, int64_t y_cs, float *out, int64_t out_stride) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i idx = _mm256_mullo_epi32(lane, _mm256_set1_epi32((int32_t)x_rs));
    const __m512d zero = _mm512_setzero_pd();
    for (int64_t i0 = 0; i0 < rows; i0 += 8) {
        const __mmask8 mk = (__mmask8)mask16(rows - i0);
        __m512d acc[8];
        for (int j = 0; j < 8; j++) acc[j] = zero;
        const float *xi = x + i0 * x_rs, *yi = y + i0;
        int64_t c = 0;
        for (; c + 8 <= n; c += 8)
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                const __m256 xv = _mm256_mmask_i32gather_ps(_mm256_setzero_ps(), mk, idx, xi + (c + j) * x_cs, 4);
                const __m256 yv = _mm256_maskz_loadu_ps(mk, yi + (c + j) * y_cs);
                acc[j] = _mm512_fmadd_pd(_mm512_cvtps_pd(xv), _mm512_cvtps_pd(yv), acc[j]);
            }
        for (int j = 0; c < ((n + 7) & ~(int64_t)7); c++, j++) {
            __m512d xv = zero, yv = zero;
            if (c < n) {
                xv = _mm512_cvtps_pd(_mm256_mmask_i32gather_ps(_mm256_setzero_ps(), mk, idx, xi + c * x_cs, 4));
                yv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(mk, yi + c * y_cs));
            }
            acc[j] = _mm512_fmadd_pd(xv, yv, acc[j]);
        }
        const __m512d sum = _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(acc[0], acc[1]), _mm512_add_pd(acc[2], acc[3])),
                                          _mm512_add_pd(_mm512_add_pd(acc[4], acc[5]), _mm512_add_pd(acc[6], acc[7])));
        const __mmask8 keep = _mm512_cmp_pd_mask(sum, zero, _CMP_GT_OQ) | _mm512_cmp_pd_mask(sum, sum, _CMP_UNORD_Q);
        float r[8];
        _mm256_storeu_ps(r, _mm512_cvtpd_ps(_mm512_maskz_sqrt_pd(keep, sum)));
        for (int j = 0; j < 8 && i0 + j < rows; j++) out[(i0 + j) * out_stride] = r[j];
    }
}

/* nwk_pair_latents: 16 latents at a time; the key's heads x 16 values of m loaded once (into
   registers for the usual head counts) and used by every query. */
#define PAIR_HEADS_HELD 32
/* The masked, live-gated store of one query's vector. */
T512 static inline void pair_store(float *dst, __mmask16 mk, __m512 acc, const float *live, int stream) {
    const __mmask16 on = _mm512_mask_cmp_ps_mask(mk, _mm512_maskz_loadu_ps(mk, live), _mm512_setzero_ps(), _CMP_GT_OQ);
    const __m512 x = _mm512_maskz_mov_ps(on, acc);
    if (stream && mk == 0xFFFF && ((uintptr_t)dst & 63) == 0) _mm512_stream_ps(dst, x);
    else _mm512_mask_storeu_ps(dst, mk, x);
}

/* Four queries at a time (four independent chains sharing each load of m). */
T512 static void pair_latents(int64_t nq, int heads, int64_t n, const float *w, int64_t w_qs, const float *m, int64_t m_hs,
                              const float *live, int64_t live_qs, float *out, const int64_t *out_off, int stream) {
    const __m512 z = _mm512_setzero_ps();
    __m512 mv[PAIR_HEADS_HELD];
    const int held = heads <= PAIR_HEADS_HELD;
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 mk = mask16(n - j);
        if (held)
            for (int h = 0; h < heads; h++) mv[h] = _mm512_maskz_loadu_ps(mk, m + h * m_hs + j);
        int64_t i = 0;
        for (; i + 4 <= nq; i += 4) {
            const float *w0 = w + i * w_qs, *w1 = w0 + w_qs, *w2 = w1 + w_qs, *w3 = w2 + w_qs;
            __m512 a0 = z, a1 = z, a2 = z, a3 = z;
            for (int h = 0; h < heads; h++) {
                const __m512 mh = held ? mv[h] : _mm512_maskz_loadu_ps(mk, m + h * m_hs + j);
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(w0[h]), mh, a0);
                a1 = _mm512_fmadd_ps(_mm512_set1_ps(w1[h]), mh, a1);
                a2 = _mm512_fmadd_ps(_mm512_set1_ps(w2[h]), mh, a2);
                a3 = _mm512_fmadd_ps(_mm512_set1_ps(w3[h]), mh, a3);
            }
            pair_store(out + out_off[i] + j, mk, a0, live + i * live_qs + j, stream);
            pair_store(out + out_off[i + 1] + j, mk, a1, live + (i + 1) * live_qs + j, stream);
            pair_store(out + out_off[i + 2] + j, mk, a2, live + (i + 2) * live_qs + j, stream);
            pair_store(out + out_off[i + 3] + j, mk, a3, live + (i + 3) * live_qs + j, stream);
        }
        for (; i < nq; i++) {
            const float *wi = w + i * w_qs;
            __m512 acc = z;
            for (int h = 0; h < heads; h++)
                acc = _mm512_fmadd_ps(_mm512_set1_ps(wi[h]), held ? mv[h] : _mm512_maskz_loadu_ps(mk, m + h * m_hs + j), acc);
            pair_store(out + out_off[i] + j, mk, acc, live + i * live_qs + j, stream);
        }
    }
}

const nwk_impl nwk_impl_avx512 = {"avx512", MR, NR, 64, micro, small, small_t, pack_t, scale_row, 1,
                                  scale_by, pairs, pair_sums, quad_norms, quad_norms_cols, pack_a, any_nonzero,
                                  micro_rows, scale_by_stream, pair_latents};
#endif
