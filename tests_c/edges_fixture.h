/*
 * edges_fixture.h — a small model and store for the edge exports (nw_derive_node and friends)
 * in the reliability tests (boundary.c, stress.c, fuzz/fuzz_nodewrite.c): every read-side weight,
 * forward and backward activations (attention probabilities a causal softmax), an MLP
 * autoencoder and/or an attention autoencoder with encoders. Header-only test code.
 */
#ifndef NW_TEST_EDGES_FIXTURE_H
#define NW_TEST_EDGES_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nodewrite.h"

enum { EF_L = 2, EF_D = 4, EF_H = 2, EF_DH = 3, EF_F = 5, EF_T = 3, EF_NMLP = 6, EF_NATT = 7 };

/* fixture flags */
enum {
    EF_MLP_AE = 1,       /* an MLP autoencoder (mlp_post_act) as mlp_autoencoder_latent */
    EF_ATTN_AE = 2,      /* an attention autoencoder (resid_delta_attn) as attention_autoencoder_latent */
    EF_NO_LN1_GAIN = 4,  /* layer_norm_gain.pre_attn missing */
    EF_NO_QK_BWD = 8,    /* the backward attn.qk_probs missing */
    EF_BAD_POST_BWD = 16, /* the backward mlp.post_act of layer 0 has d_ff + 1 columns */
    EF_NO_ENCODER = 32,   /* the autoencoders have no encoder */
    EF_NOT_CAUSAL = 64    /* the model is not causal (nw_model_set_causal) */
};

#define EF_MAXT 96
typedef struct ef_fixture {
    nw_model *m;
    nw_store *s;
    float *mem[EF_MAXT];
    int64_t shapes[EF_MAXT][3];
    int n;
} ef_fixture;

static uint64_t ef_seed;
static float ef_val(void) {
    ef_seed = ef_seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((int)((ef_seed >> 33) % 257u) - 128) / 64.0f;
}

/* A new tensor of the fixture, random values; returns its view. */
static nw_tensor_view ef_tensor(ef_fixture *f, int ndim, int64_t a, int64_t b, int64_t c) {
    int64_t n = a * (ndim > 1 ? b : 1) * (ndim > 2 ? c : 1);
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = ef_val();
    f->mem[f->n] = p;
    int64_t *s = f->shapes[f->n++];
    s[0] = a, s[1] = b, s[2] = c;
    nw_tensor_view v = {p, NW_DTYPE_F32, ndim, s, NULL};
    return v;
}

/* Causal softmax rows of a (T, T, H) tensor in place. */
static void ef_softmax(float *p) {
    for (int q = 0; q < EF_T; q++)
        for (int h = 0; h < EF_H; h++) {
            double sum = 0;
            for (int k = 0; k < EF_T; k++) {
                float *x = &p[(q * EF_T + k) * EF_H + h];
                *x = k <= q ? (float)exp(*x) : 0.0f;
                sum += *x;
            }
            for (int k = 0; k <= q; k++) p[(q * EF_T + k) * EF_H + h] /= (float)sum;
        }
}

