/*
 * stress.c — concurrency test of libnodewrite.
 *
 * One model and one set of derivers are shared by every thread (the header
 * allows it once the model is configured); each thread has its own store (over
 * the same read-only activation memory) and its own output buffers. Each thread
 * makes `calls` calls, cycling through derive, derive_vector, node_write,
 * node_write_vectors, output_shape + requirements, deriver create/destroy on the
 * shared model, and a failing call (whose thread-local message must be its own),
 * and compares every output byte for byte with a serial run made first.
 * The 1.1 exports join the mix: node sets (nw_node_writes), nw_derive of every dst
 * (with a shared (T, d_model) or (d_model,) direction), token writes and top-k,
 * nw_node_write_sized and nw_node_write_to_direction. The facts and slot states join too
 * (every nw_*_info_get, nw_saelens_hook_find, nw_model_weight_get, nw_model_autoencoder_get),
 * each call of them checked against this thread's nw_thread_call_count.
 * Causality and autoencoder slots: the shared model is causal and its attn.qk_probs has nothing above
 * the diagonal; a second shared model is not causal (nw_model_set_causal) and reads a pattern with mass
 * above it (every key). Stores shared by every thread and never read before the threads start make
 * the causality scan (once per store entry) race between threads: clean ones must give the serial
 * run's bits, ones with mass above the diagonal INVALID_ARGUMENT in every thread. A private model per
 * call sets, refuses, removes and sets autoencoders again (nw_model_remove_autoencoder), and a deriver
 * made before a removal keeps the decoder it captured. And the 1.2 edges: nw_derive_node of every
 * edge DST (tests_c/edges_fixture.h), plain and with the LayerNorm scale detached; the read-back
 * exports (nw_model_weight_read, nw_model_autoencoder_read) on the shared model, the edge models'
 * facts (nw_model_get_mlp_activation, nw_model_get_layer_norm_epsilon), and per call on this
 * thread's own objects nw_store_put_pass / nw_store_remove_pass and nw_model_set_autoencoder_encoder.
 *
 * Thread counts: the serial run is made on 1 library thread and repeated on 2 and 3
 * (nw_set_num_threads), each compared bit for bit; during the concurrent run the main
 * thread keeps switching the count between 1, 2 and 3 (process-wide, atomic), and
 * every result must still be the serial run's, bit for bit.
 *
 * Usage: stress [threads [calls]]     (default 8 x 10000)
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nodewrite.h"
#include "support.h"
#include "edges_fixture.h"

enum { NL = 2, DM = 64, NH = 4, DH = 16, DFF = 256, T = 16, NLAT_MLP = 32, NLAT_ATT = 24 };
enum { NNODES = 40, NOPS = 20, VEC_BATCH = 5, NV = 50, SET_N = 6, BIG_N = 192, NSHARED = 64 };

static nw_model *MODEL;
static nw_model *MODEL_NC;              /* the same weights, not causal */
static nwt_view PROBS_NC[NL];           /* attn.qk_probs with mass above the diagonal (for MODEL_NC) */
static nw_store *SHARED[NSHARED];       /* stores every thread reads, unread before the threads start */
static nw_store *DIRTY[NSHARED];        /* the same, with mass above the diagonal at layer 1 */
static nw_deriver *DERIVERS[NNODES];
static nw_node_index NODES[NNODES];
static nwt_view ACTS[NL][6];            /* activation views, shared read-only memory */
static nwt_view WEIGHTS[NL][4];
static nwt_view LAYERLESS[2];           /* unembedding (DM, NV), final gain (DM,) */
static nwt_view DELTAS[NL][2];          /* resid.delta_mlp/attn (T, DM) */
static nwt_view DIRS[2];                /* directions (T, DM) and (DM,) */
static int64_t SETS[NNODES][SET_N * 3]; /* node set k: SET_N nodes of NODES[k]'s type and layer */
static float *EXPECTED[NOPS][NNODES];   /* the serial run */
static size_t EXPECTED_LEN[NOPS][NNODES];
static int NCALLS;
/* Edges (nw_derive_node): one shared model and store per autoencoder configuration. */
static ef_fixture EDGES[3]; /* EF_MLP_AE, EF_ATTN_AE, both */

static void die(const char *what, nw_status st) {
    fprintf(stderr, "stress: %s: %s (%s)\n", what, nw_status_string(st), nw_last_error_message());
    exit(2);
}

