/* Bit-for-bit tests of the float32 kernels (Sources/_NodeWriteKernels) against the naive chain
     acc = +0; for k: acc = fmaf(A(i,k), B(k,j), acc)
   for every implementation this CPU can run, thread counts 1, 2, 3, 8, and all stride patterns.
   Built with the kernel sources and -DNWK_TESTING (test hooks); see mk/core.mk (make test-kernels).
   A NaN result must be NaN on both sides (payload bits are not compared); every other bit must match. */
#define _GNU_SOURCE
#include "nw_kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int64_t nwk_test_min_parallel;
extern int nwk_test_fail_alloc;

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_u64(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}
static int rnd(int n) { return (int)(next_u64() % (uint64_t)n); }

static int special; /* inject Inf/NaN */

/* Values that exercise rounding: random mantissas, exponents spread over +-2^12, some zeros, -0s. */
static float rand_value(void) {
    int r = rnd(100);
    if (r == 0) return 0.0f;
    if (r == 1) return -0.0f;
    if (special && r == 2) return rnd(2) ? INFINITY : -INFINITY;
    if (special && r == 3) return NAN;
    float m = (float)((double)(next_u64() >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
    return ldexpf(m, rnd(25) - 12);
}

static uint32_t bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }

/* A buffer holding a strided rows x cols view: base pointer such that base[i*rs + j*cs] is valid. */
typedef struct { float *buf; const float *base; } view;
static view make_view(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
    int64_t lo = 0, hi = 0;
    if (rows > 0 && cols > 0) {
        int64_t c[4] = {0, (rows - 1) * rs, (cols - 1) * cs, (rows - 1) * rs + (cols - 1) * cs};
        for (int i = 0; i < 4; i++) { if (c[i] < lo) lo = c[i]; if (c[i] > hi) hi = c[i]; }
    }
    int64_t len = hi - lo + 1;
    view v;
    v.buf = malloc((size_t)len * sizeof(float));
    for (int64_t i = 0; i < len; i++) v.buf[i] = rand_value();
    v.base = v.buf - lo;
    return v;
}

static long failures, checks;
#define FAIL(...) do { if (failures++ < 20) { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); } } while (0)

static const float SENTINEL_BITS_F = 0; /* unused, for clarity */
static const uint32_t SENTINEL = 0x7FA5A5A5u; /* a signalling-NaN pattern nobody computes */

/* Compares C (m x n block, row stride c_rs, total rows m, buffer len) with the reference. */
static void compare(const char *what, int64_t m, int64_t n, const float *c, int64_t c_rs, const float *ref,
                    int64_t len) {
    for (int64_t x = 0; x < len; x++) {
        const int64_t i = x / c_rs, j = x % c_rs;
        uint32_t got = bits(c[x]);
        checks++;
        if (i < m && j < n) {
            float want = ref[i * n + j];
            if (isnan(want) && isnan(c[x])) continue;
            if (got != bits(want)) {
                FAIL("%s: C[%lld,%lld] = %a (0x%08x), chain gives %a (0x%08x)", what, (long long)i, (long long)j,
                     c[x], got, want, bits(want));
                return;
            }
        } else if (got != SENTINEL) {
            FAIL("%s: C outside the block changed at row %lld col %lld", what, (long long)i, (long long)j);
            return;
        }
    }
}

static const char *paths[3];
static int npaths;
static const int thread_counts[] = {1, 2, 3, 8};

static void fill_sentinel(float *c, int64_t len) {
    for (int64_t x = 0; x < len; x++) memcpy(&c[x], &SENTINEL, 4);
}

/* Stride patterns: 0 row-major, 1 column-major (transposed), 2 negative, 3 zero stride, 4 general. */
static void strides(int pat, int64_t rows, int64_t cols, int64_t *rs, int64_t *cs) {
    int64_t pad = rnd(3);
    switch (pat) {
    case 0: *rs = cols + pad; *cs = 1; break;
    case 1: *rs = 1; *cs = rows + pad; break;
    case 2: *rs = -(cols + pad); *cs = rnd(2) ? 1 : -1; break;
    case 3: if (rnd(2)) { *rs = 0; *cs = 1; } else { *rs = cols; *cs = 0; } break;
    default: *rs = 2 * cols + 1; *cs = 2; break;
    }
}

static int aligned_c; /* C 64-byte aligned with c_rs = n, a part of a large output: the streaming-store path */
static int scaled;    /* test nwk_gemm_scaled: every element then scaled as nwk_scale_by does */

static void test_gemm(int64_t m, int64_t n, int64_t k, int apat, int bpat, int all_threads) {
    int64_t a_rs, a_cs, b_rs, b_cs;
    strides(apat, m, k, &a_rs, &a_cs);
    strides(bpat, k, n, &b_rs, &b_cs);
    view A = make_view(m, k, a_rs, a_cs), B = make_view(k, n, b_rs, b_cs);
    float *ref = malloc((size_t)(m * n + 1) * sizeof(float));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int64_t kk = 0; kk < k; kk++) acc = fmaf(A.base[i * a_rs + kk * a_cs], B.base[kk * b_rs + j * b_cs], acc);
            ref[i * n + j] = acc;
        }
    const int64_t s_rs = n + rnd(3);
    float *S = malloc((size_t)(m * s_rs + 1) * sizeof(float));
    for (int64_t x = 0; x < m * s_rs; x++) S[x] = rand_value();
    if (scaled)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                const float f = ref[i * n + j];
                ref[i * n + j] = f == 0.0f ? 0.0f : S[i * s_rs + j] * f;
            }
    const int64_t c_rs = aligned_c ? n : n + rnd(3) + (n == 0), len = m * c_rs + 1;
    float *c = NULL;
    if (aligned_c) { if (posix_memalign((void **)&c, 64, (size_t)len * sizeof(float))) c = NULL; }
    else c = malloc((size_t)len * sizeof(float));
    for (int p = 0; p < npaths; p++) {
        nwk_force_path(paths[p]);
        for (int t = 0; t < 4; t++) {
            if (!all_threads && t > 0 && rnd(3)) continue;
            fill_sentinel(c, len);
            /* aligned_c: C as one part of a large output (a node set's head), streamed whatever its own size */
            int rc = aligned_c ? nwk_gemm_scaled_part(m, n, k, A.base, a_rs, a_cs, B.base, b_rs, b_cs, scaled ? S : NULL, s_rs,
                                                      c, c_rs, thread_counts[t], NWK_STREAM_MIN_BYTES)
                   : scaled ? nwk_gemm_scaled(m, n, k, A.base, a_rs, a_cs, B.base, b_rs, b_cs, S, s_rs, c, c_rs, thread_counts[t])
                            : nwk_gemm(m, n, k, A.base, a_rs, a_cs, B.base, b_rs, b_cs, c, c_rs, thread_counts[t]);
            char what[200];
            snprintf(what, sizeof what, "%sgemm m=%lld n=%lld k=%lld A(%lld,%lld) B(%lld,%lld) c_rs=%lld %s threads=%d",
                     scaled ? "scaled " : "", (long long)m, (long long)n, (long long)k, (long long)a_rs, (long long)a_cs, (long long)b_rs,
                     (long long)b_cs, (long long)c_rs, paths[p], thread_counts[t]);
            if (rc != 0) { FAIL("%s: returned %d", what, rc); continue; }
            compare(what, m, n, c, c_rs, ref, len);
        }
    }
    nwk_force_path(NULL);
    free(c); free(ref); free(S); free(A.buf); free(B.buf);
}