/* Builds the fixture; returns NW_OK or the first failing status. */
static nw_status ef_setup(ef_fixture *f, unsigned flags, uint64_t seed) {
    memset(f, 0, sizeof *f);
    ef_seed = seed * 2654435761u + 1;
    nw_model_dims dims = {EF_L, EF_D, EF_H, EF_DH, EF_F};
    nw_status st = nw_model_create(&dims, &f->m);
    if (st == NW_OK) st = nw_store_create(&f->s);
    if (st == NW_OK && (flags & EF_NOT_CAUSAL)) st = nw_model_set_causal(f->m, 0);
    for (int l = 0; l < EF_L && st == NW_OK; l++) {
        static const struct { int32_t w; int ndim; int a, b, c; } W[] = {
            {NW_WEIGHT_MLP_TO_RESIDUAL, 2, EF_F, EF_D, 0}, {NW_WEIGHT_ATTN_TO_RESIDUAL, 3, EF_H, EF_DH, EF_D},
            {NW_WEIGHT_LAYER_NORM_GAIN_PRE_ATTN, 1, EF_D, 0, 0}, {NW_WEIGHT_LAYER_NORM_BIAS_PRE_ATTN, 1, EF_D, 0, 0},
            {NW_WEIGHT_LAYER_NORM_GAIN_PRE_MLP, 1, EF_D, 0, 0}, {NW_WEIGHT_LAYER_NORM_BIAS_PRE_MLP, 1, EF_D, 0, 0},
            {NW_WEIGHT_ATTN_TO_QUERY, 3, EF_H, EF_D, EF_DH}, {NW_WEIGHT_ATTN_TO_KEY, 3, EF_H, EF_D, EF_DH},
            {NW_WEIGHT_ATTN_TO_VALUE, 3, EF_H, EF_D, EF_DH}, {NW_WEIGHT_ATTN_QUERY_BIAS, 2, EF_H, EF_DH, 0},
            {NW_WEIGHT_ATTN_KEY_BIAS, 2, EF_H, EF_DH, 0}, {NW_WEIGHT_ATTN_VALUE_BIAS, 2, EF_H, EF_DH, 0},
            {NW_WEIGHT_ATTN_OUT_BIAS, 1, EF_D, 0, 0}, {NW_WEIGHT_MLP_TO_HIDDEN, 2, EF_D, EF_F, 0},
            {NW_WEIGHT_MLP_IN_BIAS, 1, EF_F, 0, 0}, {NW_WEIGHT_MLP_OUT_BIAS, 1, EF_D, 0, 0},
        };
        for (size_t i = 0; i < sizeof W / sizeof W[0] && st == NW_OK; i++) {
            if ((flags & EF_NO_LN1_GAIN) && W[i].w == NW_WEIGHT_LAYER_NORM_GAIN_PRE_ATTN) continue;
            nw_tensor_view v = ef_tensor(f, W[i].ndim, W[i].a, W[i].b, W[i].c);
            st = nw_model_set_weight(f->m, W[i].w, l, &v, NW_BORROW);
        }
        for (int which = 0; which < 2 && st == NW_OK; which++) {
            if (!(flags & (which ? EF_ATTN_AE : EF_MLP_AE))) continue;
            int32_t type = which ? NW_NODE_ATTENTION_AUTOENCODER_LATENT : NW_NODE_MLP_AUTOENCODER_LATENT;
            int64_t nl = which ? EF_NATT : EF_NMLP, nin = which ? EF_D : EF_F;
            nw_tensor_view dec = ef_tensor(f, 2, nl, nin, 0), enc = ef_tensor(f, 2, nl, nin, 0);
            nw_tensor_view lb = ef_tensor(f, 1, nl, 0, 0), pb = ef_tensor(f, 1, nin, 0, 0);
            st = nw_model_set_autoencoder(f->m, type, l, which ? NW_AE_INPUT_RESIDUAL : NW_AE_INPUT_MLP_POST_ACT, &dec, NW_BORROW);
            if (st == NW_OK && !(flags & EF_NO_ENCODER)) st = nw_model_set_autoencoder_encoder(f->m, type, l, &enc, &lb, &pb, NW_BORROW);
            for (int pass = 0; pass < 2 && st == NW_OK; pass++) {
                nw_tensor_view z = ef_tensor(f, 2, EF_T, nl, 0);
                st = nw_store_put_pass(f->s, which ? NW_ACT_ONLINE_ATTENTION_AUTOENCODER_LATENT : NW_ACT_ONLINE_MLP_AUTOENCODER_LATENT,
                                       l, pass, &z);
            }
        }
        for (int pass = 0; pass < 2 && st == NW_OK; pass++) {
            static const struct { int32_t a; int ndim; int b, c; } A[] = {
                {NW_ACT_MLP_POST_ACT, 2, EF_F, 0}, {NW_ACT_ATTN_QK_PROBS, 3, EF_T, EF_H}, {NW_ACT_ATTN_VALUE, 3, EF_H, EF_DH},
                {NW_ACT_ATTN_V_OUT, 3, EF_H, EF_DH}, {NW_ACT_RESID_POST_ATTN, 2, EF_D, 0}, {NW_ACT_RESID_POST_MLP, 2, EF_D, 0},
                {NW_ACT_RESID_DELTA_ATTN, 2, EF_D, 0}, {NW_ACT_RESID_DELTA_MLP, 2, EF_D, 0},
            };
            for (size_t i = 0; i < sizeof A / sizeof A[0] && st == NW_OK; i++) {
                if ((flags & EF_NO_QK_BWD) && pass == 1 && A[i].a == NW_ACT_ATTN_QK_PROBS) continue;
                int bad = (flags & EF_BAD_POST_BWD) && pass == 1 && l == 0 && A[i].a == NW_ACT_MLP_POST_ACT;
                nw_tensor_view v = ef_tensor(f, A[i].ndim, EF_T, A[i].b + bad, A[i].c);
                if (A[i].a == NW_ACT_ATTN_QK_PROBS && pass == 0) ef_softmax((float *)v.data);
                st = nw_store_put_pass(f->s, A[i].a, l, pass, &v);
            }
        }
    }
    for (int pass = 0; pass < 2 && st == NW_OK; pass++) {
        nw_tensor_view v = ef_tensor(f, 2, EF_T, EF_D, 0);
        st = nw_store_put_pass(f->s, NW_ACT_RESID_POST_EMB, NW_NO_LAYER, pass, &v);
    }
    return st;
}

static void ef_teardown(ef_fixture *f) {
    nw_store_destroy(f->s);
    nw_model_destroy(f->m);
    for (int i = 0; i < f->n; i++) free(f->mem[i]);
    memset(f, 0, sizeof *f);
}