static void build(void) {
    nw_model_dims dims = {NL, DM, NH, DH, DFF};
    nw_status st = nw_model_create(&dims, &MODEL);
    if (st) die("nw_model_create", st);
    static const unsigned edge_flags[3] = {EF_MLP_AE, EF_ATTN_AE, EF_MLP_AE | EF_ATTN_AE};
    for (int i = 0; i < 3; i++)
        if ((st = ef_setup(&EDGES[i], edge_flags[i], 11u + (unsigned)i))) die("the edges fixture", st);
    /* the model facts the edges read: the default (tanh GELU, 1e-5), the erf GELU with another epsilon, ReLU */
    if ((st = nw_model_set_mlp_activation(EDGES[1].m, NW_ACT_FN_GELU_ERF))) die("nw_model_set_mlp_activation", st);
    if ((st = nw_model_set_layer_norm_epsilon(EDGES[1].m, 1e-6))) die("nw_model_set_layer_norm_epsilon", st);
    if ((st = nw_model_set_mlp_activation(EDGES[2].m, NW_ACT_FN_RELU))) die("nw_model_set_mlp_activation", st);
    uint64_t seed = 42;
    for (int L = 0; L < NL; L++) {
        int64_t sw[3] = {DFF, DM}, sa[3] = {NH, DH, DM}, sdm[2] = {NLAT_MLP, DFF}, sda[2] = {NLAT_ATT, DM};
        double *w = malloc(sizeof(double) * DFF * DM * 2);
        for (int i = 0; i < DFF * DM * 2; i++) w[i] = nwt_rng_val(&seed) / 8;
        nwt_view_build(&WEIGHTS[L][0], w, 2, sw, NW_DTYPE_F32, L ? NWT_TRANSPOSED : NWT_CONTIG_NULL, 0);
        nwt_view_build(&WEIGHTS[L][1], w, 3, sa, NW_DTYPE_BF16, NWT_NEG0, 0);
        nwt_view_build(&WEIGHTS[L][2], w, 2, sdm, NW_DTYPE_F16, NWT_CONTIG_NULL, 0);
        nwt_view_build(&WEIGHTS[L][3], w, 2, sda, NW_DTYPE_F32, NWT_PADDED, 0);
        if ((st = nw_model_set_weight(MODEL, NW_WEIGHT_MLP_TO_RESIDUAL, L, &WEIGHTS[L][0].v, NW_COPY))) die("w", st);
        if ((st = nw_model_set_weight(MODEL, NW_WEIGHT_ATTN_TO_RESIDUAL, L, &WEIGHTS[L][1].v, NW_BORROW))) die("w", st);
        if ((st = nw_model_set_autoencoder(MODEL, NW_NODE_MLP_AUTOENCODER_LATENT, L, NW_AE_INPUT_MLP_POST_ACT,
                                           &WEIGHTS[L][2].v, NW_COPY))) die("ae", st);
        if ((st = nw_model_set_autoencoder(MODEL, NW_NODE_AUTOENCODER_LATENT, L, NW_AE_INPUT_MLP_POST_ACT,
                                           &WEIGHTS[L][2].v, NW_BORROW))) die("ae", st);
        if ((st = nw_model_set_autoencoder(MODEL, NW_NODE_ATTENTION_AUTOENCODER_LATENT, L, NW_AE_INPUT_RESIDUAL,
                                           &WEIGHTS[L][3].v, NW_BORROW))) die("ae", st);
        free(w);
        int64_t shp[6][3] = {{T, DFF}, {T, T, NH}, {T, NH, DH}, {T, NLAT_MLP}, {T, NLAT_MLP}, {T, NLAT_ATT}};
        int nd[6] = {2, 3, 3, 2, 2, 2};
        double *a = malloc(sizeof(double) * T * T * NH * DH);
        for (int i = 0; i < T * T * NH * DH; i++) a[i] = nwt_rng_val(&seed);
        nwt_view_build(&PROBS_NC[L], a, 3, shp[1], NW_DTYPE_F32, NWT_TRANSPOSED, 0);
        for (int k = 0; k < 6; k++) {
            if (k == 1) /* the causal model's pattern: nothing above the diagonal (k > q) */
                for (int i = 0; i < T * T * NH; i++)
                    if (i / NH % T > i / (NH * T)) a[i] = 0.0;
            nwt_view_build(&ACTS[L][k], a, nd[k], shp[k], k == 1 ? NW_DTYPE_F64 : NW_DTYPE_F32,
                           k == 2 ? NWT_TRANSPOSED : NWT_CONTIG_NULL, 0);
        }
        free(a);
    }
    {
        int64_t su[2] = {DM, NV}, sg[1] = {DM}, sd[2] = {T, DM}, sdir1[1] = {DM};
        double *w = malloc(sizeof(double) * DM * NV * 2);
        for (int i = 0; i < DM * NV * 2; i++) w[i] = nwt_rng_val(&seed) / 4;
        nwt_view_build(&LAYERLESS[0], w, 2, su, NW_DTYPE_BF16, NWT_TRANSPOSED, 0);
        nwt_view_build(&LAYERLESS[1], w + DM * NV, 1, sg, NW_DTYPE_F32, NWT_CONTIG, 0);
        if ((st = nw_model_set_weight(MODEL, NW_WEIGHT_UNEMBEDDING, NW_NO_LAYER, &LAYERLESS[0].v, NW_BORROW))) die("unemb", st);
        if ((st = nw_model_set_weight(MODEL, NW_WEIGHT_LAYER_NORM_GAIN_FINAL, NW_NO_LAYER, &LAYERLESS[1].v, NW_COPY))) die("gain", st);
        for (int i = 0; i < T * DM; i++) w[i] = (i % 5 == 0) ? 0 : nwt_rng_val(&seed); /* some zero entries */
        for (int t = 0; t < DM; t++) w[3 * DM + t] = 0; /* row 3 all zero: skipped by the projections */
        nwt_view_build(&DIRS[0], w, 2, sd, NW_DTYPE_F32, NWT_NEG0, 0);
        nwt_view_build(&DIRS[1], w + T * DM, 1, sdir1, NW_DTYPE_F16, NWT_CONTIG, 0);
        for (int L = 0; L < NL; L++)
            for (int k = 0; k < 2; k++) {
                for (int i = 0; i < T * DM; i++) w[i] = nwt_rng_val(&seed);
                nwt_view_build(&DELTAS[L][k], w, 2, sd, k ? NW_DTYPE_F64 : NW_DTYPE_F32, k ? NWT_PADDED : NWT_CONTIG_NULL, 0);
            }
        free(w);
    }
    for (int i = 0; i < NNODES; i++) {
        uint64_t r = nwt_rng_next(&seed);
        int type = (int)(r % 5), L = (int)((r >> 8) % NL);
        int64_t tok = (int64_t)((r >> 16) % T) - (i % 2 ? T : 0);
        nw_node_index n = {type, L, type == NW_NODE_ATTENTION_HEAD ? 3 : 2, 0, {tok, 0, 0, 0}};
        switch (type) {
        case NW_NODE_MLP_NEURON: n.indices[1] = (int64_t)((r >> 24) % DFF); break;
        case NW_NODE_ATTENTION_HEAD:
            n.indices[1] = (int64_t)((r >> 24) % T);
            n.indices[2] = (int64_t)((r >> 32) % NH);
            break;
        case NW_NODE_ATTENTION_AUTOENCODER_LATENT: n.indices[1] = (int64_t)((r >> 24) % NLAT_ATT); break;
        default: n.indices[1] = (int64_t)((r >> 24) % NLAT_MLP) - NLAT_MLP; break;
        }
        NODES[i] = n;
        int64_t ext[3] = {T, DFF, 1};
        if (type == NW_NODE_ATTENTION_HEAD) { ext[1] = T; ext[2] = NH; }
        else if (type == NW_NODE_ATTENTION_AUTOENCODER_LATENT) ext[1] = NLAT_ATT;
        else if (type != NW_NODE_MLP_NEURON) ext[1] = NLAT_MLP;
        int k = n.n_indices;
        for (int j = 0; j < SET_N; j++)
            for (int s2 = 0; s2 < k; s2++) {
                int64_t v = (int64_t)(nwt_rng_next(&seed) % (uint64_t)ext[s2]);
                SETS[i][j * k + s2] = (j + s2) % 3 == 0 ? v - ext[s2] : v;
            }
        if ((st = nw_node_write_deriver_create(MODEL, &n, &DERIVERS[i]))) die("nw_node_write_deriver_create", st);
    }
    /* the model that is not causal: the same weights (borrowed from the same views) */
    if ((st = nw_model_create(&dims, &MODEL_NC))) die("nw_model_create", st);
    if ((st = nw_model_set_causal(MODEL_NC, 0))) die("nw_model_set_causal", st);
    for (int L = 0; L < NL; L++) {
        if ((st = nw_model_set_weight(MODEL_NC, NW_WEIGHT_MLP_TO_RESIDUAL, L, &WEIGHTS[L][0].v, NW_BORROW))) die("w", st);
        if ((st = nw_model_set_weight(MODEL_NC, NW_WEIGHT_ATTN_TO_RESIDUAL, L, &WEIGHTS[L][1].v, NW_BORROW))) die("w", st);
        if ((st = nw_model_set_autoencoder(MODEL_NC, NW_NODE_MLP_AUTOENCODER_LATENT, L, NW_AE_INPUT_MLP_POST_ACT,
                                           &WEIGHTS[L][2].v, NW_BORROW))) die("ae", st);
        if ((st = nw_model_set_autoencoder(MODEL_NC, NW_NODE_AUTOENCODER_LATENT, L, NW_AE_INPUT_MLP_POST_ACT,
                                           &WEIGHTS[L][2].v, NW_BORROW))) die("ae", st);
        if ((st = nw_model_set_autoencoder(MODEL_NC, NW_NODE_ATTENTION_AUTOENCODER_LATENT, L, NW_AE_INPUT_RESIDUAL,
                                           &WEIGHTS[L][3].v, NW_BORROW))) die("ae", st);
    }
    if ((st = nw_model_set_weight(MODEL_NC, NW_WEIGHT_UNEMBEDDING, NW_NO_LAYER, &LAYERLESS[0].v, NW_BORROW))) die("unemb", st);
    if ((st = nw_model_set_weight(MODEL_NC, NW_WEIGHT_LAYER_NORM_GAIN_FINAL, NW_NO_LAYER, &LAYERLESS[1].v, NW_BORROW))) die("gain", st);
}