static void test_scaled_rows(int64_t m, int64_t n, int64_t rows, int bpat) {
    int64_t b_rs, b_cs;
    strides(bpat, rows, n, &b_rs, &b_cs);
    view B = make_view(rows, n, b_rs, b_cs);
    float *s = malloc((size_t)(m + 1) * sizeof(float));
    int64_t *row = malloc((size_t)(m + 1) * sizeof(int64_t));
    for (int64_t i = 0; i < m; i++) { s[i] = rand_value(); row[i] = rnd((int)rows); }
    float *ref = malloc((size_t)(m * n + 1) * sizeof(float));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) ref[i * n + j] = fmaf(s[i], B.base[row[i] * b_rs + j * b_cs], 0.0f);
    const int64_t c_rs = aligned_c ? n : n + rnd(3) + (n == 0), len = m * c_rs + 1;
    float *c = NULL;
    if (aligned_c) { if (posix_memalign((void **)&c, 64, (size_t)len * sizeof(float))) c = NULL; }
    else c = malloc((size_t)len * sizeof(float));
    for (int p = 0; p < npaths; p++) {
        nwk_force_path(paths[p]);
        for (int t = 0; t < 4; t++) {
            fill_sentinel(c, len);
            int rc = nwk_scaled_rows(m, n, s, row, B.base, b_rs, b_cs, c, c_rs, thread_counts[t]);
            char what[160];
            snprintf(what, sizeof what, "scaled_rows m=%lld n=%lld B(%lld,%lld) %s threads=%d", (long long)m,
                     (long long)n, (long long)b_rs, (long long)b_cs, paths[p], thread_counts[t]);
            if (rc != 0) { FAIL("%s: returned %d", what, rc); continue; }
            compare(what, m, n, c, c_rs, ref, len);
        }
    }
    nwk_force_path(NULL);
    free(c); free(ref); free(s); free(row); free(B.buf);
}

typedef struct { int seed; int ok; } conc_arg;
static void *concurrent_caller(void *arg) {
    conc_arg *ca = arg;
    const int64_t m = 37 + ca->seed, n = 101, k = 70;
    float *a = malloc(m * k * sizeof(float)), *b = malloc(k * n * sizeof(float)), *c = malloc(m * n * sizeof(float));
    for (int64_t x = 0; x < m * k; x++) a[x] = (float)((x * 7 + ca->seed) % 13) - 6.0f + 0.1f * (float)(x % 5);
    for (int64_t x = 0; x < k * n; x++) b[x] = (float)((x * 5 + ca->seed) % 11) * 0.37f - 1.5f;
    ca->ok = 1;
    for (int rep = 0; rep < 20 && ca->ok; rep++) {
        if (nwk_gemm(m, n, k, a, k, 1, b, 1, k, c, n, 2) != 0) ca->ok = 0; /* B read transposed */
        for (int64_t i = 0; i < m && ca->ok; i++)
            for (int64_t j = 0; j < n; j++) {
                float acc = 0.0f;
                for (int64_t kk = 0; kk < k; kk++) acc = fmaf(a[i * k + kk], b[j * k + kk], acc);
                if (bits(acc) != bits(c[i * n + j])) { ca->ok = 0; break; }
            }
    }
    free(a); free(b); free(c);
    return NULL;
}


/* ---------------------------------------------------------------- masked scaling and pair products */

/* Rows of a large output: n scaled values then `zeros` zeros, c at every float offset of a 64-byte
   line (the streamed middle, the masked head and tail); the floats around the row untouched. */
