/*
 * boundary_edges.h — rows of the boundary table (boundary.c) for the edge exports:
 * nw_store_put_pass, nw_store_remove_pass, nw_model_set_autoencoder_encoder, nw_derive_node, and the
 * read-back exports pickling uses (nw_model_weight_read, nw_model_autoencoder_read).
 * Included by boundary.c after its row machinery; each row is a scenario on the edges fixture
 * (tests_c/edges_fixture.h): one call with one fault (or none), its status checked by the
 * table, outputs untouched on failure, and on success every output element written, finite,
 * nothing past it, and the shape nw_dst_info_get's rule gives.
 */
#include "edges_fixture.h"

enum { EK_PUT, EK_REMOVE, EK_ENCODER, EK_DERIVE, EK_READ_W, EK_READ_AE };

static nw_status edge_put(ctx *c, ef_fixture *f) {
    const row *r = c->r;
    int64_t shape[3] = {EF_T, EF_D, 0};
    int32_t ndim = 2;
    nw_activation_info ai;
    memset(&ai, 0, sizeof ai);
    ai.size = sizeof ai;
    if (r->e1 >= 0 && r->e1 <= NW_ACT_ATTN_V_OUT && nw_activation_info_get(r->e1, &ai) == NW_OK) {
        ndim = ai.ndim;
        for (int i = 0; i < ndim; i++)
            shape[i] = ai.dims[i] == NW_DIM_TOKENS ? EF_T : ai.dims[i] == NW_DIM_HEADS ? EF_H : ai.dims[i] == NW_DIM_D_HEAD ? EF_DH
                     : ai.dims[i] == NW_DIM_D_FF ? EF_F : ai.dims[i] == NW_DIM_LATENTS ? EF_NMLP : EF_D;
    }
    float data[EF_T * EF_F * EF_H * EF_DH];
    for (size_t i = 0; i < sizeof data / sizeof *data; i++) data[i] = 0.25f;
    nw_tensor_view v = {data, NW_DTYPE_F32, ndim, shape, NULL};
    if (r->vm == VM_NDIM) v.ndim = ndim + 1;
    if (r->vm == VM_DTYPE) v.dtype = 99;
    nw_status st = nw_store_put_pass((r->nulls & NU_STORE) ? NULL : f->s, r->e1, r->e2, r->e3, (r->nulls & NU_VIEW) ? NULL : &v);
    if (st == NW_OK) {
        nw_store_remove_pass(f->s, r->e1, r->e2, r->e3);
    }
    return st;
}

static nw_status edge_encoder(ctx *c, ef_fixture *f) {
    const row *r = c->r;
    int64_t nl = r->e1 == NW_NODE_ATTENTION_AUTOENCODER_LATENT ? EF_NATT : EF_NMLP;
    int64_t nin = r->e1 == NW_NODE_ATTENTION_AUTOENCODER_LATENT ? EF_D : EF_F;
    int64_t es[2] = {nl + (r->vm == VM_SHAPE), nin}, ls[1] = {nl}, ps[1] = {nin + (r->vi == 1)};
    float data[64];
    for (int i = 0; i < 64; i++) data[i] = 0.5f;
    nw_tensor_view e = {data, r->vm == VM_DTYPE ? 99 : NW_DTYPE_F32, r->vm == VM_NDIM ? 3 : 2, es, NULL};
    nw_tensor_view lb = {data, NW_DTYPE_F32, 1, ls, NULL}, pb = {data, NW_DTYPE_F32, 1, ps, NULL};
    return nw_model_set_autoencoder_encoder((r->nulls & NU_MODEL) ? NULL : f->m, r->e1, r->e2,
                                            (r->nulls & NU_VIEW) ? NULL : &e, (r->nulls & NU_SHAPE) ? NULL : &lb, &pb, r->e3);
}