/* A private model like MODEL (weights and autoencoders borrowed from the same views), whose
   autoencoder slots are set, refused when occupied, emptied and set again. NULL on a failure. */
static nw_model *private_model(const char **err) {
    nw_model_dims dims = {NL, DM, NH, DH, DFF};
    nw_model *m;
    if (nw_model_create(&dims, &m)) { *err = "nw_model_create"; return NULL; }
    for (int L = 0; L < NL; L++) {
        nw_status st = nw_model_set_weight(m, NW_WEIGHT_MLP_TO_RESIDUAL, L, &WEIGHTS[L][0].v, NW_BORROW) |
                       nw_model_set_weight(m, NW_WEIGHT_ATTN_TO_RESIDUAL, L, &WEIGHTS[L][1].v, NW_BORROW) |
                       nw_model_set_autoencoder(m, NW_NODE_ATTENTION_AUTOENCODER_LATENT, L, NW_AE_INPUT_RESIDUAL,
                                                &WEIGHTS[L][3].v, NW_BORROW);
        /* the MLP decoder first in the wrong slot kind of use: autoencoder_latent with the attention decoder */
        st |= nw_model_set_autoencoder(m, NW_NODE_AUTOENCODER_LATENT, L, NW_AE_INPUT_RESIDUAL, &WEIGHTS[L][3].v, NW_BORROW);
        if (st) { *err = "setting up a private model"; nw_model_destroy(m); return NULL; }
        if (nw_model_set_autoencoder(m, NW_NODE_AUTOENCODER_LATENT, L, NW_AE_INPUT_MLP_POST_ACT, &WEIGHTS[L][2].v,
                                     NW_BORROW) != NW_ERR_INVALID_ARGUMENT ||
            strstr(nw_last_error_message(), "nw_model_remove_autoencoder") == NULL) {
            *err = "an occupied autoencoder slot was not refused with a message naming the fix";
            nw_model_destroy(m);
            return NULL;
        }
        st = nw_model_remove_autoencoder(m, NW_NODE_AUTOENCODER_LATENT, L) |
             nw_model_remove_autoencoder(m, NW_NODE_AUTOENCODER_LATENT, L) | /* empty: not an error */
             nw_model_set_autoencoder(m, NW_NODE_AUTOENCODER_LATENT, L, NW_AE_INPUT_MLP_POST_ACT, &WEIGHTS[L][2].v, NW_BORROW) |
             nw_model_set_autoencoder(m, NW_NODE_MLP_AUTOENCODER_LATENT, L, NW_AE_INPUT_MLP_POST_ACT, &WEIGHTS[L][2].v, NW_COPY);
        if (st) { *err = "remove, then set an autoencoder"; nw_model_destroy(m); return NULL; }
    }
    return m;
}