static void test_scale_by_stream(int64_t n, int64_t zeros) {
    const int64_t total = n + zeros, pad = 40;
    float *s = malloc(sizeof(float) * (size_t)(n + 1)), *f = malloc(sizeof(float) * (size_t)(n + 1));
    float *ref = malloc(sizeof(float) * (size_t)(total + 1)), *buf = NULL;
    if (posix_memalign((void **)&buf, 64, sizeof(float) * (size_t)(total + 2 * pad))) buf = NULL;
    for (int64_t i = 0; i < n; i++) { s[i] = rand_value(); f[i] = rand_value(); }
    for (int64_t i = 0; i < total; i++) ref[i] = i >= n || f[i] == 0.0f ? 0.0f : s[i] * f[i];
    for (int p = 0; p < npaths; p++) {
        nwk_force_path(paths[p]);
        for (int off = 0; off < 16; off += 1 + rnd(3)) {
            fill_sentinel(buf, total + 2 * pad);
            nwk_scale_by_stream(n, s, f, buf + pad + off, zeros);
            char what[96];
            snprintf(what, sizeof what, "scale_by_stream n=%lld zeros=%lld offset=%d %s", (long long)n, (long long)zeros, off, paths[p]);
            compare(what, 1, total, buf + pad + off, total, ref, total);
            for (int64_t x = 0; x < pad + off; x++) compare(what, 0, 0, buf + x, 1, ref, 1);  /* sentinels before */
            compare(what, 0, 0, buf + pad + off + total, 1, ref, 1);                             /* and after */
        }
    }
    nwk_force_path(NULL);
    free(s); free(f); free(ref); free(buf);
}

/* Pairs onto latents (nwk_pair_latents): nq queries of n latents, their out rows (stride n + gap,
   in reverse order through out_off) at every float offset of a 64-byte line, streamed or not; live
   holds zeros, negatives and NaN (not live); the gaps between rows and the floats around untouched.
   More than 32 heads take the path that reads m per query. */
static void test_pair_latents(int64_t nq, int heads, int64_t n, int64_t gap) {
    const int64_t m_hs = n + rnd(3), w_qs = heads + rnd(3), live_qs = n + rnd(3), out_ks = n + gap, span = nq * out_ks, pad = 40;
    float *w = malloc(sizeof(float) * (size_t)(nq * w_qs + 1)), *m = malloc(sizeof(float) * (size_t)(heads * m_hs + 1));
    float *live = malloc(sizeof(float) * (size_t)(nq * live_qs + 1)), *ref = malloc(sizeof(float) * (size_t)(nq * n + 1)), *buf = NULL;
    int64_t *off = malloc(sizeof(int64_t) * (size_t)(nq + 1));
    if (posix_memalign((void **)&buf, 64, sizeof(float) * (size_t)(span + 2 * pad))) buf = NULL;
    for (int64_t i = 0; i < nq * w_qs; i++) w[i] = rand_value();
    for (int64_t i = 0; i < heads * m_hs; i++) m[i] = rand_value();
    for (int64_t j = 0; j < nq * live_qs; j++) { int r = rnd(4); live[j] = r == 0 ? 0.0f : r == 1 ? -1.0f : r == 2 && rnd(4) == 0 ? NAN : 0.5f; }
    for (int64_t i = 0; i < nq; i++) {
        off[i] = (nq - 1 - i) * out_ks;
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int h = 0; h < heads; h++) acc = fmaf(w[i * w_qs + h], m[h * m_hs + j], acc);
            ref[(nq - 1 - i) * n + j] = live[i * live_qs + j] > 0 ? acc : 0.0f;
        }
    }
    for (int p = 0; p < npaths; p++) {
        nwk_force_path(paths[p]);
        for (int o = 0; o < 16; o += 1 + rnd(5)) {
            const int stream = rnd(2);
            fill_sentinel(buf, span + 2 * pad);
            nwk_pair_latents(nq, heads, n, w, w_qs, m, m_hs, live, live_qs, buf + pad + o, off, stream);
            char what[112];
            snprintf(what, sizeof what, "pair_latents nq=%lld heads=%d n=%lld gap=%lld offset=%d stream=%d %s", (long long)nq,
                     heads, (long long)n, (long long)gap, o, stream, paths[p]);
            compare(what, nq, n, buf + pad + o, out_ks, ref, span);  /* rows and the sentinels between them */
            for (int64_t x = 0; x < pad + o; x++) compare(what, 0, 0, buf + x, 1, ref, 1);
            compare(what, 0, 0, buf + pad + o + span, 1, ref, 1);
        }
    }
    nwk_force_path(NULL);
    free(w); free(m); free(live); free(ref); free(off); free(buf);
}

static void test_scale_by(int64_t n) {
    float *s = malloc(sizeof(float) * (size_t)(n + 1)), *f = malloc(sizeof(float) * (size_t)(n + 1));
    float *c = malloc(sizeof(float) * (size_t)(n + 1)), *ref = malloc(sizeof(float) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++) { s[i] = rand_value(); f[i] = rand_value(); }
    for (int64_t i = 0; i < n; i++) ref[i] = f[i] == 0.0f ? 0.0f : s[i] * f[i];
    for (int p = 0; p < npaths; p++) {
        nwk_force_path(paths[p]);
        fill_sentinel(c, n + 1);
        nwk_scale_by(n, s, f, c);
        char what[64];
        snprintf(what, sizeof what, "scale_by n=%lld %s", (long long)n, paths[p]);
        compare(what, 1, n, c, n + 1, ref, n + 1);
        memcpy(c, f, sizeof(float) * (size_t)n); /* in place: c == f */
        nwk_scale_by(n, s, c, c);
        compare(what, 1, n, c, n + 1 > n ? n : n, ref, n);
    }
    nwk_force_path(NULL);
    free(s); free(f); free(c); free(ref);
}

/* The reference order of nwk_quad_norms, written out again. */
static float quad_ref(int64_t n, const float *x, int64_t x_cs, const float *y, int64_t y_cs) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t c = 0; c < ((n + 7) / 8) * 8; c++)
        s[c % 8] = fma(c < n ? (double)x[c * x_cs] : 0.0, c < n ? (double)y[c * y_cs] : 0.0, s[c % 8]);
    const double sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    return (float)(sum > 0 ? sqrt(sum) : isnan(sum) ? sum : 0.0);
}