static nw_status edge_derive(ctx *c, ef_fixture *f, const nw_node_index *node, int32_t layer) {
    const row *r = c->r;
    int64_t shape[3];
    int32_t ndim;
    nw_status st = ef_derive_node(f->m, f->s, r->e1, layer, node, r->xflags & ~NW_OUT_ZEROED, NULL, 0, shape, &ndim);
    size_t needed = 0;
    if (st == NW_ERR_BUFFER_TOO_SMALL) {
        needed = 1;
        for (int i = 0; i < ndim; i++) needed *= (size_t)shape[i];
    }
    size_t len = r->cap_mode == CAP_ABS ? (size_t)r->cap : needed + (size_t)r->cap;
    size_t alloc = (len > needed + 1024 ? needed : (needed > len ? needed : len)) + 16;
    float *out = malloc(alloc * sizeof(float));
    memset(out, SENT, alloc * sizeof(float));
    if ((r->xflags & NW_OUT_ZEROED) && len) memset(out, 0, (len < alloc ? len : needed) * sizeof(float));
    int64_t oshape[3];
    int32_t ondim;
    memset(oshape, SENT, sizeof oshape);
    memset(&ondim, SENT, sizeof ondim);
    float *before = malloc(alloc * sizeof(float));
    memcpy(before, out, alloc * sizeof(float));
    st = ef_derive_node((r->nulls & NU_MODEL) ? NULL : f->m, (r->nulls & NU_STORE) ? NULL : f->s, r->e1, layer, node,
                        r->xflags, (r->nulls & NU_OUT) ? NULL : out, len, oshape, &ondim);
    if (st == NW_OK) {
        CHECK(c, (size_t)ondim <= 3 && ondim >= 1, "out_ndim %d", ondim);
        size_t n = 1;
        for (int i = 0; i < ondim && i < 3; i++) n *= (size_t)oshape[i];
        CHECK(c, n == needed, "out_shape gives %zu elements, the probe %zu", n, needed);
        nw_dst_info di;
        memset(&di, 0, sizeof di);
        di.size = sizeof di;
        CHECK(c, nw_dst_info_get(r->e1, &di) == NW_OK && di.ndim == ondim, "nw_dst_info_get's ndim differs");
        for (size_t i = 0; i < n; i++) {
            uint32_t bits;
            memcpy(&bits, &out[i], 4);
            if (bits == 0xA5A5A5A5u || !isfinite(out[i])) { failf(c, "out[%zu] not written or not finite", i); break; }
        }
        CHECK(c, untouched(out + n, 16 * sizeof(float)), "nw_derive_node wrote past the output");
    } else if (st == NW_ERR_BUFFER_TOO_SMALL) {
        CHECK(c, !memcmp(out, before, alloc * sizeof(float)), "nw_derive_node wrote to out on BUFFER_TOO_SMALL");
    } else {
        CHECK(c, !memcmp(out, before, alloc * sizeof(float)), "nw_derive_node wrote to out on failure");
        CHECK(c, untouched(oshape, sizeof oshape) && untouched(&ondim, sizeof ondim), "nw_derive_node wrote out_shape on failure");
    }
    free(before);
    free(out);
    return st;
}

/* nw_model_weight_read (EK_READ_W: weight r->e1) / nw_model_autoencoder_read (EK_READ_AE: node type
 * r->e1) at layer r->e2. The fixture borrows float32 tensors: on success the read is that tensor's
 * memory (f->mem[r->vi]) bit for bit, every element written and nothing past it; r->k = 1 first
 * replaces the slot with a float16 copy (NW_COPY) of 0.5 * i, read back as those float32 values.
 * On failure out is untouched. */
static nw_status edge_read(ctx *c, ef_fixture *f) {
    const row *r = c->r;
    int64_t count = 0;
    uint16_t half[EF_NMLP * EF_F];
    nw_tensor_view hv = {half, NW_DTYPE_F16, 2, NULL, NULL};
    int64_t hshape[2] = {0, 0};
    nw_weight_state w = {.size = sizeof w};
    if (r->e0 == EK_READ_W) {
        if (nw_model_weight_get(f->m, r->e1, r->e2, &w) == NW_OK && w.present) {
            count = 1;
            for (int i = 0; i < w.ndim; i++) count *= w.shape[i];
            hv.ndim = w.ndim;
            hv.shape = w.shape;
        }
    } else {
        nw_autoencoder_state a = {.size = sizeof a};
        if (nw_model_autoencoder_get(f->m, r->e1, r->e2, &a) == NW_OK && a.present) {
            count = a.n_latents * a.n_inputs;
            hshape[0] = a.n_latents, hshape[1] = a.n_inputs;
            hv.shape = hshape;
        }
    }
    if (r->k == 1 && count > 0) { /* a float16 copy of 0.5 * i (exact in float16 for i < 2048) */
        for (int64_t i = 0; i < count; i++) {
            float x = 0.5f * (float)i;
            uint32_t b;
            memcpy(&b, &x, 4);
            half[i] = x == 0 ? 0 : (uint16_t)(((b >> 16) & 0x8000) | ((((b >> 23) & 0xff) - 112) << 10) | ((b >> 13) & 0x3ff));
        }
        nw_status st = r->e0 == EK_READ_W ? nw_model_set_weight(f->m, r->e1, r->e2, &hv, NW_COPY)
                                          : (nw_model_remove_autoencoder(f->m, r->e1, r->e2),
                                             nw_model_set_autoencoder(f->m, r->e1, r->e2, NW_AE_INPUT_MLP_POST_ACT, &hv, NW_COPY));
        if (st != NW_OK) { failf(c, "setting the float16 copy: %s", nw_last_error_message()); return st; }
    }
    size_t len = r->cap_mode == CAP_ABS ? (size_t)r->cap : (size_t)count + (size_t)r->cap;
    size_t alloc = (len < (size_t)count ? (size_t)count : (len > (size_t)count + 64 ? (size_t)count : len)) + 16;
    float *out = malloc(alloc * sizeof(float));
    memset(out, SENT, alloc * sizeof(float));
    const nw_model *m = (r->nulls & NU_MODEL) ? NULL : f->m;
    float *o = (r->nulls & NU_OUT) ? NULL : out;
    nw_status st = r->e0 == EK_READ_W ? nw_model_weight_read(m, r->e1, r->e2, o, len) : nw_model_autoencoder_read(m, r->e1, r->e2, o, len);
    if (st == NW_OK) {
        CHECK(c, count > 0, "a read of an empty slot succeeded");
        if (r->k == 1) {
            for (int64_t i = 0; i < count; i++)
                if (out[i] != 0.5f * (float)i) { failf(c, "out[%lld] = %g, the float16 copy holds %g", (long long)i, out[i], 0.5 * (double)i); break; }
        } else {
            CHECK(c, !memcmp(out, f->mem[r->vi], (size_t)count * sizeof(float)), "the read is not the borrowed tensor's bits");
        }
        CHECK(c, untouched(out + count, 16 * sizeof(float)), "the read wrote past the slot's elements");
    } else {
        CHECK(c, untouched(out, alloc * sizeof(float)), "the read wrote to out on failure");
    }
    free(out);
    return st;
}