/* A store of every activation; `probs` replaces attn.qk_probs at layer 1 when not NULL. */
static nw_store *make_store_with(const nw_tensor_view *probs) {
    nw_store *s;
    nw_status st = nw_store_create(&s);
    if (st) die("nw_store_create", st);
    for (int L = 0; L < NL; L++)
        for (int k = 0; k < 6; k++)
            if ((st = nw_store_put(s, k, L, probs && k == 1 && L == 1 ? probs : &ACTS[L][k].v))) die("nw_store_put", st);
    for (int L = 0; L < NL; L++)
        for (int k = 0; k < 2; k++)
            if ((st = nw_store_put(s, NW_ACT_RESID_DELTA_MLP + k, L, &DELTAS[L][k].v))) die("nw_store_put", st);
    return s;
}

static nw_store *make_store(void) { return make_store_with(NULL); }

/* The not-causal model's store: attn.qk_probs with mass above the diagonal at every layer. */
static nw_store *make_store_nc(void) {
    nw_store *s = make_store();
    for (int L = 0; L < NL; L++) {
        nw_status st = nw_store_put(s, NW_ACT_ATTN_QK_PROBS, L, &PROBS_NC[L].v);
        if (st) die("nw_store_put", st);
    }
    return s;
}

/* One call: operation op on node k; the output into buf (len floats), its length in *n.
 * s: the caller's store; s_nc: its store for MODEL_NC; shared, dirty: stores that other threads may
 * be reading for the first time too (the serial run passes stores of its own).
 * Returns 0 on success, or a description of the failure. */