/* The tests keep a downstream subnode with its node: ef_node stores it in the node's
 * `reserved` field, and ef_derive_node moves it into nw_derive_node's subnode argument (the
 * library itself refuses reserved != 0: a row in boundary_edges.h checks it). */
static nw_node_index ef_node(int32_t type, int32_t layer, int32_t subnode, int64_t a, int64_t b, int64_t c) {
    nw_node_index n;
    memset(&n, 0, sizeof n);
    n.node_type = type, n.layer = layer, n.n_indices = type == NW_NODE_ATTENTION_HEAD ? 3 : 2, n.reserved = subnode;
    n.indices[0] = a, n.indices[1] = b, n.indices[2] = c;
    return n;
}

static nw_status ef_derive_node(const nw_model *m, const nw_store *s, int32_t dst, int32_t layer,
                                const nw_node_index *node, uint32_t flags, float *out, size_t out_len,
                                int64_t out_shape[3], int32_t *out_ndim) {
    if (!node) return nw_derive_node(m, s, dst, layer, NULL, NW_SUBNODE_NONE, flags, out, out_len, out_shape, out_ndim);
    nw_node_index n = *node;
    n.reserved = 0;
    return nw_derive_node(m, s, dst, layer, &n, node->reserved, flags, out, out_len, out_shape, out_ndim);
}

/* A valid node argument for each edge DST at layer `layer` (NULL where it takes none), and
 * the layer to ask at; the fixture flags it needs in *flags. */
static const nw_node_index *ef_valid_node(int32_t dst, nw_node_index *n, int32_t *layer, unsigned *flags) {
    *flags = EF_MLP_AE;
    *layer = 1;
    switch (dst) {
    case NW_DST_ATTN_QUERY_IN_EDGE_ATTRIBUTION: case NW_DST_ATTN_KEY_IN_EDGE_ATTRIBUTION:
    case NW_DST_ATTN_VALUE_IN_EDGE_ATTRIBUTION: case NW_DST_MLP_IN_EDGE_ATTRIBUTION:
        *n = ef_node(NW_NODE_MLP_NEURON, 0, 0, 1, 2, 0);
        return n;
    case NW_DST_ONLINE_AUTOENCODER_IN_EDGE_ATTRIBUTION:
        *n = ef_node(NW_NODE_ATTENTION_HEAD, 0, 0, 2, 1, 1);
        return n;
    case NW_DST_GRAD_OF_SINGLE_SUBNODE_ATTRIBUTION:
        *n = ef_node(NW_NODE_ATTENTION_HEAD, 1, NW_SUBNODE_K, 2, 1, 0);
        return n;
    case NW_DST_ATTN_OUT_EDGE_ATTRIBUTION: case NW_DST_MLP_OUT_EDGE_ATTRIBUTION:
    case NW_DST_ONLINE_AUTOENCODER_OUT_EDGE_ATTRIBUTION:
        *layer = 0;
        *n = ef_node(NW_NODE_MLP_AUTOENCODER_LATENT, 1, 0, 2, 3, 0);
        return n;
    case NW_DST_TOKEN_OUT_EDGE_ATTRIBUTION:
        *layer = NW_NO_LAYER;
        *n = ef_node(NW_NODE_ATTENTION_HEAD, 1, NW_SUBNODE_Q, 2, 1, 1);
        return n;
    case NW_DST_TOKEN_ATTRIBUTION:
        *layer = NW_NO_LAYER;
        return NULL;
    case NW_DST_ONLINE_ATTENTION_AUTOENCODER_ACT_TIMES_GRAD:
        *flags = EF_ATTN_AE;
        return NULL;
    case NW_DST_AUTOENCODER_LATENT_GRAD_WRT_RESIDUAL_INPUT: case NW_DST_ATTN_WRITE_TO_LATENT:
    case NW_DST_ATTN_WRITE_TO_LATENT_SUMMED_OVER_HEADS: case NW_DST_FLATTENED_ATTN_WRITE_TO_LATENT_SUMMED_OVER_HEADS:
    case NW_DST_ATTN_WRITE_TO_LATENT_PER_SEQUENCE_TOKEN:
        *flags = EF_ATTN_AE;
        *n = ef_node(NW_NODE_ATTENTION_AUTOENCODER_LATENT, 1, 0, NW_INDEX_NONE, 4, 0);
        return n;
    case NW_DST_FLATTENED_ATTN_WRITE_TO_LATENT_SUMMED_OVER_HEADS_BATCHED:
    case NW_DST_ATTN_WRITE_TO_LATENT_PER_SEQUENCE_TOKEN_BATCHED:
        *flags = EF_ATTN_AE | EF_MLP_AE;
        return NULL;
    default:
        return NULL; /* act-times-grad */
    }
}

#endif