/* by_columns: y stored as y^T (y_rs == 1, y_cs = rows + pad), as the attention key norms use it. */
static void test_quad_norms(int64_t rows, int64_t n, int64_t x_cs, int by_columns) {
    const int64_t x_rs = n * (x_cs > 0 ? x_cs : 1) + 1;
    const int64_t y_rs = by_columns ? 1 : n + 2, y_cs = by_columns ? rows + 3 : 1;
    const int64_t y_len = by_columns ? n * y_cs + rows : rows * y_rs;
    float *x = malloc(sizeof(float) * (size_t)(rows * x_rs + 1)), *y = malloc(sizeof(float) * (size_t)(y_len + 1));
    float *out = malloc(sizeof(float) * (size_t)(2 * rows + 1));
    for (int64_t i = 0; i < rows * x_rs; i++) x[i] = rand_value();
    for (int64_t i = 0; i < y_len; i++) y[i] = rand_value();
    for (int p = 0; p < npaths; p++) {
        nwk_force_path(paths[p]);
        fill_sentinel(out, 2 * rows + 1);
        nwk_quad_norms(rows, n, x, x_rs, x_cs, y, y_rs, y_cs, out, 2);
        for (int64_t i = 0; i < 2 * rows + 1; i++) {
            checks++;
            const int64_t r = i / 2;
            const float want = i % 2 == 0 && i < 2 * rows ? quad_ref(n, x + r * x_rs, x_cs, y + r * y_rs, y_cs) : 0;
            const uint32_t got = bits(out[i]);
            if (i % 2 == 0 && i < 2 * rows ? (got != bits(want) && !(isnan(want) && isnan(out[i]))) : got != SENTINEL) {
                FAIL("quad_norms rows=%lld n=%lld x_cs=%lld columns=%d %s: out[%lld] = %a, want %a", (long long)rows,
                     (long long)n, (long long)x_cs, by_columns, paths[p], (long long)i, out[i], want);
                break;
            }
        }
    }
    nwk_force_path(NULL);
    free(x); free(y); free(out);
}

typedef struct { const float *p; int64_t rs; int heads; } pair_reader;
static void read_pairs(const void *ctx, int64_t q, int64_t k0, int64_t nk, float *dst) {
    const pair_reader *r = ctx;
    memcpy(dst, r->p + q * r->rs + k0 * r->heads, sizeof(float) * (size_t)(nk * r->heads));
}

/* layout 0: TDB's unflattened rows, 1: flattened, 2: sums over keys. all_keys: every key (a model that is
   not causal), else keys k <= q only. */
static void test_pairs_keys(int64_t tokens, int heads, int64_t dh, int layout, int vpat, int zeroed, int all_keys) {
    const int64_t used = tokens > 0 ? 1 + rnd((int)tokens) : 0, hd = heads * dh;
    int64_t *row = malloc(sizeof(int64_t) * (size_t)(tokens + 1)), *off = malloc(sizeof(int64_t) * (size_t)(tokens + 1));
    float *u = malloc(sizeof(float) * (size_t)(used * hd + 1));
    for (int64_t i = 0; i < used * hd; i++) u[i] = rand_value();
    for (int64_t q = 0; q < tokens; q++) row[q] = rnd(4) == 0 ? -1 : rnd((int)used);
    if (tokens > 0 && rnd(2)) for (int64_t q = 0; q < tokens; q++) row[q] = q < used ? q : -1; /* dense-like */
    /* v as (tokens, heads, dh) through strides: contiguous, heads-major, or d strided. */
    int64_t s0, s1, s2;
    if (vpat == 0) { s0 = hd; s1 = dh; s2 = 1; }
    else if (vpat == 1) { s0 = dh; s1 = tokens * dh; s2 = 1; }
    else { s0 = 1; s1 = tokens; s2 = tokens * heads; }
    float *v = malloc(sizeof(float) * (size_t)(tokens * hd + 1));
    for (int64_t i = 0; i < tokens * hd; i++) v[i] = rand_value();
    const int64_t p_rs = tokens * heads + rnd(3);
    float *p = malloc(sizeof(float) * (size_t)(tokens * p_rs + 1));
    for (int64_t i = 0; i < tokens * p_rs; i++) p[i] = rand_value();
    int64_t len = 0, tail = 0;
    for (int64_t q = 0; q < tokens; q++) {
        off[q] = layout == 0 ? q * tokens * heads : layout == 1 ? q * (q + 1) / 2 * heads : q * heads;
        const int64_t end = off[q] + (layout == 2 ? heads : (layout == 0 ? tokens : q + 1) * heads);
        if (end > len) len = end;
    }
    if (layout == 0) tail = tokens;
    float *ref = malloc(sizeof(float) * (size_t)(len + 1)), *c = malloc(sizeof(float) * (size_t)(len + 1));
    fill_sentinel(ref, len + 1);
    for (int64_t q = 0; q < tokens; q++) {
        const int64_t read = all_keys ? tokens : q + 1;
        const int64_t keys = layout == 2 ? 1 : (tail > read ? tail : read);
        if (!zeroed) for (int64_t x = 0; x < keys * heads; x++) ref[off[q] + x] = 0.0f;
        if (row[q] < 0) continue;
        for (int h = 0; h < heads; h++) {
            float sum = 0.0f;
            for (int64_t k = 0; k < read; k++) {
                float f = 0.0f;
                for (int64_t d = 0; d < dh; d++) f = fmaf(u[row[q] * hd + h * dh + d], v[k * s0 + h * s1 + d * s2], f);
                const float pv = p[q * p_rs + k * heads + h];
                if (layout == 2) sum = fmaf(pv, f, sum);
                else ref[off[q] + k * heads + h] = f == 0.0f ? 0.0f : pv * f;
            }
            if (layout == 2) ref[off[q] + h] = sum;
        }
    }
    pair_reader reader = {p, p_rs, heads};
    for (int pi = 0; pi < npaths; pi++)
        for (int t = 0; t < 4; t++)
            for (int via_reader = 0; via_reader < 2; via_reader++) {
                nwk_force_path(paths[pi]);
                fill_sentinel(c, len + 1);
                nwk_attention_pairs_args a = {tokens, heads, dh, u, hd, row, v, s0, s1, s2,
                                              via_reader ? NULL : p, p_rs, via_reader ? read_pairs : NULL, &reader,
                                              layout == 2 ? NWK_PAIR_SUMS : NWK_PAIRS, c, off, tail, zeroed, all_keys};
                if (nwk_attention_pairs(&a, thread_counts[t]) != 0) FAIL("attention_pairs failed");
                char what[160];
                snprintf(what, sizeof what, "attention_pairs T=%lld heads=%d dh=%lld layout %d v %d zeroed %d%s %s threads %d%s",
                         (long long)tokens, heads, (long long)dh, layout, vpat, zeroed, all_keys ? " all keys" : "",
                         paths[pi], thread_counts[t], via_reader ? " (reader)" : "");
                for (int64_t x = 0; x <= len; x++) {
                    checks++;
                    if (bits(c[x]) != bits(ref[x]) && !(isnan(c[x]) && isnan(ref[x]) && bits(ref[x]) != SENTINEL)) {
                        FAIL("%s: out[%lld] = %a, want %a", what, (long long)x, c[x], ref[x]);
                        break;
                    }
                }
            }
    nwk_force_path(NULL);
    free(row); free(off); free(u); free(v); free(p); free(ref); free(c);
}

