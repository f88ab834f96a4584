/*
 * support.h — helpers shared by the reliability tests (boundary.c, stress.c,
 * fuzz/fuzz_nodewrite.c): float16/bfloat16 conversion, truthful tensor views
 * built from a canonical row-major double array in any dtype and layout, and
 * an independent reference of the node write (plain loops in double).
 *
 * Header-only (static functions); include after nodewrite.h's dependencies.
 */
#ifndef NW_TEST_SUPPORT_H
#define NW_TEST_SUPPORT_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nodewrite.h"

#if defined(__GNUC__) || defined(__clang__)
#define NWT_UNUSED __attribute__((unused))
#else
#define NWT_UNUSED
#endif

/* ------------------------------------------------------------ dtypes */

static NWT_UNUSED uint16_t nwt_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int32_t exp = (int32_t)((u >> 23) & 0xffu);
    uint32_t man = u & 0x7fffffu;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0u)); /* inf / nan */
    int32_t e = exp - 127 + 15;
    if (e >= 0x1f) return (uint16_t)(sign | 0x7c00u); /* overflow -> inf */
    if (e <= 0) {                                      /* subnormal or zero */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t h = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)h;
}

static NWT_UNUSED float nwt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal */
            float f = (float)man * (1.0f / 16777216.0f);
            memcpy(&u, &f, 4);
            u |= sign;
        }
    } else {
        u = sign | ((exp + 127u - 15u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static NWT_UNUSED uint16_t nwt_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet nan */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static NWT_UNUSED float nwt_bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static NWT_UNUSED size_t nwt_itemsize(int32_t dtype) {
    switch (dtype) {
    case NW_DTYPE_F32: return 4;
    case NW_DTYPE_F16: return 2;
    case NW_DTYPE_BF16: return 2;
    case NW_DTYPE_F64: return 8;
    default: return 4;
    }
}

/* The value a double becomes once stored in dtype and read back. */
static NWT_UNUSED double nwt_round_to(int32_t dtype, double v) {
    switch (dtype) {
    case NW_DTYPE_F16: return nwt_f16_to_f32(nwt_f32_to_f16((float)v));
    case NW_DTYPE_BF16: return nwt_bf16_to_f32(nwt_f32_to_bf16((float)v));
    case NW_DTYPE_F64: return v;
    default: return (double)(float)v;
    }
}

static NWT_UNUSED void nwt_put_elem(unsigned char *p, int32_t dtype, double v) {
    switch (dtype) {
    case NW_DTYPE_F16: { uint16_t h = nwt_f32_to_f16((float)v); memcpy(p, &h, 2); break; }
    case NW_DTYPE_BF16: { uint16_t h = nwt_f32_to_bf16((float)v); memcpy(p, &h, 2); break; }
    case NW_DTYPE_F64: memcpy(p, &v, 8); break;
    default: { float f = (float)v; memcpy(p, &f, 4); break; }
    }
}

/* ------------------------------------------------------------- views */

enum nwt_layout {
    NWT_CONTIG_NULL = 0, /* row-major, strides == NULL */
    NWT_CONTIG,          /* row-major, explicit strides */
    NWT_TRANSPOSED,      /* column-major (axes reversed in memory) */
    NWT_NEG0,            /* axis 0 runs backwards (negative stride) */
    NWT_NEGALL,          /* every axis runs backwards */
    NWT_PADDED,          /* row-major with gaps between rows */
    NWT_BCAST0,          /* stride 0 on axis 0 (canonical must be constant along it) */
    NWT_LAYOUT_COUNT
};

/* A view that owns its memory. shape/strides are the arrays the view points at. */
typedef struct nwt_view {
    nw_tensor_view v;
    int64_t shape[4];
    int64_t strides[4];
    void *alloc;
    int64_t span;  /* elements allocated (including slack) */
} nwt_view;

/* Makes canon constant along axis 0 (copies row 0 into every row). */
static NWT_UNUSED void nwt_bcast0(double *canon, int ndim, const int64_t *shape) {
    int64_t inner = 1;
    for (int i = 1; i < ndim; i++) inner *= shape[i];
    for (int64_t r = 1; r < shape[0]; r++) memcpy(canon + r * inner, canon, (size_t)inner * sizeof(double));
}

/* Builds a truthful view of canon (row-major, shape) in dtype and layout, with
 * `slack` extra elements of zeroed memory after the last element (so that the
 * caller may later claim a slightly larger shape without lying about memory).
 * Returns 0 on success. */
static NWT_UNUSED int nwt_view_build(nwt_view *out, const double *canon, int ndim, const int64_t *shape,
                                     int32_t dtype, int layout, int64_t slack) {
    memset(out, 0, sizeof *out);
    int64_t st[4] = {0, 0, 0, 0};
    int64_t acc = 1;
    if (layout == NWT_TRANSPOSED) {
        for (int i = 0; i < ndim; i++) { st[i] = acc; acc *= shape[i] > 0 ? shape[i] : 1; }
    } else {
        for (int i = ndim - 1; i >= 0; i--) {
            st[i] = acc;
            int64_t s = shape[i] > 0 ? shape[i] : 1;
            if (layout == NWT_PADDED && i == ndim - 1) s += 3;
            acc *= s;
        }
        if (layout == NWT_BCAST0) st[0] = 0;
    }
    if (layout == NWT_NEG0) st[0] = -st[0];
    if (layout == NWT_NEGALL)
        for (int i = 0; i < ndim; i++) st[i] = -st[i];
    /* base offset so that every element is inside [0, span) */
    int64_t lo = 0, hi = 0;
    for (int i = 0; i < ndim; i++) {
        int64_t ext = (shape[i] > 0 ? shape[i] - 1 : 0) * st[i];
        if (ext < 0) lo += ext; else hi += ext;
    }
    int64_t span = hi - lo + 1 + slack;
    size_t isz = nwt_itemsize(dtype);
    unsigned char *buf = calloc((size_t)span, isz);
    if (!buf) return -1;
    int64_t base = -lo;
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) count *= shape[i];
    for (int64_t flat = 0; flat < count; flat++) {
        int64_t rem = flat, off = base;
        for (int i = ndim - 1; i >= 0; i--) {
            int64_t idx = rem % shape[i];
            rem /= shape[i];
            off += idx * st[i];
        }
        nwt_put_elem(buf + (size_t)off * isz, dtype, canon[flat]);
    }
    out->alloc = buf;
    out->span = span;
    for (int i = 0; i < ndim; i++) { out->shape[i] = shape[i]; out->strides[i] = st[i]; }
    out->v.data = buf + (size_t)base * isz;
    out->v.dtype = dtype;
    out->v.ndim = ndim;
    out->v.shape = out->shape;
    out->v.strides = layout == NWT_CONTIG_NULL ? NULL : out->strides;
    return 0;
}

static NWT_UNUSED void nwt_view_free(nwt_view *v) {
    free(v->alloc);
    v->alloc = NULL;
}

/* ------------------------------------------------------------ random */

static NWT_UNUSED uint64_t nwt_rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* k/64 with |k| <= 128: exact in float16, bfloat16, float32 and float64. */
static NWT_UNUSED double nwt_rng_val(uint64_t *s) { return (double)((int)(nwt_rng_next(s) % 257u) - 128) / 64.0; }
static NWT_UNUSED double nwt_rng_prob(uint64_t *s) { return (double)(nwt_rng_next(s) % 65u) / 64.0; }

/* ---------------------------------------------------------- reference */

/* The write vector (length d_model) of one node, in double, from row-major
 * canonical arrays. Indices must already be resolved (non-negative, in range).
 *  MLP (t, n):          post[t, n] * w_mlp[n, :]
 *  attention (q, k, h): qk[q, k, h] * sum_j v[k, h, j] * w_attn[h, j, :] (0 for k > q when causal)
 *  latent (t, l):       x = lat[t, l] * dec[l, :]; input MLP_POST_ACT: x @ w_mlp; else x */
typedef struct nwt_ref_in {
    int64_t d_model, n_heads, d_head, d_ff, T, Tk, n_lat;
    int32_t ae_input;
    const double *w_mlp, *w_attn, *dec, *post, *qk, *v, *lat;
    int causal; /* a causal model: an attention key after the query writes exactly 0 (nothing read) */
} nwt_ref_in;

static NWT_UNUSED void nwt_ref_vec(const nwt_ref_in *in, int32_t node_type, const int64_t *ix, double *vec) {
    int64_t dm = in->d_model;
    for (int64_t j = 0; j < dm; j++) vec[j] = 0.0;
    if (node_type == NW_NODE_MLP_NEURON) {
        double a = in->post[ix[0] * in->d_ff + ix[1]];
        for (int64_t j = 0; j < dm; j++) vec[j] = a * in->w_mlp[ix[1] * dm + j];
    } else if (node_type == NW_NODE_ATTENTION_HEAD) {
        int64_t q = ix[0], k = ix[1], h = ix[2];
        if (in->causal && k > q) return;
        double p = in->qk[(q * in->Tk + k) * in->n_heads + h];
        for (int64_t j = 0; j < dm; j++) {
            double s = 0.0;
            for (int64_t c = 0; c < in->d_head; c++)
                s += in->v[(k * in->n_heads + h) * in->d_head + c] * in->w_attn[(h * in->d_head + c) * dm + j];
            vec[j] = p * s;
        }
    } else {
        double a = in->lat[ix[0] * in->n_lat + ix[1]];
        if (in->ae_input == NW_AE_INPUT_MLP_POST_ACT) {
            for (int64_t j = 0; j < dm; j++) {
                double s = 0.0;
                for (int64_t f = 0; f < in->d_ff; f++) s += a * in->dec[ix[1] * in->d_ff + f] * in->w_mlp[f * dm + j];
                vec[j] = s;
            }
        } else {
            for (int64_t j = 0; j < dm; j++) vec[j] = a * in->dec[ix[1] * dm + j];
        }
    }
}

/* |got - want| within 1e-5 * max(1, scale) for finite want (the parity
 * tolerance of a float32 port); NaN want requires NaN (NaN propagates whatever
 * the order of operations); infinite want requires a non-finite got (the order
 * of operations decides between Inf and Inf - Inf = NaN). Returns 1 if acceptable. */
static NWT_UNUSED int nwt_close(float got, double want, double scale) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return !isfinite(got);
    double tol = 1e-5 * (scale > 1.0 ? scale : 1.0);
    return fabs((double)got - want) <= tol;
}

#endif /* NW_TEST_SUPPORT_H */