/* The scenario of every edge row: r->e0 the export, r->xfx the fixture flags (EF_*). */
static int sc_edge(void *p) {
    ctx *c = p;
    const row *r = c->r;
    ef_fixture f;
    nw_status st = ef_setup(&f, r->xfx, (uint64_t)(r - ROWS));
    if (st != NW_OK) { failf(c, "edges fixture: %s", nw_last_error_message()); ef_teardown(&f); return st; }
    switch (r->e0) {
    case EK_PUT: st = edge_put(c, &f); break;
    case EK_REMOVE: st = nw_store_remove_pass((r->nulls & NU_STORE) ? NULL : f.s, r->e1, r->e2, r->e3); break;
    case EK_ENCODER: st = edge_encoder(c, &f); break;
    case EK_READ_W: case EK_READ_AE: st = edge_read(c, &f); break;
    default: {
        nw_node_index n = r->node;
        int32_t layer = r->e2;
        unsigned flags;
        const nw_node_index *np = r->k == 2 ? ef_valid_node(r->e1, &n, &layer, &flags) : r->k == 1 ? &n : NULL;
        st = edge_derive(c, &f, np, layer);
    }
    }
    ef_teardown(&f);
    return st;
}

static void gen_edge_rows(void) {
#define EROW(w, kind, a, l, x, fx_, ex, ...) \
    add((row){.what = (w), .fn = F_SCENARIO, .scenario = sc_edge, .e0 = (kind), .e1 = (a), .e2 = (l), .e3 = (x), \
              .xfx = (fx_), .expect = (ex), __VA_ARGS__})
    /* nw_store_put_pass / nw_store_remove_pass */
    EROW("put_pass resid.post_emb forward, NW_NO_LAYER", EK_PUT, NW_ACT_RESID_POST_EMB, NW_NO_LAYER, NW_PASS_FORWARD, 0, OK);
    EROW("put_pass resid.post_emb backward, NW_NO_LAYER", EK_PUT, NW_ACT_RESID_POST_EMB, NW_NO_LAYER, NW_PASS_BACKWARD, 0, OK);
    EROW("put_pass resid.post_emb at layer 0 (it has none)", EK_PUT, NW_ACT_RESID_POST_EMB, 0, NW_PASS_FORWARD, 0, EARG);
    EROW("put_pass resid.post_mlp at NW_NO_LAYER", EK_PUT, NW_ACT_RESID_POST_MLP, NW_NO_LAYER, NW_PASS_FORWARD, 0, EARG);
    EROW("put_pass attn.v_out backward", EK_PUT, NW_ACT_ATTN_V_OUT, 1, NW_PASS_BACKWARD, 0, OK);
    EROW("put_pass attn.v_out with ndim 4", EK_PUT, NW_ACT_ATTN_V_OUT, 1, NW_PASS_BACKWARD, 0, ESHP, .vm = VM_NDIM);
    EROW("put_pass dtype 99", EK_PUT, NW_ACT_RESID_POST_ATTN, 0, NW_PASS_FORWARD, 0, EDT, .vm = VM_DTYPE);
    EROW("put_pass pass 2 (one past)", EK_PUT, NW_ACT_RESID_POST_ATTN, 0, 2, 0, EARG);
    EROW("put_pass pass -1", EK_PUT, NW_ACT_RESID_POST_ATTN, 0, -1, 0, EARG);
    EROW("put_pass pass INT32_MAX", EK_PUT, NW_ACT_RESID_POST_ATTN, 0, I32MAX, 0, EARG);
    EROW("put_pass activation 12 (one past)", EK_PUT, NW_ACT_ATTN_V_OUT + 1, 0, NW_PASS_FORWARD, 0, EARG);
    EROW("put_pass activation INT32_MIN", EK_PUT, I32MIN, 0, NW_PASS_FORWARD, 0, EARG);
    EROW("put_pass store NULL", EK_PUT, NW_ACT_RESID_POST_ATTN, 0, NW_PASS_FORWARD, 0, EARG, .nulls = NU_STORE);
    EROW("put_pass t NULL", EK_PUT, NW_ACT_RESID_POST_ATTN, 0, NW_PASS_BACKWARD, 0, EARG, .nulls = NU_VIEW);
    EROW("put_pass layer -2", EK_PUT, NW_ACT_RESID_POST_ATTN, -2, NW_PASS_FORWARD, 0, EARG);
    EROW("remove_pass backward mlp.post_act", EK_REMOVE, NW_ACT_MLP_POST_ACT, 0, NW_PASS_BACKWARD, 0, OK);
    EROW("remove_pass absent (not an error)", EK_REMOVE, NW_ACT_RESID_POST_ATTN, 7, NW_PASS_BACKWARD, 0, OK);
    EROW("remove_pass pass 2", EK_REMOVE, NW_ACT_MLP_POST_ACT, 0, 2, 0, EARG);
    EROW("remove_pass resid.post_emb at layer 0", EK_REMOVE, NW_ACT_RESID_POST_EMB, 0, NW_PASS_FORWARD, 0, EARG);
    EROW("remove_pass store NULL", EK_REMOVE, NW_ACT_MLP_POST_ACT, 0, NW_PASS_FORWARD, 0, EARG, .nulls = NU_STORE);
    EROW("remove_pass activation -1", EK_REMOVE, -1, 0, NW_PASS_FORWARD, 0, EARG);
    /* nw_model_set_autoencoder_encoder */
    EROW("set_encoder mlp autoencoder, layer 1", EK_ENCODER, NW_NODE_MLP_AUTOENCODER_LATENT, 1, NW_COPY, EF_MLP_AE, OK);
    EROW("set_encoder borrowed", EK_ENCODER, NW_NODE_MLP_AUTOENCODER_LATENT, 0, NW_BORROW, EF_MLP_AE, OK);
    EROW("set_encoder latent_bias NULL", EK_ENCODER, NW_NODE_MLP_AUTOENCODER_LATENT, 0, NW_COPY, EF_MLP_AE, EARG, .nulls = NU_SHAPE);
    EROW("set_encoder with no decoder in the slot", EK_ENCODER, NW_NODE_MLP_AUTOENCODER_LATENT, 0, NW_COPY, 0, EMIS);
    EROW("set_encoder attention slot empty", EK_ENCODER, NW_NODE_ATTENTION_AUTOENCODER_LATENT, 0, NW_COPY, EF_MLP_AE, EMIS);
    EROW("set_encoder n_latents + 1", EK_ENCODER, NW_NODE_MLP_AUTOENCODER_LATENT, 0, NW_COPY, EF_MLP_AE, ESHP, .vm = VM_SHAPE);
    EROW("set_encoder pre_bias n_inputs + 1", EK_ENCODER, NW_NODE_MLP_AUTOENCODER_LATENT, 0, NW_COPY, EF_MLP_AE, ESHP, .vi = 1);
    EROW("set_encoder ndim 3", EK_ENCODER, NW_NODE_MLP_AUTOENCODER_LATENT, 0, NW_COPY, EF_MLP_AE, ESHP, .vm = VM_NDIM);
    EROW("set_encoder dtype 99", EK_ENCODER, NW_NODE_MLP_AUTOENCODER_LATENT, 0, NW_COPY, EF_MLP_AE, EDT, .vm = VM_DTYPE);
    EROW("set_encoder node type mlp_neuron", EK_ENCODER, NW_NODE_MLP_NEURON, 0, NW_COPY, EF_MLP_AE, EARG);
    EROW("set_encoder node type 5 (one past)", EK_ENCODER, 5, 0, NW_COPY, EF_MLP_AE, EARG);
    EROW("set_encoder layer n_layers", EK_ENCODER, NW_NODE_MLP_AUTOENCODER_LATENT, EF_L, NW_COPY, EF_MLP_AE, EIDX);
    EROW("set_encoder layer -1", EK_ENCODER, NW_NODE_MLP_AUTOENCODER_LATENT, -1, NW_COPY, EF_MLP_AE, EIDX);
    EROW("set_encoder ownership 7", EK_ENCODER, NW_NODE_MLP_AUTOENCODER_LATENT, 0, 7, EF_MLP_AE, EARG);
    EROW("set_encoder model NULL", EK_ENCODER, NW_NODE_MLP_AUTOENCODER_LATENT, 0, NW_COPY, EF_MLP_AE, EARG, .nulls = NU_MODEL);
    EROW("set_encoder encoder NULL", EK_ENCODER, NW_NODE_MLP_AUTOENCODER_LATENT, 0, NW_COPY, EF_MLP_AE, EARG, .nulls = NU_VIEW);
    /* nw_derive_node: every edge DST with a valid node, plain, zeroed, detached, one too small */
    static char names[4][25][96];
    for (int32_t d = NW_DST_ATTN_QUERY_IN_EDGE_ATTRIBUTION; d <= NW_DST_ATTN_WRITE_TO_LATENT_PER_SEQUENCE_TOKEN_BATCHED; d++) {
        nw_node_index n;
        int32_t layer;
        unsigned flags;
        ef_valid_node(d, &n, &layer, &flags);
        int i = d - NW_DST_ATTN_QUERY_IN_EDGE_ATTRIBUTION;
        const char *dn = nw_dst_name(d);
        snprintf(names[0][i], 96, "derive_node %s", dn);
        snprintf(names[1][i], 96, "derive_node %s, NW_OUT_ZEROED", dn);
        snprintf(names[2][i], 96, "derive_node %s, detached scale", dn);
        snprintf(names[3][i], 96, "derive_node %s, out one too small", dn);
        EROW(names[0][i], EK_DERIVE, d, 0, 0, flags, OK, .k = 2);
        EROW(names[1][i], EK_DERIVE, d, 0, 0, flags, OK, .k = 2, .xflags = NW_OUT_ZEROED);
        EROW(names[2][i], EK_DERIVE, d, 0, 0, flags, OK, .k = 2, .xflags = NW_DETACH_LAYER_NORM_SCALE);
        EROW(names[3][i], EK_DERIVE, d, 0, 0, flags, EBUF, .k = 2, .cap = -1);
    }
    nw_node_index mlp0 = ef_node(NW_NODE_MLP_NEURON, 0, 0, 1, 2, 0);
    nw_node_index headq = ef_node(NW_NODE_ATTENTION_HEAD, 1, NW_SUBNODE_Q, 2, 1, 1);
    nw_node_index head0 = ef_node(NW_NODE_ATTENTION_HEAD, 1, NW_SUBNODE_NONE, 2, 1, 1);
    nw_node_index trace = ef_node(NW_NODE_ATTENTION_AUTOENCODER_LATENT, 1, 0, NW_INDEX_NONE, 4, 0);
    int32_t qin = NW_DST_ATTN_QUERY_IN_EDGE_ATTRIBUTION, grad = NW_DST_GRAD_OF_SINGLE_SUBNODE_ATTRIBUTION;
    EROW("derive_node a write-family DST given a node", EK_DERIVE, NW_DST_MLP_WRITE_NORM, 1, 0, EF_MLP_AE, EARG, .k = 1, .node = mlp0);
    EROW("derive_node a write-family norm, no node (nw_derive's)", EK_DERIVE, NW_DST_MLP_WRITE_NORM, 1, 0, EF_MLP_AE, OK, .k = 0);
    EROW("derive_node a write-family norm, detached scale", EK_DERIVE, NW_DST_MLP_WRITE_NORM, 1, 0, EF_MLP_AE, EARG, .k = 0,
         .xflags = NW_DETACH_LAYER_NORM_SCALE);
    EROW("derive_node a write-family projection (no direction)", EK_DERIVE, NW_DST_MLP_WRITE_TO_FINAL_RESIDUAL_GRAD, 1, 0, EF_MLP_AE,
         EARG, .k = 0);
    EROW("derive_node dst 43 (one past)", EK_DERIVE, 43, 1, 0, EF_MLP_AE, EARG, .k = 1, .node = mlp0);
    EROW("derive_node dst INT32_MIN", EK_DERIVE, I32MIN, 1, 0, EF_MLP_AE, EARG, .k = 1, .node = mlp0);
    EROW("derive_node layer -1 (in-edge)", EK_DERIVE, qin, -1, 0, EF_MLP_AE, EIDX, .k = 1, .node = mlp0);
    EROW("derive_node layer n_layers", EK_DERIVE, qin, EF_L, 0, EF_MLP_AE, EIDX, .k = 1, .node = mlp0);
    EROW("derive_node layer 0 for token_out_edge (no layer)", EK_DERIVE, NW_DST_TOKEN_OUT_EDGE_ATTRIBUTION, 0, 0, EF_MLP_AE, EIDX,
         .k = 1, .node = headq);
    EROW("derive_node in-edge, node NULL", EK_DERIVE, qin, 1, 0, EF_MLP_AE, EARG, .k = 0);
    EROW("derive_node act-times-grad given a node", EK_DERIVE, NW_DST_MLP_ACT_TIMES_GRAD, 1, 0, EF_MLP_AE, EARG, .k = 1, .node = mlp0);
    EROW("derive_node subnode: head without Q/K/V", EK_DERIVE, grad, 1, 0, EF_MLP_AE, EARG, .k = 1, .node = head0);
    EROW("derive_node upstream head with subnode Q", EK_DERIVE, NW_DST_MLP_IN_EDGE_ATTRIBUTION, 1, 0, EF_MLP_AE, EARG, .k = 1, .node = headq);
    EROW("derive_node subnode 4 (one past)", EK_DERIVE, grad, 1, 0, EF_MLP_AE, EARG, .k = 1,
         .node = ef_node(NW_NODE_ATTENTION_HEAD, 1, 4, 2, 1, 1));
    EROW("derive_node mlp neuron with subnode K", EK_DERIVE, grad, 1, 0, EF_MLP_AE, EARG, .k = 1,
         .node = ef_node(NW_NODE_MLP_NEURON, 1, NW_SUBNODE_K, 1, 2, 0));
    EROW("derive_node gradient at another layer than the node's", EK_DERIVE, grad, 0, 0, EF_MLP_AE, EARG, .k = 1, .node = headq);
    EROW("derive_node trace latent with a token", EK_DERIVE, NW_DST_ATTN_WRITE_TO_LATENT, 1, 0, EF_ATTN_AE, EARG, .k = 1,
         .node = ef_node(NW_NODE_ATTENTION_AUTOENCODER_LATENT, 1, 0, 0, 4, 0));
    EROW("derive_node trace latent of an mlp autoencoder", EK_DERIVE, NW_DST_ATTN_WRITE_TO_LATENT, 1, 0, EF_ATTN_AE | EF_MLP_AE,
         EARG, .k = 1, .node = ef_node(NW_NODE_MLP_AUTOENCODER_LATENT, 1, 0, NW_INDEX_NONE, 4, 0));
    EROW("derive_node trace latent index n_latents", EK_DERIVE, NW_DST_ATTN_WRITE_TO_LATENT, 1, 0, EF_ATTN_AE, EIDX, .k = 1,
         .node = ef_node(NW_NODE_ATTENTION_AUTOENCODER_LATENT, 1, 0, NW_INDEX_NONE, EF_NATT, 0));
    EROW("derive_node trace latent at another layer", EK_DERIVE, NW_DST_ATTN_WRITE_TO_LATENT, 0, 0, EF_ATTN_AE, EARG, .k = 1, .node = trace);
    EROW("derive_node upstream token T", EK_DERIVE, qin, 1, 0, EF_MLP_AE, EIDX, .k = 1, .node = ef_node(NW_NODE_MLP_NEURON, 0, 0, EF_T, 2, 0));
    EROW("derive_node upstream token -T-1", EK_DERIVE, qin, 1, 0, EF_MLP_AE, EIDX, .k = 1,
         .node = ef_node(NW_NODE_MLP_NEURON, 0, 0, -EF_T - 1, 2, 0));
    EROW("derive_node upstream token -1", EK_DERIVE, qin, 1, 0, EF_MLP_AE, OK, .k = 1, .node = ef_node(NW_NODE_MLP_NEURON, 0, 0, -1, 2, 0));
    EROW("derive_node upstream token NW_INDEX_NONE", EK_DERIVE, qin, 1, 0, EF_MLP_AE, EARG, .k = 1,
         .node = ef_node(NW_NODE_MLP_NEURON, 0, 0, NW_INDEX_NONE, 2, 0));
    EROW("derive_node neuron INT64_MAX", EK_DERIVE, qin, 1, 0, EF_MLP_AE, EIDX, .k = 1, .node = ef_node(NW_NODE_MLP_NEURON, 0, 0, 0, I64MAX, 0));
    EROW("derive_node node layer n_layers", EK_DERIVE, qin, 1, 0, EF_MLP_AE, EIDX, .k = 1, .node = ef_node(NW_NODE_MLP_NEURON, EF_L, 0, 0, 1, 0));
    EROW("derive_node node.n_indices 3 for a neuron", EK_DERIVE, qin, 1, 0, EF_MLP_AE, EARG, .k = 1,
         .node = NODE(NW_NODE_MLP_NEURON, 0, 3, 0, 0, 1, 0, 0));
    EROW("derive_node flags 4 (unknown)", EK_DERIVE, qin, 1, 0, EF_MLP_AE, EARG, .k = 1, .node = mlp0, .xflags = 4);
    EROW("derive_node missing layer_norm_gain.pre_attn", EK_DERIVE, qin, 1, 0, EF_MLP_AE | EF_NO_LN1_GAIN, EMIS, .k = 1, .node = mlp0);
    EROW("derive_node missing the backward attn.qk_probs", EK_DERIVE, qin, 1, 0, EF_MLP_AE | EF_NO_QK_BWD, EMIS, .k = 1, .node = mlp0);
    EROW("derive_node gradient of the wrong shape", EK_DERIVE, grad, 0, 0, EF_MLP_AE | EF_BAD_POST_BWD, ESHP, .k = 1,
         .node = ef_node(NW_NODE_MLP_NEURON, 0, 0, 1, 2, 0));
    EROW("derive_node in-edge, two autoencoders (TDB: AssertionError)", EK_DERIVE, qin, 1, 0, EF_MLP_AE | EF_ATTN_AE, EUNS, .k = 1, .node = mlp0);
    EROW("derive_node online_autoencoder_in_edge, none loaded", EK_DERIVE, NW_DST_ONLINE_AUTOENCODER_IN_EDGE_ATTRIBUTION, 1, 0, 0, EMIS,
         .k = 1, .node = mlp0);
    EROW("derive_node encoder not set", EK_DERIVE, NW_DST_AUTOENCODER_LATENT_GRAD_WRT_RESIDUAL_INPUT, 1, 0, EF_ATTN_AE | EF_NO_ENCODER,
         EMIS, .k = 1, .node = trace);
    EROW("derive_node model NULL", EK_DERIVE, qin, 1, 0, EF_MLP_AE, EARG, .k = 1, .node = mlp0, .nulls = NU_MODEL);
    EROW("derive_node on a model that is not causal", EK_DERIVE, qin, 1, 0, EF_MLP_AE | EF_NOT_CAUSAL, EUNS, .k = 1, .node = mlp0);
    EROW("derive_node store NULL", EK_DERIVE, qin, 1, 0, EF_MLP_AE, EARG, .k = 1, .node = mlp0, .nulls = NU_STORE);
    EROW("derive_node out NULL, out_len 0 (shape only)", EK_DERIVE, qin, 1, 0, EF_MLP_AE, EBUF, .k = 1, .node = mlp0,
         .nulls = NU_OUT, .cap_mode = CAP_ABS, .cap = 0);
    EROW("derive_node out NULL, out_len > 0", EK_DERIVE, qin, 1, 0, EF_MLP_AE, EARG, .k = 1, .node = mlp0, .nulls = NU_OUT);
    EROW("derive_node out_len SIZE_MAX", EK_DERIVE, NW_DST_MLP_IN_EDGE_ATTRIBUTION, 1, 0, EF_MLP_AE, OK, .k = 1, .node = mlp0,
         .cap_mode = CAP_ABS, .cap = -1);
    /* nw_model_weight_read / nw_model_autoencoder_read. The fixture's tensors in f->mem: flags 0, 32 a layer
       (the 16 weights in the order ef_setup sets them, then 16 activations); EF_MLP_AE, 38 a layer (the
       decoder at 16). .vi: the tensor the read must equal. */
    EROW("weight_read mlp.to_residual layer 0", EK_READ_W, NW_WEIGHT_MLP_TO_RESIDUAL, 0, 0, 0, OK, .vi = 0);
    EROW("weight_read attn.to_residual layer 1", EK_READ_W, NW_WEIGHT_ATTN_TO_RESIDUAL, 1, 0, 0, OK, .vi = 32 + 1);
    EROW("weight_read layer_norm_gain.pre_attn layer 1", EK_READ_W, NW_WEIGHT_LAYER_NORM_GAIN_PRE_ATTN, 1, 0, 0, OK, .vi = 32 + 2);
    EROW("weight_read attn.to_query layer 0", EK_READ_W, NW_WEIGHT_ATTN_TO_QUERY, 0, 0, 0, OK, .vi = 6);
    EROW("weight_read mlp.in_bias layer 1", EK_READ_W, NW_WEIGHT_MLP_IN_BIAS, 1, 0, 0, OK, .vi = 32 + 14);
    EROW("weight_read out_len SIZE_MAX", EK_READ_W, NW_WEIGHT_MLP_TO_HIDDEN, 0, 0, 0, OK, .vi = 13, .cap_mode = CAP_ABS, .cap = -1);
    EROW("weight_read a float16 copy (NW_COPY), as float32", EK_READ_W, NW_WEIGHT_ATTN_QUERY_BIAS, 1, 0, 0, OK, .k = 1);
    EROW("weight_read out one too small", EK_READ_W, NW_WEIGHT_MLP_TO_RESIDUAL, 0, 0, 0, EBUF, .cap = -1);
    EROW("weight_read out_len 0", EK_READ_W, NW_WEIGHT_MLP_TO_RESIDUAL, 0, 0, 0, EBUF, .cap_mode = CAP_ABS, .cap = 0);
    EROW("weight_read out NULL", EK_READ_W, NW_WEIGHT_MLP_TO_RESIDUAL, 0, 0, 0, EARG, .nulls = NU_OUT);
    EROW("weight_read model NULL", EK_READ_W, NW_WEIGHT_MLP_TO_RESIDUAL, 0, 0, 0, EARG, .nulls = NU_MODEL);
    EROW("weight_read weight -1", EK_READ_W, -1, 0, 0, 0, EARG);
    EROW("weight_read weight INT32_MAX", EK_READ_W, I32MAX, 0, 0, 0, EARG);
    EROW("weight_read layer n_layers", EK_READ_W, NW_WEIGHT_MLP_TO_RESIDUAL, EF_L, 0, 0, EIDX);
    EROW("weight_read layer -2", EK_READ_W, NW_WEIGHT_MLP_TO_RESIDUAL, -2, 0, 0, EIDX);
    EROW("weight_read NW_NO_LAYER for a weight of a layer", EK_READ_W, NW_WEIGHT_MLP_TO_RESIDUAL, NW_NO_LAYER, 0, 0, EIDX);
    EROW("weight_read unembedding (empty slot)", EK_READ_W, NW_WEIGHT_UNEMBEDDING, NW_NO_LAYER, 0, 0, EMIS);
    EROW("weight_read unembedding at layer 0 (it has none)", EK_READ_W, NW_WEIGHT_UNEMBEDDING, 0, 0, 0, EIDX);
    EROW("weight_read missing layer_norm_gain.pre_attn", EK_READ_W, NW_WEIGHT_LAYER_NORM_GAIN_PRE_ATTN, 0, 0, EF_NO_LN1_GAIN, EMIS);
    EROW("autoencoder_read mlp decoder layer 1", EK_READ_AE, NW_NODE_MLP_AUTOENCODER_LATENT, 1, 0, EF_MLP_AE, OK, .vi = 38 + 16);
    EROW("autoencoder_read a float16 copy (NW_COPY), as float32", EK_READ_AE, NW_NODE_MLP_AUTOENCODER_LATENT, 0, 0, EF_MLP_AE, OK, .k = 1);
    EROW("autoencoder_read out one too small", EK_READ_AE, NW_NODE_MLP_AUTOENCODER_LATENT, 0, 0, EF_MLP_AE, EBUF, .cap = -1);
    EROW("autoencoder_read out NULL", EK_READ_AE, NW_NODE_MLP_AUTOENCODER_LATENT, 0, 0, EF_MLP_AE, EARG, .nulls = NU_OUT);
    EROW("autoencoder_read model NULL", EK_READ_AE, NW_NODE_MLP_AUTOENCODER_LATENT, 0, 0, EF_MLP_AE, EARG, .nulls = NU_MODEL);
    EROW("autoencoder_read empty slot", EK_READ_AE, NW_NODE_ATTENTION_AUTOENCODER_LATENT, 0, 0, EF_MLP_AE, EMIS);
    EROW("autoencoder_read node type mlp_neuron (not a latent)", EK_READ_AE, NW_NODE_MLP_NEURON, 0, 0, EF_MLP_AE, EARG);
    EROW("autoencoder_read node type 5 (one past)", EK_READ_AE, 5, 0, 0, EF_MLP_AE, EARG);
    EROW("autoencoder_read node type INT32_MIN", EK_READ_AE, I32MIN, 0, 0, EF_MLP_AE, EARG);
    EROW("autoencoder_read layer n_layers", EK_READ_AE, NW_NODE_MLP_AUTOENCODER_LATENT, EF_L, 0, EF_MLP_AE, EIDX);
    EROW("autoencoder_read layer -1", EK_READ_AE, NW_NODE_MLP_AUTOENCODER_LATENT, -1, 0, EF_MLP_AE, EIDX);
#undef EROW
}