static void test_pairs(int64_t tokens, int heads, int64_t dh, int layout, int vpat, int zeroed) {
    test_pairs_keys(tokens, heads, dh, layout, vpat, zeroed, 0);
}

/* nwk_first_nonzero: items of 2, 4 and 8 bytes at strides 1, 3 and -2; one non-zero (a tiny
   value, NaN or Inf) at each of several positions among -0 and +0; -1 when there is none. */
static void test_first_nonzero(void) {
    static uint8_t mem[8 * 3 * 700 + 64];
    const int sizes[3] = {2, 4, 8};
    const int64_t strides[3] = {1, 3, -2};
    for (int p = 0; p < npaths; p++) {
        nwk_force_path(paths[p]);
        for (int si = 0; si < 3; si++)
            for (int st = 0; st < 3; st++) {
                const int size = sizes[si];
                const int64_t stride = strides[st];
                for (int64_t n = 0; n < 700; n += 1 + n / 3) {
                    /* element i at base + i * stride items; negative strides start at the top */
                    uint8_t *base = mem + (stride < 0 ? (size_t)((n > 0 ? n - 1 : 0) * -stride * size) : 0);
                    memset(mem, 0, sizeof mem);
                    for (int64_t i = 0; i < n; i++) base[i * stride * size + size - 1] = i % 2 ? 0x80 : 0x00; /* -0, +0 */
                    checks++;
                    if (nwk_first_nonzero(n, base, stride, size) != -1)
                        FAIL("first_nonzero %s: size %d stride %lld n %lld: zeros reported", paths[p], size, (long long)stride, (long long)n);
                    for (int64_t at = 0; at < n; at += 1 + at / 2) {
                        uint8_t *e = base + at * stride * size;
                        uint8_t saved[8];
                        memcpy(saved, e, (size_t)size);
                        e[0] = (uint8_t)(at % 3 == 0 ? 1 : 0);          /* the smallest subnormal ... */
                        if (at % 3 == 1) e[size - 1] = 0x7F, e[size - 2] = 0xFF; /* ... or NaN-like / large */
                        if (at % 3 == 2) e[size - 1] = 0xFF, e[size - 2] = 0xF0; /* ... or negative NaN / -Inf */
                        checks++;
                        int64_t got = nwk_first_nonzero(n, base, stride, size);
                        if (got != at)
                            FAIL("first_nonzero %s: size %d stride %lld n %lld: non-zero at %lld found at %lld", paths[p], size,
                                 (long long)stride, (long long)n, (long long)at, (long long)got);
                        memcpy(e, saved, (size_t)size);
                    }
                }
            }
        checks++;
        float one = 1.0f;
        if (nwk_first_nonzero(1, &one, 1, 3) != -1) FAIL("first_nonzero: item size 3 accepted");
    }
    nwk_force_path(NULL);
}

/* nwk_gemm_continue: C filled with the chains over the first k0 steps, then continued over the rest,
   equals the whole chain bit for bit (B rows in place, or strided and packed). */
static void test_gemm_continue(int64_t m, int64_t n, int64_t k, int64_t k0, int b_strided) {
    float *a = malloc(sizeof(float) * (size_t)(m * k + 1)), *b = malloc(sizeof(float) * (size_t)(k * n * 2 + 1));
    float *c = malloc(sizeof(float) * (size_t)(m * n + 1)), *ref = malloc(sizeof(float) * (size_t)(m * n + 1));
    for (int64_t i = 0; i < m * k; i++) a[i] = rand_value();
    for (int64_t i = 0; i < k * n * 2; i++) b[i] = rand_value();
    const int64_t b_rs = b_strided ? 1 : n, b_cs = b_strided ? k * 2 : 1;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f, part = 0.0f;
            for (int64_t r = 0; r < k; r++) {
                acc = fmaf(a[i * k + r], b[r * b_rs + j * b_cs], acc);
                if (r + 1 == k0) part = acc;
            }
            ref[i * n + j] = acc;
            c[i * n + j] = k0 > 0 ? part : 0.0f;
        }
    for (int pi = 0; pi < npaths; pi++) {
        nwk_force_path(paths[pi]);
        float *cc = malloc(sizeof(float) * (size_t)(m * n + 1));
        memcpy(cc, c, sizeof(float) * (size_t)(m * n));
        nwk_gemm_continue(m, n, k - k0, a + k0, k, 1, b + k0 * b_rs, b_rs, b_cs, cc, n);
        for (int64_t x = 0; x < m * n; x++) {
            checks++;
            if (bits(cc[x]) != bits(ref[x])) {
                FAIL("gemm_continue %s m=%lld n=%lld k=%lld from %lld%s: C[%lld] = %a, want %a", paths[pi], (long long)m,
                     (long long)n, (long long)k, (long long)k0, b_strided ? " (B strided)" : "", (long long)x, cc[x], ref[x]);
                break;
            }
        }
        free(cc);
    }
    nwk_force_path(NULL);
    free(a); free(b); free(c); free(ref);
}