static const char *one_call(int op, int k, nw_store *s, nw_store *s_nc, nw_store *shared, nw_store *dirty, float *buf,
                            size_t cap, size_t *n) {
    nw_status st = NW_OK;
    switch (op) {
    case 14: { /* the model that is not causal: an attention quantity over every key, or a node set */
        int32_t dst = (int32_t[]){2, 3, 6, 7}[k % 4], nd = 0, causal = -1;
        int64_t shape[3] = {0, 0, 0};
        if (nw_model_get_causal(MODEL_NC, &causal) != NW_OK || causal != 0) return "nw_model_get_causal is not 0";
        if (k % 5 == 4) {
            const nw_node_index *x = &NODES[k];
            st = nw_node_writes(MODEL_NC, s_nc, x->node_type, x->layer, SETS[k], SET_N, (size_t)x->n_indices, buf, cap, NULL);
            *n = SET_N * DM;
            break;
        }
        st = nw_derive(MODEL_NC, s_nc, dst, (k / 4) % NL, dst % 2 ? &DIRS[k % 2].v : NULL, 0, buf, cap, shape, &nd);
        *n = 1;
        for (int i = 0; i < nd; i++) *n *= (size_t)shape[i];
        break;
    }
    case 15: { /* a store shared by every thread, first read now: the causality scan races */
        int32_t dst = (int32_t[]){2, 3, 6, 7}[k % 4], nd = 0;
        int64_t shape[3] = {0, 0, 0};
        st = nw_derive(MODEL, shared, dst, 1, dst % 2 ? &DIRS[k % 2].v : NULL, 0, buf, cap, shape, &nd);
        *n = 1;
        for (int i = 0; i < nd; i++) *n *= (size_t)shape[i];
        break;
    }
    case 16: { /* the same with mass above the diagonal: refused in every thread, whoever scans */
        nw_node_index x = {NW_NODE_ATTENTION_HEAD, 1, 3, 0, {k % T, 0, k % NH, 0}};
        st = nw_node_write(MODEL, dirty, &x, buf, cap);
        if (st != NW_ERR_INVALID_ARGUMENT) return "mass above the diagonal was not refused";
        if (strstr(nw_last_error_message(), "above the diagonal") == NULL) return "the causality message is not this thread's";
        *n = 0;
        return NULL;
    }
    case 17: { /* a private model: autoencoder slots set, refused, emptied, set; a deriver keeps its decoder */
        const char *err = NULL;
        nw_model *m = private_model(&err);
        if (!m) return err;
        nw_deriver *d = NULL;
        st = nw_node_write_deriver_create(m, &NODES[k], &d);
        int latent = NODES[k].node_type >= NW_NODE_AUTOENCODER_LATENT;
        if (st == NW_OK && latent) st = nw_model_remove_autoencoder(m, NODES[k].node_type, NODES[k].layer);
        if (st == NW_OK) st = nw_deriver_derive(d, s, buf, cap);
        if (st == NW_OK && latent && nw_node_write(m, s, &NODES[k], buf + T * DM, cap - T * DM) != NW_ERR_MISSING_INPUT)
            err = "a node write on an emptied autoencoder slot was not NW_ERR_MISSING_INPUT";
        nw_deriver_destroy(d);
        nw_model_destroy(m);
        if (err) return err;
        *n = (size_t)T * DM;
        break;
    }
    case 0: /* derive */
        st = nw_deriver_derive(DERIVERS[k], s, buf, cap);
        *n = (size_t)T * DM;
        break;
    case 1: { /* derive_vector + token row */
        int64_t tok = -1;
        st = nw_deriver_derive_vector(DERIVERS[k], s, buf, cap, &tok);
        buf[DM] = (float)tok;
        *n = DM + 1;
        break;
    }
    case 2: /* node_write */
        st = nw_node_write(MODEL, s, &NODES[k], buf, cap);
        *n = (size_t)T * DM;
        break;
    case 3: { /* node_write_vectors over a batch */
        nw_node_index batch[VEC_BATCH];
        int64_t toks[VEC_BATCH];
        for (int j = 0; j < VEC_BATCH; j++) batch[j] = NODES[(k + j * 7) % NNODES];
        st = nw_node_write_vectors(MODEL, s, batch, VEC_BATCH, buf, cap, toks);
        for (int j = 0; j < VEC_BATCH; j++) buf[VEC_BATCH * DM + j] = (float)toks[j];
        *n = VEC_BATCH * DM + VEC_BATCH;
        break;
    }
    case 4: { /* output_shape + requirements */
        int64_t shape[2];
        nw_requirement req[2];
        size_t cnt = 0;
        st = nw_deriver_output_shape(DERIVERS[k], s, shape);
        if (st == NW_OK) st = nw_deriver_requirements(DERIVERS[k], req, 2, &cnt);
        buf[0] = (float)shape[0];
        buf[1] = (float)shape[1];
        buf[2] = (float)cnt;
        for (size_t j = 0; j < cnt; j++) { buf[3 + 2 * j] = (float)req[j].activation; buf[4 + 2 * j] = (float)req[j].layer; }
        *n = 3 + 2 * cnt;
        break;
    }
    case 5: { /* a deriver of its own from the shared model */
        nw_deriver *d;
        st = nw_node_write_deriver_create(MODEL, &NODES[k], &d);
        if (st == NW_OK) {
            st = nw_deriver_derive(d, s, buf, cap);
            nw_deriver_destroy(d);
        }
        *n = (size_t)T * DM;
        break;
    }
    case 7: { /* a node set */
        int64_t toks[SET_N];
        const nw_node_index *nd = &NODES[k];
        st = nw_node_writes(MODEL, s, nd->node_type, nd->layer, SETS[k], SET_N, (size_t)nd->n_indices, buf, cap, toks);
        for (int j = 0; j < SET_N; j++) buf[SET_N * DM + j] = (float)toks[j];
        *n = SET_N * DM + SET_N;
        break;
    }
    case 8: { /* nw_derive of dst k % 18, layer k / 18 % NL */
        int32_t dst = k % 18, nd = 0;
        int64_t shape[3] = {0, 0, 0};
        int proj = dst == 1 || dst == 3 || dst == 5 || dst == 7 || (dst >= 11 && dst <= 13) || dst == 16 || dst == 17;
        st = nw_derive(MODEL, s, dst, (k / 18) % NL, proj ? &DIRS[k % 2].v : NULL, 0, buf, cap, shape, &nd);
        *n = 1;
        for (int i = 0; i < nd; i++) *n *= (size_t)shape[i];
        break;
    }
    case 9: { /* token writes of a node set */
        const nw_node_index *nd = &NODES[k];
        st = nw_token_writes(MODEL, s, nd->node_type, nd->layer, SETS[k], SET_N, (size_t)nd->n_indices, buf, cap);
        *n = SET_N * NV;
        break;
    }
    case 10: { /* top-k of a node set */
        const nw_node_index *nd = &NODES[k];
        int64_t ids[SET_N * 7];
        int64_t kk = 1 + k % 7;
        st = nw_token_writes_top_k(MODEL, s, nd->node_type, nd->layer, SETS[k], SET_N, (size_t)nd->n_indices, kk, k % 3,
                                   buf, ids, SET_N * 7);
        for (int j = 0; j < SET_N * kk; j++) buf[SET_N * kk + j] = (float)ids[j];
        *n = (size_t)(2 * SET_N * kk);
        break;
    }
    case 11: { /* node_write_sized, then node_write_to_direction after it */
        int64_t shape[2] = {0, 0}, shape2[2] = {0, 0};
        st = nw_node_write_sized(MODEL, s, &NODES[k], 0, buf, cap, shape);
        if (st == NW_OK)
            st = nw_node_write_to_direction(MODEL, s, &NODES[k], &DIRS[k % 2].v, buf + T * DM, cap - T * DM, shape2);
        if (shape[0] != T || shape[1] != DM || shape2[0] != T || shape2[1] != 1) return "out_shape wrong";
        *n = (size_t)T * DM + T;
        break;
    }
    case 18: { /* an edge DST (18 ... 42, by k) on the shared edges fixtures, detached every other node */
        int32_t dst = NW_DST_ATTN_QUERY_IN_EDGE_ATTRIBUTION + k % 25, layer;
        nw_node_index nd;
        unsigned flags;
        const nw_node_index *np = ef_valid_node(dst, &nd, &layer, &flags);
        ef_fixture *f = &EDGES[flags == EF_MLP_AE ? 0 : flags == EF_ATTN_AE ? 1 : 2];
        int64_t shape[3];
        int32_t ndim;
        st = ef_derive_node(f->m, f->s, dst, layer, np, (k / 25) % 2 ? NW_DETACH_LAYER_NORM_SCALE : 0, buf, cap, shape, &ndim);
        *n = 1;
        for (int i = 0; i < ndim && st == NW_OK; i++) *n *= (size_t)shape[i];
        break;
    }
    case 19: { /* the edges' read-back and facts: a weight or decoder of the shared model read back
                  (nw_model_weight_read / nw_model_autoencoder_read; copied F16 and borrowed BF16/F32),
                  the shared edge models' MLP activation and LayerNorm epsilon, and on this thread's own
                  objects: a backward-pass entry put and removed (nw_store_put_pass / _remove_pass), a
                  private model's encoder set (nw_model_set_autoencoder_encoder) and its decoder read */
        static const float zeros[DM];
        int32_t L = k % NL, act = -1;
        size_t len = 0;
        switch (k % 4) {
        case 0: len = (size_t)NH * DH * DM; st = nw_model_weight_read(MODEL, NW_WEIGHT_ATTN_TO_RESIDUAL, L, buf, cap); break;
        case 1: len = (size_t)NLAT_MLP * DFF; st = nw_model_autoencoder_read(MODEL, NW_NODE_MLP_AUTOENCODER_LATENT, L, buf, cap); break;
        case 2: len = (size_t)NLAT_MLP * DFF; st = nw_model_autoencoder_read(MODEL, NW_NODE_AUTOENCODER_LATENT, L, buf, cap); break;
        default: len = (size_t)NLAT_ATT * DM; st = nw_model_autoencoder_read(MODEL, NW_NODE_ATTENTION_AUTOENCODER_LATENT, L, buf, cap); break;
        }
        if (st) break;
        double eps = 0;
        if ((st = nw_model_get_mlp_activation(EDGES[k % 3].m, &act)) || (st = nw_model_get_layer_norm_epsilon(EDGES[k % 3].m, &eps)))
            break;
        buf[len] = (float)act;
        buf[len + 1] = (float)eps;
        if ((st = nw_store_put_pass(s, NW_ACT_RESID_POST_EMB, NW_NO_LAYER, NW_PASS_BACKWARD, &DELTAS[L][0].v)) ||
            (st = nw_store_remove_pass(s, NW_ACT_RESID_POST_EMB, NW_NO_LAYER, NW_PASS_BACKWARD)))
            break;
        nw_model_dims dims = {NL, DM, NH, DH, DFF};
        nw_model *m;
        if ((st = nw_model_create(&dims, &m))) break;
        int64_t lb_shape[1] = {NLAT_ATT}, pb_shape[1] = {DM};
        nw_tensor_view lb = {(void *)zeros, NW_DTYPE_F32, 1, lb_shape, NULL}, pb = {(void *)zeros, NW_DTYPE_F32, 1, pb_shape, NULL};
        float *dec = buf + len + 2;
        if (!(st = nw_model_set_autoencoder(m, NW_NODE_ATTENTION_AUTOENCODER_LATENT, L, NW_AE_INPUT_RESIDUAL, &WEIGHTS[L][3].v,
                                            (k / 4) % 2 ? NW_BORROW : NW_COPY)) &&
            !(st = nw_model_set_autoencoder_encoder(m, NW_NODE_ATTENTION_AUTOENCODER_LATENT, L, &WEIGHTS[L][3].v, &lb, &pb,
                                                    (k / 8) % 2 ? NW_BORROW : NW_COPY)))
            st = nw_model_autoencoder_read(m, NW_NODE_ATTENTION_AUTOENCODER_LATENT, L, dec, cap - len - 2);
        nw_model_destroy(m);
        /* the private decoder is the shared model's attention autoencoder's (the same padded view): the same bits */
        if (st == NW_OK && k % 4 == 3 && memcmp(dec, buf, len * sizeof(float)) != 0) return "a private decoder read differs";
        *n = len + 2 + (size_t)NLAT_ATT * DM;
        break;
    }
    case 12: { /* a big node set: 192 mlp-autoencoder latents (192 x d_ff x d_model = 3.1 M multiply-adds,
                  above the kernels' 2^21 threshold for using more than one thread) */
        int64_t ix[BIG_N * 2];
        for (int j = 0; j < BIG_N; j++) { ix[2 * j] = j % T; ix[2 * j + 1] = (j * 7 + k) % NLAT_MLP; }
        st = nw_node_writes(MODEL, s, NW_NODE_MLP_AUTOENCODER_LATENT, k % NL, ix, BIG_N, 2, buf, cap, NULL);
        *n = (size_t)BIG_N * DM;
        break;
    }
    case 13: { /* the facts tables and the model's slot states: 10 calls, counted on this thread */
        uint64_t before = nw_thread_call_count();
        nw_node_type_info ti = {.size = sizeof ti};
        nw_dst_info di = {.size = sizeof di};
        nw_activation_info ai = {.size = sizeof ai};
        nw_weight_info wi = {.size = sizeof wi};
        nw_dtype_info yi = {.size = sizeof yi};
        nw_autoencoder_input_info ei = {.size = sizeof ei};
        nw_saelens_hook_info hi = {.size = sizeof hi};
        nw_weight_state ws = {.size = sizeof ws};
        nw_autoencoder_state as = {.size = sizeof as};
        int32_t w = k % 4, type = NW_NODE_AUTOENCODER_LATENT + k % 3, row = -1, layer = -1;
        static const char *const hooks[4] = {"blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.1.mlp.hook_post",
                                             "blocks.3.attn.hook_z"};
        if ((st = nw_node_type_info_get(k % 5, &ti)) || (st = nw_dst_info_get(k % 18, &di)) ||
            (st = nw_activation_info_get(k % 8, &ai)) || (st = nw_weight_info_get(w, &wi)) ||
            (st = nw_dtype_info_get(k % 4, &yi)) || (st = nw_autoencoder_input_info_get(k % 3, &ei)) ||
            (st = nw_saelens_hook_find(hooks[k % 4], &row, &layer)) || (st = nw_saelens_hook_info_get(row, &hi)) ||
            (st = nw_model_weight_get(MODEL, w, w < 2 ? k % NL : NW_NO_LAYER, &ws)) ||
            (st = nw_model_autoencoder_get(MODEL, type, k % NL, &as)))
            return nw_status_string(st);
        if (nw_thread_call_count() - before != 10) return "nw_thread_call_count did not count the 10 calls of this thread";
        if (ti.name != nw_node_type_name(k % 5) || di.name != nw_dst_name(k % 18) || ai.name != nw_activation_name(k % 8) ||
            wi.name != nw_weight_name(w) || yi.name != nw_dtype_name(k % 4))
            return "an info row's name is not the name function's";
        const int64_t f[] = {ti.n_indices, ti.is_latent, ti.n_activations, ti.activations[0], ti.weight, ti.width_dim,
                             di.node_type, di.layout, di.quantity, di.needs_direction, di.ndim, di.dims[0], di.dims[1],
                             di.dims[2], di.n_activations, ai.ndim, ai.dims[0], ai.dims[1], ai.dims[2], ai.latent_node_type,
                             wi.has_layer, wi.ndim, wi.dims[0], yi.item_size, ei.input_dim, ei.weight, hi.node_type,
                             hi.input, hi.min_layer, hi.max_layer, row, layer, ws.present, ws.dtype, ws.ownership,
                             ws.ndim, ws.shape[0], ws.shape[1], ws.shape[2], as.present, as.input, as.dtype,
                             as.ownership, as.n_latents, as.n_inputs};
        *n = sizeof f / sizeof *f;
        for (size_t j = 0; j < *n; j++) buf[j] = (float)f[j];
        break;
    }
    default: { /* a failing call: the message must be this one */
        nw_node_index bad = NODES[k];
        bad.indices[0] = T + k; /* token out of range */
        char want[64];
        snprintf(want, sizeof want, "%d", T + k);
        st = nw_node_write(MODEL, s, &bad, buf, cap);
        if (st != NW_ERR_INDEX_OUT_OF_RANGE) return "a bad token index did not give NW_ERR_INDEX_OUT_OF_RANGE";
        if (strstr(nw_last_error_message(), want) == NULL) return "the error message is not this thread's";
        *n = 0;
        return NULL;
    }
    }
    return st == NW_OK ? NULL : nw_status_string(st);
}