/* The pool (nwk_run_lanes): each lane of a call counts its runs; `slow` lanes spin a little. */
typedef struct {
    int lanes, slow, nested;
    atomic_int runs[64];
} pool_job;
static void pool_lane(void *ctx, int lane) {
    pool_job *j = ctx;
    atomic_fetch_add(&j->runs[lane], 1);
    if (lane == j->slow) for (volatile int i = 0; i < 20000; i++) {}
    if (j->nested && lane == 1) {
        pool_job inner = {3, 2, 0, {0}};
        nwk_run_lanes(pool_lane, &inner, 3);
        for (int l = 0; l < 3; l++) if (atomic_load(&inner.runs[l]) != 1) j->runs[63] = 99;
    }
}
typedef struct { int seed, ok; } pool_caller;
static void *pool_rounds(void *arg) {
    pool_caller *pc = arg;
    pc->ok = 1;
    for (int r = 0; r < 3000; r++) {
        const int lanes = 1 + (r * 7 + pc->seed * 3) % 9;
        pool_job j = {lanes, r % 3 == 0 ? 0 : r % 3 == 1 ? lanes - 1 : -1, r % 50 == 7, {0}};
        nwk_run_lanes(pool_lane, &j, lanes);
        for (int l = 0; l < 64; l++)
            if (atomic_load(&j.runs[l]) != (l < lanes ? 1 : 0)) pc->ok = 0;
    }
    return NULL;
}

int main(void) {
    /* Thread count default from the environment (read once, before any other call). */
    setenv("NODEWRITE_NUM_THREADS", "3", 1);
    if (nwk_threads() != 3) FAIL("NODEWRITE_NUM_THREADS=3 gives nwk_threads() = %d", nwk_threads());
    nwk_set_threads(5);
    if (nwk_threads() != 5) FAIL("nwk_set_threads(5) gives %d", nwk_threads());
    nwk_set_threads(0);
    if (nwk_threads() != 3) FAIL("nwk_set_threads(0) gives %d", nwk_threads());

    const char *auto_path = nwk_path();
    const char *cands[3] = {"avx512", "avx2", "scalar"};
    for (int i = 0; i < 3; i++)
        if (nwk_force_path(cands[i]) == 0) paths[npaths++] = cands[i];
    nwk_force_path(NULL);
    if (nwk_force_path("bogus") != -1) FAIL("nwk_force_path(bogus) accepted");
    if (strcmp(nwk_path(), auto_path) != 0) FAIL("forced path did not reset");
    printf("kernels: automatic path %s; testing", auto_path);
    for (int i = 0; i < npaths; i++) printf(" %s", paths[i]);
    printf("\n");

    static const int64_t sizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 47, 48, 49, 63, 64, 65, 97, 129};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]);

    /* 1. Threads forced on at any size, every stride pattern, sizes around every tile edge. */
    nwk_test_min_parallel = 0;
    for (int apat = 0; apat < 5; apat++)
        for (int bpat = 0; bpat < 5; bpat++)
            for (int rep = 0; rep < 24; rep++)
                test_gemm(sizes[rnd(ns)], sizes[rnd(ns)], sizes[rnd(ns)], apat, bpat, 0);
    /* every m in the small-m range and around mr, with the shapes the library uses */
    for (int64_t m = 0; m <= 10; m++)
        for (int bpat = 0; bpat < 2; bpat++) { test_gemm(m, 65, 64, 0, bpat, 1); test_gemm(m, 130, 300, 0, bpat, 1); }

    /* 2. Blocking edges: k across KC = 384 (and the small path's 128), m across MC = 192, n across NC = 3072;
       k across KFULL = 1024 (the rows path below it, the packed path above), n across a rows-path B block. */
    test_gemm(200, 100, 800, 0, 0, 1);
    test_gemm(37, 300, 1025, 0, 1, 1);
    test_gemm(37, 300, 1024, 0, 1, 1);
    test_gemm(45, 1000, 200, 0, 1, 0);
    test_gemm(200, 100, 800, 1, 1, 1);
    test_gemm(3, 200, 769, 0, 1, 1);
    test_gemm(20, 3100, 400, 0, 1, 0);
    test_gemm(20, 3100, 400, 0, 0, 0);

    /* 3. Default thread threshold, a shape above it. */
    nwk_test_min_parallel = INT64_C(1) << 21;
    test_gemm(300, 200, 64, 0, 0, 1);
    test_gemm(300, 200, 64, 0, 1, 1);
    /* Parts of outputs of NWK_STREAM_MIN_BYTES and more, aligned, final after one k block:
       non-temporal stores (full tiles) beside masked ones (the last 16 columns of n = 784). */
    aligned_c = 1;
    test_gemm(1024, 768, 64, 0, 0, 0);
    test_gemm(700, 784, 64, 0, 1, 0);
    aligned_c = 0;

    /* 4. Inf and NaN propagate as the chain does. */
    special = 1;
    nwk_test_min_parallel = 0;
    for (int rep = 0; rep < 40; rep++) test_gemm(sizes[rnd(ns)], sizes[rnd(ns)], sizes[rnd(ns)], rnd(5), rnd(5), 0);
    for (int rep = 0; rep < 20; rep++) test_scaled_rows(sizes[rnd(ns)], sizes[rnd(ns)], 1 + rnd(50), rnd(5));
    for (int rep = 0; rep < 40; rep++) test_scale_by_stream(rnd(90), rnd(40));
    special = 0;

    /* 5. Scaled rows (K = 1), all stride patterns. */
    for (int rep = 0; rep < 60; rep++) test_scaled_rows(sizes[rnd(ns)], sizes[rnd(ns)], 1 + rnd(100), rep % 5);
    test_scaled_rows(300, 777, 500, 0);
    nwk_test_min_parallel = INT64_C(1) << 21;

    /* 5a. Scaled products: the scale applied per tile after the last k block, small and packed paths. */
    scaled = 1;
    nwk_test_min_parallel = 0;
    for (int rep = 0; rep < 60; rep++) test_gemm(sizes[rnd(ns)], sizes[rnd(ns)], sizes[rnd(ns)], rnd(5), rnd(5), 0);
    test_gemm(200, 100, 800, 0, 1, 1);
    test_gemm(3, 200, 769, 0, 1, 1);
    test_gemm(37, 300, 1025, 0, 1, 1);
    aligned_c = 1;
    test_gemm(1024, 768, 64, 0, 0, 0);
    aligned_c = 0;
    special = 1;
    for (int rep = 0; rep < 20; rep++) test_gemm(sizes[rnd(ns)], sizes[rnd(ns)], sizes[rnd(ns)], rnd(5), rnd(5), 0);
    special = 0;
    nwk_test_min_parallel = INT64_C(1) << 21;
    scaled = 0;

    /* 5b. Masked scaling and attention pair products: every path and thread count, against the chains. */
    for (int64_t n = 0; n < 70; n++) test_scale_by(n);
    for (int rep = 0; rep < 200; rep++) test_scale_by_stream(rnd(90), rnd(90));
    test_scale_by_stream(12 * 1024, 0);
    test_scale_by_stream(12 * 5, 12 * 1019);
    for (int rep = 0; rep < 150; rep++) test_pair_latents(rnd(18), 1 + rnd(13), rnd(150), rnd(20));
    for (int rep = 0; rep < 10; rep++) test_pair_latents(1 + rnd(4), 30 + rnd(8), rnd(40), rnd(20));
    test_pair_latents(16, 12, 256, 0);
    test_pair_latents(2, 12, 64, 64);
    {   /* any_nonzero: one non-zero (or NaN) at every position, and -0 everywhere */
        float x[200];
        for (int p = 0; p < npaths; p++) {
            nwk_force_path(paths[p]);
            for (int n = 0; n < 200; n++) {
                for (int i = 0; i < 200; i++) x[i] = i % 3 ? -0.0f : 0.0f;
                checks++;
                if (nwk_any_nonzero(n, x)) FAIL("any_nonzero %s: zeros of length %d reported non-zero", paths[p], n);
                for (int at = 0; at < n; at += 1 + at / 7) {
                    x[at] = at % 2 ? NAN : 1e-45f;
                    checks++;
                    if (!nwk_any_nonzero(n, x)) FAIL("any_nonzero %s: n=%d, non-zero at %d missed", paths[p], n, at);
                    x[at] = 0.0f;
                }
                x[n] = 1.0f; /* past the end: not read as part of it */
                checks++;
                if (nwk_any_nonzero(n, x)) FAIL("any_nonzero %s: read past n=%d", paths[p], n);
                x[n] = 0.0f;
            }
        }
        nwk_force_path(NULL);
    }
    for (int64_t n = 0; n < 40; n++)
        for (int cols = 0; cols < 2; cols++) { test_quad_norms(1 + rnd(19), n, 1, cols); test_quad_norms(1 + rnd(11), n, 3, cols); }
    test_quad_norms(100, 64, 1, 0);
    test_quad_norms(1030, 64, 768, 1); /* the key norms' shape: V_h rows, (G V_h^T) by columns */
    special = 1;
    for (int rep = 0; rep < 20; rep++) test_quad_norms(1 + rnd(20), 1 + rnd(70), 1, rep % 2);
    special = 0;
    test_scale_by(1000);
    test_first_nonzero();
    for (int rep = 0; rep < 40; rep++) {
        const int64_t k = 1 + rnd(150);
        test_gemm_continue(1 + rnd(9), 1 + rnd(140), k, rnd((int)k + 1), rep % 2);
    }
    test_gemm_continue(1, 64, 64, 0, 0);
    {
        static const int heads_list[] = {1, 2, 3, 12, 16, 17, 33};
        for (int rep = 0; rep < 28; rep++)
            test_pairs(1 + rnd(60), heads_list[rep % 7], rnd(5) == 0 ? 0 : 1 + rnd(70), rep % 3, rnd(3), rnd(4) == 0);
        test_pairs(0, 3, 4, 0, 0, 0);
        test_pairs(230, 12, 64, 0, 0, 0); /* several key chunks (192) and query blocks (24) */
        test_pairs(230, 5, 9, 2, 1, 0);
        /* every key (a model that is not causal): unflattened rows and sums */
        for (int rep = 0; rep < 14; rep++)
            test_pairs_keys(1 + rnd(60), heads_list[rep % 7], 1 + rnd(40), rep % 2 ? 2 : 0, rnd(3), rnd(4) == 0, 1);
        test_pairs_keys(230, 12, 64, 0, 0, 0, 1);
        test_pairs_keys(230, 5, 9, 2, 2, 1, 1);
        special = 1;
        for (int rep = 0; rep < 6; rep++) test_pairs(1 + rnd(50), heads_list[rep], 1 + rnd(20), rep % 3, 0, 0);
        special = 0;
    }

    /* 6. Allocation failure: -1 and C untouched (the small-m path needs no scratch). */
    {
        const int64_t m = 40, n = 50, k = 30;
        float *a = calloc(m * k, 4), *b = calloc(k * n, 4), *c = malloc(m * n * 4);
        fill_sentinel(c, m * n);
        nwk_test_fail_alloc = 1;
        int rc = nwk_gemm(m, n, k, a, k, 1, b, n, 1, c, n, 2);
        nwk_test_fail_alloc = 0;
        if (rc != -1) FAIL("failed allocation returned %d, not -1", rc);
        for (int64_t x = 0; x < m * n; x++)
            if (bits(c[x]) != SENTINEL) { FAIL("failed allocation wrote C"); break; }
        free(a); free(b); free(c);
    }
    {
        const int64_t tokens = 30, row[30] = {0};
        int64_t off[30];
        float u[8] = {1}, v[30 * 8] = {1}, p[30 * 30 * 2] = {1}, c[30 * 30 * 2];
        for (int q = 0; q < 30; q++) off[q] = q * 60;
        fill_sentinel(c, 30 * 30 * 2);
        nwk_attention_pairs_args a = {tokens, 2, 4, u, 8, row, v, 8, 4, 1, p, 60, NULL, NULL, NWK_PAIRS, c, off, 30, 0, 0};
        nwk_test_fail_alloc = 1;
        int rc = nwk_attention_pairs(&a, 2);
        nwk_test_fail_alloc = 0;
        if (rc != -1) FAIL("attention_pairs: failed allocation returned %d, not -1", rc);
        for (int x = 0; x < 30 * 30 * 2; x++)
            if (bits(c[x]) != SENTINEL) { FAIL("attention_pairs: failed allocation wrote out"); break; }
    }

    /* 6b. Scratch memory: aligned, of the size asked for (written in full), reused or not. */
    {
        static const size_t sizes_b[] = {0, 1, 63, 64, 4095, 4096, 4097, 100000, 1u << 20, 9u << 20, 70u << 20};
        void *held[11];
        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < 11; i++) {
                held[i] = NULL;
                checks++;
                if (nwk_scratch_alloc(&held[i], sizes_b[i]) != 0 || !held[i] || ((uintptr_t)held[i] & 63)) {
                    FAIL("scratch %zu bytes: %p", sizes_b[i], held[i]);
                    held[i] = NULL;
                    continue;
                }
                memset(held[i], 0xA5, sizes_b[i]);
            }
            for (int i = round % 2 ? 10 : 0; round % 2 ? i >= 0 : i < 11; i += round % 2 ? -1 : 1) nwk_scratch_free(held[i]);
        }
        nwk_scratch_free(NULL);
        void *p = (void *)&checks;
        nwk_test_fail_alloc = 1;
        if (nwk_scratch_alloc(&p, 16) != -1 || p != (void *)&checks) FAIL("failed scratch allocation changed *p");
        nwk_test_fail_alloc = 0;
    }

    /* 7. Concurrent callers, each with 2 threads per call. */
    {
        nwk_test_min_parallel = 0;
        pthread_t th[4];
        conc_arg ca[4];
        for (int t = 0; t < 4; t++) { ca[t].seed = t; pthread_create(&th[t], NULL, concurrent_caller, &ca[t]); }
        for (int t = 0; t < 4; t++) {
            pthread_join(th[t], NULL);
            if (!ca[t].ok) FAIL("concurrent caller %d got wrong bits", t);
        }
        nwk_test_min_parallel = INT64_C(1) << 21;
    }

    /* 8. The kept helper threads across fork: the child has none and makes its own; the parent's
       still work. Also more threads than CPUs (the helpers then sleep at once instead of spinning). */
    {
        nwk_test_min_parallel = 0;
        test_gemm(64, 130, 64, 0, 1, 1);
        test_scaled_rows(300, 777, 500, 0);
        fflush(NULL);
        const pid_t pid = fork();
        if (pid == 0) {
            test_gemm(64, 130, 64, 0, 1, 1);
            test_scaled_rows(300, 777, 500, 0);
            _exit(failures ? 1 : 0);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            FAIL("the kernels failed in a child after fork (status %d)", status);
        test_gemm(64, 130, 64, 0, 1, 1);
        nwk_test_min_parallel = INT64_C(1) << 21;
    }

    /* 9. The pool's part claiming: in every call each lane runs exactly once, whichever thread
       claims it (the caller runs lanes no helper has claimed yet), with a slow lane 0 (helpers
       claim the rest), a slow last lane, lane counts changing between calls, nested calls and
       two concurrent callers. */
    {
        pthread_t th[2];
        pool_caller pc[2] = {{0, 0}, {1, 0}};
        for (int t = 0; t < 2; t++)
            if (pthread_create(&th[t], NULL, pool_rounds, &pc[t]) != 0) FAIL("pthread_create failed");
        pool_caller here = {2, 0};
        pool_rounds(&here);
        for (int t = 0; t < 2; t++) {
            pthread_join(th[t], NULL);
            if (!pc[t].ok) FAIL("pool: concurrent caller %d saw a lane run other than once", t);
        }
        if (!here.ok) FAIL("pool: a lane ran other than once per call");
    }

    (void)SENTINEL_BITS_F;
    if (failures) { fprintf(stderr, "kernels: %ld failures in %ld element checks\n", failures, checks); return 1; }
    printf("kernels: OK, %ld element checks bit for bit\n", checks);
    return 0;
}