typedef struct worker { int id; int failures; char first[200]; } worker;
static atomic_int RUNNING;
#define CAP ((size_t)BIG_N * DM + 64)

static atomic_long FLIPS;
static void *flip(void *p) {
    (void)p;
    struct timespec ts = {0, 200000};
    while (RUNNING) {
        nw_set_num_threads((int32_t)(1 + atomic_load(&FLIPS) % 3));
        atomic_fetch_add(&FLIPS, 1);
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *run(void *p) {
    worker *w = p;
    nw_store *s = make_store(), *s_nc = make_store_nc();
    size_t cap = CAP;
    float *buf = malloc(cap * sizeof(float));
    for (int i = 0; i < NCALLS; i++) {
        int op = (i + w->id) % NOPS, k = (int)(((unsigned)i * 2654435761u + (unsigned)w->id * 97u) % NNODES);
        size_t n = 0;
        /* every thread meets shared store r at its call r * NOPS or so: the first reads of it coincide */
        int round = i / NOPS % NSHARED;
        const char *err = one_call(op, k, s, s_nc, SHARED[round], DIRTY[round], buf, cap, &n);
        if (!err && (n != EXPECTED_LEN[op][k] || memcmp(buf, EXPECTED[op][k], n * sizeof(float)) != 0))
            err = "output differs from the serial run";
        if (err && w->failures++ == 0)
            snprintf(w->first, sizeof w->first, "thread %d call %d (op %d node %d): %s", w->id, i, op, k, err);
    }
    free(buf);
    nw_store_destroy(s);
    nw_store_destroy(s_nc);
    return NULL;
}

int main(int argc, char **argv) {
    int nthreads = argc > 1 ? atoi(argv[1]) : 8;
    NCALLS = argc > 2 ? atoi(argv[2]) : 10000;
    if (nthreads < 1 || nthreads > 256 || NCALLS < 0) { fprintf(stderr, "usage: stress [threads [calls]]\n"); return 2; }
    build();
    /* the serial run on 1 library thread, repeated on 2 and 3: bit for bit the same */
    nw_store *s = make_store(), *s_nc = make_store_nc(), *s_dirty = make_store_with(&PROBS_NC[1].v);
    size_t cap = CAP;
    float *again = malloc(cap * sizeof(float));
    int serial_diffs = 0;
    for (int th = 1; th <= 3; th++) {
        nw_status st = nw_set_num_threads(th);
        if (st != NW_OK || nw_get_num_threads() != th) { fprintf(stderr, "stress: nw_set_num_threads(%d) did not take\n", th); return 1; }
        for (int op = 0; op < NOPS; op++)
            for (int k = 0; k < NNODES; k++) {
                size_t n = 0;
                float *dst = th == 1 ? (EXPECTED[op][k] = calloc(cap, sizeof(float))) : again;
                if (th > 1) memset(again, 0, cap * sizeof(float));
                const char *err = one_call(op, k, s, s_nc, s, s_dirty, dst, cap, th == 1 ? &EXPECTED_LEN[op][k] : &n);
                if (err) { fprintf(stderr, "stress: serial op %d node %d on %d threads: %s\n", op, k, th, err); return 1; }
                if (th > 1 && (n != EXPECTED_LEN[op][k] || memcmp(again, EXPECTED[op][k], n * sizeof(float)) != 0)) {
                    if (serial_diffs++ < 5) printf("FAIL serial op %d node %d: %d library threads differ from 1\n", op, k, th);
                }
            }
    }
    free(again);
    nw_store_destroy(s);
    nw_store_destroy(s_nc);
    nw_store_destroy(s_dirty);
    for (int i = 0; i < NSHARED; i++) { SHARED[i] = make_store(); DIRTY[i] = make_store_with(&PROBS_NC[1].v); }
    printf("stress: serial run of %d ops x %d nodes on 1, 2, 3 library threads: %s\n", NOPS, NNODES,
           serial_diffs ? "DIFFERENT" : "bit-identical");
    /* every thread at once */
    pthread_t th[256];
    worker *ws = calloc((size_t)nthreads, sizeof *ws);
    for (int t = 0; t < nthreads; t++) {
        ws[t].id = t;
        if (pthread_create(&th[t], NULL, run, &ws[t])) { fprintf(stderr, "pthread_create failed\n"); return 2; }
    }
    /* switch the library's thread count while the workers run */
    RUNNING = 1;
    pthread_t flipper;
    pthread_create(&flipper, NULL, flip, NULL);
    int failures = serial_diffs;
    for (int t = 0; t < nthreads; t++) {
        pthread_join(th[t], NULL);
        if (ws[t].failures) { failures += ws[t].failures; printf("FAIL %s (%d failures)\n", ws[t].first, ws[t].failures); }
    }
    RUNNING = 0;
    pthread_join(flipper, NULL);
    nw_set_num_threads(0);
    long total = (long)nthreads * NCALLS;
    printf("stress: %d threads x %d calls = %ld calls on one shared model and %d shared derivers, library threads "
           "switched %ld times between 1, 2, 3: %ld passed, %d failed\n",
           nthreads, NCALLS, total, NNODES, (long)atomic_load(&FLIPS), total - (failures - serial_diffs), failures);
    for (int i = 0; i < NNODES; i++) nw_deriver_destroy(DERIVERS[i]);
    nw_model_destroy(MODEL);
    nw_model_destroy(MODEL_NC);
    for (int i = 0; i < NSHARED; i++) { nw_store_destroy(SHARED[i]); nw_store_destroy(DIRTY[i]); }
    for (int L = 0; L < NL; L++) nwt_view_free(&PROBS_NC[L]);
    for (int i = 0; i < 3; i++) ef_teardown(&EDGES[i]);
    for (int L = 0; L < NL; L++) {
        for (int k = 0; k < 6; k++) nwt_view_free(&ACTS[L][k]);
        for (int k = 0; k < 4; k++) nwt_view_free(&WEIGHTS[L][k]);
        for (int k = 0; k < 2; k++) nwt_view_free(&DELTAS[L][k]);
    }
    for (int k = 0; k < 2; k++) { nwt_view_free(&LAYERLESS[k]); nwt_view_free(&DIRS[k]); }
    for (int op = 0; op < NOPS; op++)
        for (int k = 0; k < NNODES; k++) free(EXPECTED[op][k]);
    free(ws);
    return failures ? 1 : 0;
}
