/*
 * boundary.c — the boundary table of libnodewrite's C ABI (SQLite-style).
 *
 * Every exported function, each argument at its limits and one past them:
 * indices -n-1, -n, -1, 0, n-1, n, INT64_MIN, INT64_MAX; shapes and strides 0,
 * negative, and overflowing int64; NULL for each pointer; bad enum values
 * (INT32_MIN, INT32_MAX, one past the last); dtype/shape disagreeing with the
 * model; missing weights, activations and autoencoders; output capacity one
 * too small; NaN and Inf data; oversize requests.
 *
 * Each row builds a small model and store from canonical (double) data, makes
 * one call with one fault (or none), and asserts
 *   - the exact status (oversize rows: one of the statuses the issue allows),
 *   - on failure: a non-empty nw_last_error_message(), every output buffer and
 *     out-pointer untouched (sentinel fill + compare), and the model/store in
 *     their earlier state (a dependent derive still gives the old answer),
 *   - on success: the output against an independent reference (plain loops in
 *     double, tests_c/support.h), zeros off the token row, nothing written past
 *     the needed length.
 * Each row runs on a fresh thread, so that its error message starts empty.
 *
 * Usage: boundary [-v]     (-v prints every row and its error message)
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodewrite.h"
#include "support.h"

/* ------------------------------------------------------------ the fixture */

enum { NL = 2, DM = 4, NH = 2, DH = 3, DFF = 5, TT = 3 };
#define NLATK 3 /* latent kinds: node types 2, 3, 4 */

/* n_latents and input kind of each autoencoder [kind][layer] */
static const int64_t NLAT0[NLATK][NL] = {{6, 5}, {6, 6}, {7, 7}};
static const int32_t AEIN0[NLATK][NL] = {
    {NW_AE_INPUT_MLP_POST_ACT, NW_AE_INPUT_RESIDUAL},
    {NW_AE_INPUT_MLP_POST_ACT, NW_AE_INPUT_MLP_POST_ACT},
    {NW_AE_INPUT_RESIDUAL, NW_AE_INPUT_RESIDUAL}};

/* tensors of the fixture */
enum { TG_NONE, TG_WMLP, TG_WATT, TG_DEC0, TG_DEC1, TG_DEC2, TG_POST, TG_QK, TG_V, TG_LAT0, TG_LAT1, TG_LAT2, TG_N };
static const char *const TG_NAME[TG_N] = {"-", "w.mlp", "w.attn", "dec.ae", "dec.mlp_ae", "dec.attn_ae",
                                          "post_act", "qk_probs", "attn.v", "lat.ae", "lat.mlp_ae", "lat.attn_ae"};
static int tg_is_weight(int tg) { return tg >= TG_WMLP && tg <= TG_DEC2; }
static int tg_activation(int tg) {
    switch (tg) {
    case TG_POST: return NW_ACT_MLP_POST_ACT;
    case TG_QK: return NW_ACT_ATTN_QK_PROBS;
    case TG_V: return NW_ACT_ATTN_VALUE;
    case TG_LAT0: return NW_ACT_ONLINE_AUTOENCODER_LATENT;
    case TG_LAT1: return NW_ACT_ONLINE_MLP_AUTOENCODER_LATENT;
    case TG_LAT2: return NW_ACT_ONLINE_ATTENTION_AUTOENCODER_LATENT;
    default: return -1;
    }
}
static int act_tg(int32_t act) {
    switch (act) {
    case NW_ACT_MLP_POST_ACT: return TG_POST;
    case NW_ACT_ATTN_QK_PROBS: return TG_QK;
    case NW_ACT_ATTN_VALUE: return TG_V;
    case NW_ACT_ONLINE_AUTOENCODER_LATENT: return TG_LAT0;
    case NW_ACT_ONLINE_MLP_AUTOENCODER_LATENT: return TG_LAT1;
    case NW_ACT_ONLINE_ATTENTION_AUTOENCODER_LATENT: return TG_LAT2;
    default: return TG_NONE;
    }
}

/* fixture flags */
enum {
    FX_TK4 = 1u << 0,        /* T_k = 4 key tokens (T stays 3) */
    FX_BORROW = 1u << 1,     /* weights and decoders borrowed, not copied */
    FX_EMPTY_MODEL = 1u << 2,/* no weight, no autoencoder */
    FX_EMPTY_STORE = 1u << 3,/* no activation */
    FX_ABSENT = 1u << 4,     /* the row's target tensor is not set (at its layer) */
    FX_NONCAUSAL = 1u << 5,  /* the model is not causal (nw_model_set_causal(model, 0)) and attn.qk_probs
                                has probability above the diagonal; otherwise it has none there */
    FX_OCCUPIED = 1u << 6,   /* a set_autoencoder row calls on its slot as the fixture filled it (else the
                                row empties the slot first, as one autoencoder per slot requires) */
};

#define MAXVIEWS 64
typedef struct fixture {
    int64_t T, Tk;
    int64_t nlat[NLATK][NL];
    int32_t aein[NLATK][NL];
    double *canon[TG_N][NL];
    int64_t shape[TG_N][NL][4];
    int ndim[TG_N];
    int present[TG_N][NL];
    nw_model *model;
    nw_store *store;
    nwt_view views[MAXVIEWS];
    int nviews;
    unsigned seed;
    int tok_bcast; /* activations claim a huge token axis with stride 0 */
    int noncausal; /* FX_NONCAUSAL */
} fixture;

static void fx_shape(fixture *fx, int tg, int L) {
    int64_t *s = fx->shape[tg][L];
    int k = (tg >= TG_DEC0 && tg <= TG_DEC2) ? tg - TG_DEC0 : (tg >= TG_LAT0 ? tg - TG_LAT0 : 0);
    switch (tg) {
    case TG_WMLP: fx->ndim[tg] = 2; s[0] = DFF; s[1] = DM; break;
    case TG_WATT: fx->ndim[tg] = 3; s[0] = NH; s[1] = DH; s[2] = DM; break;
    case TG_DEC0: case TG_DEC1: case TG_DEC2:
        fx->ndim[tg] = 2; s[0] = fx->nlat[k][L];
        s[1] = fx->aein[k][L] == NW_AE_INPUT_MLP_POST_ACT ? DFF : DM; break;
    case TG_POST: fx->ndim[tg] = 2; s[0] = fx->T; s[1] = DFF; break;
    case TG_QK: fx->ndim[tg] = 3; s[0] = fx->T; s[1] = fx->Tk; s[2] = NH; break;
    case TG_V: fx->ndim[tg] = 3; s[0] = fx->Tk; s[1] = NH; s[2] = DH; break;
    default: fx->ndim[tg] = 2; s[0] = fx->T; s[1] = fx->nlat[k][L]; break;
    }
}

static int64_t fx_count(const fixture *fx, int tg, int L) {
    int64_t c = 1;
    for (int i = 0; i < fx->ndim[tg]; i++) c *= fx->shape[tg][L][i];
    return c;
}

/* fresh canonical data for (tg, L); version changes the values */
static void fx_gen(fixture *fx, int tg, int L, unsigned version) {
    fx_shape(fx, tg, L);
    int64_t n = fx_count(fx, tg, L);
    free(fx->canon[tg][L]);
    fx->canon[tg][L] = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    uint64_t s = (uint64_t)tg * 1000003u + (uint64_t)L * 7919u + version * 104729u + fx->seed;
    for (int64_t i = 0; i < n; i++)
        fx->canon[tg][L][i] = tg == TG_QK ? nwt_rng_prob(&s) : nwt_rng_val(&s);
    if (tg == TG_QK && !fx->noncausal) /* a causal model's pattern: nothing above the diagonal */
        for (int64_t i = 0; i < n; i++)
            if (i / NH % fx->Tk > i / (NH * fx->Tk)) fx->canon[tg][L][i] = 0.0;
}

static nwt_view *fx_newview(fixture *fx) {
    if (fx->nviews >= MAXVIEWS) { fprintf(stderr, "too many views\n"); abort(); }
    return &fx->views[fx->nviews++];
}

/* ---------------------------------------------------------------- rows */

enum fn {
    F_STATUS_STRING, F_NAME, F_FROM_NAME, F_VERSION,
    F_MODEL_CREATE, F_DIMS_GET, F_SET_WEIGHT, F_SET_AE,
    F_STORE_CREATE, F_STORE_PUT, F_STORE_REMOVE,
    F_DERIVER_CREATE, F_REQ, F_OUT_SHAPE, F_DERIVE, F_DERIVE_VEC, F_NODE_WRITE, F_NODE_WRITE_VECS,
    F_SCENARIO,
    /* exports of 1.1 (run_x) */
    F_SIZED, F_INDEX_COUNT, F_NODE_WRITES, F_THREADS, F_DST_NAME, F_DST_FROM_NAME, F_DERIVE_DST, F_TO_DIR,
    F_VOCAB, F_TOKEN_WRITES, F_TOP_K, F_SET_WEIGHT0, F_PUT_DELTA,
    /* facts, slot states, the call counter (run_info, run_hook_find, run_slot, run_call_count) */
    F_INFO, F_HOOK_FIND, F_SLOT, F_CALL_COUNT,
    /* causality and autoencoder slots (run_slots) */
    F_CAUSAL, F_REMOVE_AE,
    /* model facts of the edges (run_facts) */
    F_ACT_FN, F_LN_EPS,
    /* reading back what a slot holds (run_read) */
    F_READ, F_COUNT
};
static const char *const FN_NAME[F_COUNT] = {
    "nw_status_string", "nw_*_name", "nw_*_from_name", "nw_version",
    "nw_model_create", "nw_model_dims_get", "nw_model_set_weight", "nw_model_set_autoencoder",
    "nw_store_create", "nw_store_put", "nw_store_remove",
    "nw_node_write_deriver_create", "nw_deriver_requirements", "nw_deriver_output_shape",
    "nw_deriver_derive", "nw_deriver_derive_vector", "nw_node_write", "nw_node_write_vectors", "scenario",
    "nw_node_write_sized", "nw_node_type_index_count", "nw_node_writes", "nw_set/get_num_threads", "nw_dst_name",
    "nw_dst_from_name", "nw_derive", "nw_node_write_to_direction", "nw_model_vocab_size", "nw_token_writes",
    "nw_token_writes_top_k", "nw_model_set_weight (no layer)", "nw_store_put (resid.delta)",
    "nw_*_info_get", "nw_saelens_hook_find", "nw_model_*_get (slot)", "nw_thread_call_count",
    "nw_model_set/get_causal", "nw_model_remove_autoencoder",
    "nw_model_set/get_mlp_activation", "nw_model_set/get_layer_norm_epsilon", "nw_model_*_read"};

/* NULL-pointer bits */
enum {
    NU_MODEL = 1, NU_STORE = 2, NU_NODE = 4, NU_OUT = 8, NU_TOKEN = 16, NU_DERIVER = 32,
    NU_COUNT = 64, NU_NAME = 128, NU_DIMS = 256, NU_VIEW = 512, NU_DATA = 1024, NU_SHAPE = 2048
};

/* view mutations */
enum { VM_NONE, VM_DTYPE, VM_NDIM, VM_SHAPE, VM_STRIDE, VM_HUGE, VM_ZERO_STRIDES };

/* capacity modes */
enum { CAP_REL, CAP_ABS, CAP_MAX };

enum { STAGE_CALL, STAGE_CREATE };

typedef struct row {
    const char *what;
    int fn;
    unsigned fx;             /* fixture flags */
    int tg, tl;              /* target tensor and layer (view faults, injections, absence) */
    int32_t e0, e1, e2, e3;  /* enum / integer arguments (see each function) */
    nw_node_index node;
    unsigned nulls;
    int vm, vi;              /* view mutation and its axis */
    int64_t vv;              /* its value */
    int32_t vdtype;          /* dtype of the target view (and its data) */
    int vlayout;             /* layout of the target view */
    int32_t fdtype;          /* dtype of every other fixture tensor */
    int flayout;             /* layout of every other fixture tensor */
    int cap_mode;
    int64_t cap;             /* capacity delta (CAP_REL) or absolute value (CAP_ABS) */
    nw_model_dims dims;      /* F_MODEL_CREATE */
    const char *str;         /* names */
    int64_t inj_at;          /* injection: flat index in the target's canonical data */
    double inj;              /* injected value (0 = none unless inj_set) */
    int inj_set;
    int nn, k;               /* node_write_vectors: n_nodes, position of the row's node */
    int stage;               /* where the failure is expected (derive-type rows) */
    nw_status expect;
    nw_status alt;           /* also accepted (oversize rows), 0 = none */
    int post_set;            /* expected status of the dependent derive after the call */
    nw_status post;
    int (*scenario)(void *ctx);
    char namebuf[112];
    /* exports of 1.1 */
    int32_t xtype, xlayer;   /* node set: node type and layer; F_DERIVE_DST: dst (xtype), layer */
    uint32_t xflags;         /* F_DERIVE_DST: flags (NW_OUT_ZEROED: out is zero-filled before the call) */
    size_t xn, xk;           /* n_nodes, n_indices */
    int64_t ix[24];          /* indices[n_nodes][n_indices] (as many as fit) */
    int xix;                 /* ix given explicitly (else generated from valid fillers) */
    int dir;                 /* direction kind (enum dirk) */
    int32_t dirdtype;        /* its dtype */
    int dirlayout;           /* its layout */
    int64_t topk;
    int32_t largest;
    unsigned xfx;            /* extra fixture flags (XF_*) */
} row;

#define NODE(t, l, n, r, a, b, c, d) ((nw_node_index){.node_type = (t), .layer = (l), .n_indices = (n), .reserved = (r), .indices = {(a), (b), (c), (d)}})
#define N_MLP(l, t, n) NODE(NW_NODE_MLP_NEURON, l, 2, 0, t, n, 0, 0)
#define N_ATT(l, q, k, h) NODE(NW_NODE_ATTENTION_HEAD, l, 3, 0, q, k, h, 0)
#define N_LAT(ty, l, t, i) NODE(ty, l, 2, 0, t, i, 0, 0)
#define N_AE(l, t, i) N_LAT(NW_NODE_AUTOENCODER_LATENT, l, t, i)
#define N_MAE(l, t, i) N_LAT(NW_NODE_MLP_AUTOENCODER_LATENT, l, t, i)
#define N_AAE(l, t, i) N_LAT(NW_NODE_ATTENTION_AUTOENCODER_LATENT, l, t, i)

/* the node that depends on a tensor (for post-checks) */
static nw_node_index dependent_node(int tg, int L) {
    switch (tg) {
    case TG_WMLP: case TG_POST: return N_MLP(L, 1, 2);
    case TG_WATT: case TG_QK: case TG_V: return N_ATT(L, 2, 1, 1);
    case TG_DEC0: case TG_LAT0: return N_AE(L, 1, 3);
    case TG_DEC1: case TG_LAT1: return N_MAE(L, 1, 3);
    default: return N_AAE(L, 1, 3);
    }
}

/* --------------------------------------------------------------- checks */

typedef struct ctx {
    const row *r;
    fixture fx;
    int failed;
    char why[400];
    char msg[300];
    /* exports of 1.1: the layer-less weights, resid.delta activations, the direction */
    double *unemb, *gain, *delta[2][NL], *dir;
} ctx;

static void failf(ctx *c, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
}
#define CHECK(c, cond, ...) do { if (!(cond)) failf((c), __VA_ARGS__); } while (0)

static int status_ok_for(const row *r, nw_status st) {
    return st == r->expect || (r->alt != 0 && st == r->alt);
}

/* the status and message of a call */
static void check_status(ctx *c, const char *call, nw_status st) {
    const row *r = c->r;
    const char *m = nw_last_error_message();
    if (!m) { failf(c, "%s: nw_last_error_message() returned NULL", call); return; }
    snprintf(c->msg, sizeof c->msg, "%s", m);
    if (!status_ok_for(r, st)) {
        failf(c, "%s returned %s (%d), expected %s%s%s [message: \"%s\"]", call, nw_status_string(st), st,
              nw_status_string(r->expect), r->alt ? " or " : "", r->alt ? nw_status_string(r->alt) : "", m);
        return;
    }
    if (st != NW_OK) CHECK(c, m[0] != '\0', "%s failed with %s but nw_last_error_message() is empty", call,
                           nw_status_string(st));
}

static const unsigned char SENT = 0xA5;
static int untouched(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) if (b[i] != SENT) return 0;
    return 1;
}

/* ------------------------------------------------------- fixture setup */

static int view_for(ctx *c, int tg, int L, int32_t dtype, int layout, int mutate, nwt_view **out) {
    fixture *fx = &c->fx;
    const row *r = c->r;
    nwt_view *v = fx_newview(fx);
    if (layout == NWT_BCAST0) nwt_bcast0(fx->canon[tg][L], fx->ndim[tg], fx->shape[tg][L]);
    int64_t n = fx_count(fx, tg, L);
    if (mutate && r->vm == VM_ZERO_STRIDES && r->vv == 0) /* one element seen everywhere */
        for (int64_t i = 1; i < n; i++) fx->canon[tg][L][i] = fx->canon[tg][L][0];
    /* data is stored in dtype and computed in float32: the reference sees those values */
    for (int64_t i = 0; i < n; i++) fx->canon[tg][L][i] = (double)(float)nwt_round_to(dtype, fx->canon[tg][L][i]);
    if (nwt_view_build(v, fx->canon[tg][L], fx->ndim[tg], fx->shape[tg][L], dtype, layout, 256) != 0) return -1;
    if (mutate) {
        switch (r->vm) {
        case VM_DTYPE: v->v.dtype = (int32_t)r->vv; break;
        case VM_NDIM: v->v.ndim = (int32_t)r->vv; break;
        case VM_SHAPE: v->shape[r->vi] = r->vv; break;
        case VM_STRIDE:
            if (!v->v.strides) v->v.strides = v->strides;
            v->strides[r->vi] = r->vv;
            break;
        case VM_HUGE: /* a huge extent on one axis, truthful: stride 0 there */
            v->v.strides = v->strides;
            v->shape[r->vi] = r->vv;
            v->strides[r->vi] = 0;
            break;
        case VM_ZERO_STRIDES: /* every stride 0, shape as given: one element, truthful */
            v->v.strides = v->strides;
            for (int i = 0; i < 4; i++) v->strides[i] = 0;
            if (r->vv) v->shape[r->vi] = r->vv;
            break;
        default: break;
        }
        if (r->nulls & NU_DATA) v->v.data = NULL;
        if (r->nulls & NU_SHAPE) v->v.shape = NULL;
    }
    *out = v;
    return 0;
}

static nw_status set_tensor(fixture *fx, int tg, int L, const nw_tensor_view *v, int32_t own) {
    switch (tg) {
    case TG_WMLP: return nw_model_set_weight(fx->model, NW_WEIGHT_MLP_TO_RESIDUAL, L, v, own);
    case TG_WATT: return nw_model_set_weight(fx->model, NW_WEIGHT_ATTN_TO_RESIDUAL, L, v, own);
    case TG_DEC0: case TG_DEC1: case TG_DEC2: {
        int k = tg - TG_DEC0;
        return nw_model_set_autoencoder(fx->model, NW_NODE_AUTOENCODER_LATENT + k, L, fx->aein[k][L], v, own);
    }
    default: return nw_store_put(fx->store, tg_activation(tg), L, v);
    }
}

/* Builds the fixture. The row's target is built with the row's view spec and
 * mutation when the row is not itself a call on that tensor. */
static int fx_setup(ctx *c) {
    fixture *fx = &c->fx;
    const row *r = c->r;
    fx->T = TT;
    fx->Tk = (r->fx & FX_TK4) ? 4 : TT;
    fx->seed = 12345;
    fx->noncausal = (r->fx & FX_NONCAUSAL) != 0;
    memcpy(fx->nlat, NLAT0, sizeof fx->nlat);
    memcpy(fx->aein, AEIN0, sizeof fx->aein);
    nw_model_dims dims = {NL, DM, NH, DH, DFF};
    nw_status st = nw_model_create(&dims, &fx->model);
    if (st != NW_OK) { failf(c, "setup: nw_model_create: %s", nw_status_string(st)); return -1; }
    if (fx->noncausal && (st = nw_model_set_causal(fx->model, 0)) != NW_OK) {
        failf(c, "setup: nw_model_set_causal: %s", nw_status_string(st));
        return -1;
    }
    st = nw_store_create(&fx->store);
    if (st != NW_OK) { failf(c, "setup: nw_store_create: %s", nw_status_string(st)); return -1; }
    int call_on_target = r->fn == F_SET_WEIGHT || r->fn == F_SET_AE || r->fn == F_STORE_PUT;
    for (int tg = TG_WMLP; tg < TG_N; tg++) {
        for (int L = 0; L < NL; L++) {
            fx_gen(fx, tg, L, 0);
            int is_target = tg == r->tg && L == r->tl;
            if (r->inj_set && is_target) fx->canon[tg][L][r->inj_at] = r->inj;
            if (tg_is_weight(tg) && (r->fx & FX_EMPTY_MODEL)) continue;
            if (!tg_is_weight(tg) && (r->fx & FX_EMPTY_STORE)) continue;
            if (is_target && (r->fx & FX_ABSENT)) continue;
            int mutate = is_target && !call_on_target;
            int32_t dt = mutate ? r->vdtype : r->fdtype;
            int lay = mutate ? r->vlayout : r->flayout;
            nwt_view *v;
            if (view_for(c, tg, L, dt, lay, mutate, &v) != 0) { failf(c, "setup: out of memory"); return -1; }
            st = set_tensor(fx, tg, L, &v->v, (r->fx & FX_BORROW) ? NW_BORROW : NW_COPY);
            if (st != NW_OK) {
                failf(c, "setup: setting %s[%d] failed: %s (%s)", TG_NAME[tg], L, nw_status_string(st),
                      nw_last_error_message());
                return -1;
            }
            fx->present[tg][L] = 1;
        }
    }
    if (!call_on_target && r->vm == VM_HUGE && r->vi == 0 &&
        (r->tg == TG_POST || r->tg == TG_QK || r->tg >= TG_LAT0)) {
        fx->T = r->vv;
        fx->tok_bcast = 1;
    }
    return 0;
}

static void fx_teardown(fixture *fx) {
    nw_store_destroy(fx->store);
    nw_model_destroy(fx->model);
    for (int i = 0; i < fx->nviews; i++) nwt_view_free(&fx->views[i]);
    for (int tg = 0; tg < TG_N; tg++)
        for (int L = 0; L < NL; L++) free(fx->canon[tg][L]);
}

/* --------------------------------------------------------- reference */

static int64_t resolve(int64_t i, int64_t n) { return i < 0 ? i + n : i; }

/* reference write vector and token row of a valid node, from the fixture */
static void ref_node(const fixture *fx, const nw_node_index *nd, double *vec, int64_t *tok) {
    int L = nd->layer;
    nwt_ref_in in = {DM, NH, DH, DFF, fx->T, fx->Tk, 0, 0,
                     fx->canon[TG_WMLP][L], fx->canon[TG_WATT][L], NULL,
                     fx->canon[TG_POST][L], fx->canon[TG_QK][L], fx->canon[TG_V][L], NULL, !fx->noncausal};
    int64_t ix[3];
    if (nd->node_type == NW_NODE_MLP_NEURON) {
        ix[0] = resolve(nd->indices[0], fx->T);
        ix[1] = resolve(nd->indices[1], DFF);
    } else if (nd->node_type == NW_NODE_ATTENTION_HEAD) {
        ix[0] = resolve(nd->indices[0], fx->T);
        ix[1] = resolve(nd->indices[1], fx->Tk);
        ix[2] = resolve(nd->indices[2], NH);
    } else {
        int k = nd->node_type - NW_NODE_AUTOENCODER_LATENT;
        in.n_lat = fx->nlat[k][L];
        in.ae_input = fx->aein[k][L];
        in.dec = fx->canon[TG_DEC0 + k][L];
        in.lat = fx->canon[TG_LAT0 + k][L];
        ix[0] = resolve(nd->indices[0], fx->T);
        ix[1] = resolve(nd->indices[1], in.n_lat);
    }
    *tok = ix[0];
    if (fx->tok_bcast) ix[0] = 0; /* stride 0 on the token axis: every token reads row 0 */
    nwt_ref_vec(&in, nd->node_type, ix, vec);
}

static double maxabs(const double *v, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) if (isfinite(v[i]) && fabs(v[i]) > m) m = fabs(v[i]);
    return m;
}

static void compare_vec(ctx *c, const char *what, const float *got, const double *want) {
    double sc = maxabs(want, DM);
    for (int j = 0; j < DM; j++)
        if (!nwt_close(got[j], want[j], sc)) {
            failf(c, "%s: element %d is %.9g, reference %.9g", what, j, (double)got[j], want[j]);
            return;
        }
}

/* full (T, d_model) output: the token row against the reference, zeros elsewhere */
static void compare_full(ctx *c, const char *what, const float *got, const nw_node_index *nd) {
    double vec[DM];
    int64_t tok;
    ref_node(&c->fx, nd, vec, &tok);
    for (int64_t t = 0; t < c->fx.T; t++) {
        if (t == tok) {
            compare_vec(c, what, got + t * DM, vec);
        } else {
            for (int j = 0; j < DM; j++)
                if (got[t * DM + j] != 0.0f) {
                    failf(c, "%s: row %" PRId64 " (not the token row %" PRId64 ") has %.9g at %d", what, t, tok,
                          (double)got[t * DM + j], j);
                    return;
                }
        }
    }
}

/* The dependent derive after a call on (tg, L): expected status, and on OK the
 * current fixture reference. */
static void post_check(ctx *c, int tg, int L, nw_status expect) {
    if (c->failed || L < 0 || L >= NL || tg == TG_NONE) return;
    nw_node_index nd = dependent_node(tg, L);
    size_t n = (size_t)(c->fx.T * DM);
    float *out = malloc(n * sizeof(float));
    nw_status st = nw_node_write(c->fx.model, c->fx.store, &nd, out, n);
    if (st != expect)
        failf(c, "afterwards, the dependent node_write returned %s, expected %s (%s)", nw_status_string(st),
              nw_status_string(expect), nw_last_error_message());
    else if (st == NW_OK)
        compare_full(c, "afterwards, the dependent node_write", out, &nd);
    free(out);
}

/* ----------------------------------------------------- derive family */

static const nw_node_index FILLERS[3] = {
    {NW_NODE_ATTENTION_HEAD, 1, 3, 0, {2, 1, 1, 0}},
    {NW_NODE_ATTENTION_AUTOENCODER_LATENT, 1, 2, 0, {0, 6, 0, 0}},
    {NW_NODE_MLP_NEURON, 0, 2, 0, {-1, 4, 0, 0}},
};

static size_t out_len_for(const row *r, size_t needed, size_t *alloc) {
    size_t len;
    if (r->cap_mode == CAP_ABS) len = (size_t)r->cap;
    else if (r->cap_mode == CAP_MAX) len = SIZE_MAX;
    else len = (size_t)((int64_t)needed + r->cap);
    size_t a = r->cap_mode == CAP_MAX ? needed : len;
    if (r->cap_mode != CAP_ABS && a < needed) a = needed;
    *alloc = a + 16; /* guard: must stay untouched */
    return len;
}

#define SENT_PTR ((void *)(uintptr_t)0x5eed5eedu)

static void run_derive_family(ctx *c) {
    const row *r = c->r;
    fixture *fx = &c->fx;
    nw_node_index node = r->node;
    const nw_model *m = (r->nulls & NU_MODEL) ? NULL : fx->model;
    const nw_store *s = (r->nulls & NU_STORE) ? NULL : fx->store;
    const nw_node_index *np = (r->nulls & NU_NODE) ? NULL : &node;
    nw_deriver *d = NULL;

    if (r->fn == F_DERIVER_CREATE) {
        nw_deriver *dd = SENT_PTR;
        nw_status st = nw_node_write_deriver_create(m, np, (r->nulls & NU_DERIVER) ? NULL : &dd);
        check_status(c, "nw_node_write_deriver_create", st);
        if (st != NW_OK) CHECK(c, dd == SENT_PTR, "deriver out-pointer written on failure");
        else if (dd == NULL || dd == SENT_PTR) failf(c, "deriver not written on success");
        else nw_deriver_destroy(dd);
        return;
    }
    if (r->fn == F_DERIVE || r->fn == F_DERIVE_VEC || r->fn == F_REQ || r->fn == F_OUT_SHAPE) {
        nw_deriver *dd = SENT_PTR;
        nw_status st = nw_node_write_deriver_create(fx->model, &node, &dd);
        if (r->stage == STAGE_CREATE) {
            check_status(c, "nw_node_write_deriver_create", st);
            if (st != NW_OK) CHECK(c, dd == SENT_PTR, "deriver out-pointer written on failure");
            else { failf(c, "deriver creation succeeded, expected it to fail"); nw_deriver_destroy(dd); }
            return;
        }
        if (st != NW_OK) {
            failf(c, "nw_node_write_deriver_create: %s (%s), expected NW_OK", nw_status_string(st),
                  nw_last_error_message());
            return;
        }
        d = dd;
    }
    const nw_deriver *dp = (r->nulls & NU_DERIVER) ? NULL : d;

    if (r->fn == F_REQ) {
        nw_requirement req[8];
        size_t cnt;
        memset(req, SENT, sizeof req);
        memset(&cnt, SENT, sizeof cnt);
        size_t cap = r->cap_mode == CAP_MAX ? SIZE_MAX : (size_t)r->cap;
        size_t needed = node.node_type == NW_NODE_ATTENTION_HEAD ? 2 : 1;
        nw_status st = nw_deriver_requirements(dp, (r->nulls & NU_OUT) ? NULL : req, cap,
                                               (r->nulls & NU_COUNT) ? NULL : &cnt);
        check_status(c, "nw_deriver_requirements", st);
        if (st == NW_ERR_BUFFER_TOO_SMALL) {
            CHECK(c, cnt == needed, "BUFFER_TOO_SMALL must still write *count = %zu, got %zu", needed, cnt);
            CHECK(c, untouched(req, sizeof req), "requirements written although the capacity is too small");
        } else if (st != NW_OK) {
            CHECK(c, untouched(req, sizeof req) && untouched(&cnt, sizeof cnt), "outputs written on failure");
        } else {
            CHECK(c, cnt == needed, "count %zu, expected %zu", cnt, needed);
            CHECK(c, untouched(req + needed, sizeof req - needed * sizeof *req), "written past the needed entries");
            int32_t want0 = node.node_type == NW_NODE_MLP_NEURON ? NW_ACT_MLP_POST_ACT
                            : node.node_type == NW_NODE_ATTENTION_HEAD
                                ? NW_ACT_ATTN_QK_PROBS
                                : NW_ACT_ONLINE_AUTOENCODER_LATENT + (node.node_type - NW_NODE_AUTOENCODER_LATENT);
            int found0 = 0, found1 = needed < 2;
            for (size_t i = 0; i < needed && i < cnt; i++) {
                CHECK(c, req[i].layer == node.layer, "requirement %zu has layer %d", i, req[i].layer);
                if (req[i].activation == want0) found0 = 1;
                if (req[i].activation == NW_ACT_ATTN_VALUE) found1 = 1;
            }
            CHECK(c, found0 && found1, "requirements do not list the needed activations");
        }
    } else if (r->fn == F_OUT_SHAPE) {
        int64_t shape[2];
        memset(shape, SENT, sizeof shape);
        nw_status st = nw_deriver_output_shape(dp, s, (r->nulls & NU_OUT) ? NULL : shape);
        check_status(c, "nw_deriver_output_shape", st);
        if (st != NW_OK) CHECK(c, untouched(shape, sizeof shape), "shape written on failure");
        else CHECK(c, shape[0] == fx->T && shape[1] == DM, "shape (%" PRId64 ", %" PRId64 "), expected (%" PRId64
                   ", %d)", shape[0], shape[1], fx->T, DM);
    } else if (r->fn == F_DERIVE || r->fn == F_NODE_WRITE) {
        size_t needed = (size_t)(fx->T * DM), alloc;
        size_t len = out_len_for(r, needed, &alloc);
        float *out = malloc(alloc * sizeof(float));
        memset(out, SENT, alloc * sizeof(float));
        float *op = (r->nulls & NU_OUT) ? NULL : out;
        nw_status st;
        const char *name;
        if (r->fn == F_DERIVE) { name = "nw_deriver_derive"; st = nw_deriver_derive(dp, s, op, len); }
        else { name = "nw_node_write"; st = nw_node_write(m, s, np, op, len); }
        check_status(c, name, st);
        if (st != NW_OK) CHECK(c, untouched(out, alloc * sizeof(float)), "%s wrote to out on failure", name);
        else if (alloc - 16 < needed) failf(c, "%s returned NW_OK with out_len < T*d_model", name);
        else {
            compare_full(c, name, out, &node);
            CHECK(c, untouched(out + needed, (alloc - needed) * sizeof(float)), "%s wrote past T*d_model", name);
        }
        free(out);
    } else if (r->fn == F_DERIVE_VEC) {
        size_t needed = DM, alloc;
        size_t len = out_len_for(r, needed, &alloc);
        float *out = malloc(alloc * sizeof(float));
        memset(out, SENT, alloc * sizeof(float));
        int64_t tok;
        memset(&tok, SENT, sizeof tok);
        nw_status st = nw_deriver_derive_vector(dp, s, (r->nulls & NU_OUT) ? NULL : out, len,
                                                (r->nulls & NU_TOKEN) ? NULL : &tok);
        check_status(c, "nw_deriver_derive_vector", st);
        if (st != NW_OK) {
            CHECK(c, untouched(out, alloc * sizeof(float)) && untouched(&tok, sizeof tok),
                  "nw_deriver_derive_vector wrote on failure");
        } else {
            double vec[DM];
            int64_t rt;
            ref_node(fx, &node, vec, &rt);
            compare_vec(c, "nw_deriver_derive_vector", out, vec);
            CHECK(c, untouched(out + needed, (alloc - needed) * sizeof(float)), "wrote past d_model");
            if (r->nulls & NU_TOKEN) CHECK(c, untouched(&tok, sizeof tok), "token_row written though NULL");
            else CHECK(c, tok == rt, "token_row %" PRId64 ", expected %" PRId64, tok, rt);
        }
        free(out);
    } else if (r->fn == F_NODE_WRITE_VECS) {
        int nn = r->nn;
        nw_node_index nodes[8];
        for (int i = 0; i < nn; i++) nodes[i] = i == r->k ? node : FILLERS[i % 3];
        size_t needed = (size_t)nn * DM, alloc;
        size_t len = out_len_for(r, needed, &alloc);
        float *out = malloc(alloc * sizeof(float));
        memset(out, SENT, alloc * sizeof(float));
        int64_t toks[10];
        memset(toks, SENT, sizeof toks);
        nw_status st = nw_node_write_vectors(m, s, (r->nulls & NU_NODE) ? NULL : nodes, (size_t)nn,
                                             (r->nulls & NU_OUT) ? NULL : out, len,
                                             (r->nulls & NU_TOKEN) ? NULL : toks);
        check_status(c, "nw_node_write_vectors", st);
        if (st != NW_OK) {
            CHECK(c, untouched(out, alloc * sizeof(float)) && untouched(toks, sizeof toks),
                  "nw_node_write_vectors wrote on failure");
        } else {
            for (int i = 0; i < nn; i++) {
                double vec[DM];
                int64_t rt;
                ref_node(fx, &nodes[i], vec, &rt);
                compare_vec(c, "nw_node_write_vectors", out + (size_t)i * DM, vec);
                if (!(r->nulls & NU_TOKEN)) CHECK(c, toks[i] == rt, "token_rows[%d] %" PRId64 ", expected %" PRId64,
                                                 i, toks[i], rt);
            }
            CHECK(c, untouched(out + needed, (alloc - needed) * sizeof(float)), "wrote past n_nodes*d_model");
            CHECK(c, untouched(toks + nn, sizeof toks - (size_t)nn * sizeof *toks), "wrote past token_rows[n_nodes]");
        }
        free(out);
    }
    nw_deriver_destroy(d);
}

/* ------------------------------------------------------ model / store calls */

static void run_set(ctx *c) {
    const row *r = c->r;
    fixture *fx = &c->fx;
    int tg = r->tg, L = r->tl;
    /* One autoencoder per slot: a row that sets its own slot empties it first (a caller replacing
       an autoencoder must), unless it tests the occupied slot (FX_OCCUPIED). */
    if (r->fn == F_SET_AE && !(r->fx & FX_OCCUPIED) && !(r->nulls & NU_MODEL) && tg >= TG_DEC0 && tg <= TG_DEC2 &&
        r->e0 == NW_NODE_AUTOENCODER_LATENT + (tg - TG_DEC0) && r->e1 == L && fx->present[tg][L]) {
        nw_status st = nw_model_remove_autoencoder(fx->model, r->e0, r->e1);
        if (st != NW_OK) { failf(c, "setup: nw_model_remove_autoencoder: %s", nw_status_string(st)); return; }
        fx->present[tg][L] = 0;
    }
    /* the old state, to compare against on failure */
    nw_status old_post = fx->present[tg][L] ? NW_OK : NW_ERR_MISSING_INPUT;
    double *old = fx->canon[tg][L];
    int64_t old_nlat[NLATK][NL];
    int32_t old_aein[NLATK][NL];
    memcpy(old_nlat, fx->nlat, sizeof old_nlat);
    memcpy(old_aein, fx->aein, sizeof old_aein);
    /* the new tensor */
    fx->canon[tg][L] = NULL;
    if (r->fn == F_SET_AE && (r->e3 == NW_AE_INPUT_MLP_POST_ACT || r->e3 == NW_AE_INPUT_RESIDUAL))
        fx->aein[tg - TG_DEC0][L] = r->e3;
    fx_gen(fx, tg, L, 1);
    if (r->inj_set) fx->canon[tg][L][r->inj_at] = r->inj;
    nwt_view *v;
    if (view_for(c, tg, L, r->vdtype, r->vlayout, 1, &v) != 0) { failf(c, "out of memory"); free(old); return; }
    const nw_tensor_view *vp = (r->nulls & NU_VIEW) ? NULL : &v->v;
    nw_model *m = (r->nulls & NU_MODEL) ? NULL : fx->model;
    nw_status st;
    const char *name;
    if (r->fn == F_SET_WEIGHT) {
        name = "nw_model_set_weight";
        st = nw_model_set_weight(m, r->e0, r->e1, vp, r->e2);
    } else if (r->fn == F_SET_AE) {
        name = "nw_model_set_autoencoder";
        st = nw_model_set_autoencoder(m, r->e0, r->e1, r->e3, vp, r->e2);
    } else {
        name = "nw_store_put";
        st = nw_store_put((r->nulls & NU_STORE) ? NULL : fx->store, r->e0, r->e1, vp);
    }
    check_status(c, name, st);
    if (c->failed) { free(old); return; }
    if (st != NW_OK || r->e1 != r->tl) { /* failed, or set another slot: the target is as before */
        /* nothing changed: the old data answers */
        free(fx->canon[tg][L]);
        fx->canon[tg][L] = old;
        memcpy(fx->nlat, old_nlat, sizeof old_nlat);
        memcpy(fx->aein, old_aein, sizeof old_aein);
        fx_shape(fx, tg, L);
        post_check(c, tg, L, old_post);
    } else {
        free(old);
        fx->present[tg][L] = 1;
        post_check(c, tg, L, r->post_set ? r->post : NW_OK);
    }
}

static void run_remove(ctx *c) {
    const row *r = c->r;
    fixture *fx = &c->fx;
    nw_status st = nw_store_remove((r->nulls & NU_STORE) ? NULL : fx->store, r->e0, r->e1);
    check_status(c, "nw_store_remove", st);
    int tg = act_tg(r->e0);
    if (tg != TG_NONE && r->e1 >= 0 && r->e1 < NL) {
        int gone = st == NW_OK && fx->present[tg][r->e1];
        post_check(c, tg, r->e1, gone ? NW_ERR_MISSING_INPUT : (fx->present[tg][r->e1] ? NW_OK : NW_ERR_MISSING_INPUT));
    }
}

/* nw_model_set_causal / nw_model_get_causal (F_CAUSAL: e1 = 0 set e0, then get; e1 = 1 get only) and
   nw_model_remove_autoencoder (F_REMOVE_AE: e0 node type, e1 layer). */
static void run_slots(ctx *c) {
    const row *r = c->r;
    fixture *fx = &c->fx;
    nw_model *m = (r->nulls & NU_MODEL) ? NULL : fx->model;
    if (r->fn == F_CAUSAL) {
        nw_status st = NW_OK;
        if (r->e1 == 0) {
            st = nw_model_set_causal(m, r->e0);
            check_status(c, "nw_model_set_causal", st);
        }
        int32_t got;
        memset(&got, SENT, sizeof got);
        nw_status gs = nw_model_get_causal(m, (r->nulls & NU_OUT) ? NULL : &got);
        if (r->e1 == 1) check_status(c, "nw_model_get_causal", gs);
        if (c->failed || gs != NW_OK) {
            CHECK(c, untouched(&got, sizeof got), "nw_model_get_causal wrote out on failure");
            return;
        }
        int32_t want = r->e1 == 0 && st == NW_OK ? r->e0 : !fx->noncausal;
        CHECK(c, got == want, "nw_model_get_causal gives %d, expected %d", got, want);
        /* the dependent attention write follows the model's causality (the pattern is the fixture's) */
        post_check(c, TG_QK, 1, want == 1 && fx->noncausal ? NW_ERR_INVALID_ARGUMENT : NW_OK);
        return;
    }
    nw_status st = nw_model_remove_autoencoder(m, r->e0, r->e1);
    check_status(c, "nw_model_remove_autoencoder", st);
    int k = r->e0 - NW_NODE_AUTOENCODER_LATENT;
    if (c->failed || k < 0 || k >= NLATK || r->e1 < 0 || r->e1 >= NL) return;
    int present = fx->present[TG_DEC0 + k][r->e1];
    if (st == NW_OK) fx->present[TG_DEC0 + k][r->e1] = 0;
    post_check(c, TG_DEC0 + k, r->e1, st == NW_OK || !present ? NW_ERR_MISSING_INPUT : NW_OK);
}

/* nw_model_set/get_mlp_activation (F_ACT_FN) and nw_model_set/get_layer_norm_epsilon (F_LN_EPS,
   the value LN_EPS[e0]): e1 = 0 set, then get; e1 = 1 get only (a new model's default). A failed
   set leaves the model's value as it was; a failed get leaves out untouched. */
static const double LN_EPS[] = {1e-5, 1e-12, 0.5, 0.0, -1e-5, 1e-50, 1e300};
enum { LN_EPS_NAN = 7, LN_EPS_INF = 8 };
static void run_facts(ctx *c) {
    const row *r = c->r;
    fixture *fx = &c->fx;
    nw_model *m = (r->nulls & NU_MODEL) ? NULL : fx->model;
    if (r->fn == F_ACT_FN) {
        nw_status st = NW_OK;
        if (r->e1 == 0) {
            st = nw_model_set_mlp_activation(m, r->e0);
            check_status(c, "nw_model_set_mlp_activation", st);
        }
        int32_t got;
        memset(&got, SENT, sizeof got);
        nw_status gs = nw_model_get_mlp_activation(m, (r->nulls & NU_OUT) ? NULL : &got);
        if (r->e1 == 1) check_status(c, "nw_model_get_mlp_activation", gs);
        if (c->failed || gs != NW_OK) {
            CHECK(c, untouched(&got, sizeof got), "nw_model_get_mlp_activation wrote out on failure");
            return;
        }
        int32_t want = r->e1 == 0 && st == NW_OK ? r->e0 : NW_ACT_FN_GELU_TANH;
        CHECK(c, got == want, "nw_model_get_mlp_activation gives %d, expected %d", got, want);
        return;
    }
    double e = r->e0 == LN_EPS_NAN ? NAN : r->e0 == LN_EPS_INF ? INFINITY : LN_EPS[r->e0];
    nw_status st = NW_OK;
    if (r->e1 == 0) {
        st = nw_model_set_layer_norm_epsilon(m, e);
        check_status(c, "nw_model_set_layer_norm_epsilon", st);
    }
    double got;
    memset(&got, SENT, sizeof got);
    nw_status gs = nw_model_get_layer_norm_epsilon(m, (r->nulls & NU_OUT) ? NULL : &got);
    if (r->e1 == 1) check_status(c, "nw_model_get_layer_norm_epsilon", gs);
    if (c->failed || gs != NW_OK) {
        CHECK(c, untouched(&got, sizeof got), "nw_model_get_layer_norm_epsilon wrote out on failure");
        return;
    }
    double want = r->e1 == 0 && st == NW_OK ? e : 1e-5;
    CHECK(c, got == want, "nw_model_get_layer_norm_epsilon gives %g, expected %g", got, want);
}

static void run_model_create(ctx *c) {
    const row *r = c->r;
    nw_model *m = SENT_PTR;
    nw_status st = nw_model_create((r->nulls & NU_DIMS) ? NULL : &r->dims, (r->nulls & NU_OUT) ? NULL : &m);
    check_status(c, "nw_model_create", st);
    if (st != NW_OK) { CHECK(c, m == SENT_PTR, "model out-pointer written on failure"); return; }
    if (m == NULL || m == SENT_PTR) { failf(c, "model not written on success"); return; }
    nw_model_dims got;
    st = nw_model_dims_get(m, &got);
    CHECK(c, st == NW_OK && memcmp(&got, &r->dims, sizeof got) == 0, "nw_model_dims_get disagrees with the dims given");
    nw_model_destroy(m);
}

static void run_dims_get(ctx *c) {
    const row *r = c->r;
    nw_model_dims got;
    memset(&got, SENT, sizeof got);
    nw_status st = nw_model_dims_get((r->nulls & NU_MODEL) ? NULL : c->fx.model, (r->nulls & NU_OUT) ? NULL : &got);
    check_status(c, "nw_model_dims_get", st);
    if (st != NW_OK) CHECK(c, untouched(&got, sizeof got), "dims written on failure");
    else CHECK(c, got.n_layers == NL && got.d_model == DM && got.n_heads == NH && got.d_head == DH && got.d_ff == DFF,
               "dims wrong");
}

static void run_store_create(ctx *c) {
    const row *r = c->r;
    nw_store *s = SENT_PTR;
    nw_status st = nw_store_create((r->nulls & NU_OUT) ? NULL : &s);
    check_status(c, "nw_store_create", st);
    if (st != NW_OK) CHECK(c, s == SENT_PTR, "store out-pointer written on failure");
    else { CHECK(c, s && s != SENT_PTR, "store not written"); if (s && s != SENT_PTR) nw_store_destroy(s); }
}

/* --------------------------------------------------------------- names */

static const char *name_of(int kind, int32_t v) {
    switch (kind) {
    case 0: return nw_node_type_name(v);
    case 1: return nw_activation_name(v);
    case 2: return nw_weight_name(v);
    default: return nw_dtype_name(v);
    }
}

static void run_names(ctx *c) {
    const row *r = c->r;
    if (r->fn == F_STATUS_STRING) {
        const char *s = nw_status_string(r->e0);
        CHECK(c, s && strcmp(s, r->str) == 0, "nw_status_string(%d) = \"%s\", expected \"%s\"", r->e0, s ? s : "(null)",
              r->str);
    } else if (r->fn == F_NAME) {
        const char *s = name_of(r->e0, r->e1);
        if (r->str == NULL) CHECK(c, s == NULL, "name of unknown value %d is \"%s\", expected NULL", r->e1, s);
        else CHECK(c, s && strcmp(s, r->str) == 0, "name of %d is \"%s\", expected \"%s\"", r->e1, s ? s : "(null)",
                   r->str);
    } else if (r->fn == F_FROM_NAME) {
        int32_t out;
        memset(&out, SENT, sizeof out);
        const char *nm = (r->nulls & NU_NAME) ? NULL : r->str;
        int32_t *op = (r->nulls & NU_OUT) ? NULL : &out;
        nw_status st;
        switch (r->e0) {
        case 0: st = nw_node_type_from_name(nm, op); break;
        case 1: st = nw_activation_from_name(nm, op); break;
        case 2: st = nw_weight_from_name(nm, op); break;
        case 3: st = nw_dtype_from_name(nm, op); break;
        default: st = nw_autoencoder_input_from_name(nm, op); break;
        }
        check_status(c, "nw_*_from_name", st);
        if (st != NW_OK) CHECK(c, untouched(&out, sizeof out), "*out written on failure");
        else CHECK(c, out == r->e1, "value %d, expected %d", out, r->e1);
    } else if (r->fn == F_VERSION) {
        CHECK(c, nw_abi_version() == NW_ABI_VERSION, "nw_abi_version() %u != NW_ABI_VERSION", nw_abi_version());
        const char *v = nw_version_string();
        CHECK(c, v && strcmp(v, NW_VERSION_STRING) == 0, "nw_version_string() \"%s\"", v ? v : "(null)");
        const char *m = nw_last_error_message();
        CHECK(c, m && m[0] == '\0', "nw_last_error_message() on a fresh thread is not \"\"");
        nw_model_destroy(NULL);
        nw_store_destroy(NULL);
        nw_store_clear(NULL);
        nw_deriver_destroy(NULL);
    }
}

/* ------------------------------------------------------------ scenarios */

/* each returns the status of its last call; failures via failf */
static int sc_deriver_outlives_model(void *p) {
    ctx *c = p;
    nw_node_index nd = N_ATT(1, 2, 0, 1);
    nw_deriver *d;
    nw_status st = nw_node_write_deriver_create(c->fx.model, &nd, &d);
    if (st != NW_OK) return st;
    nw_model_destroy(c->fx.model);
    c->fx.model = NULL;
    float out[TT * DM];
    st = nw_deriver_derive(d, c->fx.store, out, TT * DM);
    if (st == NW_OK) compare_full(c, "derive after nw_model_destroy", out, &nd);
    nw_deriver_destroy(d);
    return st;
}

static int sc_deriver_captures_weights(void *p) {
    ctx *c = p;
    fixture *fx = &c->fx;
    nw_node_index nd = N_MLP(0, 2, 3);
    nw_deriver *d;
    nw_status st = nw_node_write_deriver_create(fx->model, &nd, &d);
    if (st != NW_OK) return st;
    double *old = fx->canon[TG_WMLP][0];
    fx->canon[TG_WMLP][0] = NULL;
    fx_gen(fx, TG_WMLP, 0, 7);
    nwt_view *v = fx_newview(fx);
    nwt_view_build(v, fx->canon[TG_WMLP][0], 2, fx->shape[TG_WMLP][0], NW_DTYPE_F32, NWT_CONTIG_NULL, 0);
    st = nw_model_set_weight(fx->model, NW_WEIGHT_MLP_TO_RESIDUAL, 0, &v->v, NW_COPY);
    if (st != NW_OK) { free(old); return st; }
    float out[TT * DM];
    st = nw_node_write(fx->model, fx->store, &nd, out, TT * DM); /* the new weight */
    if (st == NW_OK) compare_full(c, "node_write with the new weight", out, &nd);
    double *neu = fx->canon[TG_WMLP][0];
    fx->canon[TG_WMLP][0] = old;
    st = nw_deriver_derive(d, fx->store, out, TT * DM); /* the deriver keeps the old one */
    if (st == NW_OK) compare_full(c, "derive of a deriver created before set_weight", out, &nd);
    fx->canon[TG_WMLP][0] = neu;
    free(old);
    nw_deriver_destroy(d);
    return st;
}

static int sc_store_clear(void *p) {
    ctx *c = p;
    nw_node_index nd = N_MAE(0, 0, 5);
    nw_deriver *d;
    nw_status st = nw_node_write_deriver_create(c->fx.model, &nd, &d);
    if (st != NW_OK) return st;
    nw_store_clear(c->fx.store);
    int64_t shape[2];
    memset(shape, SENT, sizeof shape);
    st = nw_deriver_output_shape(d, c->fx.store, shape);
    CHECK(c, untouched(shape, sizeof shape), "shape written on failure");
    CHECK(c, st == NW_OK || nw_last_error_message()[0] != '\0', "no message");
    nw_deriver_destroy(d);
    return st;
}

static int sc_remove_put_back(void *p) {
    ctx *c = p;
    fixture *fx = &c->fx;
    nw_node_index nd = N_ATT(0, 1, 1, 0);
    nw_status st = nw_store_remove(fx->store, NW_ACT_ATTN_VALUE, 0);
    if (st != NW_OK) return st;
    float out[TT * DM];
    memset(out, SENT, sizeof out);
    st = nw_node_write(fx->model, fx->store, &nd, out, TT * DM);
    CHECK(c, st == NW_ERR_MISSING_INPUT, "node_write without attn.v: %s", nw_status_string(st));
    CHECK(c, untouched(out, sizeof out), "written on failure");
    nwt_view *v = fx_newview(fx);
    nwt_view_build(v, fx->canon[TG_V][0], 3, fx->shape[TG_V][0], NW_DTYPE_F32, NWT_NEGALL, 0);
    st = nw_store_put(fx->store, NW_ACT_ATTN_VALUE, 0, &v->v);
    if (st != NW_OK) return st;
    st = nw_node_write(fx->model, fx->store, &nd, out, TT * DM);
    if (st == NW_OK) compare_full(c, "node_write after putting attn.v back", out, &nd);
    return st;
}

static int sc_two_models_one_store(void *p) {
    ctx *c = p;
    fixture *fx = &c->fx;
    /* a second model with the same dims, only the MLP weight (borrowed) */
    nw_model_dims dims = {NL, DM, NH, DH, DFF};
    nw_model *m2;
    nw_status st = nw_model_create(&dims, &m2);
    if (st != NW_OK) return st;
    nwt_view *v = fx_newview(fx);
    nwt_view_build(v, fx->canon[TG_WMLP][1], 2, fx->shape[TG_WMLP][1], NW_DTYPE_BF16, NWT_TRANSPOSED, 0);
    for (int64_t i = 0; i < DFF * DM; i++)
        fx->canon[TG_WMLP][1][i] = nwt_round_to(NW_DTYPE_BF16, fx->canon[TG_WMLP][1][i]);
    st = nw_model_set_weight(m2, NW_WEIGHT_MLP_TO_RESIDUAL, 1, &v->v, NW_BORROW);
    if (st == NW_OK) {
        nw_node_index nd = N_MLP(1, -3, -5);
        float out[TT * DM];
        st = nw_node_write(m2, fx->store, &nd, out, TT * DM);
        if (st == NW_OK) compare_full(c, "node_write on a second model", out, &nd);
        nw_node_index na = N_ATT(1, 0, 0, 0);
        memset(out, SENT, sizeof out);
        nw_status s2 = nw_node_write(m2, fx->store, &na, out, TT * DM);
        CHECK(c, s2 == NW_ERR_MISSING_INPUT, "attention on a model without attn weight: %s", nw_status_string(s2));
        CHECK(c, untouched(out, sizeof out), "written on failure");
    }
    nw_model_destroy(m2);
    return st;
}

/* Weights that would not fit in memory: NW_COPY must refuse before
 * allocating; NW_BORROW keeps the (truthful, stride-0) view and derives. */
static int sc_huge_weight(void *p) {
    ctx *c = p;
    const int64_t dm = 1 << 16, dff = (int64_t)1 << 30; /* 2^46 floats = 256 TiB */
    nw_model_dims dims = {1, dm, 1, 1, dff};
    nw_model *m;
    nw_status st = nw_model_create(&dims, &m);
    if (st != NW_OK) { failf(c, "nw_model_create of huge dims: %s", nw_status_string(st)); return st; }
    float w = 0.75f, a = -2.0f;
    int64_t wshape[2] = {dff, dm}, wst[2] = {0, 0};
    nw_tensor_view wv = {&w, NW_DTYPE_F32, 2, wshape, wst};
    st = nw_model_set_weight(m, NW_WEIGHT_MLP_TO_RESIDUAL, 0, &wv, NW_COPY);
    CHECK(c, st == NW_ERR_OUT_OF_MEMORY || st == NW_ERR_INVALID_ARGUMENT,
          "NW_COPY of a 256 TiB weight returned %s", nw_status_string(st));
    CHECK(c, nw_last_error_message()[0] != '\0', "no message");
    nw_node_index nd = N_MLP(0, 0, dff - 1);
    nw_deriver *d = SENT_PTR;
    nw_status s2 = nw_node_write_deriver_create(m, &nd, &d);
    CHECK(c, s2 == NW_ERR_MISSING_INPUT && d == SENT_PTR, "after a refused NW_COPY the weight must be missing: %s",
          nw_status_string(s2));
    st = nw_model_set_weight(m, NW_WEIGHT_MLP_TO_RESIDUAL, 0, &wv, NW_BORROW);
    if (st != NW_OK) { failf(c, "NW_BORROW of a stride-0 view: %s", nw_status_string(st)); nw_model_destroy(m); return st; }
    nw_store *s;
    nw_store_create(&s);
    int64_t ashape[2] = {1, dff}, ast[2] = {0, 0};
    nw_tensor_view av = {&a, NW_DTYPE_F32, 2, ashape, ast};
    st = nw_store_put(s, NW_ACT_MLP_POST_ACT, 0, &av);
    if (st == NW_OK) st = nw_node_write_deriver_create(m, &nd, &d);
    if (st == NW_OK) {
        float *out = malloc((size_t)(dm + 16) * sizeof(float));
        memset(out, SENT, (size_t)(dm + 16) * sizeof(float));
        int64_t tok = -1;
        st = nw_deriver_derive_vector(d, s, out, (size_t)dm, &tok);
        if (st == NW_OK) {
            for (int64_t j = 0; j < dm; j++)
                if (out[j] != -1.5f) { failf(c, "huge borrowed weight: out[%" PRId64 "] = %g", j, (double)out[j]); break; }
            CHECK(c, tok == 0, "token row %" PRId64, tok);
            CHECK(c, untouched(out + dm, 16 * sizeof(float)), "wrote past d_model");
        }
        free(out);
        nw_deriver_destroy(d);
    }
    nw_store_destroy(s);
    nw_model_destroy(m);
    return st;
}

/* A store entry claiming a huge number of tokens (stride 0: truthful). */
static int sc_huge_tokens(void *p) {
    ctx *c = p;
    fixture *fx = &c->fx;
    const int64_t T = (int64_t)1 << 40;
    int64_t shape[2] = {T, DFF}, st2[2] = {0, 1};
    nwt_view *v = fx_newview(fx);
    nwt_view_build(v, fx->canon[TG_POST][1], 2, fx->shape[TG_POST][1], NW_DTYPE_F32, NWT_CONTIG, 0);
    nw_tensor_view hv = {v->v.data, NW_DTYPE_F32, 2, shape, st2};
    nw_status st = nw_store_put(fx->store, NW_ACT_MLP_POST_ACT, 1, &hv);
    if (st != NW_OK) { failf(c, "put of a (2^40, d_ff) stride-0 view: %s", nw_status_string(st)); return st; }
    nw_node_index nd = N_MLP(1, -1, 2);
    nw_deriver *d;
    st = nw_node_write_deriver_create(fx->model, &nd, &d);
    if (st != NW_OK) return st;
    int64_t os[2];
    st = nw_deriver_output_shape(d, fx->store, os);
    CHECK(c, st == NW_OK && os[0] == T && os[1] == DM, "output_shape: %s", nw_status_string(st));
    float out[100 + 16];
    memset(out, SENT, sizeof out);
    st = nw_deriver_derive(d, fx->store, out, 100);
    CHECK(c, st == NW_ERR_BUFFER_TOO_SMALL, "derive of 2^42 floats into 100: %s", nw_status_string(st));
    CHECK(c, untouched(out, sizeof out), "written on failure");
    int64_t tok;
    st = nw_deriver_derive_vector(d, fx->store, out, DM, &tok);
    if (st == NW_OK) {
        double vec[DM];
        int64_t rt;
        nw_node_index n0 = N_MLP(1, 0, 2); /* stride 0: every token reads row 0 */
        ref_node(fx, &n0, vec, &rt);
        compare_vec(c, "derive_vector at token 2^40-1", out, vec);
        CHECK(c, tok == T - 1, "token row %" PRId64, tok);
    }
    nw_deriver_destroy(d);
    return st;
}

/* T * d_model overflowing: (2^61, d_ff=1) activations in a d_model 8 model. */
static int sc_output_overflow(void *p) {
    ctx *c = p;
    nw_model_dims dims = {1, 8, 1, 1, 1};
    nw_model *m;
    nw_status st = nw_model_create(&dims, &m);
    if (st != NW_OK) return st;
    float w[8] = {1, 2, 3, 4, 5, 6, 7, 8}, a = 0.5f;
    int64_t ws[2] = {1, 8};
    nw_tensor_view wv = {w, NW_DTYPE_F32, 2, ws, NULL};
    st = nw_model_set_weight(m, NW_WEIGHT_MLP_TO_RESIDUAL, 0, &wv, NW_COPY);
    nw_store *s;
    nw_store_create(&s);
    int64_t as[2] = {(int64_t)1 << 61, 1}, ast[2] = {0, 0};
    nw_tensor_view av = {&a, NW_DTYPE_F32, 2, as, ast};
    if (st == NW_OK) st = nw_store_put(s, NW_ACT_MLP_POST_ACT, 0, &av);
    if (st == NW_OK) {
        nw_node_index nd = N_MLP(0, 5, 0);
        float out[64];
        memset(out, SENT, sizeof out);
        st = nw_node_write(m, s, &nd, out, 48);
        CHECK(c, untouched(out, sizeof out), "written on failure");
        CHECK(c, st != NW_OK, "node_write of 2^64 floats into 48 succeeded");
        if (st != NW_OK) CHECK(c, nw_last_error_message()[0] != '\0', "no message");
    }
    nw_store_destroy(s);
    nw_model_destroy(m);
    return st;
}

static int sc_vectors_empty(void *p) {
    ctx *c = p;
    float out[4];
    int64_t tok[2];
    memset(out, SENT, sizeof out);
    memset(tok, SENT, sizeof tok);
    nw_node_index nd = N_MLP(0, 0, 0);
    nw_status st = nw_node_write_vectors(c->fx.model, c->fx.store, &nd, 0, out, 0, tok);
    CHECK(c, untouched(out, sizeof out) && untouched(tok, sizeof tok), "n_nodes = 0 wrote something");
    return st;
}

/* nw_last_error_message: stays after a success, is per-thread */
static void *other_thread_fails(void *p) {
    (void)p;
    nw_model_dims_get(NULL, NULL);
    return NULL;
}
static int sc_error_message(void *p) {
    ctx *c = p;
    nw_status st = nw_store_remove(NULL, 0, 0);
    char first[300];
    snprintf(first, sizeof first, "%s", nw_last_error_message());
    CHECK(c, st == NW_ERR_INVALID_ARGUMENT && first[0], "nw_store_remove(NULL) %s", nw_status_string(st));
    nw_model_dims d;
    st = nw_model_dims_get(c->fx.model, &d);
    CHECK(c, st == NW_OK && strcmp(first, nw_last_error_message()) == 0, "a success changed the message");
    pthread_t t;
    pthread_create(&t, NULL, other_thread_fails, NULL);
    pthread_join(t, NULL);
    CHECK(c, strcmp(first, nw_last_error_message()) == 0, "another thread's failure changed this thread's message");
    return st;
}

/* A view that stays truthful but aliases itself (all-zero strides on a
 * (T, T_k, H) probs tensor): every element is the same probability. */
static int sc_zero_stride_probs(void *p) {
    ctx *c = p;
    fixture *fx = &c->fx;
    for (int64_t i = 0; i < fx_count(fx, TG_QK, 0); i++) fx->canon[TG_QK][0][i] = 0.25;
    float pr = 0.25f;
    int64_t zs[3] = {0, 0, 0};
    nw_tensor_view v = {&pr, NW_DTYPE_F32, 3, fx->shape[TG_QK][0], zs};
    nw_status st = nw_store_put(fx->store, NW_ACT_ATTN_QK_PROBS, 0, &v);
    if (st != NW_OK) return st;
    nw_node_index nd = N_ATT(0, 1, 2, 1);
    float out[TT * DM];
    st = nw_node_write(fx->model, fx->store, &nd, out, TT * DM);
    if (st == NW_OK) compare_full(c, "zero-stride qk_probs", out, &nd);
    return st;
}

/* Outputs that share memory with an input or with another output: every export refuses
 * them (INVALID_ARGUMENT, a message, nothing written anywhere in the arena), and the same
 * calls with outputs just past the inputs succeed. The model borrows its weights and the
 * store its activations from one arena, so that an output can point into any of them. */
enum { OV_T = 3, OV_DM = 4, OV_FF = 3, OV_V = 5 };
enum { OV_W = 0, OV_POST = OV_W + OV_FF * OV_DM, OV_G = OV_POST + OV_T * OV_FF, OV_U = OV_G + OV_T * OV_DM,
       OV_GAIN = OV_U + OV_DM * OV_V, OV_FREE = (OV_GAIN + OV_DM + 15) / 16 * 16, OV_ARENA = OV_FREE + 64 };
typedef struct {
    float a[OV_ARENA];
    nw_model *m;
    nw_store *s;
    nw_tensor_view g;
    int64_t wshape[2], pshape[2], gshape[2], ushape[2], gainshape[1];
} ov_fixture;

static nw_status ov_setup(ov_fixture *f) {
    for (int i = 0; i < OV_ARENA; i++) f->a[i] = (float)((i * 7) % 11) / 11.0f - 0.4f;
    nw_model_dims dims = {1, OV_DM, 1, 1, OV_FF};
    nw_status st = nw_model_create(&dims, &f->m);
    if (st != NW_OK) return st;
    nw_store_create(&f->s);
    f->wshape[0] = OV_FF; f->wshape[1] = OV_DM;
    f->pshape[0] = OV_T; f->pshape[1] = OV_FF;
    f->gshape[0] = OV_T; f->gshape[1] = OV_DM;
    f->ushape[0] = OV_DM; f->ushape[1] = OV_V;
    f->gainshape[0] = OV_DM;
    nw_tensor_view w = {f->a + OV_W, NW_DTYPE_F32, 2, f->wshape, NULL};
    nw_tensor_view p = {f->a + OV_POST, NW_DTYPE_F32, 2, f->pshape, NULL};
    nw_tensor_view u = {f->a + OV_U, NW_DTYPE_F32, 2, f->ushape, NULL};
    nw_tensor_view gain = {f->a + OV_GAIN, NW_DTYPE_F32, 1, f->gainshape, NULL};
    f->g = (nw_tensor_view){f->a + OV_G, NW_DTYPE_F32, 2, f->gshape, NULL};
    if (st == NW_OK) st = nw_model_set_weight(f->m, NW_WEIGHT_MLP_TO_RESIDUAL, 0, &w, NW_BORROW);
    if (st == NW_OK) st = nw_model_set_weight(f->m, NW_WEIGHT_UNEMBEDDING, NW_NO_LAYER, &u, NW_BORROW);
    if (st == NW_OK) st = nw_model_set_weight(f->m, NW_WEIGHT_LAYER_NORM_GAIN_FINAL, NW_NO_LAYER, &gain, NW_BORROW);
    if (st == NW_OK) st = nw_store_put(f->s, NW_ACT_MLP_POST_ACT, 0, &p);
    return st;
}

static void ov_teardown(ov_fixture *f) {
    nw_store_destroy(f->s);
    nw_model_destroy(f->m);
}

/* One call of every export with outputs at the given arena offsets (o1 the float output,
 * o2 the int64 or shape output; -1: a separate buffer). */
static nw_status ov_call(ov_fixture *f, int fn, int o1, int o2) {
    static float own_f[64];
    static int64_t own_i[64];
    float *out = o1 < 0 ? own_f : f->a + o1;
    int64_t *ints = o2 < 0 ? own_i : (int64_t *)(void *)(f->a + o2);
    nw_node_index nd = N_MLP(0, 1, 2);
    int64_t idx[2] = {1, 2}, shape[3];
    int32_t ndim;
    switch (fn) {
    case 0: return nw_derive(f->m, f->s, NW_DST_MLP_WRITE_TO_FINAL_RESIDUAL_GRAD, 0, &f->g, 0, out, OV_T * OV_FF, o2 < 0 ? shape : ints, &ndim);
    case 1: return nw_node_write(f->m, f->s, &nd, out, OV_T * OV_DM);
    case 2: return nw_node_write_sized(f->m, f->s, &nd, 0, out, OV_T * OV_DM, o2 < 0 ? shape : ints);
    case 3: return nw_node_write_vectors(f->m, f->s, &nd, 1, out, OV_DM, ints);
    case 4: return nw_node_writes(f->m, f->s, NW_NODE_MLP_NEURON, 0, idx, 1, 2, out, OV_DM, ints);
    case 5: return nw_node_write_to_direction(f->m, f->s, &nd, &f->g, out, OV_T, o2 < 0 ? shape : ints);
    case 6: return nw_token_writes(f->m, f->s, NW_NODE_MLP_NEURON, 0, idx, 1, 2, out, OV_V);
    case 7: return nw_token_writes_top_k(f->m, f->s, NW_NODE_MLP_NEURON, 0, idx, 1, 2, 2, 1, out, ints, 2);
    default: {
        nw_deriver *d;
        nw_status st = nw_node_write_deriver_create(f->m, &nd, &d);
        if (st != NW_OK) return st;
        st = fn == 8 ? nw_deriver_derive(d, f->s, out, OV_T * OV_DM) : nw_deriver_derive_vector(d, f->s, out, OV_DM, ints);
        nw_deriver_destroy(d);
        return st;
    }
    }
}

static int sc_outputs_overlap_inputs(void *p) {
    ctx *c = p;
    static const char *const names[10] = {"nw_derive", "nw_node_write", "nw_node_write_sized", "nw_node_write_vectors",
                                          "nw_node_writes", "nw_node_write_to_direction", "nw_token_writes",
                                          "nw_token_writes_top_k", "nw_deriver_derive", "nw_deriver_derive_vector"};
    /* (fn, float output at, int output at): each an overlap the call must refuse */
    static const int bad[][3] = {
        {0, OV_POST, -1}, {0, OV_G + 2, -1}, {0, OV_W + OV_FF * OV_DM - 1, -1}, {0, OV_FREE, OV_POST}, {0, OV_FREE, OV_FREE + 2},
        {1, OV_W + 1, -1}, {1, OV_POST + OV_T * OV_FF - 1, -1},
        {2, OV_POST, -1}, {2, OV_FREE, OV_W}, {2, OV_FREE, OV_FREE + 4},
        {3, OV_W, -1}, {3, OV_FREE, OV_POST}, {3, OV_FREE, OV_FREE + 2},
        {4, OV_POST + 1, -1}, {4, OV_FREE, OV_W}, {4, OV_FREE, OV_FREE},
        {5, OV_G, -1}, {5, OV_W, -1}, {5, OV_FREE, OV_G},
        {6, OV_U, -1}, {6, OV_GAIN - 1, -1}, {6, OV_POST, -1},
        {7, OV_GAIN, -1}, {7, OV_FREE, OV_U}, {7, OV_FREE, OV_FREE},
        {8, OV_W + 4, -1}, {8, OV_POST, -1},
        {9, OV_POST, -1}, {9, OV_FREE, OV_FREE + 2}, {9, OV_FREE, OV_W},
    };
    ov_fixture f;
    nw_status st = ov_setup(&f);
    if (st != NW_OK) return st;
    float before[OV_ARENA];
    memcpy(before, f.a, sizeof before);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const int fn = bad[i][0];
        st = ov_call(&f, fn, bad[i][1], bad[i][2]);
        CHECK(c, st == NW_ERR_INVALID_ARGUMENT, "%s with outputs at %d, %d: %s, not INVALID_ARGUMENT", names[fn],
              bad[i][1], bad[i][2], nw_status_string(st));
        CHECK(c, nw_last_error_message()[0] != '\0', "%s: no message", names[fn]);
        CHECK(c, memcmp(before, f.a, sizeof before) == 0, "%s with outputs at %d, %d wrote into the arena", names[fn],
              bad[i][1], bad[i][2]);
        memcpy(f.a, before, sizeof before);
    }
    /* the node array is read while out fills */
    nw_node_index nodes[2] = {N_MLP(0, 1, 2), N_MLP(0, 0, 1)}, nodes0[2];
    memcpy(nodes0, nodes, sizeof nodes);
    st = nw_node_write_vectors(f.m, f.s, nodes, 2, (float *)(void *)&nodes[1], 2 * OV_DM, NULL);
    CHECK(c, st == NW_ERR_INVALID_ARGUMENT && memcmp(nodes, nodes0, sizeof nodes) == 0,
          "nw_node_write_vectors with out over its node array: %s", nw_status_string(st));
    /* the same calls with outputs right after the inputs (and apart from each other) succeed */
    for (int fn = 0; fn < 10; fn++) {
        st = ov_call(&f, fn, OV_FREE, OV_FREE + 16);
        CHECK(c, st == NW_OK, "%s with outputs next to the inputs: %s (%s)", names[fn], nw_status_string(st),
              nw_last_error_message());
        CHECK(c, memcmp(before, f.a, OV_FREE * sizeof(float)) == 0, "%s changed an input", names[fn]);
    }
    ov_teardown(&f);
    return NW_OK;
}

/* ------------------------------------------------- exports of 1.1 (run_x) */

/* The layer-less weights (unembedding (DM, NV), final layer norm gain (DM,)), the
 * resid.delta_mlp/attn activations (T, DM) of each layer, and a direction (T, DM)
 * or (DM,) are built by x_setup on top of the fixture. */
enum { NV = 7 };
enum {
    XF_NO_UNEMB = 1u << 0, /* no unembedding set */
    XF_NO_GAIN = 1u << 1,  /* no final layer norm gain set */
    XF_NO_DELTA = 1u << 2, /* no resid.delta_* activation in the store */
    XF_DELTA_WIDE = 1u << 3 /* resid.delta_* claim (T, d_model + 1) */
};
/* direction kinds */
enum dirk {
    D_NONE, D_FULL, D_SHARED, D_NDIM0, D_NDIM3, D_T1, D_TM1, D_DM1, D_SDM1, D_DTYPE, D_NULLDATA,
    D_NULLSHAPE, D_HUGESTRIDE, D_NEGSHAPE, D_HUGESHAPE, D_ZEROROWS
};

static const char *const DST_NAMES[18] = {
    "mlp_write_norm", "mlp_write_to_final_residual_grad", "unflattened_attn_write_norm",
    "unflattened_attn_write_to_final_residual_grad", "attn_write_norm", "attn_write_to_final_residual_grad",
    "attn_write_norm_per_sequence_token", "attn_write_to_final_residual_grad_per_sequence_token",
    "online_autoencoder_write_norm", "online_mlp_autoencoder_write_norm", "online_attention_autoencoder_write_norm",
    "online_autoencoder_write_to_final_residual_grad", "online_mlp_autoencoder_write_to_final_residual_grad",
    "online_attention_autoencoder_write_to_final_residual_grad", "mlp_layer_write_norm", "attn_layer_write_norm",
    "mlp_layer_write_to_final_residual_grad", "attn_layer_write_to_final_residual_grad"};
static int dst_is_projection(int32_t d) {
    return d == 1 || d == 3 || d == 5 || d == 7 || (d >= 11 && d <= 13) || d == 16 || d == 17;
}

static double *x_gen(int64_t n, uint64_t seed) {
    double *a = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++) a[i] = nwt_rng_val(&seed);
    return a;
}

static int x_setup(ctx *c) {
    fixture *fx = &c->fx;
    const row *r = c->r;
    int64_t su[2] = {DM, NV}, sg[1] = {DM}, sd[2] = {fx->T, DM};
    c->unemb = x_gen(DM * NV, 777);
    c->gain = x_gen(DM, 778);
    nwt_view *v;
    nw_status st;
    if (!(r->xfx & XF_NO_UNEMB)) {
        v = fx_newview(fx);
        if (nwt_view_build(v, c->unemb, 2, su, NW_DTYPE_F32, NWT_TRANSPOSED, 0)) return -1;
        if ((st = nw_model_set_weight(fx->model, NW_WEIGHT_UNEMBEDDING, NW_NO_LAYER, &v->v, NW_COPY)) != NW_OK) {
            failf(c, "setup: unembedding: %s (%s)", nw_status_string(st), nw_last_error_message());
            return -1;
        }
    }
    if (!(r->xfx & XF_NO_GAIN)) {
        v = fx_newview(fx);
        if (nwt_view_build(v, c->gain, 1, sg, NW_DTYPE_F32, NWT_CONTIG, 0)) return -1;
        if ((st = nw_model_set_weight(fx->model, NW_WEIGHT_LAYER_NORM_GAIN_FINAL, NW_NO_LAYER, &v->v, NW_BORROW)) != NW_OK) {
            failf(c, "setup: gain: %s (%s)", nw_status_string(st), nw_last_error_message());
            return -1;
        }
    }
    for (int k = 0; k < 2; k++)
        for (int L = 0; L < NL; L++) {
            c->delta[k][L] = x_gen(fx->T * DM, 900 + (uint64_t)(k * NL + L));
            if (r->xfx & XF_NO_DELTA) continue;
            v = fx_newview(fx);
            if (nwt_view_build(v, c->delta[k][L], 2, sd, k ? NW_DTYPE_F64 : NW_DTYPE_F32,
                               k ? NWT_NEG0 : NWT_CONTIG_NULL, 256)) return -1;
            if (r->xfx & XF_DELTA_WIDE) { v->shape[1] = DM + 1; v->v.strides = NULL; }
            st = nw_store_put(fx->store, k ? NW_ACT_RESID_DELTA_ATTN : NW_ACT_RESID_DELTA_MLP, L, &v->v);
            if (st != NW_OK) {
                failf(c, "setup: resid.delta: %s (%s)", nw_status_string(st), nw_last_error_message());
                return -1;
            }
        }
    /* the direction: (T, DM) canonical, rounded to its dtype */
    c->dir = x_gen(fx->T * DM + DM, 555);
    int32_t dt = r->dirdtype;
    if (dt < 0 || dt > 3) dt = NW_DTYPE_F32;
    for (int64_t i = 0; i < fx->T * DM + DM; i++) c->dir[i] = (double)(float)nwt_round_to(dt, c->dir[i]);
    if (r->dirlayout == NWT_BCAST0) { int64_t sh2[2] = {fx->T, DM}; nwt_bcast0(c->dir, 2, sh2); }
    if (r->dir == D_ZEROROWS) /* rows 0 and T-1 all zero (they cost nothing, and must give 0) */
        for (int j = 0; j < DM; j++) { c->dir[j] = 0; c->dir[(fx->T - 1) * DM + j] = 0; }
    return 0;
}

static void x_teardown(ctx *c) {
    free(c->unemb);
    free(c->gain);
    free(c->dir);
    for (int k = 0; k < 2; k++)
        for (int L = 0; L < NL; L++) free(c->delta[k][L]);
}

/* The direction view of the row (NULL for D_NONE or NU_VIEW); *shared is set for (DM,). */
static const nw_tensor_view *x_direction(ctx *c, int *shared) {
    const row *r = c->r;
    fixture *fx = &c->fx;
    *shared = 0;
    if (r->dir == D_NONE || (r->nulls & NU_VIEW)) return NULL;
    int32_t dt = r->dirdtype >= 0 && r->dirdtype <= 3 ? r->dirdtype : NW_DTYPE_F32;
    nwt_view *v = fx_newview(fx);
    int64_t full[2] = {fx->T, DM}, sh[1] = {DM};
    if (r->dir == D_SHARED || r->dir == D_SDM1) {
        *shared = 1;
        if (nwt_view_build(v, c->dir + fx->T * DM, 1, sh, dt, r->dirlayout, 256)) return NULL;
    } else {
        if (nwt_view_build(v, c->dir, 2, full, dt, r->dirlayout, 256)) return NULL;
    }
    switch (r->dir) {
    case D_NDIM0: v->v.ndim = 0; break;
    case D_NDIM3: v->v.ndim = 3; v->shape[2] = 1; v->strides[2] = 1; break;
    case D_T1: v->shape[0] = fx->T + 1; v->v.strides = NULL; break; /* row-major, the slack holds row T */
    case D_TM1: v->shape[0] = fx->T - 1; break;
    case D_DM1: v->shape[1] = DM + 1; v->v.strides = NULL; break;
    case D_SDM1: v->shape[0] = DM + 1; v->v.strides = NULL; break;
    case D_DTYPE: v->v.dtype = (int32_t)r->vv; break;
    case D_NULLDATA: v->v.data = NULL; break;
    case D_NULLSHAPE: v->v.shape = NULL; break;
    case D_HUGESTRIDE: v->v.strides = v->strides; v->strides[0] = INT64_MAX; break;
    case D_NEGSHAPE: v->shape[0] = -1; break;
    case D_HUGESHAPE: v->v.strides = v->strides; v->shape[0] = (int64_t)1 << 40; v->strides[0] = 0; break;
    default: break;
    }
    return &v->v;
}

/* g[t][j] of the row's (valid) direction */
static double x_g(const ctx *c, int shared, int64_t t, int j) {
    return shared ? c->dir[c->fx.T * DM + j] : c->dir[t * DM + j];
}

static nw_node_index x_node(int32_t type, int32_t layer, const int64_t *ix) {
    nw_node_index n = {type, layer, type == NW_NODE_ATTENTION_HEAD ? 3 : 2, 0, {ix[0], ix[1], 0, 0}};
    if (type == NW_NODE_ATTENTION_HEAD) n.indices[2] = ix[2];
    return n;
}

/* reference token writes of one node: u - mean(u), u = w @ (U * gain[:, None]) */
static void x_ref_tokens(const ctx *c, const nw_node_index *nd, double *u) {
    double w[DM];
    int64_t tok;
    ref_node(&c->fx, nd, w, &tok);
    double mean = 0;
    for (int v = 0; v < NV; v++) {
        double s = 0;
        for (int j = 0; j < DM; j++) s += w[j] * c->unemb[j * NV + v] * c->gain[j];
        u[v] = s;
        mean += s;
    }
    mean /= NV;
    for (int v = 0; v < NV; v++) u[v] -= mean;
}

/* reference of a derived scalar (enum nw_dst) at layer L; returns the element count, shape in shp */
static int64_t x_ref_derive(const ctx *c, int32_t dst, int L, int shared, double *out, int64_t *shp, int *ndim) {
    const fixture *fx = &c->fx;
    int64_t T = fx->T;
    int proj = dst_is_projection(dst);
    double w[DM];
    int64_t tok;
    if (dst <= 1) { /* MLP neurons: a * |W_out[n]| (signed like a), or w . g[t] */
        shp[0] = T; shp[1] = DFF; *ndim = 2;
        for (int64_t t = 0; t < T; t++)
            for (int n = 0; n < DFF; n++) {
                nw_node_index nd = N_MLP(L, t, n);
                ref_node(fx, &nd, w, &tok);
                double s = 0, a = fx->canon[TG_POST][L][t * DFF + n], wn = 0;
                for (int j = 0; j < DM; j++) {
                    s += w[j] * x_g(c, shared, t, j);
                    wn += fx->canon[TG_WMLP][L][n * DM + j] * fx->canon[TG_WMLP][L][n * DM + j];
                }
                out[t * DFF + n] = proj ? s : a * sqrt(wn);
            }
        return T * DFF;
    }
    if (dst <= 7) { /* attention heads */
        int layout = (dst - 2) / 2; /* 0 unflattened, 1 flattened, 2 per sequence token */
        if (layout == 0) { shp[0] = T; shp[1] = T; shp[2] = NH; *ndim = 3; }
        else if (layout == 1) { shp[0] = T * (T + 1) / 2; shp[1] = NH; *ndim = 2; }
        else { shp[0] = T; shp[1] = NH; *ndim = 2; }
        int64_t n = shp[0] * shp[1] * (*ndim == 3 ? shp[2] : 1);
        for (int64_t i = 0; i < n; i++) out[i] = 0;
        for (int64_t q = 0; q < T; q++)
            for (int h = 0; h < NH; h++) {
                double sum[DM] = {0};
                for (int64_t k = 0; k < (fx->noncausal ? T : q + 1); k++) { /* the keys q reads */
                    nw_node_index nd = N_ATT(L, q, k, h);
                    ref_node(fx, &nd, w, &tok);
                    double s = 0, nn = 0;
                    for (int j = 0; j < DM; j++) { s += w[j] * x_g(c, shared, q, j); nn += w[j] * w[j]; sum[j] += w[j]; }
                    double val = proj ? s : sqrt(nn);
                    if (layout == 0) out[(q * T + k) * NH + h] = val;
                    else if (layout == 1) out[(q * (q + 1) / 2 + k) * NH + h] = val;
                }
                if (layout == 2) {
                    double s = 0, nn = 0;
                    for (int j = 0; j < DM; j++) { s += sum[j] * x_g(c, shared, q, j); nn += sum[j] * sum[j]; }
                    out[q * NH + h] = proj ? s : sqrt(nn);
                }
            }
        return n;
    }
    if (dst <= 13) { /* latents */
        int kind = (dst - 8) % 3;
        int64_t nl = fx->nlat[kind][L];
        shp[0] = T; shp[1] = nl; *ndim = 2;
        for (int64_t t = 0; t < T; t++)
            for (int64_t l = 0; l < nl; l++) {
                nw_node_index nd = N_LAT(NW_NODE_AUTOENCODER_LATENT + kind, L, t, l);
                ref_node(fx, &nd, w, &tok);
                double s = 0, nn = 0;
                for (int j = 0; j < DM; j++) { s += w[j] * x_g(c, shared, t, j); nn += w[j] * w[j]; }
                double z = fx->canon[TG_LAT0 + kind][L][t * nl + l];
                /* z * |decoded write of l| (signed like z), python_tests/family_reference.py */
                out[t * nl + l] = proj ? s : (z < 0 ? -sqrt(nn) : sqrt(nn));
            }
        return T * nl;
    }
    /* the whole layer's write */
    const double *d = c->delta[(dst == 15 || dst == 17) ? 1 : 0][L];
    shp[0] = T; shp[1] = 1; *ndim = 2;
    for (int64_t t = 0; t < T; t++) {
        double s = 0, nn = 0;
        for (int j = 0; j < DM; j++) { s += d[t * DM + j] * x_g(c, shared, t, j); nn += d[t * DM + j] * d[t * DM + j]; }
        out[t] = proj ? s : sqrt(nn);
    }
    return T;
}

static void x_compare(ctx *c, const char *what, const float *got, const double *want, int64_t n) {
    double sc = maxabs(want, n);
    for (int64_t i = 0; i < n; i++)
        if (!nwt_close(got[i], want[i], sc)) {
            failf(c, "%s: element %" PRId64 " is %.9g, reference %.9g", what, i, (double)got[i], want[i]);
            return;
        }
}

/* the indices of a node set row: explicit, or n valid nodes spread over the extents */
static size_t x_indices(const row *r, const fixture *fx, int64_t *ix, size_t room) {
    if (r->xix) { memcpy(ix, r->ix, sizeof r->ix); return sizeof r->ix / sizeof *r->ix; }
    int64_t ext[3] = {fx->T, DFF, 1};
    if (r->xtype == NW_NODE_ATTENTION_HEAD) { ext[1] = fx->Tk; ext[2] = NH; }
    else if (r->xtype >= NW_NODE_AUTOENCODER_LATENT && r->xtype <= 4 && r->xlayer >= 0 && r->xlayer < NL)
        ext[1] = fx->nlat[r->xtype - NW_NODE_AUTOENCODER_LATENT][r->xlayer];
    size_t k = r->xk >= 1 && r->xk <= 3 ? r->xk : 2;
    for (size_t i = 0; i < room / k; i++)
        for (size_t s = 0; s < k; s++) {
            int64_t e = ext[s < 3 ? s : 2];
            int64_t v = (int64_t)((i * 5 + s * 3 + 1) % (size_t)e);
            ix[i * k + s] = (i + s) % 2 ? v - e : v; /* negative ones count from the end */
        }
    return room;
}

/* sentinel-filled allocation with a 16-element guard */
static void *sent_alloc(size_t n, size_t elem) {
    void *p = malloc((n + 16) * elem);
    memset(p, SENT, (n + 16) * elem);
    return p;
}

/* a node set's rows against single nw_node_write rows (bit for bit) and the reference */
static void x_check_set_rows(ctx *c, const char *what, const float *out, const int64_t *toks, const int64_t *ix) {
    const row *r = c->r;
    fixture *fx = &c->fx;
    size_t k = r->xk;
    float *single = malloc((size_t)(fx->T * DM) * sizeof(float));
    for (size_t i = 0; i < r->xn && !c->failed; i++) {
        nw_node_index nd = x_node(r->xtype, r->xlayer, ix + i * k);
        nw_status st = nw_node_write(fx->model, fx->store, &nd, single, (size_t)(fx->T * DM));
        if (st != NW_OK) { failf(c, "%s: the single nw_node_write of node %zu: %s", what, i, nw_status_string(st)); break; }
        double vec[DM];
        int64_t tok;
        ref_node(fx, &nd, vec, &tok);
        if (memcmp(out + i * DM, single + tok * DM, DM * sizeof(float)) != 0)
            failf(c, "%s: row %zu differs from nw_node_write's row (bit for bit)", what, i);
        compare_vec(c, what, out + i * DM, vec);
        if (toks) CHECK(c, toks[i] == tok, "%s: token_rows[%zu] = %" PRId64 ", expected %" PRId64, what, i, toks[i], tok);
    }
    free(single);
}

static size_t x_len(const row *r, size_t needed, size_t *alloc) { return out_len_for(r, needed, alloc); }

static void run_x_set(ctx *c, int fn) {
    const row *r = c->r;
    fixture *fx = &c->fx;
    const nw_model *m = (r->nulls & NU_MODEL) ? NULL : fx->model;
    const nw_store *s = (r->nulls & NU_STORE) ? NULL : fx->store;
    int64_t ix[24];
    x_indices(r, fx, ix, 24);
    const int64_t *ip = (r->nulls & NU_NODE) ? NULL : ix;
    /* small sets only are allocated; a huge n_nodes must be refused before anything is read or written */
    size_t n_small = r->xn <= 8 ? r->xn : 0;
    if (fn == F_NODE_WRITES) {
        size_t needed = n_small * DM, alloc;
        size_t len = x_len(r, needed, &alloc);
        float *out = sent_alloc(alloc, sizeof(float));
        int64_t *toks = sent_alloc(8, sizeof(int64_t));
        nw_status st = nw_node_writes(m, s, r->xtype, r->xlayer, ip, r->xn, r->xk, (r->nulls & NU_OUT) ? NULL : out, len,
                                      (r->nulls & NU_TOKEN) ? NULL : toks);
        check_status(c, "nw_node_writes", st);
        if (st != NW_OK) {
            CHECK(c, untouched(out, (alloc + 16) * sizeof(float)) && untouched(toks, 24 * sizeof(int64_t)),
                  "nw_node_writes wrote on failure");
        } else {
            x_check_set_rows(c, "nw_node_writes", out, (r->nulls & NU_TOKEN) ? NULL : toks, ix);
            CHECK(c, untouched(out + needed, (alloc + 16 - needed) * sizeof(float)), "wrote past n_nodes*d_model");
            CHECK(c, untouched(toks + n_small, (24 - n_small) * sizeof(int64_t)), "wrote past token_rows[n_nodes]");
            if (r->nulls & NU_TOKEN) CHECK(c, untouched(toks, 24 * sizeof(int64_t)), "token_rows written though NULL");
        }
        free(out);
        free(toks);
    } else if (fn == F_TOKEN_WRITES) {
        size_t needed = n_small * NV, alloc;
        size_t len = x_len(r, needed, &alloc);
        float *out = sent_alloc(alloc, sizeof(float));
        nw_status st = nw_token_writes(m, s, r->xtype, r->xlayer, ip, r->xn, r->xk, (r->nulls & NU_OUT) ? NULL : out, len);
        check_status(c, "nw_token_writes", st);
        if (st != NW_OK) {
            CHECK(c, untouched(out, (alloc + 16) * sizeof(float)), "nw_token_writes wrote on failure");
        } else {
            for (size_t i = 0; i < n_small; i++) {
                nw_node_index nd = x_node(r->xtype, r->xlayer, ix + i * r->xk);
                double u[NV];
                x_ref_tokens(c, &nd, u);
                x_compare(c, "nw_token_writes", out + i * NV, u, NV);
            }
            CHECK(c, untouched(out + needed, (alloc + 16 - needed) * sizeof(float)), "wrote past n_nodes*n_vocab");
        }
        free(out);
    } else { /* top_k */
        size_t kk = r->topk >= 1 && r->topk <= NV ? (size_t)r->topk : 1;
        size_t needed = n_small * kk, alloc;
        size_t len = x_len(r, needed, &alloc);
        float *vals = sent_alloc(alloc, sizeof(float));
        int64_t *ids = sent_alloc(alloc, sizeof(int64_t));
        nw_status st = nw_token_writes_top_k(m, s, r->xtype, r->xlayer, ip, r->xn, r->xk, r->topk, r->largest,
                                             (r->nulls & NU_OUT) ? NULL : vals, (r->nulls & NU_TOKEN) ? NULL : ids, len);
        check_status(c, "nw_token_writes_top_k", st);
        if (st != NW_OK) {
            CHECK(c, untouched(vals, (alloc + 16) * sizeof(float)) && untouched(ids, (alloc + 16) * sizeof(int64_t)),
                  "nw_token_writes_top_k wrote on failure");
        } else {
            for (size_t i = 0; i < n_small && !c->failed; i++) {
                nw_node_index nd = x_node(r->xtype, r->xlayer, ix + i * r->xk);
                double u[NV], sorted[NV];
                x_ref_tokens(c, &nd, u);
                memcpy(sorted, u, sizeof u);
                for (int a = 0; a < NV; a++) /* sort, the wanted end first */
                    for (int b = a + 1; b < NV; b++)
                        if (r->largest ? sorted[b] > sorted[a] : sorted[b] < sorted[a]) {
                            double t = sorted[a]; sorted[a] = sorted[b]; sorted[b] = t;
                        }
                double sc = maxabs(u, NV);
                for (size_t j = 0; j < kk; j++) {
                    int64_t id = ids[i * kk + j];
                    float v = vals[i * kk + j];
                    if (id < 0 || id >= NV) { failf(c, "top_k: node %zu entry %zu: token id %" PRId64, i, j, id); break; }
                    for (size_t j2 = 0; j2 < j; j2++)
                        CHECK(c, ids[i * kk + j2] != id, "top_k: node %zu: token id %" PRId64 " twice", i, id);
                    CHECK(c, nwt_close(v, sorted[j], sc), "top_k: node %zu entry %zu is %.9g, reference %.9g", i, j,
                          (double)v, sorted[j]);
                    CHECK(c, nwt_close(v, u[id], sc), "top_k: node %zu entry %zu: %.9g is not token %" PRId64 "'s %.9g",
                          i, j, (double)v, id, u[id]);
                }
            }
            CHECK(c, untouched(vals + needed, (alloc + 16 - needed) * sizeof(float)) &&
                     untouched(ids + needed, (alloc + 16 - needed) * sizeof(int64_t)), "wrote past n_nodes*top_k");
        }
        free(vals);
        free(ids);
    }
}

static void run_x(ctx *c) {
    const row *r = c->r;
    fixture *fx = &c->fx;
    if (x_setup(c) != 0) { if (!c->failed) failf(c, "setup: out of memory"); x_teardown(c); return; }
    const char *m0 = nw_last_error_message();
    if (m0[0] != '\0') { failf(c, "setup left an error message: %s", m0); x_teardown(c); return; }
    const nw_model *m = (r->nulls & NU_MODEL) ? NULL : fx->model;
    const nw_store *s = (r->nulls & NU_STORE) ? NULL : fx->store;
    nw_node_index node = r->node;
    const nw_node_index *np = (r->nulls & NU_NODE) ? NULL : &node;
    switch (r->fn) {
    case F_INDEX_COUNT: {
        int32_t got = nw_node_type_index_count(r->e0);
        CHECK(c, got == r->e1, "nw_node_type_index_count(%d) = %d, expected %d", r->e0, got, r->e1);
        break;
    }
    case F_THREADS: {
        int32_t before = nw_get_num_threads();
        nw_status st = nw_set_num_threads(r->e0);
        check_status(c, "nw_set_num_threads", st);
        int32_t after = nw_get_num_threads();
        CHECK(c, after >= 1, "nw_get_num_threads() = %d < 1", after);
        if (st != NW_OK) CHECK(c, after == before, "a failed nw_set_num_threads changed the count %d -> %d", before, after);
        else if (r->e0 > 0) CHECK(c, after == r->e0, "nw_get_num_threads() = %d after setting %d", after, r->e0);
        else if (r->e0 == 0) {
            const char *env = getenv("NODEWRITE_NUM_THREADS");
            long e = env ? strtol(env, NULL, 10) : 0;
            if (e > 0 && e <= 1024) CHECK(c, after == e, "default %d, NODEWRITE_NUM_THREADS=%ld", after, e);
        }
        if (st == NW_OK && r->e0 > 0) { /* a node set on this count equals the singles */
            int64_t ix[6] = {0, 1, -1, -2, 2, 4};
            float out[3 * DM];
            nw_status s2 = nw_node_writes(fx->model, fx->store, NW_NODE_MLP_NEURON, 1, ix, 3, 2, out, 3 * DM, NULL);
            CHECK(c, s2 == NW_OK, "nw_node_writes on %d threads: %s", r->e0, nw_status_string(s2));
            row rr = *r;
            rr.xtype = NW_NODE_MLP_NEURON; rr.xlayer = 1; rr.xn = 3; rr.xk = 2;
            const row *save = c->r;
            c->r = &rr;
            if (s2 == NW_OK) x_check_set_rows(c, "nw_node_writes", out, NULL, ix);
            c->r = save;
        }
        nw_set_num_threads(0);
        break;
    }
    case F_DST_NAME: {
        const char *nm = nw_dst_name(r->e0);
        if (r->str == NULL) CHECK(c, nm == NULL, "nw_dst_name(%d) = \"%s\", expected NULL", r->e0, nm);
        else {
            CHECK(c, nm && strcmp(nm, r->str) == 0, "nw_dst_name(%d) = \"%s\", expected \"%s\"", r->e0, nm ? nm : "(null)",
                  r->str);
            int32_t back = -99;
            nw_status st = nw_dst_from_name(nm, &back);
            CHECK(c, st == NW_OK && back == r->e0, "nw_dst_from_name(nw_dst_name(%d)) = %d (%s)", r->e0, back,
                  nw_status_string(st));
        }
        break;
    }
    case F_DST_FROM_NAME: {
        int32_t out;
        memset(&out, SENT, sizeof out);
        nw_status st = nw_dst_from_name((r->nulls & NU_NAME) ? NULL : r->str, (r->nulls & NU_OUT) ? NULL : &out);
        check_status(c, "nw_dst_from_name", st);
        if (st != NW_OK) CHECK(c, untouched(&out, sizeof out), "*out written on failure");
        else CHECK(c, out == r->e1, "value %d, expected %d", out, r->e1);
        break;
    }
    case F_VOCAB: {
        int64_t out;
        memset(&out, SENT, sizeof out);
        nw_status st = nw_model_vocab_size(m, (r->nulls & NU_OUT) ? NULL : &out);
        check_status(c, "nw_model_vocab_size", st);
        if (st != NW_OK) CHECK(c, untouched(&out, sizeof out), "*out written on failure");
        else CHECK(c, out == (r->xfx & XF_NO_UNEMB ? 0 : NV), "n_vocab %" PRId64, out);
        break;
    }
    case F_SIZED: case F_TO_DIR: {
        int todir = r->fn == F_TO_DIR;
        size_t needed = (size_t)(fx->T * (todir ? 1 : DM)), alloc;
        size_t len = out_len_for(r, needed, &alloc);
        float *out = sent_alloc(alloc, sizeof(float));
        int64_t shape[2];
        memset(shape, SENT, sizeof shape);
        int shared = 0;
        const nw_tensor_view *dv = todir ? x_direction(c, &shared) : NULL;
        nw_status st;
        const char *name = todir ? "nw_node_write_to_direction" : "nw_node_write_sized";
        float *op = (r->nulls & NU_OUT) ? NULL : out;
        int64_t *sp = (r->nulls & NU_COUNT) ? NULL : shape;
        if (todir) st = nw_node_write_to_direction(m, s, np, dv, op, len, sp);
        else st = nw_node_write_sized(m, s, np, 0, op, len, sp);
        check_status(c, name, st);
        int64_t want1 = todir ? 1 : DM;
        if (st == NW_OK || st == NW_ERR_BUFFER_TOO_SMALL) {
            if (!(r->nulls & NU_COUNT))
                CHECK(c, shape[0] == fx->T && shape[1] == want1, "%s: out_shape (%" PRId64 ", %" PRId64 ") on %s", name,
                      shape[0], shape[1], nw_status_string(st));
        } else {
            CHECK(c, untouched(shape, sizeof shape), "%s wrote out_shape on %s", name, nw_status_string(st));
        }
        if (st != NW_OK) {
            CHECK(c, untouched(out, (alloc + 16) * sizeof(float)), "%s wrote to out on failure", name);
        } else if (todir) {
            double w[DM];
            int64_t tok;
            ref_node(fx, &node, w, &tok);
            double want[TT + 1];
            for (int64_t t = 0; t < fx->T; t++) want[t] = 0;
            double sum = 0;
            for (int j = 0; j < DM; j++) sum += w[j] * x_g(c, shared, tok, j);
            want[tok] = sum;
            x_compare(c, name, out, want, fx->T);
            CHECK(c, untouched(out + needed, (alloc + 16 - needed) * sizeof(float)), "%s wrote past T", name);
        } else {
            compare_full(c, name, out, &node);
            CHECK(c, untouched(out + needed, (alloc + 16 - needed) * sizeof(float)), "%s wrote past T*d_model", name);
        }
        free(out);
        break;
    }
    case F_DERIVE_DST: {
        int32_t dst = r->xtype;
        int shared = 0;
        const nw_tensor_view *dv = x_direction(c, &shared);
        double *want = malloc(sizeof(double) * (size_t)(fx->T * fx->T * 16 + 64));
        int64_t wshape[3] = {0, 0, 0};
        int wnd = 0;
        size_t needed = 0;
        if (dst >= 0 && dst < 18 && r->xlayer >= 0 && r->xlayer < NL)
            needed = (size_t)x_ref_derive(c, dst, r->xlayer, shared, want, wshape, &wnd);
        size_t alloc;
        size_t len = out_len_for(r, needed, &alloc);
        float *out = sent_alloc(alloc, sizeof(float));
        if (r->xflags == NW_OUT_ZEROED) memset(out, 0, needed * sizeof(float));  /* the caller's promise */
        int64_t shape[3];
        int32_t nd;
        memset(shape, SENT, sizeof shape);
        memset(&nd, SENT, sizeof nd);
        nw_status st = nw_derive(m, s, dst, r->xlayer, dv, r->xflags, (r->nulls & NU_OUT) ? NULL : out, len,
                                 (r->nulls & NU_COUNT) ? NULL : shape, (r->nulls & NU_DIMS) ? NULL : &nd);
        check_status(c, "nw_derive", st);
        if (st == NW_OK || st == NW_ERR_BUFFER_TOO_SMALL) {
            if (!(r->nulls & NU_DIMS)) CHECK(c, nd == wnd, "out_ndim %d, expected %d (on %s)", nd, wnd, nw_status_string(st));
            if (!(r->nulls & NU_COUNT))
                for (int i = 0; i < wnd; i++)
                    CHECK(c, shape[i] == wshape[i], "out_shape[%d] = %" PRId64 ", expected %" PRId64 " (on %s)", i,
                          shape[i], wshape[i], nw_status_string(st));
            if (!(r->nulls & NU_COUNT))
                CHECK(c, untouched(shape + wnd, (size_t)(3 - wnd) * sizeof(int64_t)), "out_shape written past out_ndim");
        } else {
            CHECK(c, untouched(shape, sizeof shape) && untouched(&nd, sizeof nd), "nw_derive wrote out_shape/out_ndim on %s",
                  nw_status_string(st));
        }
        if (st != NW_OK && r->xflags == NW_OUT_ZEROED) {
            CHECK(c, untouched(out + needed, (alloc + 16 - needed) * sizeof(float)), "nw_derive wrote past the output on failure");
        } else if (st != NW_OK) {
            CHECK(c, untouched(out, (alloc + 16) * sizeof(float)), "nw_derive wrote to out on failure");
        } else {
            x_compare(c, "nw_derive", out, want, (int64_t)needed);
            CHECK(c, untouched(out + needed, (alloc + 16 - needed) * sizeof(float)), "nw_derive wrote past the output");
        }
        free(out);
        free(want);
        break;
    }
    case F_NODE_WRITES: case F_TOKEN_WRITES: case F_TOP_K:
        run_x_set(c, r->fn);
        break;
    case F_SET_WEIGHT0: { /* e0 weight, e1 layer, e2 ownership; vm/vv view mutation; vdtype/vlayout */
        int64_t vocab_before = -1;
        nw_model_vocab_size(fx->model, &vocab_before);
        int gainlike = r->e0 == NW_WEIGHT_LAYER_NORM_GAIN_FINAL;
        int64_t shp[3] = {DM, gainlike ? 1 : NV + 2, 1};
        int wnd = gainlike ? 1 : 2;
        if (r->e0 == NW_WEIGHT_MLP_TO_RESIDUAL) { shp[0] = DFF; shp[1] = DM; }
        if (r->e0 == NW_WEIGHT_ATTN_TO_RESIDUAL) { shp[0] = NH; shp[1] = DH; shp[2] = DM; wnd = 3; }
        double *data = x_gen(DM * (NV + 2), 4242);
        for (int i = 0; i < DM * (NV + 2); i++) data[i] = (double)(float)nwt_round_to(r->vdtype >= 0 && r->vdtype <= 3 ? r->vdtype : 0, data[i]);
        nwt_view *v = fx_newview(fx);
        nwt_view_build(v, data, wnd, shp, r->vdtype >= 0 && r->vdtype <= 3 ? r->vdtype : 0, r->vlayout, 256);
        switch (r->vm) {
        case VM_DTYPE: v->v.dtype = (int32_t)r->vv; break;
        case VM_NDIM: v->v.ndim = (int32_t)r->vv; break;
        case VM_SHAPE: v->shape[r->vi] = r->vv; v->v.strides = v->strides; break;
        case VM_STRIDE: v->v.strides = v->strides; v->strides[r->vi] = r->vv; break;
        case VM_HUGE: v->v.strides = v->strides; v->shape[r->vi] = r->vv; v->strides[r->vi] = 0; break;
        default: break;
        }
        if (r->nulls & NU_DATA) v->v.data = NULL;
        nw_status st = nw_model_set_weight((r->nulls & NU_MODEL) ? NULL : fx->model, r->e0, r->e1,
                                           (r->nulls & NU_VIEW) ? NULL : &v->v, r->e2);
        check_status(c, "nw_model_set_weight", st);
        int64_t vocab_after = -1;
        nw_model_vocab_size(fx->model, &vocab_after);
        if (st != NW_OK) {
            CHECK(c, vocab_after == vocab_before, "a failed set changed n_vocab %" PRId64 " -> %" PRId64, vocab_before,
                  vocab_after);
            /* the old layer-less weights still answer */
            int64_t ix[2] = {1, 2};
            float u[NV];
            nw_status s2 = nw_token_writes(fx->model, fx->store, NW_NODE_MLP_NEURON, 0, ix, 1, 2, u, NV);
            if (s2 != NW_OK) failf(c, "afterwards, token writes: %s", nw_status_string(s2));
            else {
                double want[NV];
                nw_node_index nd = N_MLP(0, 1, 2);
                x_ref_tokens(c, &nd, want);
                x_compare(c, "afterwards, token writes", u, want, NV);
            }
        } else if (r->e0 == NW_WEIGHT_UNEMBEDDING) {
            CHECK(c, vocab_after == v->shape[1], "n_vocab %" PRId64 " after setting %" PRId64, vocab_after, v->shape[1]);
            if (r->vm == VM_NONE) { /* token writes with the new unembedding (NV + 2 entries) */
                int64_t ix[2] = {1, 2};
                float u[NV + 2];
                nw_status s2 = nw_token_writes(fx->model, fx->store, NW_NODE_MLP_NEURON, 0, ix, 1, 2, u, NV + 2);
                double w[DM], want[NV + 2], mean = 0;
                int64_t tok;
                nw_node_index nd = N_MLP(0, 1, 2);
                ref_node(fx, &nd, w, &tok);
                for (int t = 0; t < NV + 2; t++) {
                    want[t] = 0;
                    for (int j = 0; j < DM; j++) want[t] += w[j] * data[j * (NV + 2) + t] * c->gain[j];
                    mean += want[t];
                }
                for (int t = 0; t < NV + 2; t++) want[t] -= mean / (NV + 2);
                if (s2 != NW_OK) failf(c, "afterwards, token writes: %s", nw_status_string(s2));
                else x_compare(c, "afterwards, token writes", u, want, NV + 2);
            }
        }
        free(data);
        break;
    }
    case F_PUT_DELTA: { /* e0 activation, e1 layer; vm/vv mutation; then derive e2 (dst) expecting .post */
        int64_t shp[3] = {fx->T, DM, 1};
        double *data = x_gen(fx->T * DM, 31337);
        nwt_view *v = fx_newview(fx);
        nwt_view_build(v, data, 2, shp, NW_DTYPE_F32, NWT_CONTIG, 256);
        switch (r->vm) {
        case VM_DTYPE: v->v.dtype = (int32_t)r->vv; break;
        case VM_NDIM: v->v.ndim = (int32_t)r->vv; v->shape[2] = 1; v->strides[2] = 1; break;
        case VM_SHAPE: v->shape[r->vi] = r->vv; v->v.strides = NULL; break;
        default: break;
        }
        nw_status st = nw_store_put((r->nulls & NU_STORE) ? NULL : fx->store, r->e0, r->e1, (r->nulls & NU_VIEW) ? NULL : &v->v);
        check_status(c, "nw_store_put", st);
        if (r->post_set) { /* the layer norm of the dependent DST */
            int32_t dst = r->e0 == NW_ACT_RESID_DELTA_ATTN ? NW_DST_ATTN_LAYER_WRITE_NORM : NW_DST_MLP_LAYER_WRITE_NORM;
            int L = r->e1 >= 0 && r->e1 < NL ? r->e1 : 0;
            float out[TT + 1];
            int64_t shape[3];
            int32_t nd;
            nw_status s2 = nw_derive(fx->model, fx->store, dst, L, NULL, 0, out, TT + 1, shape, &nd);
            if (s2 != r->post) failf(c, "afterwards, nw_derive(%s) returned %s, expected %s", DST_NAMES[dst],
                                     nw_status_string(s2), nw_status_string(r->post));
            else if (s2 == NW_OK) {
                const double *d = (st == NW_OK && r->e1 == L) ? data : c->delta[r->e0 == NW_ACT_RESID_DELTA_ATTN][L];
                double want[TT];
                for (int t = 0; t < fx->T; t++) {
                    double nn = 0;
                    for (int j = 0; j < DM; j++) nn += d[t * DM + j] * d[t * DM + j];
                    want[t] = sqrt(nn);
                }
                x_compare(c, "afterwards, nw_derive", out, want, fx->T);
            }
        }
        free(data);
        break;
    }
    default: break;
    }
    x_teardown(c);
}

/* ------------------------------------------- facts, slot states, call count */

/* The info tables: e0 = table, e1 = index, e2 = size mode. */
enum { TB_NODE, TB_DST, TB_ACT, TB_WEIGHT, TB_DTYPE, TB_AEIN, TB_HOOK, TB_COUNT };
static const char *const TB_NAME[TB_COUNT] = {"node_type", "dst", "activation", "weight", "dtype",
                                              "autoencoder_input", "saelens_hook"};
/* rows in each table, from the header's enums (the hook table: 7 suffixes, hook_resid_pre twice) */
static const int32_t TB_ROWS[TB_COUNT] = {NW_NODE_ATTENTION_AUTOENCODER_LATENT + 1,
                                          NW_DST_ATTN_WRITE_TO_LATENT_PER_SEQUENCE_TOKEN_BATCHED + 1,
                                          NW_ACT_ATTN_V_OUT + 1, NW_WEIGHT_MLP_OUT_BIAS + 1,
                                          NW_DTYPE_F64 + 1, NW_AE_INPUT_ATTN_Z + 1, 8};
static size_t tb_size(int tb) {
    switch (tb) {
    case TB_NODE: return sizeof(nw_node_type_info);
    case TB_DST: return sizeof(nw_dst_info);
    case TB_ACT: return sizeof(nw_activation_info);
    case TB_WEIGHT: return sizeof(nw_weight_info);
    case TB_DTYPE: return sizeof(nw_dtype_info);
    case TB_AEIN: return sizeof(nw_autoencoder_input_info);
    default: return sizeof(nw_saelens_hook_info);
    }
}
static nw_status tb_get(int tb, int32_t i, void *out) {
    switch (tb) {
    case TB_NODE: return nw_node_type_info_get(i, out);
    case TB_DST: return nw_dst_info_get(i, out);
    case TB_ACT: return nw_activation_info_get(i, out);
    case TB_WEIGHT: return nw_weight_info_get(i, out);
    case TB_DTYPE: return nw_dtype_info_get(i, out);
    case TB_AEIN: return nw_autoencoder_input_info_get(i, out);
    default: return nw_saelens_hook_info_get(i, out);
    }
}

/* size modes of a size-led struct */
enum { SZ_EXACT, SZ_NULL, SZ_ZERO, SZ_SMALL, SZ_BIG, SZ_HUGE, SZ_MODES };
static const char *const SZ_NAME[SZ_MODES] = {"size = sizeof", "out NULL", "size 0", "size = sizeof - 1",
                                              "size = sizeof + 64 (bytes past untouched)", "size = SIZE_MAX"};
enum { SZ_SLACK = 64 };

/* A sentinel-filled buffer for a struct of `size` bytes, its size field set for the mode.
 * Returns the pointer to pass (NULL for SZ_NULL). */
static void *sz_prepare(unsigned char *buf, size_t size, int mode) {
    memset(buf, SENT, size + SZ_SLACK);
    size_t s = mode == SZ_ZERO ? 0 : mode == SZ_SMALL ? size - 1 : mode == SZ_BIG ? size + SZ_SLACK
             : mode == SZ_HUGE ? SIZE_MAX : size;
    memcpy(buf, &s, sizeof s);
    return mode == SZ_NULL ? NULL : buf;
}

/* After the call: on failure every byte as it was; on success out->size = sizeof and nothing
 * past it written. */
static void sz_check(ctx *c, const unsigned char *buf, size_t size, int mode, nw_status st) {
    unsigned char want[1024];
    sz_prepare(want, size, mode);
    if (st != NW_OK) { CHECK(c, memcmp(buf, want, size + SZ_SLACK) == 0, "the struct was written on failure"); return; }
    size_t got;
    memcpy(&got, buf, sizeof got);
    CHECK(c, got == size, "out->size = %zu after the call, expected %zu", got, size);
    CHECK(c, untouched(buf + size, SZ_SLACK), "bytes past the library's struct were written");
}

static int streq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* The row's content against the name functions. */
static void info_content(ctx *c, int tb, int32_t i, const unsigned char *buf) {
    switch (tb) {
    case TB_NODE: {
        nw_node_type_info v; memcpy(&v, buf, sizeof v);
        CHECK(c, streq(v.name, nw_node_type_name(i)), "name \"%s\"", v.name ? v.name : "(null)");
        CHECK(c, v.n_indices == nw_node_type_index_count(i), "n_indices %d", v.n_indices);
        CHECK(c, v.is_latent == (i >= NW_NODE_AUTOENCODER_LATENT), "is_latent %d", v.is_latent);
        for (int k = 0; k < 4; k++) CHECK(c, (v.index_names[k] != NULL) == (k < v.n_indices), "index_names[%d]", k);
        CHECK(c, v.n_activations == (i == NW_NODE_ATTENTION_HEAD ? 2 : 1) && nw_activation_name(v.activations[0]),
              "activations");
        CHECK(c, v.weight == (i == NW_NODE_MLP_NEURON ? NW_WEIGHT_MLP_TO_RESIDUAL
                              : i == NW_NODE_ATTENTION_HEAD ? NW_WEIGHT_ATTN_TO_RESIDUAL : -1), "weight %d", v.weight);
        CHECK(c, v.width_dim == (i == NW_NODE_MLP_NEURON ? NW_DIM_D_FF : i == NW_NODE_ATTENTION_HEAD ? NW_DIM_HEADS
                                 : NW_DIM_LATENTS), "width_dim %d", v.width_dim);
        break;
    }
    case TB_DST: {
        nw_dst_info v; memcpy(&v, buf, sizeof v);
        if (i >= NW_DST_ATTN_QUERY_IN_EDGE_ATTRIBUTION) { /* edges (nw_derive_node) */
            int layerless = i == NW_DST_TOKEN_OUT_EDGE_ATTRIBUTION || i == NW_DST_TOKEN_ATTRIBUTION;
            CHECK(c, streq(v.name, nw_dst_name(i)) && v.name && v.name[0], "name \"%s\"", v.name ? v.name : "(null)");
            CHECK(c, v.needs_direction == 0 && v.quantity >= NW_QUANTITY_IN_EDGE && v.quantity <= NW_QUANTITY_TO_LATENT, "quantity %d",
                  v.quantity);
            CHECK(c, (v.ndim == 2 || v.ndim == 3) && v.dims[0] != NW_DIM_NONE && v.dims[v.ndim - 1] != NW_DIM_NONE && v.dims[3] == 0,
                  "dims");
            CHECK(c, v.has_layer == !layerless && (v.layout == NW_LAYOUT_TOKENS) == layerless && v.layout != NW_LAYOUT_LAYER,
                  "layout %d has_layer %d", v.layout, v.has_layer);
            CHECK(c, v.n_activations >= 1 && v.n_activations <= 4 && nw_activation_name(v.activations[v.n_activations - 1]), "activations");
            break;
        }
        CHECK(c, streq(v.name, nw_dst_name(i)) && streq(v.name, DST_NAMES[i]), "name \"%s\"", v.name ? v.name : "(null)");
        CHECK(c, v.needs_direction == dst_is_projection(i) && v.quantity == dst_is_projection(i), "quantity");
        CHECK(c, (v.ndim == 2 || v.ndim == 3) && v.dims[v.ndim - 1] != NW_DIM_NONE && (v.ndim == 3 || v.dims[2] == 0) &&
              v.dims[3] == 0, "dims");
        CHECK(c, (v.layout == NW_LAYOUT_LAYER) == (v.node_type == -1) && v.has_layer == 1, "layout %d", v.layout);
        CHECK(c, v.n_activations >= 1 && v.n_activations <= 2 && nw_activation_name(v.activations[0]), "activations");
        break;
    }
    case TB_ACT: {
        nw_activation_info v; memcpy(&v, buf, sizeof v);
        CHECK(c, streq(v.name, nw_activation_name(i)), "name");
        CHECK(c, v.ndim == (i == NW_ACT_ATTN_QK_PROBS || i == NW_ACT_ATTN_VALUE || i == NW_ACT_ATTN_V_OUT ? 3 : 2) &&
              v.dims[0] == NW_DIM_TOKENS, "dims");
        CHECK(c, v.has_layer == (i != NW_ACT_RESID_POST_EMB), "has_layer");
        CHECK(c, v.latent_node_type == (i >= NW_ACT_ONLINE_AUTOENCODER_LATENT && i <= NW_ACT_ONLINE_ATTENTION_AUTOENCODER_LATENT
                                        ? i - 1 : -1), "latent_node_type %d", v.latent_node_type);
        break;
    }
    case TB_WEIGHT: {
        nw_weight_info v; memcpy(&v, buf, sizeof v);
        CHECK(c, streq(v.name, nw_weight_name(i)), "name");
        CHECK(c, v.has_layer == (i != NW_WEIGHT_UNEMBEDDING && i != NW_WEIGHT_LAYER_NORM_GAIN_FINAL), "has_layer");
        int nd = i == NW_WEIGHT_ATTN_TO_RESIDUAL || (i >= NW_WEIGHT_ATTN_TO_QUERY && i <= NW_WEIGHT_ATTN_TO_VALUE) ? 3
               : i == NW_WEIGHT_MLP_TO_RESIDUAL || i == NW_WEIGHT_UNEMBEDDING || i == NW_WEIGHT_MLP_TO_HIDDEN
                 || (i >= NW_WEIGHT_ATTN_QUERY_BIAS && i <= NW_WEIGHT_ATTN_VALUE_BIAS) ? 2 : 1;
        CHECK(c, v.ndim == nd, "ndim");
        break;
    }
    case TB_DTYPE: {
        nw_dtype_info v; memcpy(&v, buf, sizeof v);
        CHECK(c, streq(v.name, nw_dtype_name(i)), "name");
        CHECK(c, v.item_size == (int32_t)nwt_itemsize(i) && v.reserved == 0, "item_size %d", v.item_size);
        break;
    }
    case TB_AEIN: {
        nw_autoencoder_input_info v; memcpy(&v, buf, sizeof v);
        static const char *const names[3] = {"mlp_post_act", "residual", "attn_z"};
        static const int32_t dims[3] = {NW_DIM_D_FF, NW_DIM_D_MODEL, NW_DIM_HEAD_CHANNELS};
        static const int32_t weights[3] = {NW_WEIGHT_MLP_TO_RESIDUAL, -1, NW_WEIGHT_ATTN_TO_RESIDUAL};
        CHECK(c, streq(v.name, names[i]) && v.input_dim == dims[i] && v.weight == weights[i], "row %d", i);
        break;
    }
    default: {
        nw_saelens_hook_info v; memcpy(&v, buf, sizeof v);
        char name[96];
        snprintf(name, sizeof name, "blocks.%d.%s", v.min_layer, v.suffix ? v.suffix : "");
        int32_t row = -1, layer = -1, kind = -1;
        CHECK(c, nw_saelens_hook_find(name, &row, &layer) == NW_OK && row == i && layer == v.min_layer,
              "nw_saelens_hook_find(\"%s\") = row %d", name, row);
        CHECK(c, nw_autoencoder_input_from_name(v.tdb_input, &kind) == NW_OK && kind == v.input, "tdb_input");
        CHECK(c, v.node_type >= NW_NODE_AUTOENCODER_LATENT && v.node_type <= NW_NODE_ATTENTION_AUTOENCODER_LATENT,
              "node_type %d", v.node_type);
        break;
    }
    }
}

static void run_info(ctx *c) {
    const row *r = c->r;
    unsigned char buf[1024];
    size_t size = tb_size(r->e0);
    void *out = sz_prepare(buf, size, r->e2);
    nw_status st = tb_get(r->e0, r->e1, out);
    check_status(c, "nw_*_info_get", st);
    sz_check(c, buf, size, r->e2, st);
    if (st == NW_OK && !c->failed) info_content(c, r->e0, r->e1, buf);
}

/* nw_saelens_hook_find: str = the name, e0/e1 = the expected row and layer. */
static void run_hook_find(ctx *c) {
    const row *r = c->r;
    int32_t row, layer;
    memset(&row, SENT, sizeof row);
    memset(&layer, SENT, sizeof layer);
    nw_status st = nw_saelens_hook_find((r->nulls & NU_NAME) ? NULL : r->str, (r->nulls & NU_OUT) ? NULL : &row,
                                        (r->nulls & NU_TOKEN) ? NULL : &layer);
    check_status(c, "nw_saelens_hook_find", st);
    if (st != NW_OK) CHECK(c, untouched(&row, sizeof row) && untouched(&layer, sizeof layer), "row or layer written on failure");
    else CHECK(c, row == r->e0 && layer == r->e1, "row %d layer %d, expected %d %d", row, layer, r->e0, r->e1);
}

/* nw_model_weight_get (e0 = 0) / nw_model_autoencoder_get (e0 = 1): e1 = weight or node type,
 * e2 = layer, e3 = size mode; the fixture of run_x (x_setup: the unembedding copied, the gain
 * borrowed; layer weights and decoders copied unless FX_BORROW). */
static void run_slot(ctx *c) {
    const row *r = c->r;
    fixture *fx = &c->fx;
    if (x_setup(c) != 0) { if (!c->failed) failf(c, "setup: out of memory"); x_teardown(c); return; }
    const nw_model *m = (r->nulls & NU_MODEL) ? NULL : fx->model;
    unsigned char buf[1024];
    size_t size = r->e0 ? sizeof(nw_autoencoder_state) : sizeof(nw_weight_state);
    void *out = sz_prepare(buf, size, r->e3);
    nw_status st = r->e0 ? nw_model_autoencoder_get(m, r->e1, r->e2, out) : nw_model_weight_get(m, r->e1, r->e2, out);
    check_status(c, r->e0 ? "nw_model_autoencoder_get" : "nw_model_weight_get", st);
    sz_check(c, buf, size, r->e3, st);
    int borrow = (r->fx & FX_BORROW) != 0;
    if (st == NW_OK && !c->failed && r->e0 == 0) {
        nw_weight_state s; memcpy(&s, buf, sizeof s);
        int32_t w = r->e1;
        int tg = w == NW_WEIGHT_MLP_TO_RESIDUAL ? TG_WMLP : w == NW_WEIGHT_ATTN_TO_RESIDUAL ? TG_WATT : TG_NONE;
        int present = tg != TG_NONE ? fx->present[tg][r->e2]
                    : w == NW_WEIGHT_UNEMBEDDING ? !(r->xfx & XF_NO_UNEMB) : !(r->xfx & XF_NO_GAIN);
        CHECK(c, s.present == present, "present %d, expected %d", s.present, present);
        if (!present) {
            CHECK(c, s.dtype == 0 && s.ownership == 0 && s.ndim == 0 && s.shape[0] == 0 && s.shape[3] == 0, "an empty slot's fields are not 0");
        } else {
            int own = tg != TG_NONE ? (borrow ? NW_BORROW : NW_COPY) : w == NW_WEIGHT_UNEMBEDDING ? NW_COPY : NW_BORROW;
            int32_t dt = own == NW_COPY ? NW_DTYPE_F32 : (tg != TG_NONE ? r->fdtype : NW_DTYPE_F32);
            CHECK(c, s.ownership == own && s.dtype == dt, "ownership %d dtype %d, expected %d %d", s.ownership, s.dtype, own, dt);
            int64_t want[4] = {0, 0, 0, 0};
            int nd = 0;
            if (tg != TG_NONE) { nd = fx->ndim[tg]; memcpy(want, fx->shape[tg][r->e2], (size_t)nd * sizeof(int64_t)); }
            else if (w == NW_WEIGHT_UNEMBEDDING) { nd = 2; want[0] = DM; want[1] = NV; }
            else { nd = 1; want[0] = DM; }
            CHECK(c, s.ndim == nd && memcmp(s.shape, want, sizeof want) == 0, "ndim %d shape (%" PRId64 ", %" PRId64 ", %" PRId64 ")",
                  s.ndim, s.shape[0], s.shape[1], s.shape[2]);
        }
    } else if (st == NW_OK && !c->failed) {
        nw_autoencoder_state s; memcpy(&s, buf, sizeof s);
        int k = r->e1 - NW_NODE_AUTOENCODER_LATENT, L = r->e2;
        int present = fx->present[TG_DEC0 + k][L];
        CHECK(c, s.present == present, "present %d, expected %d", s.present, present);
        if (!present) {
            CHECK(c, s.input == 0 && s.dtype == 0 && s.ownership == 0 && s.n_latents == 0 && s.n_inputs == 0,
                  "an empty slot's fields are not 0");
        } else {
            CHECK(c, s.input == fx->aein[k][L] && s.n_latents == fx->nlat[k][L] &&
                  s.n_inputs == (fx->aein[k][L] == NW_AE_INPUT_MLP_POST_ACT ? DFF : DM), "input %d shape (%" PRId64 ", %" PRId64 ")",
                  s.input, s.n_latents, s.n_inputs);
            CHECK(c, s.ownership == (borrow ? NW_BORROW : NW_COPY) && s.dtype == (borrow ? r->fdtype : NW_DTYPE_F32),
                  "ownership %d dtype %d", s.ownership, s.dtype);
        }
    }
    x_teardown(c);
}

/* nw_model_weight_read (e0 = 0) / nw_model_autoencoder_read (e0 = 1): e1 = weight or node type,
 * e2 = layer, e3 = the out_len passed: 0 the slot's element count, 1 one short, 2 zero, 3 the
 * count + RD_SPARE (the fixture of run_x, as run_slot). The element count is the slot's
 * (nw_model_*_get; 1 for a slot that is empty or not one). Every failure leaves out untouched
 * (all of it, sentinel bytes); a success writes the first count floats, each finite, and nothing
 * after them. */
enum { RD_SPARE = 64 };
static void run_read(ctx *c) {
    const row *r = c->r;
    fixture *fx = &c->fx;
    if (x_setup(c) != 0) { if (!c->failed) failf(c, "setup: out of memory"); x_teardown(c); return; }
    size_t n = 1;
    if (r->e0 == 0) {
        nw_weight_state s; memset(&s, 0, sizeof s); s.size = sizeof s;
        if (nw_model_weight_get(fx->model, r->e1, r->e2, &s) == NW_OK && s.present) {
            n = 1;
            for (int i = 0; i < s.ndim; i++) n *= (size_t)s.shape[i];
        }
    } else {
        nw_autoencoder_state s; memset(&s, 0, sizeof s); s.size = sizeof s;
        if (nw_model_autoencoder_get(fx->model, r->e1, r->e2, &s) == NW_OK && s.present)
            n = (size_t)(s.n_latents * s.n_inputs);
    }
    size_t cap = n + RD_SPARE;
    float *buf = malloc(cap * sizeof *buf);
    if (!buf) { failf(c, "setup: out of memory"); x_teardown(c); return; }
    memset(buf, SENT, cap * sizeof *buf);
    size_t len = r->e3 == 0 ? n : r->e3 == 1 ? n - 1 : r->e3 == 2 ? 0 : cap;
    const nw_model *m = (r->nulls & NU_MODEL) ? NULL : fx->model;
    float *out = (r->nulls & NU_OUT) ? NULL : buf;
    nw_status st = r->e0 ? nw_model_autoencoder_read(m, r->e1, r->e2, out, len)
                         : nw_model_weight_read(m, r->e1, r->e2, out, len);
    check_status(c, r->e0 ? "nw_model_autoencoder_read" : "nw_model_weight_read", st);
    if (st != NW_OK) {
        CHECK(c, untouched(buf, cap * sizeof *buf), "out written on failure (%s)", nw_status_string(st));
    } else if (!c->failed) {
        size_t bad = n;
        for (size_t i = 0; i < n && bad == n; i++)
            if (untouched(&buf[i], sizeof *buf) || !isfinite(buf[i])) bad = i;
        CHECK(c, bad == n, "element %zu of %zu not written (or not finite)", bad, n);
        CHECK(c, untouched(buf + n, RD_SPARE * sizeof *buf), "written past the slot's %zu elements", n);
    }
    free(buf);
    x_teardown(c);
}

/* nw_thread_call_count: each export, called once, counts exactly 1 (nw_thread_call_count 0).
 * e0 = the export's index in CC_NAMES. */
static const char *const CC_NAMES[] = {
    "nw_thread_call_count", "nw_abi_version", "nw_version_string", "nw_status_string", "nw_last_error_message",
    "nw_node_type_name", "nw_activation_name", "nw_weight_name", "nw_dtype_name", "nw_dst_name",
    "nw_node_type_from_name", "nw_activation_from_name", "nw_weight_from_name", "nw_dtype_from_name", "nw_dst_from_name",
    "nw_autoencoder_input_from_name", "nw_autoencoder_input_source_name",
    "nw_node_type_info_get", "nw_dst_info_get", "nw_activation_info_get", "nw_weight_info_get", "nw_dtype_info_get",
    "nw_autoencoder_input_info_get", "nw_saelens_hook_info_get", "nw_saelens_hook_find",
    "nw_model_create", "nw_model_destroy", "nw_model_destroy(NULL)", "nw_model_dims_get", "nw_model_dims_get(NULL)",
    "nw_model_set_weight", "nw_model_set_autoencoder", "nw_model_weight_get", "nw_model_autoencoder_get",
    "nw_model_vocab_size", "nw_store_create", "nw_store_destroy", "nw_store_put", "nw_store_remove", "nw_store_clear",
    "nw_store_clear(NULL)", "nw_node_write_deriver_create", "nw_deriver_destroy", "nw_deriver_requirements",
    "nw_deriver_output_shape", "nw_deriver_derive", "nw_deriver_derive_vector", "nw_node_write", "nw_node_write(bad)",
    "nw_node_write_vectors", "nw_node_write_sized", "nw_node_type_index_count", "nw_node_writes", "nw_set_num_threads",
    "nw_get_num_threads", "nw_derive", "nw_derive(out=NULL)", "nw_node_write_to_direction", "nw_token_writes",
    "nw_token_writes_top_k", "nw_model_load_safetensors", "nw_model_load_autoencoder_safetensors",
    "nw_model_set_causal", "nw_model_get_causal", "nw_model_remove_autoencoder",
    "nw_store_put_pass", "nw_store_remove_pass", "nw_model_set_autoencoder_encoder", "nw_derive_node",
    "nw_derive_node(write family)", "nw_model_set_mlp_activation", "nw_model_get_mlp_activation",
    "nw_model_set_layer_norm_epsilon", "nw_model_get_layer_norm_epsilon",
    "nw_model_weight_read", "nw_model_autoencoder_read"};
enum { CC_N = sizeof CC_NAMES / sizeof *CC_NAMES };

static void run_call_count(ctx *c) {
    const row *r = c->r;
    fixture *fx = &c->fx;
    if (x_setup(c) != 0) { if (!c->failed) failf(c, "setup: out of memory"); x_teardown(c); return; }
    const char *name = CC_NAMES[r->e0];
    /* everything a call needs, made before counting */
    nw_model *m = fx->model;
    nw_store *s = fx->store;
    nw_node_index node = N_MLP(0, 1, 2), bad = N_MLP(0, 1, DFF);
    int64_t ix[4] = {0, 1, 2, 3}, shape[3], tok[2], ids[2];
    int32_t v32, ndim;
    size_t count;
    float out[TT * NV * NH * 4];
    nw_requirement req[4];
    unsigned char info[1024];
    nw_deriver *d = NULL, *d2 = NULL;
    nw_model *m2 = NULL, *tm = NULL;
    nw_store *s2 = NULL, *ts = NULL;
    nw_deriver *td = NULL;
    nw_model_dims dims;
    nw_status st = nw_node_write_deriver_create(m, &node, &d);
    if (st == NW_OK) st = nw_node_write_deriver_create(m, &node, &d2);
    if (st == NW_OK) st = nw_store_create(&s2);
    nw_model_dims md = {NL, DM, NH, DH, DFF};
    if (st == NW_OK) st = nw_model_create(&md, &m2);
    int shared = 0;
    const nw_tensor_view *g = st == NW_OK ? x_direction(c, &shared) : NULL;
    int64_t gs[1] = {DM};
    float gd[DM] = {1, 2, 3, 4}, wd[DM] = {1, 1, 1, 1};
    nw_tensor_view gain = {wd, NW_DTYPE_F32, 1, gs, NULL};
    float dec[6 * DM] = {0};
    int64_t decs[2] = {6, DM};
    nw_tensor_view decv = {dec, NW_DTYPE_F32, 2, decs, NULL};
    nw_tensor_view deltav = {gd, NW_DTYPE_F32, 2, (int64_t[2]){1, DM}, NULL};
    if (st != NW_OK || !g) { failf(c, "setup: %s", nw_status_string(st)); goto done; }
    memset(info, 0, sizeof info);
    size_t isz = sizeof info;
    memcpy(info, &isz, sizeof isz);
    uint64_t before = nw_thread_call_count();
    const char *n = name;
#define IS(x) (strcmp(n, (x)) == 0)
    if (IS("nw_thread_call_count")) (void)nw_thread_call_count();
    else if (IS("nw_abi_version")) (void)nw_abi_version();
    else if (IS("nw_version_string")) (void)nw_version_string();
    else if (IS("nw_status_string")) (void)nw_status_string(-3);
    else if (IS("nw_last_error_message")) (void)nw_last_error_message();
    else if (IS("nw_node_type_name")) (void)nw_node_type_name(1);
    else if (IS("nw_activation_name")) (void)nw_activation_name(99);
    else if (IS("nw_weight_name")) (void)nw_weight_name(0);
    else if (IS("nw_dtype_name")) (void)nw_dtype_name(2);
    else if (IS("nw_dst_name")) (void)nw_dst_name(3);
    else if (IS("nw_node_type_from_name")) (void)nw_node_type_from_name("mlp_neuron", &v32);
    else if (IS("nw_activation_from_name")) (void)nw_activation_from_name("nope", &v32);
    else if (IS("nw_weight_from_name")) (void)nw_weight_from_name("unembedding", &v32);
    else if (IS("nw_dtype_from_name")) (void)nw_dtype_from_name("float16", &v32);
    else if (IS("nw_dst_from_name")) (void)nw_dst_from_name("mlp_write_norm", &v32);
    else if (IS("nw_autoencoder_input_from_name")) (void)nw_autoencoder_input_from_name("resid_delta_mlp", &v32);
    else if (IS("nw_autoencoder_input_source_name")) (void)nw_autoencoder_input_source_name(0);
    else if (IS("nw_node_type_info_get")) (void)nw_node_type_info_get(0, (void *)info);
    else if (IS("nw_dst_info_get")) (void)nw_dst_info_get(99, (void *)info);
    else if (IS("nw_activation_info_get")) (void)nw_activation_info_get(0, (void *)info);
    else if (IS("nw_weight_info_get")) (void)nw_weight_info_get(0, (void *)info);
    else if (IS("nw_dtype_info_get")) (void)nw_dtype_info_get(0, NULL);
    else if (IS("nw_autoencoder_input_info_get")) (void)nw_autoencoder_input_info_get(0, (void *)info);
    else if (IS("nw_saelens_hook_info_get")) (void)nw_saelens_hook_info_get(0, (void *)info);
    else if (IS("nw_saelens_hook_find")) (void)nw_saelens_hook_find("blocks.0.hook_mlp_out", &v32, &ndim);
    else if (IS("nw_model_create")) (void)nw_model_create(&md, &tm);
    else if (IS("nw_model_destroy")) { nw_model_destroy(m2); m2 = NULL; }
    else if (IS("nw_model_destroy(NULL)")) nw_model_destroy(NULL);
    else if (IS("nw_model_dims_get")) (void)nw_model_dims_get(m, &dims);
    else if (IS("nw_model_dims_get(NULL)")) (void)nw_model_dims_get(NULL, &dims);
    else if (IS("nw_model_set_weight")) (void)nw_model_set_weight(m2, NW_WEIGHT_LAYER_NORM_GAIN_FINAL, NW_NO_LAYER, &gain, NW_COPY);
    else if (IS("nw_model_set_autoencoder")) (void)nw_model_set_autoencoder(m2, NW_NODE_AUTOENCODER_LATENT, 0, NW_AE_INPUT_RESIDUAL, &decv, NW_COPY);
    else if (IS("nw_model_weight_get")) (void)nw_model_weight_get(m, NW_WEIGHT_UNEMBEDDING, NW_NO_LAYER, (void *)info);
    else if (IS("nw_model_autoencoder_get")) (void)nw_model_autoencoder_get(m, NW_NODE_MLP_AUTOENCODER_LATENT, 1, (void *)info);
    else if (IS("nw_model_weight_read")) (void)nw_model_weight_read(m, NW_WEIGHT_UNEMBEDDING, NW_NO_LAYER, out, sizeof out / sizeof *out);
    else if (IS("nw_model_autoencoder_read")) (void)nw_model_autoencoder_read(m, NW_NODE_MLP_AUTOENCODER_LATENT, 1, out, sizeof out / sizeof *out);
    else if (IS("nw_model_vocab_size")) (void)nw_model_vocab_size(m, ix);
    else if (IS("nw_store_create")) (void)nw_store_create(&ts);
    else if (IS("nw_store_destroy")) { nw_store_destroy(s2); s2 = NULL; }
    else if (IS("nw_store_put")) (void)nw_store_put(s2, NW_ACT_RESID_DELTA_MLP, 0, &deltav);
    else if (IS("nw_store_remove")) (void)nw_store_remove(s2, NW_ACT_RESID_DELTA_MLP, 0);
    else if (IS("nw_store_clear")) nw_store_clear(s2);
    else if (IS("nw_store_clear(NULL)")) nw_store_clear(NULL);
    else if (IS("nw_node_write_deriver_create")) (void)nw_node_write_deriver_create(m, &node, &td);
    else if (IS("nw_deriver_destroy")) { nw_deriver_destroy(d2); d2 = NULL; }
    else if (IS("nw_deriver_requirements")) (void)nw_deriver_requirements(d, req, 4, &count);
    else if (IS("nw_deriver_output_shape")) (void)nw_deriver_output_shape(d, s, shape);
    else if (IS("nw_deriver_derive")) (void)nw_deriver_derive(d, s, out, sizeof out / sizeof *out);
    else if (IS("nw_deriver_derive_vector")) (void)nw_deriver_derive_vector(d, s, out, DM, tok);
    else if (IS("nw_node_write")) (void)nw_node_write(m, s, &node, out, sizeof out / sizeof *out);
    else if (IS("nw_node_write(bad)")) (void)nw_node_write(m, s, &bad, out, sizeof out / sizeof *out);
    else if (IS("nw_node_write_vectors")) (void)nw_node_write_vectors(m, s, &node, 1, out, DM, tok);
    else if (IS("nw_node_write_sized")) (void)nw_node_write_sized(m, s, &node, 0, NULL, 0, shape);
    else if (IS("nw_node_type_index_count")) (void)nw_node_type_index_count(1);
    else if (IS("nw_node_writes")) (void)nw_node_writes(m, s, NW_NODE_MLP_NEURON, 0, ix, 2, 2, out, 2 * DM, tok);
    else if (IS("nw_set_num_threads")) (void)nw_set_num_threads(0);
    else if (IS("nw_get_num_threads")) (void)nw_get_num_threads();
    else if (IS("nw_derive")) (void)nw_derive(m, s, NW_DST_MLP_WRITE_NORM, 0, NULL, 0, out, sizeof out / sizeof *out, shape, &ndim);
    else if (IS("nw_derive(out=NULL)")) (void)nw_derive(m, s, NW_DST_MLP_WRITE_NORM, 0, NULL, 0, NULL, 0, shape, &ndim);
    else if (IS("nw_node_write_to_direction")) (void)nw_node_write_to_direction(m, s, &node, g, out, TT, shape);
    else if (IS("nw_token_writes")) (void)nw_token_writes(m, s, NW_NODE_MLP_NEURON, 0, ix, 1, 2, out, NV);
    else if (IS("nw_token_writes_top_k")) (void)nw_token_writes_top_k(m, s, NW_NODE_MLP_NEURON, 0, ix, 1, 2, 2, 1, out, ids, 2);
    else if (IS("nw_model_load_safetensors")) (void)nw_model_load_safetensors("/nonexistent/x.safetensors", &tm);
    else if (IS("nw_model_load_autoencoder_safetensors")) (void)nw_model_load_autoencoder_safetensors(m2, "/nonexistent", 2, 0);
    else if (IS("nw_model_set_causal")) (void)nw_model_set_causal(m2, 0);
    else if (IS("nw_model_get_causal")) (void)nw_model_get_causal(m, &v32);
    else if (IS("nw_model_remove_autoencoder")) (void)nw_model_remove_autoencoder(m2, NW_NODE_AUTOENCODER_LATENT, 0);
    else if (IS("nw_store_put_pass")) (void)nw_store_put_pass(s2, NW_ACT_RESID_DELTA_MLP, 0, NW_PASS_BACKWARD, &deltav);
    else if (IS("nw_store_remove_pass")) (void)nw_store_remove_pass(s2, NW_ACT_RESID_DELTA_MLP, 0, NW_PASS_BACKWARD);
    else if (IS("nw_model_set_autoencoder_encoder")) (void)nw_model_set_autoencoder_encoder(m2, NW_NODE_AUTOENCODER_LATENT, 0, &decv, &gain, &gain, NW_COPY);
    else if (IS("nw_derive_node")) (void)nw_derive_node(m, s, NW_DST_MLP_ACT_TIMES_GRAD, 0, NULL, NW_SUBNODE_NONE, 0, out, sizeof out / sizeof *out, shape, &ndim);
    else if (IS("nw_model_set_mlp_activation")) (void)nw_model_set_mlp_activation(m2, NW_ACT_FN_RELU);
    else if (IS("nw_model_get_mlp_activation")) (void)nw_model_get_mlp_activation(m, &v32);
    else if (IS("nw_model_set_layer_norm_epsilon")) (void)nw_model_set_layer_norm_epsilon(m2, 1e-6);
    else if (IS("nw_model_get_layer_norm_epsilon")) { double e; (void)nw_model_get_layer_norm_epsilon(m, &e); }
    else if (IS("nw_derive_node(write family)")) (void)nw_derive_node(m, s, NW_DST_MLP_WRITE_NORM, 0, NULL, NW_SUBNODE_NONE, 0, out, sizeof out / sizeof *out, shape, &ndim);
    else failf(c, "no call for %s", name);
#undef IS
    uint64_t after = nw_thread_call_count();
    uint64_t want = r->e0 == 0 ? 0 : 1;
    CHECK(c, after - before == want, "%s counted %" PRIu64 " calls, expected %" PRIu64, name, after - before, want);
done:
    nw_model_destroy(tm);
    nw_store_destroy(ts);
    nw_deriver_destroy(td);
    nw_deriver_destroy(d);
    nw_deriver_destroy(d2);
    nw_store_destroy(s2);
    nw_model_destroy(m2);
    x_teardown(c);
}

/* ------------------------------------------------------------- running */

static void *run_row(void *p) {
    ctx *c = p;
    const row *r = c->r;
    switch (r->fn) {
    case F_STATUS_STRING: case F_NAME: case F_FROM_NAME: case F_VERSION:
        run_names(c);
        return NULL;
    case F_MODEL_CREATE: run_model_create(c); return NULL;
    case F_STORE_CREATE: run_store_create(c); return NULL;
    case F_INFO: run_info(c); return NULL;
    case F_HOOK_FIND: run_hook_find(c); return NULL;
    default: break;
    }
    if (fx_setup(c) == 0) {
        const char *m = nw_last_error_message();
        if (m[0] != '\0') failf(c, "setup left an error message: %s", m);
        else switch (r->fn) {
        case F_DIMS_GET: run_dims_get(c); break;
        case F_SET_WEIGHT: case F_SET_AE: case F_STORE_PUT: run_set(c); break;
        case F_STORE_REMOVE: run_remove(c); break;
        case F_SIZED: case F_INDEX_COUNT: case F_NODE_WRITES: case F_THREADS: case F_DST_NAME:
        case F_DST_FROM_NAME: case F_DERIVE_DST: case F_TO_DIR: case F_VOCAB: case F_TOKEN_WRITES:
        case F_TOP_K: case F_SET_WEIGHT0: case F_PUT_DELTA: run_x(c); break;
        case F_SLOT: run_slot(c); break;
        case F_CALL_COUNT: run_call_count(c); break;
        case F_CAUSAL: case F_REMOVE_AE: run_slots(c); break;
        case F_ACT_FN: case F_LN_EPS: run_facts(c); break;
        case F_READ: run_read(c); break;
        case F_SCENARIO: {
            nw_status st = (nw_status)r->scenario(c);
            check_status(c, r->what, st);
            break;
        }
        default: run_derive_family(c); break;
        }
    }
    fx_teardown(&c->fx);
    return NULL;
}

/* ------------------------------------------------------------ the table */

#define MAXROWS 4000
static row ROWS[MAXROWS];
static int NROWS;

static row *add(row r) {
    if (NROWS >= MAXROWS) { fprintf(stderr, "too many rows\n"); exit(2); }
    ROWS[NROWS] = r;
    return &ROWS[NROWS++];
}

#define I64MIN INT64_MIN
#define I64MAX INT64_MAX
#define I32MIN INT32_MIN
#define I32MAX INT32_MAX
#define OK NW_OK
#define EARG NW_ERR_INVALID_ARGUMENT
#define EIDX NW_ERR_INDEX_OUT_OF_RANGE
#define ESHP NW_ERR_SHAPE_MISMATCH
#define EDT NW_ERR_UNSUPPORTED_DTYPE
#define EMIS NW_ERR_MISSING_INPUT
#define EUNS NW_ERR_UNSUPPORTED
#define EOOM NW_ERR_OUT_OF_MEMORY
#define EBUF NW_ERR_BUFFER_TOO_SMALL

/* explicit rows (generated ones are appended in build_table) */
#include "boundary_edges.h" /* rows of the edge exports (1.2) */

static const row STATIC_ROWS[] = {
    /* ---- version, status strings ---- */
    {.what = "abi version, version string, fresh-thread message, destroy(NULL)", .fn = F_VERSION},
    {.what = "status 0", .fn = F_STATUS_STRING, .e0 = 0, .str = "NW_OK"},
    {.what = "status -1", .fn = F_STATUS_STRING, .e0 = -1, .str = "NW_ERR_INVALID_ARGUMENT"},
    {.what = "status -2", .fn = F_STATUS_STRING, .e0 = -2, .str = "NW_ERR_INDEX_OUT_OF_RANGE"},
    {.what = "status -3", .fn = F_STATUS_STRING, .e0 = -3, .str = "NW_ERR_SHAPE_MISMATCH"},
    {.what = "status -4", .fn = F_STATUS_STRING, .e0 = -4, .str = "NW_ERR_UNSUPPORTED_DTYPE"},
    {.what = "status -5", .fn = F_STATUS_STRING, .e0 = -5, .str = "NW_ERR_MISSING_INPUT"},
    {.what = "status -6", .fn = F_STATUS_STRING, .e0 = -6, .str = "NW_ERR_UNSUPPORTED"},
    {.what = "status -7", .fn = F_STATUS_STRING, .e0 = -7, .str = "NW_ERR_OUT_OF_MEMORY"},
    {.what = "status -8", .fn = F_STATUS_STRING, .e0 = -8, .str = "NW_ERR_BUFFER_TOO_SMALL"},
    {.what = "status -9", .fn = F_STATUS_STRING, .e0 = -9, .str = "NW_ERR_STALE_INPUT"},
    {.what = "status -10 (one past)", .fn = F_STATUS_STRING, .e0 = -10, .str = "NW_ERR_UNKNOWN"},
    {.what = "status 1", .fn = F_STATUS_STRING, .e0 = 1, .str = "NW_ERR_UNKNOWN"},
    {.what = "status INT32_MIN", .fn = F_STATUS_STRING, .e0 = I32MIN, .str = "NW_ERR_UNKNOWN"},
    {.what = "status INT32_MAX", .fn = F_STATUS_STRING, .e0 = I32MAX, .str = "NW_ERR_UNKNOWN"},

    /* ---- nw_*_name ---- */
    {.what = "node type 0", .fn = F_NAME, .e0 = 0, .e1 = 0, .str = "mlp_neuron"},
    {.what = "node type 1", .fn = F_NAME, .e0 = 0, .e1 = 1, .str = "attention_head"},
    {.what = "node type 2", .fn = F_NAME, .e0 = 0, .e1 = 2, .str = "autoencoder_latent"},
    {.what = "node type 3", .fn = F_NAME, .e0 = 0, .e1 = 3, .str = "mlp_autoencoder_latent"},
    {.what = "node type 4", .fn = F_NAME, .e0 = 0, .e1 = 4, .str = "attention_autoencoder_latent"},
    {.what = "node type 5 (one past)", .fn = F_NAME, .e0 = 0, .e1 = 5, .str = NULL},
    {.what = "node type -1", .fn = F_NAME, .e0 = 0, .e1 = -1, .str = NULL},
    {.what = "node type INT32_MIN", .fn = F_NAME, .e0 = 0, .e1 = I32MIN, .str = NULL},
    {.what = "node type INT32_MAX", .fn = F_NAME, .e0 = 0, .e1 = I32MAX, .str = NULL},
    {.what = "activation 0", .fn = F_NAME, .e0 = 1, .e1 = 0, .str = "mlp.post_act"},
    {.what = "activation 1", .fn = F_NAME, .e0 = 1, .e1 = 1, .str = "attn.qk_probs"},
    {.what = "activation 2", .fn = F_NAME, .e0 = 1, .e1 = 2, .str = "attn.v"},
    {.what = "activation 3", .fn = F_NAME, .e0 = 1, .e1 = 3, .str = "online_autoencoder_latent"},
    {.what = "activation 4", .fn = F_NAME, .e0 = 1, .e1 = 4, .str = "online_mlp_autoencoder_latent"},
    {.what = "activation 5", .fn = F_NAME, .e0 = 1, .e1 = 5, .str = "online_attention_autoencoder_latent"},
    {.what = "activation 12 (one past)", .fn = F_NAME, .e0 = 1, .e1 = 12, .str = NULL},
    {.what = "activation -1", .fn = F_NAME, .e0 = 1, .e1 = -1, .str = NULL},
    {.what = "activation INT32_MIN", .fn = F_NAME, .e0 = 1, .e1 = I32MIN, .str = NULL},
    {.what = "activation INT32_MAX", .fn = F_NAME, .e0 = 1, .e1 = I32MAX, .str = NULL},
    {.what = "weight 0", .fn = F_NAME, .e0 = 2, .e1 = 0, .str = "mlp.to_residual"},
    {.what = "weight 1", .fn = F_NAME, .e0 = 2, .e1 = 1, .str = "attn.to_residual"},
    {.what = "weight 18 (one past)", .fn = F_NAME, .e0 = 2, .e1 = 18, .str = NULL},
    {.what = "weight -1", .fn = F_NAME, .e0 = 2, .e1 = -1, .str = NULL},
    {.what = "weight INT32_MIN", .fn = F_NAME, .e0 = 2, .e1 = I32MIN, .str = NULL},
    {.what = "weight INT32_MAX", .fn = F_NAME, .e0 = 2, .e1 = I32MAX, .str = NULL},
    {.what = "dtype 0", .fn = F_NAME, .e0 = 3, .e1 = 0, .str = "float32"},
    {.what = "dtype 1", .fn = F_NAME, .e0 = 3, .e1 = 1, .str = "float16"},
    {.what = "dtype 2", .fn = F_NAME, .e0 = 3, .e1 = 2, .str = "bfloat16"},
    {.what = "dtype 3", .fn = F_NAME, .e0 = 3, .e1 = 3, .str = "float64"},
    {.what = "dtype 4 (one past)", .fn = F_NAME, .e0 = 3, .e1 = 4, .str = NULL},
    {.what = "dtype -1", .fn = F_NAME, .e0 = 3, .e1 = -1, .str = NULL},
    {.what = "dtype INT32_MIN", .fn = F_NAME, .e0 = 3, .e1 = I32MIN, .str = NULL},
    {.what = "dtype INT32_MAX", .fn = F_NAME, .e0 = 3, .e1 = I32MAX, .str = NULL},

    /* ---- nw_*_from_name ---- */
    {.what = "node type from \"mlp_neuron\"", .fn = F_FROM_NAME, .e0 = 0, .str = "mlp_neuron", .e1 = 0},
    {.what = "node type from \"attention_autoencoder_latent\"", .fn = F_FROM_NAME, .e0 = 0,
     .str = "attention_autoencoder_latent", .e1 = 4},
    {.what = "node type from NULL name", .fn = F_FROM_NAME, .e0 = 0, .str = "mlp_neuron", .nulls = NU_NAME, .expect = EARG},
    {.what = "node type from name, NULL out", .fn = F_FROM_NAME, .e0 = 0, .str = "mlp_neuron", .nulls = NU_OUT, .expect = EARG},
    {.what = "node type from \"\"", .fn = F_FROM_NAME, .e0 = 0, .str = "", .expect = EARG},
    {.what = "node type from \"MLP_NEURON\" (case)", .fn = F_FROM_NAME, .e0 = 0, .str = "MLP_NEURON", .expect = EARG},
    {.what = "node type from \"mlp_neuron \" (trailing space)", .fn = F_FROM_NAME, .e0 = 0, .str = "mlp_neuron ", .expect = EARG},
    {.what = "node type from \"mlp\" (prefix)", .fn = F_FROM_NAME, .e0 = 0, .str = "mlp", .expect = EARG},
    {.what = "node type from \"mlp_neuronx\" (one char past)", .fn = F_FROM_NAME, .e0 = 0, .str = "mlp_neuronx", .expect = EARG},
    {.what = "activation from \"attn.v\"", .fn = F_FROM_NAME, .e0 = 1, .str = "attn.v", .e1 = 2},
    {.what = "activation from \"online_attention_autoencoder_latent\"", .fn = F_FROM_NAME, .e0 = 1,
     .str = "online_attention_autoencoder_latent", .e1 = 5},
    {.what = "activation from NULL", .fn = F_FROM_NAME, .e0 = 1, .str = "attn.v", .nulls = NU_NAME, .expect = EARG},
    {.what = "activation from name, NULL out", .fn = F_FROM_NAME, .e0 = 1, .str = "attn.v", .nulls = NU_OUT, .expect = EARG},
    {.what = "activation from \"attn_v\"", .fn = F_FROM_NAME, .e0 = 1, .str = "attn_v", .expect = EARG},
    {.what = "activation from \"mlp_neuron\" (other enum's name)", .fn = F_FROM_NAME, .e0 = 1, .str = "mlp_neuron", .expect = EARG},
    {.what = "weight from \"attn.to_residual\"", .fn = F_FROM_NAME, .e0 = 2, .str = "attn.to_residual", .e1 = 1},
    {.what = "weight from NULL", .fn = F_FROM_NAME, .e0 = 2, .str = "x", .nulls = NU_NAME, .expect = EARG},
    {.what = "weight from name, NULL out", .fn = F_FROM_NAME, .e0 = 2, .str = "mlp.to_residual", .nulls = NU_OUT, .expect = EARG},
    {.what = "weight from \"mlp.to_residual.\"", .fn = F_FROM_NAME, .e0 = 2, .str = "mlp.to_residual.", .expect = EARG},
    {.what = "dtype from \"bfloat16\"", .fn = F_FROM_NAME, .e0 = 3, .str = "bfloat16", .e1 = 2},
    {.what = "dtype from \"float64\"", .fn = F_FROM_NAME, .e0 = 3, .str = "float64", .e1 = 3},
    {.what = "dtype from \"int8\"", .fn = F_FROM_NAME, .e0 = 3, .str = "int8", .expect = EARG},
    {.what = "dtype from NULL", .fn = F_FROM_NAME, .e0 = 3, .str = "x", .nulls = NU_NAME, .expect = EARG},
    {.what = "dtype from name, NULL out", .fn = F_FROM_NAME, .e0 = 3, .str = "float32", .nulls = NU_OUT, .expect = EARG},
    {.what = "ae input from \"mlp_post_act\"", .fn = F_FROM_NAME, .e0 = 4, .str = "mlp_post_act", .e1 = 0},
    {.what = "ae input from \"resid_delta_mlp\"", .fn = F_FROM_NAME, .e0 = 4, .str = "resid_delta_mlp", .e1 = 1},
    {.what = "ae input from \"resid_delta_attn\"", .fn = F_FROM_NAME, .e0 = 4, .str = "resid_delta_attn", .e1 = 1},
    {.what = "ae input from \"resid_post_mlp\"", .fn = F_FROM_NAME, .e0 = 4, .str = "resid_post_mlp", .e1 = 1},
    {.what = "ae input from \"resid_post_attn\"", .fn = F_FROM_NAME, .e0 = 4, .str = "resid_post_attn", .e1 = 1},
    {.what = "ae input from \"resid_post_embedding\"", .fn = F_FROM_NAME, .e0 = 4, .str = "resid_post_embedding", .e1 = 1},
    {.what = "ae input from \"attn_write\" (not supported)", .fn = F_FROM_NAME, .e0 = 4, .str = "attn_write", .expect = EUNS},
    {.what = "ae input from \"attn_weighted_sum_of_values\"", .fn = F_FROM_NAME, .e0 = 4, .str = "attn_weighted_sum_of_values", .e1 = 2},
    {.what = "ae input from \"\"", .fn = F_FROM_NAME, .e0 = 4, .str = "", .expect = EUNS},
    {.what = "ae input from \"mlp.post_act\" (activation spelling)", .fn = F_FROM_NAME, .e0 = 4, .str = "mlp.post_act", .expect = EUNS},
    {.what = "ae input from NULL", .fn = F_FROM_NAME, .e0 = 4, .str = "x", .nulls = NU_NAME, .expect = EARG},
    {.what = "ae input from name, NULL out", .fn = F_FROM_NAME, .e0 = 4, .str = "mlp_post_act", .nulls = NU_OUT, .expect = EARG},

    /* ---- nw_model_create ---- */
    {.what = "model: all dims 1", .fn = F_MODEL_CREATE, .dims = {1, 1, 1, 1, 1}},
    {.what = "model: NULL dims", .fn = F_MODEL_CREATE, .dims = {1, 1, 1, 1, 1}, .nulls = NU_DIMS, .expect = EARG},
    {.what = "model: NULL out", .fn = F_MODEL_CREATE, .dims = {1, 1, 1, 1, 1}, .nulls = NU_OUT, .expect = EARG},
    {.what = "model: n_layers 0", .fn = F_MODEL_CREATE, .dims = {0, 4, 2, 3, 5}, .expect = EARG},
    {.what = "model: d_model 0", .fn = F_MODEL_CREATE, .dims = {2, 0, 2, 3, 5}, .expect = EARG},
    {.what = "model: n_heads 0", .fn = F_MODEL_CREATE, .dims = {2, 4, 0, 3, 5}, .expect = EARG},
    {.what = "model: d_head 0", .fn = F_MODEL_CREATE, .dims = {2, 4, 2, 0, 5}, .expect = EARG},
    {.what = "model: d_ff 0", .fn = F_MODEL_CREATE, .dims = {2, 4, 2, 3, 0}, .expect = EARG},
    {.what = "model: n_layers -1", .fn = F_MODEL_CREATE, .dims = {-1, 4, 2, 3, 5}, .expect = EARG},
    {.what = "model: d_model -1", .fn = F_MODEL_CREATE, .dims = {2, -1, 2, 3, 5}, .expect = EARG},
    {.what = "model: n_heads INT64_MIN", .fn = F_MODEL_CREATE, .dims = {2, 4, I64MIN, 3, 5}, .expect = EARG},
    {.what = "model: d_head INT64_MIN", .fn = F_MODEL_CREATE, .dims = {2, 4, 2, I64MIN, 5}, .expect = EARG},
    {.what = "model: d_ff INT64_MIN", .fn = F_MODEL_CREATE, .dims = {2, 4, 2, 3, I64MIN}, .expect = EARG},
    {.what = "model: d_model*d_ff = 2^64 overflows", .fn = F_MODEL_CREATE, .dims = {1, (int64_t)1 << 32, 1, 1, (int64_t)1 << 32},
     .expect = EARG},
    {.what = "model: d_model INT64_MAX, d_ff 2 overflows", .fn = F_MODEL_CREATE, .dims = {1, I64MAX, 1, 1, 2}, .expect = EARG},
    {.what = "model: n_heads*d_head*d_model = 2^64 overflows", .fn = F_MODEL_CREATE,
     .dims = {1, (int64_t)1 << 22, (int64_t)1 << 21, (int64_t)1 << 21, 1}, .expect = EARG},
    {.what = "model: n_heads*d_head overflows alone", .fn = F_MODEL_CREATE, .dims = {1, 1, I64MAX, 3, 1}, .expect = EARG},
    {.what = "model: d_model INT64_MAX, rest 1 (oversize: OK or OOM)", .fn = F_MODEL_CREATE, .dims = {1, I64MAX, 1, 1, 1},
     .expect = OK, .alt = EOOM},
    {.what = "model: n_layers INT64_MAX (not an int32 layer index)", .fn = F_MODEL_CREATE,
     .dims = {I64MAX, 4, 2, 3, 5}, .expect = EARG},
    {.what = "model: n_layers INT32_MAX + 1", .fn = F_MODEL_CREATE,
     .dims = {(int64_t)I32MAX + 1, 4, 2, 3, 5}, .expect = EARG},
    {.what = "model: n_layers INT32_MAX (oversize: OK or OOM, no per-layer allocation abort)", .fn = F_MODEL_CREATE,
     .dims = {I32MAX, 4, 2, 3, 5}, .expect = OK, .alt = EOOM},
    {.what = "model: d_model*d_ff = 2^62 fits int64 (oversize: OK or OOM)", .fn = F_MODEL_CREATE,
     .dims = {3, (int64_t)1 << 31, 1, 1, (int64_t)1 << 31}, .expect = OK, .alt = EOOM},

    /* ---- nw_model_dims_get, nw_store_create ---- */
    {.what = "dims_get", .fn = F_DIMS_GET},
    {.what = "dims_get: NULL model", .fn = F_DIMS_GET, .nulls = NU_MODEL, .expect = EARG},
    {.what = "dims_get: NULL out", .fn = F_DIMS_GET, .nulls = NU_OUT, .expect = EARG},
    {.what = "store_create", .fn = F_STORE_CREATE},
    {.what = "store_create: NULL out", .fn = F_STORE_CREATE, .nulls = NU_OUT, .expect = EARG},

    /* ---- nw_model_set_weight: e0 weight, e1 layer, e2 ownership; tg/tl the tensor ---- */
    {.what = "set mlp weight, f32 contiguous (replaces)", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1},
    {.what = "set mlp weight into an empty slot", .fn = F_SET_WEIGHT, .fx = FX_ABSENT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1},
    {.what = "set mlp weight, borrowed", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 0, .e0 = 0, .e1 = 0, .e2 = NW_BORROW},
    {.what = "set mlp weight, f16", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vdtype = NW_DTYPE_F16},
    {.what = "set mlp weight, bf16 transposed", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1,
     .vdtype = NW_DTYPE_BF16, .vlayout = NWT_TRANSPOSED},
    {.what = "set mlp weight, f64 negative strides", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1,
     .vdtype = NW_DTYPE_F64, .vlayout = NWT_NEGALL},
    {.what = "set mlp weight, padded rows, borrowed", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1,
     .e2 = NW_BORROW, .vlayout = NWT_PADDED},
    {.what = "set mlp weight, stride 0 on axis 0 (broadcast)", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1,
     .vlayout = NWT_BCAST0},
    {.what = "set attn weight, f32", .fn = F_SET_WEIGHT, .tg = TG_WATT, .tl = 1, .e0 = 1, .e1 = 1},
    {.what = "set attn weight, f16 transposed, borrowed", .fn = F_SET_WEIGHT, .tg = TG_WATT, .tl = 0, .e0 = 1, .e1 = 0,
     .e2 = NW_BORROW, .vdtype = NW_DTYPE_F16, .vlayout = NWT_TRANSPOSED},
    {.what = "set attn weight, bf16 axis 0 backwards", .fn = F_SET_WEIGHT, .tg = TG_WATT, .tl = 1, .e0 = 1, .e1 = 1,
     .vdtype = NW_DTYPE_BF16, .vlayout = NWT_NEG0},
    {.what = "set weight: NULL model", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .nulls = NU_MODEL, .expect = EARG},
    {.what = "set weight: NULL view", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .nulls = NU_VIEW, .expect = EARG},
    {.what = "set weight: NULL data", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .nulls = NU_DATA, .expect = EARG},
    {.what = "set weight: NULL shape", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .nulls = NU_SHAPE, .expect = EARG},
    {.what = "set weight: weight 18 (one past)", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 18, .e1 = 1, .expect = EARG},
    {.what = "set weight: weight -1", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = -1, .e1 = 1, .expect = EARG},
    {.what = "set weight: weight INT32_MIN", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = I32MIN, .e1 = 1, .expect = EARG},
    {.what = "set weight: weight INT32_MAX", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = I32MAX, .e1 = 1, .expect = EARG},
    {.what = "set weight: ownership 2", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .e2 = 2, .expect = EARG},
    {.what = "set weight: ownership -1", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .e2 = -1, .expect = EARG},
    {.what = "set weight: ownership INT32_MIN", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .e2 = I32MIN, .expect = EARG},
    {.what = "set weight: ownership INT32_MAX", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .e2 = I32MAX, .expect = EARG},
    {.what = "set weight: layer -1", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = -1, .expect = EIDX},
    {.what = "set weight: layer n_layers", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = NL, .expect = EIDX},
    {.what = "set weight: layer INT32_MIN", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = I32MIN, .expect = EIDX},
    {.what = "set weight: layer INT32_MAX", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = I32MAX, .expect = EIDX},
    {.what = "set weight: dtype 4", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_DTYPE, .vv = 4, .expect = EDT},
    {.what = "set weight: dtype -1", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_DTYPE, .vv = -1, .expect = EDT},
    {.what = "set weight: dtype INT32_MIN", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_DTYPE, .vv = I32MIN, .expect = EDT},
    {.what = "set weight: dtype INT32_MAX", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_DTYPE, .vv = I32MAX, .expect = EDT},
    {.what = "set weight: ndim 1", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_NDIM, .vv = 1, .expect = ESHP},
    {.what = "set weight: ndim 3 for mlp", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_NDIM, .vv = 3, .expect = ESHP},
    {.what = "set weight: ndim 0", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_NDIM, .vv = 0, .expect = ESHP},
    {.what = "set weight: ndim -1", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_NDIM, .vv = -1, .expect = ESHP},
    {.what = "set weight: ndim INT32_MIN", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_NDIM, .vv = I32MIN, .expect = ESHP},
    {.what = "set weight: ndim INT32_MAX", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_NDIM, .vv = I32MAX, .expect = ESHP},
    {.what = "set weight: ndim 2 for attn", .fn = F_SET_WEIGHT, .tg = TG_WATT, .tl = 1, .e0 = 1, .e1 = 1, .vm = VM_NDIM, .vv = 2, .expect = ESHP},
    {.what = "set weight: mlp view given as attn weight", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 1, .e1 = 1, .expect = ESHP},
    {.what = "set weight: d_ff + 1 rows", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_SHAPE, .vi = 0, .vv = DFF + 1, .expect = ESHP},
    {.what = "set weight: d_ff - 1 rows", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_SHAPE, .vi = 0, .vv = DFF - 1, .expect = ESHP},
    {.what = "set weight: d_model + 1 columns", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_SHAPE, .vi = 1, .vv = DM + 1, .expect = ESHP},
    {.what = "set weight: shape 0", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_SHAPE, .vi = 0, .vv = 0, .expect = ESHP},
    {.what = "set weight: shape -1", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_SHAPE, .vi = 0, .vv = -1, .expect = EARG},
    {.what = "set weight: shape INT64_MIN", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_SHAPE, .vi = 1, .vv = I64MIN, .expect = EARG},
    {.what = "set weight: attn head axis n_heads + 1", .fn = F_SET_WEIGHT, .tg = TG_WATT, .tl = 1, .e0 = 1, .e1 = 1, .vm = VM_SHAPE, .vi = 0, .vv = NH + 1, .expect = ESHP},
    {.what = "set weight: attn d_head axis - 1", .fn = F_SET_WEIGHT, .tg = TG_WATT, .tl = 1, .e0 = 1, .e1 = 1, .vm = VM_SHAPE, .vi = 1, .vv = DH - 1, .expect = ESHP},
    {.what = "set weight: attn d_model axis -1", .fn = F_SET_WEIGHT, .tg = TG_WATT, .tl = 1, .e0 = 1, .e1 = 1, .vm = VM_SHAPE, .vi = 2, .vv = -1, .expect = EARG},
    {.what = "set weight: count overflow (2^32 x 2^32, stride 0)", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1,
     .vm = VM_ZERO_STRIDES, .vi = 0, .vv = (int64_t)1 << 62, .expect = EARG},
    {.what = "set weight: stride INT64_MAX (span overflows)", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1,
     .vm = VM_STRIDE, .vi = 0, .vv = I64MAX, .expect = EARG},
    {.what = "set weight: stride INT64_MIN (span overflows)", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1,
     .vm = VM_STRIDE, .vi = 0, .vv = I64MIN, .expect = EARG},
    {.what = "set weight: stride INT64_MAX/2 (byte span overflows)", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1,
     .vm = VM_STRIDE, .vi = 1, .vv = I64MAX / 2, .expect = EARG},
    {.what = "set weight: stride 2^61 f64 (bytes overflow)", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1,
     .vdtype = NW_DTYPE_F64, .vm = VM_STRIDE, .vi = 0, .vv = (int64_t)1 << 61, .expect = EARG},
    {.what = "set weight: all strides 0 (one element, broadcast)", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1,
     .vm = VM_ZERO_STRIDES},
    {.what = "set weight: NaN in the weight (OK, propagates)", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1,
     .inj_set = 1, .inj_at = 2 * DM + 1, .inj = NAN},
    {.what = "set weight: +Inf in the weight (OK, propagates)", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1,
     .inj_set = 1, .inj_at = 2 * DM + 3, .inj = INFINITY},
    {.what = "set weight: f16 overflow to Inf (OK)", .fn = F_SET_WEIGHT, .tg = TG_WMLP, .tl = 1, .e0 = 0, .e1 = 1,
     .vdtype = NW_DTYPE_F16, .inj_set = 1, .inj_at = 2 * DM, .inj = 1e6},

    /* ---- nw_model_set_autoencoder: e0 node type, e1 layer, e2 ownership, e3 input ---- */
    {.what = "set ae (autoencoder_latent, MLP input)", .fn = F_SET_AE, .tg = TG_DEC0, .tl = 0, .e0 = 2, .e1 = 0, .e3 = 0},
    {.what = "set ae: switch layer 1 to MLP input", .fn = F_SET_AE, .tg = TG_DEC0, .tl = 1, .e0 = 2, .e1 = 1, .e3 = 0},
    {.what = "set ae: switch layer 0 to residual input", .fn = F_SET_AE, .tg = TG_DEC0, .tl = 0, .e0 = 2, .e1 = 0, .e3 = 1},
    {.what = "set ae: mlp ae, borrowed f16", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e2 = 1, .e3 = 0,
     .vdtype = NW_DTYPE_F16},
    {.what = "set ae: attn ae, f64 transposed", .fn = F_SET_AE, .tg = TG_DEC2, .tl = 0, .e0 = 4, .e1 = 0, .e3 = 1,
     .vdtype = NW_DTYPE_F64, .vlayout = NWT_TRANSPOSED},
    {.what = "set ae: into an empty slot", .fn = F_SET_AE, .fx = FX_ABSENT, .tg = TG_DEC2, .tl = 1, .e0 = 4, .e1 = 1, .e3 = 1},
    {.what = "set ae: NULL model", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 0, .nulls = NU_MODEL, .expect = EARG},
    {.what = "set ae: NULL view", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 0, .nulls = NU_VIEW, .expect = EARG},
    {.what = "set ae: NULL data", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 0, .nulls = NU_DATA, .expect = EARG},
    {.what = "set ae: NULL shape", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 0, .nulls = NU_SHAPE, .expect = EARG},
    {.what = "set ae: node type mlp_neuron (not a latent)", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 0, .e1 = 1, .e3 = 0, .expect = EARG},
    {.what = "set ae: node type attention_head", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 1, .e1 = 1, .e3 = 0, .expect = EARG},
    {.what = "set ae: node type 5", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 5, .e1 = 1, .e3 = 0, .expect = EARG},
    {.what = "set ae: node type -1", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = -1, .e1 = 1, .e3 = 0, .expect = EARG},
    {.what = "set ae: node type INT32_MIN", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = I32MIN, .e1 = 1, .e3 = 0, .expect = EARG},
    {.what = "set ae: node type INT32_MAX", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = I32MAX, .e1 = 1, .e3 = 0, .expect = EARG},
    {.what = "set ae: input 3", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 3, .expect = EARG},
    {.what = "set ae: input -1", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = -1, .expect = EARG},
    {.what = "set ae: input INT32_MIN", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = I32MIN, .expect = EARG},
    {.what = "set ae: input INT32_MAX", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = I32MAX, .expect = EARG},
    {.what = "set ae: ownership 2", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e2 = 2, .e3 = 0, .expect = EARG},
    {.what = "set ae: ownership INT32_MIN", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e2 = I32MIN, .e3 = 0, .expect = EARG},
    {.what = "set ae: layer -1", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = -1, .e3 = 0, .expect = EIDX},
    {.what = "set ae: layer n_layers", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = NL, .e3 = 0, .expect = EIDX},
    {.what = "set ae: layer INT32_MIN", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = I32MIN, .e3 = 0, .expect = EIDX},
    {.what = "set ae: layer INT32_MAX", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = I32MAX, .e3 = 0, .expect = EIDX},
    {.what = "set ae: n_inputs d_model for MLP input", .fn = F_SET_AE, .tg = TG_DEC2, .tl = 1, .e0 = 4, .e1 = 1, .e3 = 0,
     .vm = VM_SHAPE, .vi = 1, .vv = DM, .expect = ESHP},
    {.what = "set ae: n_inputs d_ff for residual input", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 1,
     .vm = VM_SHAPE, .vi = 1, .vv = DFF, .expect = ESHP},
    {.what = "set ae: n_inputs d_ff + 1", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 0,
     .vm = VM_SHAPE, .vi = 1, .vv = DFF + 1, .expect = ESHP},
    {.what = "set ae: n_latents -1", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 0,
     .vm = VM_SHAPE, .vi = 0, .vv = -1, .expect = EARG},
    {.what = "set ae: ndim 3", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 0, .vm = VM_NDIM, .vv = 3, .expect = ESHP},
    {.what = "set ae: ndim INT32_MIN", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 0, .vm = VM_NDIM, .vv = I32MIN, .expect = ESHP},
    {.what = "set ae: dtype 4", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 0, .vm = VM_DTYPE, .vv = 4, .expect = EDT},
    {.what = "set ae: dtype INT32_MIN", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 0, .vm = VM_DTYPE, .vv = I32MIN, .expect = EDT},
    {.what = "set ae: n_latents 2^62 (stride 0), NW_COPY: oversize", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 0,
     .vm = VM_HUGE, .vi = 0, .vv = (int64_t)1 << 62, .expect = EOOM, .alt = EARG},
    {.what = "set ae: n_latents 2^40 (stride 0), NW_COPY: oversize", .fn = F_SET_AE, .tg = TG_DEC2, .tl = 1, .e0 = 4, .e1 = 1, .e3 = 1,
     .vm = VM_HUGE, .vi = 0, .vv = (int64_t)1 << 40, .expect = EOOM, .alt = EARG},
    {.what = "set ae: n_latents 2^40 borrowed, store latents disagree", .fn = F_SET_AE, .tg = TG_DEC2, .tl = 1, .e0 = 4, .e1 = 1,
     .e2 = NW_BORROW, .e3 = 1, .vm = VM_HUGE, .vi = 0, .vv = (int64_t)1 << 40, .post_set = 1, .post = ESHP},
    {.what = "set ae: stride INT64_MIN", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3, .e1 = 1, .e3 = 0,
     .vm = VM_STRIDE, .vi = 1, .vv = I64MIN, .expect = EARG},
    {.what = "set ae: 8 latents, store has 6 (put OK, derive SHAPE_MISMATCH)", .fn = F_SET_AE, .tg = TG_DEC1, .tl = 1, .e0 = 3,
     .e1 = 1, .e3 = 0, .vm = VM_SHAPE, .vi = 0, .vv = 8, .post_set = 1, .post = ESHP},

    /* ---- nw_store_put: e0 activation, e1 layer ---- */
    {.what = "put post_act (replaces)", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1},
    {.what = "put post_act into an empty slot", .fn = F_STORE_PUT, .fx = FX_ABSENT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1},
    {.what = "put post_act f16 transposed", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 0, .e0 = 0, .e1 = 0, .vdtype = NW_DTYPE_F16,
     .vlayout = NWT_TRANSPOSED},
    {.what = "put qk_probs bf16 negative strides", .fn = F_STORE_PUT, .tg = TG_QK, .tl = 1, .e0 = 1, .e1 = 1,
     .vdtype = NW_DTYPE_BF16, .vlayout = NWT_NEGALL},
    {.what = "put attn.v f64 padded", .fn = F_STORE_PUT, .tg = TG_V, .tl = 1, .e0 = 2, .e1 = 1, .vdtype = NW_DTYPE_F64,
     .vlayout = NWT_PADDED},
    {.what = "put mlp ae latents, token axis stride 0", .fn = F_STORE_PUT, .tg = TG_LAT1, .tl = 0, .e0 = 4, .e1 = 0,
     .vlayout = NWT_BCAST0},
    {.what = "put latents, layer INT32_MAX (no such layer yet: OK)", .fn = F_STORE_PUT, .tg = TG_LAT0, .tl = 1, .e0 = 3, .e1 = I32MAX},
    {.what = "put: NULL store", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1, .nulls = NU_STORE, .expect = EARG},
    {.what = "put: NULL view", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1, .nulls = NU_VIEW, .expect = EARG},
    {.what = "put: NULL data", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1, .nulls = NU_DATA, .expect = EARG},
    {.what = "put: NULL shape", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1, .nulls = NU_SHAPE, .expect = EARG},
    {.what = "put: activation 8", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 8, .e1 = 1, .expect = EARG},
    {.what = "put: activation -1", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = -1, .e1 = 1, .expect = EARG},
    {.what = "put: activation INT32_MIN", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = I32MIN, .e1 = 1, .expect = EARG},
    {.what = "put: activation INT32_MAX", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = I32MAX, .e1 = 1, .expect = EARG},
    {.what = "put: layer -1", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = -1, .expect = EARG},
    {.what = "put: layer INT32_MIN", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = I32MIN, .expect = EARG},
    {.what = "put: dtype 4", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_DTYPE, .vv = 4, .expect = EDT},
    {.what = "put: dtype INT32_MAX", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_DTYPE, .vv = I32MAX, .expect = EDT},
    {.what = "put: dtype INT32_MIN", .fn = F_STORE_PUT, .tg = TG_QK, .tl = 1, .e0 = 1, .e1 = 1, .vm = VM_DTYPE, .vv = I32MIN, .expect = EDT},
    {.what = "put: post_act ndim 3", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_NDIM, .vv = 3, .expect = ESHP},
    {.what = "put: qk ndim 2", .fn = F_STORE_PUT, .tg = TG_QK, .tl = 1, .e0 = 1, .e1 = 1, .vm = VM_NDIM, .vv = 2, .expect = ESHP},
    {.what = "put: v ndim 4", .fn = F_STORE_PUT, .tg = TG_V, .tl = 1, .e0 = 2, .e1 = 1, .vm = VM_NDIM, .vv = 4, .expect = ESHP},
    {.what = "put: ndim 0", .fn = F_STORE_PUT, .tg = TG_LAT2, .tl = 1, .e0 = 5, .e1 = 1, .vm = VM_NDIM, .vv = 0, .expect = ESHP},
    {.what = "put: ndim INT32_MIN", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_NDIM, .vv = I32MIN, .expect = ESHP},
    {.what = "put: ndim INT32_MAX", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_NDIM, .vv = I32MAX, .expect = ESHP},
    {.what = "put: qk view as post_act (ndim 3 vs 2)", .fn = F_STORE_PUT, .tg = TG_QK, .tl = 1, .e0 = 0, .e1 = 1, .expect = ESHP},
    {.what = "put: shape -1", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_SHAPE, .vi = 0, .vv = -1, .expect = EARG},
    {.what = "put: shape INT64_MIN", .fn = F_STORE_PUT, .tg = TG_V, .tl = 1, .e0 = 2, .e1 = 1, .vm = VM_SHAPE, .vi = 2, .vv = I64MIN, .expect = EARG},
    {.what = "put: count 2^62 x d_ff overflows (stride 0)", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1,
     .vm = VM_HUGE, .vi = 0, .vv = (int64_t)1 << 62, .expect = EARG},
    {.what = "put: count INT64_MAX x d_ff overflows", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1,
     .vm = VM_HUGE, .vi = 0, .vv = I64MAX, .expect = EARG},
    {.what = "put: qk count 2^31 x 2^31 x 2 overflows (stride 0)", .fn = F_STORE_PUT, .tg = TG_QK, .tl = 1, .e0 = 1, .e1 = 1,
     .vm = VM_ZERO_STRIDES, .vi = 0, .vv = (int64_t)1 << 62, .expect = EARG},
    {.what = "put: stride INT64_MAX", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_STRIDE, .vi = 0, .vv = I64MAX, .expect = EARG},
    {.what = "put: stride INT64_MIN", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1, .vm = VM_STRIDE, .vi = 1, .vv = I64MIN, .expect = EARG},
    {.what = "put: stride INT64_MIN + 1", .fn = F_STORE_PUT, .tg = TG_V, .tl = 1, .e0 = 2, .e1 = 1, .vm = VM_STRIDE, .vi = 0, .vv = I64MIN + 1, .expect = EARG},
    {.what = "put: stride 2^62 (span overflows)", .fn = F_STORE_PUT, .tg = TG_QK, .tl = 1, .e0 = 1, .e1 = 1, .vm = VM_STRIDE, .vi = 1, .vv = (int64_t)1 << 62, .expect = EARG},
    {.what = "put: stride 2^61 f32 (byte span overflows)", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1,
     .vm = VM_STRIDE, .vi = 0, .vv = (int64_t)1 << 61, .expect = EARG},
    {.what = "put: post_act d_ff + 1 (put OK, derive SHAPE_MISMATCH)", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1,
     .vm = VM_SHAPE, .vi = 1, .vv = DFF + 1, .post_set = 1, .post = ESHP},
    {.what = "put: post_act 0 tokens (put OK, derive INDEX_OUT_OF_RANGE)", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1,
     .vm = VM_SHAPE, .vi = 0, .vv = 0, .post_set = 1, .post = EIDX},
    {.what = "put: qk 2 tokens (put OK, derive of token 2 INDEX_OUT_OF_RANGE)", .fn = F_STORE_PUT, .tg = TG_QK, .tl = 1, .e0 = 1, .e1 = 1,
     .vm = VM_SHAPE, .vi = 0, .vv = 2, .post_set = 1, .post = EIDX},
    {.what = "put: v with n_heads + 1 (derive SHAPE_MISMATCH)", .fn = F_STORE_PUT, .tg = TG_V, .tl = 1, .e0 = 2, .e1 = 1,
     .vm = VM_SHAPE, .vi = 1, .vv = NH + 1, .post_set = 1, .post = ESHP},
    {.what = "put: all strides 0 (broadcast one value)", .fn = F_STORE_PUT, .tg = TG_LAT2, .tl = 0, .e0 = 5, .e1 = 0,
     .vm = VM_ZERO_STRIDES},
    {.what = "put: NaN latents (OK, propagates)", .fn = F_STORE_PUT, .tg = TG_LAT1, .tl = 1, .e0 = 4, .e1 = 1,
     .inj_set = 1, .inj_at = 1 * 6 + 3, .inj = NAN},
    {.what = "put: -Inf post_act (OK, propagates)", .fn = F_STORE_PUT, .tg = TG_POST, .tl = 1, .e0 = 0, .e1 = 1,
     .inj_set = 1, .inj_at = 1 * DFF + 2, .inj = -INFINITY},

    /* ---- nw_store_remove: e0 activation, e1 layer ---- */
    {.what = "remove post_act (then derive MISSING_INPUT)", .fn = F_STORE_REMOVE, .e0 = 0, .e1 = 1},
    {.what = "remove attn.v (then attention MISSING_INPUT)", .fn = F_STORE_REMOVE, .e0 = 2, .e1 = 0},
    {.what = "remove an absent entry (OK)", .fn = F_STORE_REMOVE, .fx = FX_EMPTY_STORE, .e0 = 1, .e1 = 1},
    {.what = "remove layer INT32_MAX (absent, OK)", .fn = F_STORE_REMOVE, .e0 = 0, .e1 = I32MAX},
    {.what = "remove: NULL store", .fn = F_STORE_REMOVE, .e0 = 0, .e1 = 1, .nulls = NU_STORE, .expect = EARG},
    {.what = "remove: activation 8", .fn = F_STORE_REMOVE, .e0 = 8, .e1 = 1, .expect = EARG},
    {.what = "remove: activation -1", .fn = F_STORE_REMOVE, .e0 = -1, .e1 = 1, .expect = EARG},
    {.what = "remove: activation INT32_MIN", .fn = F_STORE_REMOVE, .e0 = I32MIN, .e1 = 1, .expect = EARG},
    {.what = "remove: activation INT32_MAX", .fn = F_STORE_REMOVE, .e0 = I32MAX, .e1 = 1, .expect = EARG},
    {.what = "remove: layer -1", .fn = F_STORE_REMOVE, .e0 = 0, .e1 = -1, .expect = EARG},
    {.what = "remove: layer INT32_MIN", .fn = F_STORE_REMOVE, .e0 = 0, .e1 = I32MIN, .expect = EARG},

    /* ---- deriver create: NULLs, missing weights/autoencoders ---- */
    {.what = "create: NULL model", .fn = F_DERIVER_CREATE, .node = N_MLP(1, 0, 0), .nulls = NU_MODEL, .expect = EARG},
    {.what = "create: NULL node", .fn = F_DERIVER_CREATE, .node = N_MLP(1, 0, 0), .nulls = NU_NODE, .expect = EARG},
    {.what = "create: NULL out", .fn = F_DERIVER_CREATE, .node = N_MLP(1, 0, 0), .nulls = NU_DERIVER, .expect = EARG},
    {.what = "create: mlp, no mlp weight at the layer", .fn = F_DERIVER_CREATE, .fx = FX_ABSENT, .tg = TG_WMLP, .tl = 1,
     .node = N_MLP(1, 0, 0), .expect = EMIS},
    {.what = "create: mlp at layer 0, weight missing only at layer 1", .fn = F_DERIVER_CREATE, .fx = FX_ABSENT, .tg = TG_WMLP, .tl = 1,
     .node = N_MLP(0, 0, 0)},
    {.what = "create: attention, no attn weight", .fn = F_DERIVER_CREATE, .fx = FX_ABSENT, .tg = TG_WATT, .tl = 0,
     .node = N_ATT(0, 0, 0, 0), .expect = EMIS},
    {.what = "create: mlp ae latent, no mlp ae", .fn = F_DERIVER_CREATE, .fx = FX_ABSENT, .tg = TG_DEC1, .tl = 1,
     .node = N_MAE(1, 0, 0), .expect = EMIS},
    {.what = "create: mlp ae latent, ae there but no mlp weight", .fn = F_DERIVER_CREATE, .fx = FX_ABSENT, .tg = TG_WMLP, .tl = 1,
     .node = N_MAE(1, 0, 0), .expect = EMIS},
    {.what = "create: attn ae latent (residual input) needs no weight", .fn = F_DERIVER_CREATE, .fx = FX_ABSENT, .tg = TG_WMLP, .tl = 1,
     .node = N_AAE(1, 0, 0)},
    {.what = "create: attn ae latent, no attn ae (mlp ae set)", .fn = F_DERIVER_CREATE, .fx = FX_ABSENT, .tg = TG_DEC2, .tl = 0,
     .node = N_AAE(0, 0, 0), .expect = EMIS},
    {.what = "create: autoencoder_latent, no generic ae", .fn = F_DERIVER_CREATE, .fx = FX_ABSENT, .tg = TG_DEC0, .tl = 0,
     .node = N_AE(0, 0, 0), .expect = EMIS},
    {.what = "create: empty model, mlp", .fn = F_DERIVER_CREATE, .fx = FX_EMPTY_MODEL, .node = N_MLP(0, 0, 0), .expect = EMIS},
    {.what = "create: empty model, attention", .fn = F_DERIVER_CREATE, .fx = FX_EMPTY_MODEL, .node = N_ATT(0, 0, 0, 0), .expect = EMIS},
    {.what = "create: empty model, latent", .fn = F_DERIVER_CREATE, .fx = FX_EMPTY_MODEL, .node = N_AAE(0, 0, 0), .expect = EMIS},
    {.what = "create: empty store is fine (activations not needed)", .fn = F_DERIVER_CREATE, .fx = FX_EMPTY_STORE, .node = N_ATT(1, 0, 0, 0)},
    {.what = "create: mlp node, unused indices[2..3] = INT64_MIN ignored", .fn = F_DERIVER_CREATE,
     .node = NODE(NW_NODE_MLP_NEURON, 0, 2, 0, 0, 0, I64MIN, I64MIN)},
    {.what = "create: mlp node, token INT64_MAX (checked at derive)", .fn = F_DERIVER_CREATE, .node = N_MLP(0, I64MAX, 0)},

    /* ---- requirements: cap, NULLs ---- */
    {.what = "requirements mlp, capacity 1", .fn = F_REQ, .node = N_MLP(1, 0, 0), .cap = 1},
    {.what = "requirements attention, capacity 2", .fn = F_REQ, .node = N_ATT(1, 0, 0, 0), .cap = 2},
    {.what = "requirements latent, capacity 8", .fn = F_REQ, .node = N_AAE(0, 0, 0), .cap = 8},
    {.what = "requirements attention, capacity SIZE_MAX", .fn = F_REQ, .node = N_ATT(0, 0, 0, 0), .cap_mode = CAP_MAX},
    {.what = "requirements attention, capacity 1 (one too small)", .fn = F_REQ, .node = N_ATT(1, 0, 0, 0), .cap = 1, .expect = EBUF},
    {.what = "requirements mlp, capacity 0", .fn = F_REQ, .node = N_MLP(1, 0, 0), .cap = 0, .expect = EBUF},
    {.what = "requirements, capacity 0 and out NULL (count query)", .fn = F_REQ, .node = N_ATT(1, 0, 0, 0), .cap = 0,
     .nulls = NU_OUT, .expect = EBUF},
    {.what = "requirements: out NULL with capacity 2", .fn = F_REQ, .node = N_ATT(1, 0, 0, 0), .cap = 2, .nulls = NU_OUT, .expect = EARG},
    {.what = "requirements: NULL count", .fn = F_REQ, .node = N_ATT(1, 0, 0, 0), .cap = 2, .nulls = NU_COUNT, .expect = EARG},
    {.what = "requirements: NULL deriver", .fn = F_REQ, .node = N_ATT(1, 0, 0, 0), .cap = 2, .nulls = NU_DERIVER, .expect = EARG},

    /* ---- output shape ---- */
    {.what = "output_shape mlp", .fn = F_OUT_SHAPE, .node = N_MLP(1, 0, 0)},
    {.what = "output_shape attention, T_k 4", .fn = F_OUT_SHAPE, .fx = FX_TK4, .node = N_ATT(1, 0, 3, 0)},
    {.what = "output_shape latent", .fn = F_OUT_SHAPE, .node = N_AE(1, 0, 0)},
    {.what = "output_shape ignores a token out of range", .fn = F_OUT_SHAPE, .node = N_MLP(1, 99, 0)},
    {.what = "output_shape: NULL deriver", .fn = F_OUT_SHAPE, .node = N_MLP(1, 0, 0), .nulls = NU_DERIVER, .expect = EARG},
    {.what = "output_shape: NULL store", .fn = F_OUT_SHAPE, .node = N_MLP(1, 0, 0), .nulls = NU_STORE, .expect = EARG},
    {.what = "output_shape: NULL shape", .fn = F_OUT_SHAPE, .node = N_MLP(1, 0, 0), .nulls = NU_OUT, .expect = EARG},
    {.what = "output_shape: empty store", .fn = F_OUT_SHAPE, .fx = FX_EMPTY_STORE, .node = N_MLP(1, 0, 0), .expect = EMIS},
    /* output_shape checks every activation the deriver reads, as a derive does */
    {.what = "output_shape: attention without attn.v", .fn = F_OUT_SHAPE,
     .fx = FX_ABSENT, .tg = TG_V, .tl = 1, .node = N_ATT(1, 0, 0, 0), .expect = EMIS},
    {.what = "output_shape: attention, v tokens disagree with qk", .fn = F_OUT_SHAPE, .tg = TG_V,
     .tl = 1, .vm = VM_SHAPE, .vi = 0, .vv = TT - 1, .node = N_ATT(1, 0, 0, 0), .expect = ESHP},
    {.what = "output_shape: attention without qk_probs", .fn = F_OUT_SHAPE, .fx = FX_ABSENT, .tg = TG_QK, .tl = 1,
     .node = N_ATT(1, 0, 0, 0), .expect = EMIS},
    {.what = "output_shape: qk_probs n_heads + 1", .fn = F_OUT_SHAPE, .tg = TG_QK, .tl = 1, .vm = VM_SHAPE, .vi = 2,
     .vv = NH + 1, .node = N_ATT(1, 0, 0, 0), .expect = ESHP},
    {.what = "output_shape: latents n_latents + 1", .fn = F_OUT_SHAPE, .tg = TG_LAT1, .tl = 1, .vm = VM_SHAPE, .vi = 1,
     .vv = 7, .node = N_MAE(1, 0, 0), .expect = ESHP},
    {.what = "output_shape: post_act d_ff - 1", .fn = F_OUT_SHAPE, .tg = TG_POST, .tl = 1, .vm = VM_SHAPE, .vi = 1, .vv = DFF - 1,
     .node = N_MLP(1, 0, 0), .expect = ESHP},

    /* ---- derive / node_write: NULLs, capacity, missing, shapes ---- */
    {.what = "derive: NULL deriver", .fn = F_DERIVE, .node = N_MLP(1, 0, 0), .nulls = NU_DERIVER, .expect = EARG},
    {.what = "derive: NULL store", .fn = F_DERIVE, .node = N_MLP(1, 0, 0), .nulls = NU_STORE, .expect = EARG},
    {.what = "derive: NULL out", .fn = F_DERIVE, .node = N_MLP(1, 0, 0), .nulls = NU_OUT, .expect = EARG},
    {.what = "derive: out_len T*d_model - 1", .fn = F_DERIVE, .node = N_MLP(1, 0, 0), .cap = -1, .expect = EBUF},
    {.what = "derive: out_len 0", .fn = F_DERIVE, .node = N_MLP(1, 0, 0), .cap_mode = CAP_ABS, .cap = 0, .expect = EBUF},
    {.what = "derive: out_len 1", .fn = F_DERIVE, .node = N_ATT(1, 0, 0, 0), .cap_mode = CAP_ABS, .cap = 1, .expect = EBUF},
    {.what = "derive: out_len d_model (one row)", .fn = F_DERIVE, .node = N_ATT(1, 2, 0, 1), .cap_mode = CAP_ABS, .cap = DM, .expect = EBUF},
    {.what = "derive: out_len T*d_model + 5 (writes T*d_model only)", .fn = F_DERIVE, .node = N_MLP(1, 0, 0), .cap = 5},
    {.what = "derive: out_len SIZE_MAX (writes T*d_model only)", .fn = F_DERIVE, .node = N_AAE(1, 2, 6), .cap_mode = CAP_MAX},
    {.what = "derive: empty store", .fn = F_DERIVE, .fx = FX_EMPTY_STORE, .node = N_MLP(1, 0, 0), .expect = EMIS},
    {.what = "derive: no post_act at the layer", .fn = F_DERIVE, .fx = FX_ABSENT, .tg = TG_POST, .tl = 1, .node = N_MLP(1, 0, 0), .expect = EMIS},
    {.what = "derive: no qk_probs", .fn = F_DERIVE, .fx = FX_ABSENT, .tg = TG_QK, .tl = 1, .node = N_ATT(1, 0, 0, 0), .expect = EMIS},
    {.what = "derive: no attn.v", .fn = F_DERIVE, .fx = FX_ABSENT, .tg = TG_V, .tl = 1, .node = N_ATT(1, 0, 0, 0), .expect = EMIS},
    {.what = "derive: no ae latents", .fn = F_DERIVE, .fx = FX_ABSENT, .tg = TG_LAT0, .tl = 1, .node = N_AE(1, 0, 0), .expect = EMIS},
    {.what = "derive: no mlp ae latents (attn ae latents there)", .fn = F_DERIVE, .fx = FX_ABSENT, .tg = TG_LAT1, .tl = 0,
     .node = N_MAE(0, 0, 0), .expect = EMIS},
    {.what = "derive: post_act missing at layer 1 only, node at layer 0", .fn = F_DERIVE, .fx = FX_ABSENT, .tg = TG_POST, .tl = 1,
     .node = N_MLP(0, 2, 4)},
    {.what = "derive: post_act d_ff + 1", .fn = F_DERIVE, .tg = TG_POST, .tl = 1, .vm = VM_SHAPE, .vi = 1, .vv = DFF + 1,
     .node = N_MLP(1, 0, 0), .expect = ESHP},
    {.what = "derive: post_act d_ff - 1 (index still fits)", .fn = F_DERIVE, .tg = TG_POST, .tl = 1, .vm = VM_SHAPE, .vi = 1,
     .vv = DFF - 1, .node = N_MLP(1, 0, 0), .expect = ESHP},
    {.what = "derive: qk n_heads + 1", .fn = F_DERIVE, .tg = TG_QK, .tl = 1, .vm = VM_SHAPE, .vi = 2, .vv = NH + 1,
     .node = N_ATT(1, 0, 0, 0), .expect = ESHP},
    {.what = "derive: qk key tokens 2, v key tokens 3", .fn = F_DERIVE, .tg = TG_QK, .tl = 1, .vm = VM_SHAPE, .vi = 1, .vv = 2,
     .node = N_ATT(1, 0, 0, 0), .expect = ESHP},
    {.what = "derive: v key tokens 2, qk key tokens 3", .fn = F_DERIVE, .tg = TG_V, .tl = 1, .vm = VM_SHAPE, .vi = 0, .vv = 2,
     .node = N_ATT(1, 0, 0, 0), .expect = ESHP},
    {.what = "derive: v d_head + 1", .fn = F_DERIVE, .tg = TG_V, .tl = 1, .vm = VM_SHAPE, .vi = 2, .vv = DH + 1,
     .node = N_ATT(1, 0, 0, 0), .expect = ESHP},
    {.what = "derive: v n_heads - 1", .fn = F_DERIVE, .tg = TG_V, .tl = 1, .vm = VM_SHAPE, .vi = 1, .vv = NH - 1,
     .node = N_ATT(1, 0, 0, 0), .expect = ESHP},
    {.what = "derive: latents n_latents + 1", .fn = F_DERIVE, .tg = TG_LAT2, .tl = 1, .vm = VM_SHAPE, .vi = 1, .vv = 8,
     .node = N_AAE(1, 0, 0), .expect = ESHP},
    {.what = "derive: latents n_latents - 1 (index fits)", .fn = F_DERIVE, .tg = TG_LAT2, .tl = 1, .vm = VM_SHAPE, .vi = 1, .vv = 6,
     .node = N_AAE(1, 0, 0), .expect = ESHP},
    {.what = "derive: latents 0 tokens", .fn = F_DERIVE, .tg = TG_LAT0, .tl = 0, .vm = VM_SHAPE, .vi = 0, .vv = 0,
     .node = N_AE(0, 0, 0), .expect = EIDX},
    {.what = "derive: post_act 2^40 tokens (stride 0), out too small", .fn = F_DERIVE, .tg = TG_POST, .tl = 1, .vm = VM_HUGE,
     .vi = 0, .vv = (int64_t)1 << 40, .node = N_MLP(1, 0, 0), .cap_mode = CAP_ABS, .cap = 64, .expect = EBUF},
    {.what = "derive: T_k 4 != T 3 (allowed)", .fn = F_DERIVE, .fx = FX_TK4, .node = N_ATT(1, 1, 3, 1)},
    {.what = "derive: attention key after query (allowed, prob as given)", .fn = F_DERIVE, .node = N_ATT(0, 0, 2, 0)},
    {.what = "derive: all tensors f16", .fn = F_DERIVE, .fdtype = NW_DTYPE_F16, .node = N_ATT(1, 2, 1, 0)},
    {.what = "derive: all tensors bf16 transposed", .fn = F_DERIVE, .fdtype = NW_DTYPE_BF16, .flayout = NWT_TRANSPOSED,
     .node = N_MAE(1, 1, 5)},
    {.what = "derive: all tensors f64 negative strides", .fn = F_DERIVE, .fdtype = NW_DTYPE_F64, .flayout = NWT_NEGALL,
     .node = N_AE(0, 2, 2)},
    {.what = "derive: all tensors padded, borrowed weights", .fn = F_DERIVE, .fx = FX_BORROW, .flayout = NWT_PADDED,
     .node = N_AE(1, 2, 4)},
    {.what = "derive: explicit contiguous strides", .fn = F_DERIVE, .flayout = NWT_CONTIG, .node = N_ATT(0, 1, 0, 1)},
    {.what = "derive: v with stride 0 on tokens", .fn = F_DERIVE, .tg = TG_V, .tl = 1, .vlayout = NWT_BCAST0, .node = N_ATT(1, 2, 2, 0)},
    {.what = "derive: NaN at the node's activation (row all NaN)", .fn = F_DERIVE, .tg = TG_POST, .tl = 1,
     .inj_set = 1, .inj_at = 1 * DFF + 2, .inj = NAN, .node = N_MLP(1, 1, 2)},
    {.what = "derive: NaN at another token (no leak into the row)", .fn = F_DERIVE, .tg = TG_POST, .tl = 1,
     .inj_set = 1, .inj_at = 0 * DFF + 2, .inj = NAN, .node = N_MLP(1, 1, 2)},
    {.what = "derive: NaN at another neuron (no leak)", .fn = F_DERIVE, .tg = TG_POST, .tl = 1,
     .inj_set = 1, .inj_at = 1 * DFF + 3, .inj = NAN, .node = N_MLP(1, 1, 2)},
    {.what = "derive: +Inf in attn.v of the head", .fn = F_DERIVE, .tg = TG_V, .tl = 1, .inj_set = 1,
     .inj_at = (1 * NH + 1) * DH + 0, .inj = INFINITY, .node = N_ATT(1, 2, 1, 1)},
    {.what = "derive: NaN in attn.v of the head", .fn = F_DERIVE, .tg = TG_V, .tl = 1, .inj_set = 1,
     .inj_at = (1 * NH + 1) * DH + 2, .inj = NAN, .node = N_ATT(1, 2, 1, 1)},
    {.what = "derive: NaN in attn.v of another head (no leak)", .fn = F_DERIVE, .tg = TG_V, .tl = 1, .inj_set = 1,
     .inj_at = (1 * NH + 0) * DH + 2, .inj = NAN, .node = N_ATT(1, 2, 1, 1)},
    {.what = "derive: Inf in the decoder row", .fn = F_DERIVE, .tg = TG_DEC2, .tl = 1, .inj_set = 1,
     .inj_at = 3 * DM + 1, .inj = -INFINITY, .node = N_AAE(1, 0, 3)},
    {.what = "derive: NaN latent at the node (MLP-input ae)", .fn = F_DERIVE, .tg = TG_LAT1, .tl = 0, .inj_set = 1,
     .inj_at = 2 * 6 + 4, .inj = NAN, .node = N_MAE(0, 2, 4)},
    {.what = "derive: latent exactly 0 (row of zeros)", .fn = F_DERIVE, .tg = TG_LAT2, .tl = 0, .inj_set = 1,
     .inj_at = 1 * 7 + 1, .inj = 0.0, .node = N_AAE(0, 1, 1)},
    {.what = "derive: f64 activation beyond float range (Inf)", .fn = F_DERIVE, .tg = TG_POST, .tl = 0, .vdtype = NW_DTYPE_F64,
     .inj_set = 1, .inj_at = 0 * DFF + 1, .inj = 1e300, .node = N_MLP(0, 0, 1)},
    {.what = "derive_vector: NULL token_row (allowed)", .fn = F_DERIVE_VEC, .node = N_ATT(1, 2, 0, 1), .nulls = NU_TOKEN},
    {.what = "derive_vector: NULL out", .fn = F_DERIVE_VEC, .node = N_ATT(1, 2, 0, 1), .nulls = NU_OUT, .expect = EARG},
    {.what = "derive_vector: NULL store", .fn = F_DERIVE_VEC, .node = N_ATT(1, 2, 0, 1), .nulls = NU_STORE, .expect = EARG},
    {.what = "derive_vector: NULL deriver", .fn = F_DERIVE_VEC, .node = N_ATT(1, 2, 0, 1), .nulls = NU_DERIVER, .expect = EARG},
    {.what = "derive_vector: out_len d_model - 1", .fn = F_DERIVE_VEC, .node = N_MLP(1, 0, 0), .cap = -1, .expect = EBUF},
    {.what = "derive_vector: out_len 0", .fn = F_DERIVE_VEC, .node = N_MLP(1, 0, 0), .cap_mode = CAP_ABS, .cap = 0, .expect = EBUF},
    {.what = "derive_vector: out_len SIZE_MAX", .fn = F_DERIVE_VEC, .node = N_MAE(1, -1, -1), .cap_mode = CAP_MAX},
    {.what = "derive_vector: missing activation", .fn = F_DERIVE_VEC, .fx = FX_ABSENT, .tg = TG_LAT2, .tl = 1,
     .node = N_AAE(1, 0, 0), .expect = EMIS},
    {.what = "derive_vector: shape mismatch", .fn = F_DERIVE_VEC, .tg = TG_V, .tl = 0, .vm = VM_SHAPE, .vi = 2, .vv = 1,
     .node = N_ATT(0, 0, 0, 0), .expect = ESHP},
    {.what = "derive_vector: post_act 2^40 tokens stride 0, token -1 (OK)", .fn = F_DERIVE_VEC, .tg = TG_POST, .tl = 1,
     .vlayout = NWT_BCAST0, .vm = VM_HUGE, .vi = 0, .vv = (int64_t)1 << 40, .node = N_MLP(1, 0, 3)},
    {.what = "node_write: NULL model", .fn = F_NODE_WRITE, .node = N_MLP(1, 0, 0), .nulls = NU_MODEL, .expect = EARG},
    {.what = "node_write: NULL store", .fn = F_NODE_WRITE, .node = N_MLP(1, 0, 0), .nulls = NU_STORE, .expect = EARG},
    {.what = "node_write: NULL node", .fn = F_NODE_WRITE, .node = N_MLP(1, 0, 0), .nulls = NU_NODE, .expect = EARG},
    {.what = "node_write: NULL out", .fn = F_NODE_WRITE, .node = N_MLP(1, 0, 0), .nulls = NU_OUT, .expect = EARG},
    {.what = "node_write: out_len T*d_model - 1", .fn = F_NODE_WRITE, .node = N_AE(0, 0, 0), .cap = -1, .expect = EBUF},
    {.what = "node_write: out_len SIZE_MAX", .fn = F_NODE_WRITE, .node = N_AE(0, 0, 0), .cap_mode = CAP_MAX},
    {.what = "node_write: missing weight", .fn = F_NODE_WRITE, .fx = FX_ABSENT, .tg = TG_WATT, .tl = 1, .node = N_ATT(1, 0, 0, 0), .expect = EMIS},
    {.what = "node_write: missing ae", .fn = F_NODE_WRITE, .fx = FX_ABSENT, .tg = TG_DEC0, .tl = 1, .node = N_AE(1, 0, 0), .expect = EMIS},
    {.what = "node_write: missing activation", .fn = F_NODE_WRITE, .fx = FX_ABSENT, .tg = TG_QK, .tl = 0, .node = N_ATT(0, 0, 0, 0), .expect = EMIS},
    {.what = "node_write: post_act 2^40 tokens, out too small", .fn = F_NODE_WRITE, .tg = TG_POST, .tl = 1, .vm = VM_HUGE,
     .vi = 0, .vv = (int64_t)1 << 40, .node = N_MLP(1, 0, 0), .cap_mode = CAP_ABS, .cap = 12, .expect = EBUF},
    {.what = "node_write: all f16, NaN weight row", .fn = F_NODE_WRITE, .fdtype = NW_DTYPE_F16, .tg = TG_WMLP, .tl = 0,
     .vdtype = NW_DTYPE_F16, .inj_set = 1, .inj_at = 3 * DM, .inj = NAN, .node = N_MLP(0, 1, 3)},
    {.what = "vectors: NULL model", .fn = F_NODE_WRITE_VECS, .nn = 3, .k = 1, .node = N_MLP(1, 0, 0), .nulls = NU_MODEL, .expect = EARG},
    {.what = "vectors: NULL store", .fn = F_NODE_WRITE_VECS, .nn = 3, .k = 1, .node = N_MLP(1, 0, 0), .nulls = NU_STORE, .expect = EARG},
    {.what = "vectors: NULL nodes", .fn = F_NODE_WRITE_VECS, .nn = 3, .k = 1, .node = N_MLP(1, 0, 0), .nulls = NU_NODE, .expect = EARG},
    {.what = "vectors: NULL out", .fn = F_NODE_WRITE_VECS, .nn = 3, .k = 1, .node = N_MLP(1, 0, 0), .nulls = NU_OUT, .expect = EARG},
    {.what = "vectors: NULL token_rows (allowed)", .fn = F_NODE_WRITE_VECS, .nn = 3, .k = 1, .node = N_MLP(1, 0, 0), .nulls = NU_TOKEN},
    {.what = "vectors: out_len n*d_model - 1", .fn = F_NODE_WRITE_VECS, .nn = 3, .k = 1, .node = N_MLP(1, 0, 0), .cap = -1, .expect = EBUF},
    {.what = "vectors: out_len SIZE_MAX", .fn = F_NODE_WRITE_VECS, .nn = 3, .k = 1, .node = N_MLP(1, 0, 0), .cap_mode = CAP_MAX},
    {.what = "vectors: 8 nodes, last one bad", .fn = F_NODE_WRITE_VECS, .nn = 8, .k = 7, .node = N_MLP(1, 0, DFF), .expect = EIDX},
    {.what = "vectors: 8 nodes, first one bad", .fn = F_NODE_WRITE_VECS, .nn = 8, .k = 0, .node = N_MLP(1, 3, 0), .expect = EIDX},
    {.what = "vectors: a node with a missing weight", .fn = F_NODE_WRITE_VECS, .fx = FX_ABSENT, .tg = TG_WMLP, .tl = 1,
     .nn = 4, .k = 2, .node = N_MLP(1, 0, 0), .expect = EMIS},
    {.what = "vectors: a node with a missing activation", .fn = F_NODE_WRITE_VECS, .fx = FX_ABSENT, .tg = TG_LAT0, .tl = 0,
     .nn = 4, .k = 3, .node = N_AE(0, 0, 0), .expect = EMIS},
    {.what = "vectors: a node with a shape mismatch", .fn = F_NODE_WRITE_VECS, .tg = TG_QK, .tl = 1, .vm = VM_SHAPE, .vi = 1, .vv = 2,
     .nn = 3, .k = 0, .node = N_ATT(1, 0, 0, 0), .expect = ESHP},
    {.what = "vectors: a node with reserved != 0", .fn = F_NODE_WRITE_VECS, .nn = 3, .k = 2,
     .node = NODE(NW_NODE_MLP_NEURON, 0, 2, 1, 0, 0, 0, 0), .expect = EARG},
    {.what = "vectors: 8 valid nodes", .fn = F_NODE_WRITE_VECS, .nn = 8, .k = 4, .node = N_ATT(0, -1, -3, -2)},

    /* ---- scenarios (each a sequence; the status is that of its last call) ---- */
    {.what = "scenario: a deriver keeps its model alive after nw_model_destroy", .fn = F_SCENARIO, .scenario = sc_deriver_outlives_model},
    {.what = "scenario: a deriver keeps the weights it was created with", .fn = F_SCENARIO, .scenario = sc_deriver_captures_weights},
    {.what = "scenario: nw_store_clear, then output_shape MISSING_INPUT", .fn = F_SCENARIO, .scenario = sc_store_clear, .expect = EMIS},
    {.what = "scenario: remove attn.v, derive MISSING, put back (negative strides)", .fn = F_SCENARIO, .scenario = sc_remove_put_back},
    {.what = "scenario: two models, one store; borrowed bf16 transposed weight", .fn = F_SCENARIO, .scenario = sc_two_models_one_store},
    {.what = "scenario: 256 TiB weight: NW_COPY refused, NW_BORROW stride 0 derives", .fn = F_SCENARIO, .scenario = sc_huge_weight},
    {.what = "scenario: store entry of 2^40 tokens (stride 0)", .fn = F_SCENARIO, .scenario = sc_huge_tokens},
    {.what = "scenario: T*d_model overflows int64 (refused, not OK)", .fn = F_SCENARIO, .scenario = sc_output_overflow,
     .expect = EBUF, .alt = EARG},
    {.what = "scenario: node_write_vectors with n_nodes 0", .fn = F_SCENARIO, .scenario = sc_vectors_empty},
    {.what = "scenario: error message kept after a success, per thread", .fn = F_SCENARIO, .scenario = sc_error_message},
    {.what = "scenario: qk_probs with all-zero strides (not causal)", .fn = F_SCENARIO, .fx = FX_NONCAUSAL,
     .scenario = sc_zero_stride_probs},
    {.what = "scenario: qk_probs with all-zero strides, causal: mass above the diagonal", .fn = F_SCENARIO,
     .scenario = sc_zero_stride_probs, .expect = EARG},
    {.what = "scenario: outputs sharing memory with an input or another output", .fn = F_SCENARIO, .scenario = sc_outputs_overlap_inputs},
};

/* ------------------------------------------------- generated node rows */

/* the boundary values of an index of extent n */
static int64_t bval(int i, int64_t n) {
    switch (i) {
    case 0: return -n - 1;
    case 1: return -n;
    case 2: return -1;
    case 3: return 0;
    case 4: return n - 1;
    case 5: return n;
    case 6: return INT64_MIN;
    default: return INT64_MAX;
    }
}
static const char *const BNAME[8] = {"-n-1", "-n", "-1", "0", "n-1", "n", "INT64_MIN", "INT64_MAX"};

static void gen_rows(void) {
    /* positions: node type, layer, n_indices, which index, its extent, token axis? (checked at derive) */
    struct pos { int32_t type; int layer; int slot; int64_t n; int token; unsigned fx; const char *what; } P[] = {
        {NW_NODE_MLP_NEURON, 1, 0, TT, 1, 0, "mlp token"},
        {NW_NODE_MLP_NEURON, 1, 1, DFF, 0, 0, "mlp neuron"},
        {NW_NODE_ATTENTION_HEAD, 1, 0, TT, 1, 0, "attention query token"},
        {NW_NODE_ATTENTION_HEAD, 1, 1, TT, 1, 0, "attention key token"},
        {NW_NODE_ATTENTION_HEAD, 0, 1, 4, 1, FX_TK4, "attention key token (T_k 4)"},
        {NW_NODE_ATTENTION_HEAD, 1, 2, NH, 0, 0, "attention head"},
        {NW_NODE_AUTOENCODER_LATENT, 0, 0, TT, 1, 0, "ae latent token"},
        {NW_NODE_AUTOENCODER_LATENT, 1, 1, 5, 0, 0, "ae latent index (L1, 5 latents)"},
        {NW_NODE_MLP_AUTOENCODER_LATENT, 1, 0, TT, 1, 0, "mlp-ae latent token"},
        {NW_NODE_MLP_AUTOENCODER_LATENT, 1, 1, 6, 0, 0, "mlp-ae latent index"},
        {NW_NODE_ATTENTION_AUTOENCODER_LATENT, 0, 0, TT, 1, 0, "attn-ae latent token"},
        {NW_NODE_ATTENTION_AUTOENCODER_LATENT, 1, 1, 7, 0, 0, "attn-ae latent index"},
    };
    const int fns[] = {F_DERIVER_CREATE, F_DERIVE, F_DERIVE_VEC, F_NODE_WRITE, F_NODE_WRITE_VECS};
    for (size_t p = 0; p < sizeof P / sizeof *P; p++) {
        for (int b = 0; b < 8; b++) {
            for (size_t f = 0; f < sizeof fns / sizeof *fns; f++) {
                int fn = fns[f];
                if (fn == F_DERIVER_CREATE && P[p].token) continue; /* create does not see tokens */
                row r = {0};
                r.fn = fn;
                r.fx = P[p].fx;
                nw_node_index nd = {P[p].type, P[p].layer, P[p].type == NW_NODE_ATTENTION_HEAD ? 3 : 2, 0, {1, 1, 1, 0}};
                if (P[p].type == NW_NODE_ATTENTION_HEAD) nd.indices[0] = 2;
                int64_t v = bval(b, P[p].n);
                nd.indices[P[p].slot] = v;
                r.node = nd;
                int in_range = v >= -P[p].n && v < P[p].n;
                r.expect = in_range ? NW_OK : NW_ERR_INDEX_OUT_OF_RANGE;
                r.stage = (!in_range && !P[p].token) ? STAGE_CREATE : STAGE_CALL;
                if (fn == F_NODE_WRITE_VECS) { r.nn = 3; r.k = 1; }
                row *a = add(r);
                snprintf(a->namebuf, sizeof a->namebuf, "%s = %s (%" PRId64 ")", P[p].what, BNAME[b], v);
                a->what = a->namebuf;
            }
        }
    }
    /* node fields: type, layer, n_indices, reserved, on every node entry point */
    struct bad { nw_node_index n; nw_status e; const char *what; } B[] = {
        {NODE(5, 0, 2, 0, 0, 0, 0, 0), EARG, "node type 5"},
        {NODE(-1, 0, 2, 0, 0, 0, 0, 0), EARG, "node type -1"},
        {NODE(I32MIN, 0, 2, 0, 0, 0, 0, 0), EARG, "node type INT32_MIN"},
        {NODE(I32MAX, 0, 3, 0, 0, 0, 0, 0), EARG, "node type INT32_MAX"},
        {NODE(NW_NODE_MLP_NEURON, -1, 2, 0, 0, 0, 0, 0), EIDX, "mlp layer -1"},
        {NODE(NW_NODE_MLP_NEURON, NL, 2, 0, 0, 0, 0, 0), EIDX, "mlp layer n_layers"},
        {NODE(NW_NODE_MLP_NEURON, NL - 1, 2, 0, 0, 0, 0, 0), OK, "mlp layer n_layers-1"},
        {NODE(NW_NODE_ATTENTION_HEAD, I32MIN, 3, 0, 0, 0, 0, 0), EIDX, "attention layer INT32_MIN"},
        {NODE(NW_NODE_ATTENTION_HEAD, I32MAX, 3, 0, 0, 0, 0, 0), EIDX, "attention layer INT32_MAX"},
        {NODE(NW_NODE_AUTOENCODER_LATENT, -2, 2, 0, 0, 0, 0, 0), EIDX, "latent layer -2"},
        {NODE(NW_NODE_ATTENTION_AUTOENCODER_LATENT, NL, 2, 0, 0, 0, 0, 0), EIDX, "attn-ae latent layer n_layers"},
        {NODE(NW_NODE_MLP_NEURON, 0, 3, 0, 0, 0, 0, 0), EARG, "mlp n_indices 3"},
        {NODE(NW_NODE_MLP_NEURON, 0, 1, 0, 0, 0, 0, 0), EARG, "mlp n_indices 1"},
        {NODE(NW_NODE_MLP_NEURON, 0, 0, 0, 0, 0, 0, 0), EARG, "mlp n_indices 0"},
        {NODE(NW_NODE_MLP_NEURON, 0, -1, 0, 0, 0, 0, 0), EARG, "mlp n_indices -1"},
        {NODE(NW_NODE_MLP_NEURON, 0, I32MIN, 0, 0, 0, 0, 0), EARG, "mlp n_indices INT32_MIN"},
        {NODE(NW_NODE_ATTENTION_HEAD, 0, 2, 0, 0, 0, 0, 0), EARG, "attention n_indices 2"},
        {NODE(NW_NODE_ATTENTION_HEAD, 0, 4, 0, 0, 0, 0, 0), EARG, "attention n_indices 4"},
        {NODE(NW_NODE_ATTENTION_HEAD, 0, I32MAX, 0, 0, 0, 0, 0), EARG, "attention n_indices INT32_MAX"},
        {NODE(NW_NODE_MLP_AUTOENCODER_LATENT, 0, 3, 0, 0, 0, 0, 0), EARG, "latent n_indices 3"},
        {NODE(NW_NODE_MLP_NEURON, 0, 2, 1, 0, 0, 0, 0), EARG, "reserved 1"},
        {NODE(NW_NODE_ATTENTION_HEAD, 0, 3, -1, 0, 0, 0, 0), EARG, "reserved -1"},
        {NODE(NW_NODE_AUTOENCODER_LATENT, 0, 2, I32MIN, 0, 0, 0, 0), EARG, "reserved INT32_MIN"},
        {NODE(NW_NODE_ATTENTION_AUTOENCODER_LATENT, 0, 2, I32MAX, 0, 0, 0, 0), EARG, "reserved INT32_MAX"},
    };
    const int nfns[] = {F_DERIVER_CREATE, F_NODE_WRITE, F_NODE_WRITE_VECS};
    for (size_t i = 0; i < sizeof B / sizeof *B; i++) {
        for (size_t f = 0; f < sizeof nfns / sizeof *nfns; f++) {
            row r = {0};
            r.fn = nfns[f];
            r.node = B[i].n;
            r.expect = B[i].e;
            if (r.fn == F_NODE_WRITE_VECS) { r.nn = 3; r.k = 2; }
            row *a = add(r);
            snprintf(a->namebuf, sizeof a->namebuf, "node %s", B[i].what);
            a->what = a->namebuf;
        }
    }
}

/* ------------------------------------------------- rows of the 1.1 exports */

#define XNODES(t, l, n, k) .xtype = (t), .xlayer = (l), .xn = (n), .xk = (k)
#define NDIR(d) .dir = (d)

static const row X_ROWS[] = {
    /* ---- names: the appended weights and activations ---- */
    {.what = "weight 2", .fn = F_NAME, .e0 = 2, .e1 = 2, .str = "unembedding"},
    {.what = "weight 3", .fn = F_NAME, .e0 = 2, .e1 = 3, .str = "layer_norm_gain.final"},
    {.what = "weight 18 (one past)", .fn = F_NAME, .e0 = 2, .e1 = 18, .str = NULL},
    {.what = "activation 6", .fn = F_NAME, .e0 = 1, .e1 = 6, .str = "resid.delta_mlp"},
    {.what = "activation 7", .fn = F_NAME, .e0 = 1, .e1 = 7, .str = "resid.delta_attn"},
    {.what = "activation 12 (one past)", .fn = F_NAME, .e0 = 1, .e1 = 12, .str = NULL},
    {.what = "weight \"unembedding\"", .fn = F_FROM_NAME, .e0 = 2, .e1 = 2, .str = "unembedding"},
    {.what = "weight \"layer_norm_gain.final\"", .fn = F_FROM_NAME, .e0 = 2, .e1 = 3, .str = "layer_norm_gain.final"},
    {.what = "weight \"layer_norm_gain\" (prefix)", .fn = F_FROM_NAME, .e0 = 2, .str = "layer_norm_gain", .expect = EARG},
    {.what = "activation \"resid.delta_mlp\"", .fn = F_FROM_NAME, .e0 = 1, .e1 = 6, .str = "resid.delta_mlp"},
    {.what = "activation \"resid.delta_attn\"", .fn = F_FROM_NAME, .e0 = 1, .e1 = 7, .str = "resid.delta_attn"},
    {.what = "activation \"resid.delta_attn \" (trailing space)", .fn = F_FROM_NAME, .e0 = 1, .str = "resid.delta_attn ", .expect = EARG},

    /* ---- nw_node_type_index_count: e0 type, e1 expected ---- */
    {.what = "mlp_neuron -> 2", .fn = F_INDEX_COUNT, .e0 = 0, .e1 = 2},
    {.what = "attention_head -> 3", .fn = F_INDEX_COUNT, .e0 = 1, .e1 = 3},
    {.what = "autoencoder_latent -> 2", .fn = F_INDEX_COUNT, .e0 = 2, .e1 = 2},
    {.what = "mlp_autoencoder_latent -> 2", .fn = F_INDEX_COUNT, .e0 = 3, .e1 = 2},
    {.what = "attention_autoencoder_latent -> 2", .fn = F_INDEX_COUNT, .e0 = 4, .e1 = 2},
    {.what = "5 (one past) -> 0", .fn = F_INDEX_COUNT, .e0 = 5, .e1 = 0},
    {.what = "-1 -> 0", .fn = F_INDEX_COUNT, .e0 = -1, .e1 = 0},
    {.what = "INT32_MIN -> 0", .fn = F_INDEX_COUNT, .e0 = I32MIN, .e1 = 0},
    {.what = "INT32_MAX -> 0", .fn = F_INDEX_COUNT, .e0 = I32MAX, .e1 = 0},

    /* ---- threads: e0 = n ---- */
    {.what = "set 1", .fn = F_THREADS, .e0 = 1},
    {.what = "set 2", .fn = F_THREADS, .e0 = 2},
    {.what = "set 3", .fn = F_THREADS, .e0 = 3},
    {.what = "set 1024 (the limit)", .fn = F_THREADS, .e0 = 1024},
    {.what = "set 0 (the default)", .fn = F_THREADS, .e0 = 0},
    {.what = "set 1025 (one past)", .fn = F_THREADS, .e0 = 1025, .expect = EARG},
    {.what = "set -1", .fn = F_THREADS, .e0 = -1, .expect = EARG},
    {.what = "set INT32_MIN", .fn = F_THREADS, .e0 = I32MIN, .expect = EARG},
    {.what = "set INT32_MAX", .fn = F_THREADS, .e0 = I32MAX, .expect = EARG},

    /* ---- nw_dst_from_name ---- */
    {.what = "\"\"", .fn = F_DST_FROM_NAME, .str = "", .expect = EARG},
    {.what = "\"mlp_write_norm \" (trailing space)", .fn = F_DST_FROM_NAME, .str = "mlp_write_norm ", .expect = EARG},
    {.what = "\"MLP_WRITE_NORM\" (case)", .fn = F_DST_FROM_NAME, .str = "MLP_WRITE_NORM", .expect = EARG},
    {.what = "\"mlp.post_act\" (an activation)", .fn = F_DST_FROM_NAME, .str = "mlp.post_act", .expect = EARG},
    {.what = "NULL name", .fn = F_DST_FROM_NAME, .str = "mlp_write_norm", .nulls = NU_NAME, .expect = EARG},
    {.what = "NULL out", .fn = F_DST_FROM_NAME, .str = "mlp_write_norm", .nulls = NU_OUT, .expect = EARG},
    {.what = "\"attn_layer_write_to_final_residual_grad\"", .fn = F_DST_FROM_NAME,
     .str = "attn_layer_write_to_final_residual_grad", .e1 = 17},
    {.what = "43 -> NULL", .fn = F_DST_NAME, .e0 = 43},
    {.what = "-1 -> NULL", .fn = F_DST_NAME, .e0 = -1},
    {.what = "INT32_MIN -> NULL", .fn = F_DST_NAME, .e0 = I32MIN},
    {.what = "INT32_MAX -> NULL", .fn = F_DST_NAME, .e0 = I32MAX},

    /* ---- nw_model_vocab_size ---- */
    {.what = "unembedding set: n_vocab", .fn = F_VOCAB},
    {.what = "no unembedding: 0", .fn = F_VOCAB, .xfx = XF_NO_UNEMB},
    {.what = "NULL model", .fn = F_VOCAB, .nulls = NU_MODEL, .expect = EARG},
    {.what = "NULL out", .fn = F_VOCAB, .nulls = NU_OUT, .expect = EARG},

    /* ---- nw_model_set_weight, layer-less: e0 weight, e1 layer, e2 ownership ---- */
    {.what = "unembedding, NW_NO_LAYER, copy", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1},
    {.what = "unembedding, NW_NO_LAYER, borrow f16 transposed", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .e2 = NW_BORROW,
     .vdtype = NW_DTYPE_F16, .vlayout = NWT_TRANSPOSED},
    {.what = "unembedding, bf16, every axis negative", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vdtype = NW_DTYPE_BF16,
     .vlayout = NWT_NEGALL},
    {.what = "unembedding, f64 padded", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vdtype = NW_DTYPE_F64, .vlayout = NWT_PADDED},
    {.what = "unembedding with layer 0", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = 0, .expect = EIDX},
    {.what = "unembedding with layer n_layers-1", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = NL - 1, .expect = EIDX},
    {.what = "unembedding with layer -2", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -2, .expect = EIDX},
    {.what = "unembedding with layer INT32_MIN", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = I32MIN, .expect = EIDX},
    {.what = "unembedding with layer INT32_MAX", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = I32MAX, .expect = EIDX},
    {.what = "gain, NW_NO_LAYER", .fn = F_SET_WEIGHT0, .e0 = 3, .e1 = -1},
    {.what = "gain, borrowed f16", .fn = F_SET_WEIGHT0, .e0 = 3, .e1 = -1, .e2 = NW_BORROW, .vdtype = NW_DTYPE_F16},
    {.what = "gain, negative stride", .fn = F_SET_WEIGHT0, .e0 = 3, .e1 = -1, .vlayout = NWT_NEG0},
    {.what = "gain, stride 0 (truthful)", .fn = F_SET_WEIGHT0, .e0 = 3, .e1 = -1, .vm = VM_STRIDE, .vi = 0, .vv = 0},
    {.what = "gain with layer 0", .fn = F_SET_WEIGHT0, .e0 = 3, .e1 = 0, .expect = EIDX},
    {.what = "gain with layer 1", .fn = F_SET_WEIGHT0, .e0 = 3, .e1 = 1, .expect = EIDX},
    {.what = "mlp.to_residual with NW_NO_LAYER", .fn = F_SET_WEIGHT0, .e0 = 0, .e1 = -1, .expect = EIDX},
    {.what = "attn.to_residual with NW_NO_LAYER", .fn = F_SET_WEIGHT0, .e0 = 1, .e1 = -1, .expect = EIDX},
    {.what = "weight 18 (one past)", .fn = F_SET_WEIGHT0, .e0 = 18, .e1 = -1, .expect = EARG},
    {.what = "weight -1", .fn = F_SET_WEIGHT0, .e0 = -1, .e1 = -1, .expect = EARG},
    {.what = "weight INT32_MIN", .fn = F_SET_WEIGHT0, .e0 = I32MIN, .e1 = -1, .expect = EARG},
    {.what = "weight INT32_MAX", .fn = F_SET_WEIGHT0, .e0 = I32MAX, .e1 = -1, .expect = EARG},
    {.what = "unembedding, ownership 2", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .e2 = 2, .expect = EARG},
    {.what = "unembedding, NULL view", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .nulls = NU_VIEW, .expect = EARG},
    {.what = "unembedding, NULL model", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .nulls = NU_MODEL, .expect = EARG},
    {.what = "unembedding, NULL data", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .nulls = NU_DATA, .expect = EARG},
    {.what = "unembedding, dtype 4", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vm = VM_DTYPE, .vv = 4, .expect = EDT},
    {.what = "unembedding, dtype -1", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vm = VM_DTYPE, .vv = -1, .expect = EDT},
    {.what = "unembedding, ndim 1", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vm = VM_NDIM, .vv = 1, .expect = ESHP},
    {.what = "unembedding, ndim 3", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vm = VM_NDIM, .vv = 3, .expect = ESHP},
    {.what = "unembedding, (d_model+1, n_vocab)", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vm = VM_SHAPE, .vi = 0, .vv = DM + 1,
     .expect = ESHP},
    {.what = "unembedding, (d_model-1, n_vocab)", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vm = VM_SHAPE, .vi = 0, .vv = DM - 1,
     .expect = ESHP},
    {.what = "unembedding, n_vocab 0", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vm = VM_SHAPE, .vi = 1, .vv = 0,
     .expect = ESHP, .alt = EARG},
    {.what = "unembedding, n_vocab -1", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vm = VM_SHAPE, .vi = 1, .vv = -1, .expect = EARG},
    {.what = "unembedding, n_vocab 1", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vm = VM_SHAPE, .vi = 1, .vv = 1},
    {.what = "unembedding, stride INT64_MAX", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vm = VM_STRIDE, .vi = 1, .vv = I64MAX,
     .expect = EARG},
    {.what = "unembedding, stride INT64_MIN", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vm = VM_STRIDE, .vi = 0, .vv = I64MIN,
     .expect = EARG},
    {.what = "unembedding, n_vocab 2^62 copied (stride 0)", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .vm = VM_HUGE, .vi = 1,
     .vv = (int64_t)1 << 62, .expect = EOOM, .alt = EARG},
    {.what = "unembedding, n_vocab 2^40 borrowed (stride 0)", .fn = F_SET_WEIGHT0, .e0 = 2, .e1 = -1, .e2 = NW_BORROW,
     .vm = VM_HUGE, .vi = 1, .vv = (int64_t)1 << 40},
    {.what = "gain, (d_model+1,)", .fn = F_SET_WEIGHT0, .e0 = 3, .e1 = -1, .vm = VM_SHAPE, .vi = 0, .vv = DM + 1, .expect = ESHP},
    {.what = "gain, (0,)", .fn = F_SET_WEIGHT0, .e0 = 3, .e1 = -1, .vm = VM_SHAPE, .vi = 0, .vv = 0, .expect = ESHP},
    {.what = "gain, ndim 2", .fn = F_SET_WEIGHT0, .e0 = 3, .e1 = -1, .vm = VM_NDIM, .vv = 2, .expect = ESHP},
    {.what = "gain, ndim 0", .fn = F_SET_WEIGHT0, .e0 = 3, .e1 = -1, .vm = VM_NDIM, .vv = 0, .expect = ESHP},
    {.what = "gain, dtype INT32_MAX", .fn = F_SET_WEIGHT0, .e0 = 3, .e1 = -1, .vm = VM_DTYPE, .vv = I32MAX, .expect = EDT},

    /* ---- nw_store_put of resid.delta_*: e0 activation, e1 layer; post = layer write norm ---- */
    {.what = "resid.delta_mlp (T, d_model)", .fn = F_PUT_DELTA, .e0 = 6, .e1 = 1, .post_set = 1, .post = OK},
    {.what = "resid.delta_attn (T, d_model)", .fn = F_PUT_DELTA, .e0 = 7, .e1 = 0, .post_set = 1, .post = OK},
    {.what = "resid.delta_mlp, ndim 1", .fn = F_PUT_DELTA, .e0 = 6, .e1 = 1, .vm = VM_NDIM, .vv = 1, .expect = ESHP,
     .post_set = 1, .post = OK},
    {.what = "resid.delta_attn, ndim 3", .fn = F_PUT_DELTA, .e0 = 7, .e1 = 1, .vm = VM_NDIM, .vv = 3, .expect = ESHP,
     .post_set = 1, .post = OK},
    {.what = "resid.delta_mlp, layer -1", .fn = F_PUT_DELTA, .e0 = 6, .e1 = -1, .expect = EARG, .post_set = 1, .post = OK},
    {.what = "resid.delta_mlp, layer INT32_MIN", .fn = F_PUT_DELTA, .e0 = 6, .e1 = I32MIN, .expect = EARG},
    {.what = "resid.delta_mlp, dtype 4", .fn = F_PUT_DELTA, .e0 = 6, .e1 = 0, .vm = VM_DTYPE, .vv = 4, .expect = EDT,
     .post_set = 1, .post = OK},
    {.what = "resid.delta_mlp, NULL view", .fn = F_PUT_DELTA, .e0 = 6, .e1 = 0, .nulls = NU_VIEW, .expect = EARG},
    {.what = "resid.delta_mlp, NULL store", .fn = F_PUT_DELTA, .e0 = 6, .e1 = 0, .nulls = NU_STORE, .expect = EARG},
    {.what = "resid.delta_mlp, negative shape", .fn = F_PUT_DELTA, .e0 = 6, .e1 = 0, .vm = VM_SHAPE, .vi = 0, .vv = -1,
     .expect = EARG, .post_set = 1, .post = OK},
    {.what = "resid.delta_mlp (T, d_model+1): put, derive SHAPE_MISMATCH", .fn = F_PUT_DELTA, .e0 = 6, .e1 = 1, .vm = VM_SHAPE,
     .vi = 1, .vv = DM + 1, .post_set = 1, .post = ESHP},
    {.what = "resid.delta_attn (T, d_model-1): put, derive SHAPE_MISMATCH", .fn = F_PUT_DELTA, .e0 = 7, .e1 = 0, .vm = VM_SHAPE,
     .vi = 1, .vv = DM - 1, .post_set = 1, .post = ESHP},
    {.what = "resid.delta_mlp at layer n_layers (unused slot)", .fn = F_PUT_DELTA, .e0 = 6, .e1 = NL},

    /* ---- nw_node_write_sized ---- */
    {.what = "mlp node, exact capacity", .fn = F_SIZED, .node = N_MLP(1, 2, 4)},
    {.what = "attention node, exact capacity", .fn = F_SIZED, .node = N_ATT(0, -1, 0, 1)},
    {.what = "latent node, capacity SIZE_MAX", .fn = F_SIZED, .node = N_AAE(1, 1, -1), .cap_mode = CAP_MAX},
    {.what = "capacity T*d_model - 1: shape reported", .fn = F_SIZED, .node = N_MLP(1, 2, 4), .cap = -1, .expect = EBUF},
    {.what = "capacity 0: shape reported", .fn = F_SIZED, .node = N_MLP(1, 2, 4), .cap_mode = CAP_ABS, .cap = 0, .expect = EBUF},
    {.what = "out NULL, capacity 0: shape reported", .fn = F_SIZED, .node = N_ATT(1, 2, 2, 1), .nulls = NU_OUT,
     .cap_mode = CAP_ABS, .cap = 0, .expect = EBUF},
    {.what = "out NULL, capacity T*d_model", .fn = F_SIZED, .node = N_MLP(1, 2, 4), .nulls = NU_OUT, .expect = EARG},
    {.what = "out_shape NULL (allowed)", .fn = F_SIZED, .node = N_MLP(1, 2, 4), .nulls = NU_COUNT},
    {.what = "NULL model", .fn = F_SIZED, .node = N_MLP(1, 2, 4), .nulls = NU_MODEL, .expect = EARG},
    {.what = "NULL store", .fn = F_SIZED, .node = N_MLP(1, 2, 4), .nulls = NU_STORE, .expect = EARG},
    {.what = "NULL node", .fn = F_SIZED, .node = N_MLP(1, 2, 4), .nulls = NU_NODE, .expect = EARG},
    {.what = "token index T: nothing written", .fn = F_SIZED, .node = N_MLP(1, TT, 4), .expect = EIDX},
    {.what = "token index -T-1: nothing written", .fn = F_SIZED, .node = N_MLP(1, -TT - 1, 4), .expect = EIDX},
    {.what = "key token INT64_MIN: nothing written", .fn = F_SIZED, .node = N_ATT(1, 0, I64MIN, 0), .expect = EIDX},
    {.what = "neuron d_ff", .fn = F_SIZED, .node = N_MLP(1, 0, DFF), .expect = EIDX},
    {.what = "node type 5", .fn = F_SIZED, .node = NODE(5, 0, 2, 0, 0, 0, 0, 0), .expect = EARG},
    {.what = "layer n_layers", .fn = F_SIZED, .node = N_MLP(NL, 0, 0), .expect = EIDX},
    {.what = "missing post_act", .fn = F_SIZED, .fx = FX_ABSENT, .tg = TG_POST, .tl = 1, .node = N_MLP(1, 0, 0), .expect = EMIS},
    {.what = "qk_probs shape mismatch", .fn = F_SIZED, .tg = TG_QK, .tl = 0, .vm = VM_SHAPE, .vi = 2, .vv = NH + 1,
     .node = N_ATT(0, 0, 0, 0), .expect = ESHP},

    /* ---- nw_node_write_to_direction ---- */
    {.what = "mlp node, (T, d_model) direction", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_FULL)},
    {.what = "attention node, (d_model,) direction", .fn = F_TO_DIR, .node = N_ATT(1, 2, 0, -1), NDIR(D_SHARED)},
    {.what = "latent node, f16 transposed direction", .fn = F_TO_DIR, .node = N_AE(0, -1, 2), NDIR(D_FULL),
     .dirdtype = NW_DTYPE_F16, .dirlayout = NWT_TRANSPOSED},
    {.what = "mlp-ae node, bf16 negative-stride direction", .fn = F_TO_DIR, .node = N_MAE(1, 0, 5), NDIR(D_FULL),
     .dirdtype = NW_DTYPE_BF16, .dirlayout = NWT_NEGALL},
    {.what = "f64 shared direction, stride 0 rows", .fn = F_TO_DIR, .node = N_AAE(1, 2, 0), NDIR(D_SHARED),
     .dirdtype = NW_DTYPE_F64},
    {.what = "capacity T - 1: shape reported", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_FULL), .cap = -1, .expect = EBUF},
    {.what = "out NULL, capacity 0: shape reported", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_FULL), .nulls = NU_OUT,
     .cap_mode = CAP_ABS, .cap = 0, .expect = EBUF},
    {.what = "out NULL, capacity T", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_FULL), .nulls = NU_OUT, .expect = EARG},
    {.what = "NULL direction", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_NONE), .expect = EARG},
    {.what = "NULL model", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_FULL), .nulls = NU_MODEL, .expect = EARG},
    {.what = "NULL store", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_FULL), .nulls = NU_STORE, .expect = EARG},
    {.what = "NULL node", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_FULL), .nulls = NU_NODE, .expect = EARG},
    {.what = "out_shape NULL (allowed)", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_FULL), .nulls = NU_COUNT},
    {.what = "token index T: nothing written", .fn = F_TO_DIR, .node = N_MLP(0, TT, 3), NDIR(D_FULL), .expect = EIDX},
    {.what = "token index INT64_MAX: nothing written", .fn = F_TO_DIR, .node = N_AE(0, I64MAX, 0), NDIR(D_SHARED),
     .expect = EIDX},
    {.what = "neuron -d_ff-1", .fn = F_TO_DIR, .node = N_MLP(0, 0, -DFF - 1), NDIR(D_FULL), .expect = EIDX},
    {.what = "direction (T+1, d_model): nothing written", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_T1), .expect = ESHP},
    {.what = "direction (T-1, d_model): nothing written", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_TM1), .expect = ESHP},
    {.what = "direction (T, d_model+1): nothing written", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_DM1), .expect = ESHP},
    {.what = "direction (d_model+1,): nothing written", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_SDM1), .expect = ESHP},
    {.what = "direction ndim 0", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_NDIM0), .expect = ESHP},
    {.what = "direction ndim 3", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_NDIM3), .expect = ESHP},
    {.what = "direction dtype 4", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_DTYPE), .vv = 4, .expect = EDT},
    {.what = "direction NULL data", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_NULLDATA), .expect = EARG},
    {.what = "direction NULL shape", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_NULLSHAPE), .expect = EARG},
    {.what = "direction stride INT64_MAX", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_HUGESTRIDE), .expect = EARG},
    {.what = "direction shape -1", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_NEGSHAPE), .expect = EARG},
    {.what = "direction (2^40, d_model) stride 0", .fn = F_TO_DIR, .node = N_MLP(0, 1, 3), NDIR(D_HUGESHAPE), .expect = ESHP},
    {.what = "missing mlp weight", .fn = F_TO_DIR, .fx = FX_ABSENT, .tg = TG_WMLP, .tl = 0, .node = N_MLP(0, 1, 3),
     NDIR(D_FULL), .expect = EMIS},

    /* ---- nw_derive: xtype = dst, xlayer = layer ---- */
    {.what = "dst 43 (one past)", .fn = F_DERIVE_DST, .xtype = 43, .expect = EARG},
    {.what = "dst 18 (an edge DST: nw_derive_node)", .fn = F_DERIVE_DST, .xtype = 18, .expect = EARG},
    {.what = "flags NW_OUT_ZEROED, a norm", .fn = F_DERIVE_DST, .xtype = 2, .xlayer = 1, .xflags = NW_OUT_ZEROED},
    {.what = "flags NW_OUT_ZEROED, a projection", .fn = F_DERIVE_DST, .xtype = 3, .xlayer = 0, NDIR(D_FULL), .xflags = NW_OUT_ZEROED},
    {.what = "flags NW_OUT_ZEROED, latents", .fn = F_DERIVE_DST, .xtype = 12, .xlayer = 1, NDIR(D_FULL), .xflags = NW_OUT_ZEROED},
    {.what = "flags 2 (unknown)", .fn = F_DERIVE_DST, .xtype = 2, .xlayer = 1, .xflags = 2, .expect = EARG},
    {.what = "flags 0x80000000 (unknown)", .fn = F_DERIVE_DST, .xtype = 0, .xlayer = 0, .xflags = 0x80000000u, .expect = EARG},
    {.what = "dst -1", .fn = F_DERIVE_DST, .xtype = -1, .expect = EARG},
    {.what = "dst INT32_MIN", .fn = F_DERIVE_DST, .xtype = I32MIN, .expect = EARG},
    {.what = "dst INT32_MAX", .fn = F_DERIVE_DST, .xtype = I32MAX, NDIR(D_FULL), .expect = EARG},
    {.what = "a norm given a direction", .fn = F_DERIVE_DST, .xtype = 0, NDIR(D_FULL), .expect = EARG},
    {.what = "layer norm given a direction", .fn = F_DERIVE_DST, .xtype = 14, NDIR(D_SHARED), .expect = EARG},
    {.what = "a projection without a direction", .fn = F_DERIVE_DST, .xtype = 1, .expect = EARG},
    {.what = "attn projection without a direction", .fn = F_DERIVE_DST, .xtype = 5, .expect = EARG},
    {.what = "layer -1", .fn = F_DERIVE_DST, .xtype = 0, .xlayer = -1, .expect = EIDX},
    {.what = "layer n_layers", .fn = F_DERIVE_DST, .xtype = 4, .xlayer = NL, .expect = EIDX},
    {.what = "layer INT32_MIN", .fn = F_DERIVE_DST, .xtype = 8, .xlayer = I32MIN, .expect = EIDX},
    {.what = "layer INT32_MAX", .fn = F_DERIVE_DST, .xtype = 17, .xlayer = I32MAX, NDIR(D_FULL), .expect = EIDX},
    {.what = "layer write norm, layer n_layers", .fn = F_DERIVE_DST, .xtype = 14, .xlayer = NL, .expect = EIDX},
    {.what = "capacity one short: shape reported", .fn = F_DERIVE_DST, .xtype = 2, .xlayer = 1, .cap = -1, .expect = EBUF},
    {.what = "capacity 0: shape reported", .fn = F_DERIVE_DST, .xtype = 9, .xlayer = 0, .cap_mode = CAP_ABS, .cap = 0, .expect = EBUF},
    {.what = "out NULL, capacity 0: shape reported", .fn = F_DERIVE_DST, .xtype = 4, .xlayer = 0, .nulls = NU_OUT,
     .cap_mode = CAP_ABS, .cap = 0, .expect = EBUF},
    {.what = "out NULL, capacity exact", .fn = F_DERIVE_DST, .xtype = 16, .xlayer = 0, NDIR(D_FULL), .nulls = NU_OUT,
     .expect = EARG},
    {.what = "capacity SIZE_MAX", .fn = F_DERIVE_DST, .xtype = 6, .xlayer = 1, .cap_mode = CAP_MAX},
    {.what = "out_shape and out_ndim NULL (allowed)", .fn = F_DERIVE_DST, .xtype = 0, .xlayer = 1, .nulls = NU_COUNT | NU_DIMS},
    {.what = "NULL model", .fn = F_DERIVE_DST, .xtype = 0, .nulls = NU_MODEL, .expect = EARG},
    {.what = "NULL store", .fn = F_DERIVE_DST, .xtype = 0, .nulls = NU_STORE, .expect = EARG},
    {.what = "direction (T+1, d_model)", .fn = F_DERIVE_DST, .xtype = 1, NDIR(D_T1), .expect = ESHP},
    {.what = "direction (T-1, d_model)", .fn = F_DERIVE_DST, .xtype = 3, NDIR(D_TM1), .expect = ESHP},
    {.what = "direction (T, d_model+1)", .fn = F_DERIVE_DST, .xtype = 11, NDIR(D_DM1), .expect = ESHP},
    {.what = "direction (d_model+1,)", .fn = F_DERIVE_DST, .xtype = 16, NDIR(D_SDM1), .expect = ESHP},
    {.what = "direction ndim 0", .fn = F_DERIVE_DST, .xtype = 1, NDIR(D_NDIM0), .expect = ESHP},
    {.what = "direction ndim 3", .fn = F_DERIVE_DST, .xtype = 1, NDIR(D_NDIM3), .expect = ESHP},
    {.what = "direction dtype 4", .fn = F_DERIVE_DST, .xtype = 1, NDIR(D_DTYPE), .vv = 4, .expect = EDT},
    {.what = "direction dtype INT32_MIN", .fn = F_DERIVE_DST, .xtype = 5, NDIR(D_DTYPE), .vv = I32MIN, .expect = EDT},
    {.what = "direction NULL data", .fn = F_DERIVE_DST, .xtype = 7, NDIR(D_NULLDATA), .expect = EARG},
    {.what = "direction NULL shape", .fn = F_DERIVE_DST, .xtype = 12, NDIR(D_NULLSHAPE), .expect = EARG},
    {.what = "direction stride INT64_MAX", .fn = F_DERIVE_DST, .xtype = 13, NDIR(D_HUGESTRIDE), .expect = EARG},
    {.what = "direction shape -1", .fn = F_DERIVE_DST, .xtype = 17, NDIR(D_NEGSHAPE), .expect = EARG},
    {.what = "direction (2^40, d_model) stride 0", .fn = F_DERIVE_DST, .xtype = 1, NDIR(D_HUGESHAPE), .expect = ESHP},
    {.what = "no resid.delta_mlp", .fn = F_DERIVE_DST, .xtype = 14, .xfx = XF_NO_DELTA, .expect = EMIS},
    {.what = "no resid.delta_attn (projection)", .fn = F_DERIVE_DST, .xtype = 17, NDIR(D_FULL), .xfx = XF_NO_DELTA, .expect = EMIS},
    {.what = "resid.delta_mlp (T, d_model+1)", .fn = F_DERIVE_DST, .xtype = 14, .xfx = XF_DELTA_WIDE, .expect = ESHP},
    {.what = "resid.delta_attn (T, d_model+1), projection", .fn = F_DERIVE_DST, .xtype = 17, NDIR(D_SHARED),
     .xfx = XF_DELTA_WIDE, .expect = ESHP},
    {.what = "no post_act", .fn = F_DERIVE_DST, .xtype = 0, .xlayer = 1, .fx = FX_ABSENT, .tg = TG_POST, .tl = 1, .expect = EMIS},
    {.what = "no mlp weight", .fn = F_DERIVE_DST, .xtype = 1, NDIR(D_FULL), .fx = FX_ABSENT, .tg = TG_WMLP, .tl = 0,
     .expect = EMIS},
    {.what = "no attn.v", .fn = F_DERIVE_DST, .xtype = 2, .xlayer = 1, .fx = FX_ABSENT, .tg = TG_V, .tl = 1, .expect = EMIS},
    {.what = "no attention autoencoder latents", .fn = F_DERIVE_DST, .xtype = 10, .xlayer = 1, .fx = FX_ABSENT,
     .tg = TG_LAT2, .tl = 1, .expect = EMIS},
    {.what = "no mlp autoencoder decoder", .fn = F_DERIVE_DST, .xtype = 12, .xlayer = 0, NDIR(D_FULL), .fx = FX_ABSENT,
     .tg = TG_DEC1, .tl = 0, .expect = EMIS},
    {.what = "attention with T_k != T", .fn = F_DERIVE_DST, .xtype = 2, .fx = FX_TK4, .expect = ESHP},
    {.what = "attention per token with T_k != T", .fn = F_DERIVE_DST, .xtype = 7, NDIR(D_FULL), .fx = FX_TK4, .expect = ESHP},
    {.what = "qk_probs with n_heads + 1", .fn = F_DERIVE_DST, .xtype = 4, .xlayer = 1, .tg = TG_QK, .tl = 1, .vm = VM_SHAPE,
     .vi = 2, .vv = NH + 1, .expect = ESHP},
    {.what = "post_act dtype f16 transposed", .fn = F_DERIVE_DST, .xtype = 1, .xlayer = 1, NDIR(D_FULL), .tg = TG_POST, .tl = 1,
     .vdtype = NW_DTYPE_F16, .vlayout = NWT_TRANSPOSED},
    {.what = "mlp projection, direction stride 0 over tokens", .fn = F_DERIVE_DST, .xtype = 1, .xlayer = 0, NDIR(D_FULL),
     .dirlayout = NWT_BCAST0},
    {.what = "attention projection, direction stride 0 over tokens", .fn = F_DERIVE_DST, .xtype = 3, .xlayer = 1, NDIR(D_FULL),
     .dirlayout = NWT_BCAST0},
    {.what = "mlp projection, direction rows 0 and T-1 zero", .fn = F_DERIVE_DST, .xtype = 1, .xlayer = 1, NDIR(D_ZEROROWS)},
    {.what = "attention projection, direction rows 0 and T-1 zero", .fn = F_DERIVE_DST, .xtype = 5, .xlayer = 0, NDIR(D_ZEROROWS)},
    {.what = "per-token attention projection, zero rows", .fn = F_DERIVE_DST, .xtype = 7, .xlayer = 1, NDIR(D_ZEROROWS)},
    {.what = "latent projection, zero rows", .fn = F_DERIVE_DST, .xtype = 13, .xlayer = 0, NDIR(D_ZEROROWS)},
    {.what = "layer projection, zero rows", .fn = F_DERIVE_DST, .xtype = 16, .xlayer = 1, NDIR(D_ZEROROWS)},
    {.what = "node projection, zero rows (token row zero)", .fn = F_TO_DIR, .node = N_MLP(1, 0, 2), NDIR(D_ZEROROWS)},
};

/* the boundary positions of an index in a node set (cf. gen_rows) */
static void gen_x_rows(void) {
    for (size_t i = 0; i < sizeof X_ROWS / sizeof *X_ROWS; i++) add(X_ROWS[i]);
    /* dst names, and nw_derive OK rows for every dst on both layers (directions (T, d_model) and (d_model,)) */
    for (int d = 0; d < 18; d++) {
        row r = {0};
        r.fn = F_DST_NAME; r.e0 = d; r.str = DST_NAMES[d];
        row *a = add(r);
        snprintf(a->namebuf, sizeof a->namebuf, "%d -> \"%s\" and back", d, DST_NAMES[d]);
        a->what = a->namebuf;
        r = (row){0};
        r.fn = F_DST_FROM_NAME; r.str = DST_NAMES[d]; r.e1 = d;
        a = add(r);
        snprintf(a->namebuf, sizeof a->namebuf, "\"%s\"", DST_NAMES[d]);
        a->what = a->namebuf;
        for (int L = 0; L < NL; L++)
            for (int sh = 0; sh < (dst_is_projection(d) ? 2 : 1); sh++) {
                r = (row){0};
                r.fn = F_DERIVE_DST; r.xtype = d; r.xlayer = L;
                r.dir = dst_is_projection(d) ? (sh ? D_SHARED : D_FULL) : D_NONE;
                if (sh) { r.dirdtype = NW_DTYPE_BF16; r.dirlayout = NWT_NEG0; }
                else if (L) { r.dirdtype = NW_DTYPE_F64; r.dirlayout = NWT_TRANSPOSED; }
                a = add(r);
                snprintf(a->namebuf, sizeof a->namebuf, "%s, layer %d%s", DST_NAMES[d], L,
                         r.dir == D_SHARED ? ", (d_model,) bf16 direction" : r.dir == D_FULL ? ", (T, d_model) direction" : "");
                a->what = a->namebuf;
            }
    }

    /* node sets: each set function, the common faults */
    const int sfns[] = {F_NODE_WRITES, F_TOKEN_WRITES, F_TOP_K};
    struct sf { const char *what; int32_t t, l; size_t n, k; unsigned nulls; int cap_mode; int64_t cap; unsigned fx, xfx;
                int tg, tl; nw_status e, alt; } S[] = {
        {"mlp, 5 nodes", 0, 1, 5, 2, 0, CAP_REL, 0, 0, 0, 0, 0, OK, 0},
        {"attention, 8 nodes", 1, 0, 8, 3, 0, CAP_REL, 0, 0, 0, 0, 0, OK, 0},
        {"attention, T_k 4, 6 nodes", 1, 1, 6, 3, 0, CAP_REL, 0, FX_TK4, 0, 0, 0, OK, 0},
        {"ae latents (mlp input), 4 nodes", 2, 0, 4, 2, 0, CAP_REL, 0, 0, 0, 0, 0, OK, 0},
        {"ae latents (residual input), 4 nodes", 2, 1, 4, 2, 0, CAP_REL, 0, 0, 0, 0, 0, OK, 0},
        {"mlp-ae latents, 3 nodes", 3, 1, 3, 2, 0, CAP_REL, 0, 0, 0, 0, 0, OK, 0},
        {"attn-ae latents, 7 nodes", 4, 0, 7, 2, 0, CAP_REL, 0, 0, 0, 0, 0, OK, 0},
        {"1 node, capacity SIZE_MAX", 0, 0, 1, 2, 0, CAP_MAX, 0, 0, 0, 0, 0, OK, 0},
        {"empty set, indices/out/token_rows NULL", 0, 0, 0, 2, NU_NODE | NU_OUT | NU_TOKEN, CAP_ABS, 0, 0, 0, 0, 0, OK, 0},
        {"empty set, capacity 0", 1, 1, 0, 3, 0, CAP_ABS, 0, 0, 0, 0, 0, OK, 0},
        {"empty set, n_indices wrong", 0, 0, 0, 3, 0, CAP_ABS, 0, 0, 0, 0, 0, EARG, 0},
        {"empty set, layer n_layers", 0, NL, 0, 2, 0, CAP_ABS, 0, 0, 0, 0, 0, EIDX, 0},
        {"empty set, node type 5", 5, 0, 0, 2, 0, CAP_ABS, 0, 0, 0, 0, 0, EARG, 0},
        {"token_rows NULL (allowed)", 0, 1, 3, 2, NU_TOKEN, CAP_REL, 0, 0, 0, 0, 0, OK, 0},
        {"capacity one short", 0, 1, 3, 2, 0, CAP_REL, -1, 0, 0, 0, 0, EBUF, 0},
        {"capacity 0", 1, 0, 2, 3, 0, CAP_ABS, 0, 0, 0, 0, 0, EBUF, 0},
        {"NULL model", 0, 1, 3, 2, NU_MODEL, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"NULL store", 0, 1, 3, 2, NU_STORE, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"NULL indices, n_nodes 3", 0, 1, 3, 2, NU_NODE, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"NULL out, n_nodes 3", 0, 1, 3, 2, NU_OUT, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"mlp, n_indices 3", 0, 1, 3, 3, 0, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"mlp, n_indices 1", 0, 1, 3, 1, 0, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"mlp, n_indices 0", 0, 1, 3, 0, 0, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"attention, n_indices 2", 1, 1, 3, 2, 0, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"attention, n_indices 4", 1, 1, 3, 4, 0, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"latent, n_indices SIZE_MAX", 2, 1, 3, SIZE_MAX, 0, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"n_nodes SIZE_MAX", 0, 1, SIZE_MAX, 2, 0, CAP_MAX, 0, 0, 0, 0, 0, EARG, 0},
        {"n_nodes 2^63", 0, 1, (size_t)1 << 63, 2, 0, CAP_MAX, 0, 0, 0, 0, 0, EARG, 0},
        {"n_nodes 2^62 (x k, x d_model overflow)", 0, 1, (size_t)1 << 62, 2, 0, CAP_MAX, 0, 0, 0, 0, 0, EARG, 0},
        {"n_nodes 2^61 (x k x 8 overflows)", 1, 1, (size_t)1 << 61, 3, 0, CAP_MAX, 0, 0, 0, 0, 0, EARG, 0},
        {"n_nodes 2^60 + 1, k 3", 1, 1, ((size_t)1 << 60) + 1, 3, 0, CAP_MAX, 0, 0, 0, 0, 0, EARG, 0},
        {"n_nodes SIZE_MAX / d_model + 1", 0, 1, SIZE_MAX / DM + 1, 2, 0, CAP_MAX, 0, 0, 0, 0, 0, EARG, 0},
        {"n_nodes SIZE_MAX, capacity 0", 0, 1, SIZE_MAX, 2, 0, CAP_ABS, 0, 0, 0, 0, 0, EARG, EBUF},
        {"node type 5", 5, 0, 3, 2, 0, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"node type -1", -1, 0, 3, 2, 0, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"node type INT32_MIN", I32MIN, 0, 3, 2, 0, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"node type INT32_MAX", I32MAX, 0, 3, 3, 0, CAP_REL, 0, 0, 0, 0, 0, EARG, 0},
        {"layer -1", 0, -1, 3, 2, 0, CAP_REL, 0, 0, 0, 0, 0, EIDX, 0},
        {"layer n_layers", 1, NL, 3, 3, 0, CAP_REL, 0, 0, 0, 0, 0, EIDX, 0},
        {"layer INT32_MIN", 2, I32MIN, 3, 2, 0, CAP_REL, 0, 0, 0, 0, 0, EIDX, 0},
        {"layer INT32_MAX", 4, I32MAX, 3, 2, 0, CAP_REL, 0, 0, 0, 0, 0, EIDX, 0},
        {"missing mlp weight", 0, 1, 3, 2, 0, CAP_REL, 0, FX_ABSENT, 0, TG_WMLP, 1, EMIS, 0},
        {"missing attn.v", 1, 0, 3, 3, 0, CAP_REL, 0, FX_ABSENT, 0, TG_V, 0, EMIS, 0},
        {"missing decoder", 3, 0, 3, 2, 0, CAP_REL, 0, FX_ABSENT, 0, TG_DEC1, 0, EMIS, 0},
        {"missing latents", 4, 1, 3, 2, 0, CAP_REL, 0, FX_ABSENT, 0, TG_LAT2, 1, EMIS, 0},
        {"qk_probs n_heads + 1", 1, 1, 3, 3, 0, CAP_REL, 0, 0, 0, TG_QK, 1, ESHP, 0},
    };
    for (size_t f = 0; f < 3; f++)
        for (size_t i = 0; i < sizeof S / sizeof *S; i++) {
            row r = {0};
            r.fn = sfns[f];
            r.xtype = S[i].t; r.xlayer = S[i].l; r.xn = S[i].n; r.xk = S[i].k;
            r.nulls = S[i].nulls; r.cap_mode = S[i].cap_mode; r.cap = S[i].cap;
            r.fx = S[i].fx; r.xfx = S[i].xfx; r.tg = S[i].tg; r.tl = S[i].tl;
            r.expect = S[i].e; r.alt = S[i].alt;
            r.topk = 3; r.largest = 1;
            if (strncmp(S[i].what, "qk_probs", 8) == 0) { r.vm = VM_SHAPE; r.vi = 2; r.vv = NH + 1; }
            if (sfns[f] == F_TOP_K && (r.nulls & NU_OUT)) r.nulls |= 0; /* values NULL */
            if (sfns[f] == F_TOP_K && (r.nulls & NU_TOKEN) && r.xn > 0) continue; /* token_ids are not optional */
            if (sfns[f] == F_TOKEN_WRITES && (r.nulls & NU_TOKEN) && r.xn > 0) continue; /* no token_rows */
            row *a = add(r);
            snprintf(a->namebuf, sizeof a->namebuf, "%s", S[i].what);
            a->what = a->namebuf;
        }
    /* token-space specifics */
    struct tk { const char *what; int fn; int64_t topk; int32_t largest; unsigned nulls, xfx; int cap_mode; int64_t cap;
                nw_status e; } K[] = {
        {"no unembedding", F_TOKEN_WRITES, 0, 0, 0, XF_NO_UNEMB, CAP_REL, 0, EMIS},
        {"no final gain", F_TOKEN_WRITES, 0, 0, 0, XF_NO_GAIN, CAP_REL, 0, EMIS},
        {"no unembedding", F_TOP_K, 3, 1, 0, XF_NO_UNEMB, CAP_REL, 0, EMIS},
        {"no final gain", F_TOP_K, 3, 1, 0, XF_NO_GAIN, CAP_REL, 0, EMIS},
        {"top_k 0", F_TOP_K, 0, 1, 0, 0, CAP_REL, 0, EARG},
        {"top_k -1", F_TOP_K, -1, 1, 0, 0, CAP_REL, 0, EARG},
        {"top_k 1", F_TOP_K, 1, 1, 0, 0, CAP_REL, 0, OK},
        {"top_k 1, smallest", F_TOP_K, 1, 0, 0, 0, CAP_REL, 0, OK},
        {"top_k n_vocab", F_TOP_K, NV, 1, 0, 0, CAP_REL, 0, OK},
        {"top_k n_vocab, smallest", F_TOP_K, NV, 0, 0, 0, CAP_REL, 0, OK},
        {"top_k n_vocab + 1", F_TOP_K, NV + 1, 1, 0, 0, CAP_REL, 0, EARG},
        {"top_k INT64_MAX", F_TOP_K, I64MAX, 1, 0, 0, CAP_MAX, 0, EARG},
        {"top_k INT64_MIN", F_TOP_K, I64MIN, 0, 0, 0, CAP_REL, 0, EARG},
        {"largest = -1 (nonzero: largest)", F_TOP_K, 4, -1, 0, 0, CAP_REL, 0, OK},
        {"largest = INT32_MIN (nonzero: largest)", F_TOP_K, 2, I32MIN, 0, 0, CAP_REL, 0, OK},
        {"top_k 5, capacity n*top_k - 1", F_TOP_K, 5, 1, 0, 0, CAP_REL, -1, EBUF},
        {"top_k 5, capacity exact", F_TOP_K, 5, 0, 0, 0, CAP_REL, 0, OK},
        {"values NULL", F_TOP_K, 3, 1, NU_OUT, 0, CAP_REL, 0, EARG},
        {"token_ids NULL", F_TOP_K, 3, 1, NU_TOKEN, 0, CAP_REL, 0, EARG},
        {"top_k 0 on an empty set", F_TOP_K, 0, 1, 0, 0, CAP_ABS, 0, EARG},
    };
    for (size_t i = 0; i < sizeof K / sizeof *K; i++) {
        row r = {0};
        r.fn = K[i].fn;
        r.xtype = NW_NODE_ATTENTION_HEAD; r.xlayer = 1; r.xn = 4; r.xk = 3;
        if (strstr(K[i].what, "empty")) r.xn = 0;
        r.topk = K[i].topk; r.largest = K[i].largest; r.nulls = K[i].nulls; r.xfx = K[i].xfx;
        r.cap_mode = K[i].cap_mode; r.cap = K[i].cap; r.expect = K[i].e;
        row *a = add(r);
        snprintf(a->namebuf, sizeof a->namebuf, "%s", K[i].what);
        a->what = a->namebuf;
    }
    /* indices out of range anywhere in the set: each index of each node type, its boundary
     * values, at the first, a middle and the last of 5 nodes (node_writes); the middle one
     * for token writes and top-k */
    struct pos { int32_t type; int layer; int slot; int64_t n; unsigned fx; const char *what; } P[] = {
        {0, 1, 0, TT, 0, "mlp token"},
        {0, 1, 1, DFF, 0, "mlp neuron"},
        {1, 1, 0, TT, 0, "attention query"},
        {1, 1, 1, TT, 0, "attention key"},
        {1, 0, 1, 4, FX_TK4, "attention key (T_k 4)"},
        {1, 1, 2, NH, 0, "attention head"},
        {2, 0, 0, TT, 0, "ae token"},
        {2, 1, 1, 5, 0, "ae latent (5)"},
        {3, 1, 1, 6, 0, "mlp-ae latent (6)"},
        {4, 0, 0, TT, 0, "attn-ae token"},
        {4, 1, 1, 7, 0, "attn-ae latent (7)"},
    };
    static const char *const WHERE[3] = {"first", "middle", "last"};
    for (size_t p = 0; p < sizeof P / sizeof *P; p++)
        for (int b = 0; b < 8; b++)
            for (size_t f = 0; f < 3; f++)
                for (int w = 0; w < 3; w++) {
                    if (sfns[f] != F_NODE_WRITES && w != 1) continue;
                    int64_t v = bval(b, P[p].n);
                    int in_range = v >= -P[p].n && v < P[p].n;
                    if (in_range && w != 1) continue;
                    row r = {0};
                    r.fn = sfns[f];
                    r.xtype = P[p].type; r.xlayer = P[p].layer; r.xn = 5; r.xk = P[p].type == 1 ? 3 : 2;
                    r.fx = P[p].fx; r.topk = 2; r.largest = 1;
                    fixture fx0;
                    memset(&fx0, 0, sizeof fx0);
                    fx0.T = TT; fx0.Tk = (P[p].fx & FX_TK4) ? 4 : TT;
                    memcpy(fx0.nlat, NLAT0, sizeof fx0.nlat);
                    x_indices(&r, &fx0, r.ix, 24);
                    size_t at = w == 0 ? 0 : (w == 1 ? 2 : 4);
                    r.ix[at * r.xk + (size_t)P[p].slot] = v;
                    r.xix = 1;
                    r.expect = in_range ? OK : EIDX;
                    row *a = add(r);
                    snprintf(a->namebuf, sizeof a->namebuf, "%s = %s (%" PRId64 ") at the %s of 5 nodes", P[p].what,
                             BNAME[b], v, WHERE[w]);
                    a->what = a->namebuf;
                }
    /* -T-1 and T of the tokens at every node of a set */
}

/* ------------------------------------------ rows of the facts, slots and counter */

static void add_named(row r, const char *fmt, ...) {
    row *a = add(r);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->namebuf, sizeof a->namebuf, fmt, ap);
    va_end(ap);
    a->what = a->namebuf;
}

static void gen_facts_rows(void) {
    /* every table: each row; -1, one past, INT32_MIN/MAX; each size mode on row 0 and on the last */
    for (int tb = 0; tb < TB_COUNT; tb++) {
        int32_t n = TB_ROWS[tb];
        for (int32_t i = 0; i < n; i++) add_named((row){.fn = F_INFO, .e0 = tb, .e1 = i}, "%s %d", TB_NAME[tb], i);
        const int32_t outside[] = {-1, n, n + 1, I32MIN, I32MAX};
        for (size_t k = 0; k < sizeof outside / sizeof *outside; k++)
            add_named((row){.fn = F_INFO, .e0 = tb, .e1 = outside[k], .expect = EIDX}, "%s %d (not in the table)",
                      TB_NAME[tb], outside[k]);
        for (int mode = SZ_NULL; mode < SZ_MODES; mode++)
            for (int last = 0; last < 2; last++) {
                nw_status e = mode == SZ_BIG || mode == SZ_HUGE ? OK : EARG;
                add_named((row){.fn = F_INFO, .e0 = tb, .e1 = last ? n - 1 : 0, .e2 = mode, .expect = e}, "%s %d, %s",
                          TB_NAME[tb], last ? n - 1 : 0, SZ_NAME[mode]);
            }
        /* a bad size and a bad index together: either refusal, nothing written */
        add_named((row){.fn = F_INFO, .e0 = tb, .e1 = -1, .e2 = SZ_ZERO, .expect = EARG, .alt = EIDX},
                  "%s -1 with size 0", TB_NAME[tb]);
    }

    /* nw_saelens_hook_find */
    static const struct { const char *name; int32_t row, layer; nw_status e; } H[] = {
        {"blocks.0.hook_mlp_out", 0, 0, OK}, {"blocks.5.mlp.hook_post", 1, 5, OK}, {"blocks.1.hook_attn_out", 2, 1, OK},
        {"blocks.2.attn.hook_z", 3, 2, OK}, {"blocks.0.hook_resid_pre", 4, 0, OK}, {"blocks.1.hook_resid_pre", 5, 1, OK},
        {"blocks.11.hook_resid_pre", 5, 11, OK}, {"blocks.0.hook_resid_mid", 6, 0, OK},
        {"blocks.3.hook_resid_post", 7, 3, OK}, {"blocks.2147483647.hook_resid_post", 7, I32MAX, OK},
        {"blocks.2147483648.hook_resid_post", 0, 0, EARG}, {"blocks.999999999999999999999.hook_mlp_out", 0, 0, EARG},
        {"", 0, 0, EARG}, {"blocks", 0, 0, EARG}, {"blocks.", 0, 0, EARG}, {"blocks.1", 0, 0, EARG},
        {"blocks.1.", 0, 0, EARG}, {"blocks..hook_mlp_out", 0, 0, EARG}, {"blocks.01.hook_mlp_out", 0, 0, EARG},
        {"blocks.-1.hook_mlp_out", 0, 0, EARG}, {"blocks.+1.hook_mlp_out", 0, 0, EARG}, {"Blocks.1.hook_mlp_out", 0, 0, EARG},
        {"hook_mlp_out", 0, 0, EARG}, {"blocks.1.hook_mlp_out ", 0, 0, EUNS}, {"blocks.1.attn.hook_q", 0, 0, EUNS},
        {"blocks.1.hook_resid", 0, 0, EUNS}, {"blocks.1.mlp.hook_pre", 0, 0, EUNS}, {"blocks.1.hook_mlp_out.x", 0, 0, EUNS},
        {"blocks.1.HOOK_MLP_OUT", 0, 0, EUNS}, {"blocks.1.\xff", 0, 0, EUNS},
    };
    for (size_t i = 0; i < sizeof H / sizeof *H; i++)
        add_named((row){.fn = F_HOOK_FIND, .str = H[i].name, .e0 = H[i].row, .e1 = H[i].layer, .expect = H[i].e},
                  "\"%s\"", H[i].name);
    add_named((row){.fn = F_HOOK_FIND, .str = "blocks.0.hook_mlp_out", .nulls = NU_NAME, .expect = EARG}, "hook_name NULL");
    add_named((row){.fn = F_HOOK_FIND, .str = "blocks.0.hook_mlp_out", .nulls = NU_OUT, .expect = EARG}, "row NULL");
    add_named((row){.fn = F_HOOK_FIND, .str = "blocks.0.hook_mlp_out", .nulls = NU_TOKEN, .expect = EARG}, "layer NULL");

    /* slot states: every weight and autoencoder slot (copied and borrowed fixtures), empty
       slots, the layer-less weights, bad arguments and each size mode */
    for (int b = 0; b < 2; b++) {
        unsigned fxf = b ? FX_BORROW : 0;
        int32_t fd = b ? NW_DTYPE_F16 : NW_DTYPE_F32;
        for (int32_t w = 0; w < 2; w++)
            for (int32_t L = 0; L < NL; L++)
                add_named((row){.fn = F_SLOT, .e0 = 0, .e1 = w, .e2 = L, .fx = fxf, .fdtype = fd, .dir = D_FULL},
                          "weight %d layer %d%s", w, L, b ? " (borrowed f16)" : "");
        for (int32_t t = NW_NODE_AUTOENCODER_LATENT; t <= NW_NODE_ATTENTION_AUTOENCODER_LATENT; t++)
            for (int32_t L = 0; L < NL; L++)
                add_named((row){.fn = F_SLOT, .e0 = 1, .e1 = t, .e2 = L, .fx = fxf, .fdtype = fd, .dir = D_FULL},
                          "autoencoder of node type %d layer %d%s", t, L, b ? " (borrowed f16)" : "");
    }
    add_named((row){.fn = F_SLOT, .e0 = 0, .e1 = NW_WEIGHT_UNEMBEDDING, .e2 = NW_NO_LAYER, .dir = D_FULL}, "unembedding (copied)");
    add_named((row){.fn = F_SLOT, .e0 = 0, .e1 = NW_WEIGHT_LAYER_NORM_GAIN_FINAL, .e2 = NW_NO_LAYER, .dir = D_FULL},
              "layer_norm_gain.final (borrowed)");
    add_named((row){.fn = F_SLOT, .e0 = 0, .e1 = NW_WEIGHT_UNEMBEDDING, .e2 = NW_NO_LAYER, .xfx = XF_NO_UNEMB, .dir = D_FULL},
              "unembedding not set: present 0");
    add_named((row){.fn = F_SLOT, .e0 = 0, .e1 = NW_WEIGHT_LAYER_NORM_GAIN_FINAL, .e2 = NW_NO_LAYER, .xfx = XF_NO_GAIN, .dir = D_FULL},
              "layer_norm_gain.final not set: present 0");
    add_named((row){.fn = F_SLOT, .e0 = 0, .e1 = 0, .e2 = 1, .fx = FX_ABSENT, .tg = TG_WMLP, .tl = 1, .dir = D_FULL},
              "mlp.to_residual not set at layer 1: present 0");
    add_named((row){.fn = F_SLOT, .e0 = 1, .e1 = 3, .e2 = 0, .fx = FX_ABSENT, .tg = TG_DEC1, .tl = 0, .dir = D_FULL},
              "no mlp autoencoder at layer 0: present 0");
    add_named((row){.fn = F_SLOT, .e0 = 1, .e1 = 4, .e2 = 1, .fx = FX_EMPTY_MODEL, .dir = D_FULL}, "empty model: present 0");
    static const struct { const char *what; int32_t e0, e1, e2; unsigned nulls; nw_status e; } B[] = {
        {"model NULL", 0, 0, 0, NU_MODEL, EARG}, {"model NULL (autoencoder)", 1, 2, 0, NU_MODEL, EARG},
        {"weight -1", 0, -1, 0, 0, EARG}, {"weight 18 (one past)", 0, 18, 0, 0, EARG}, {"weight INT32_MIN", 0, I32MIN, 0, 0, EARG},
        {"mlp.to_residual layer -1", 0, 0, -1, 0, EIDX}, {"mlp.to_residual layer n_layers", 0, 0, NL, 0, EIDX},
        {"attn.to_residual layer INT32_MAX", 0, 1, I32MAX, 0, EIDX}, {"attn.to_residual layer INT32_MIN", 0, 1, I32MIN, 0, EIDX},
        {"unembedding layer 0", 0, 2, 0, 0, EIDX}, {"layer_norm_gain.final layer 1", 0, 3, 1, 0, EIDX},
        {"unembedding layer -2", 0, 2, -2, 0, EIDX},
        {"node type 0 (not latent)", 1, 0, 0, 0, EARG}, {"node type 1 (not latent)", 1, 1, 0, 0, EARG},
        {"node type 5 (one past)", 1, 5, 0, 0, EARG}, {"node type -1", 1, -1, 0, 0, EARG},
        {"autoencoder layer -1", 1, 2, -1, 0, EIDX}, {"autoencoder layer n_layers", 1, 3, NL, 0, EIDX},
        {"autoencoder layer INT32_MIN", 1, 4, I32MIN, 0, EIDX},
    };
    for (size_t i = 0; i < sizeof B / sizeof *B; i++)
        add_named((row){.fn = F_SLOT, .e0 = B[i].e0, .e1 = B[i].e1, .e2 = B[i].e2, .nulls = B[i].nulls, .expect = B[i].e,
                        .dir = D_FULL}, "%s", B[i].what);
    for (int kind = 0; kind < 2; kind++)
        for (int mode = SZ_NULL; mode < SZ_MODES; mode++)
            add_named((row){.fn = F_SLOT, .e0 = kind, .e1 = kind ? 3 : 1, .e2 = 1, .e3 = mode, .dir = D_FULL,
                            .expect = mode == SZ_BIG || mode == SZ_HUGE ? OK : EARG},
                      "%s, %s", kind ? "autoencoder" : "weight", SZ_NAME[mode]);

    /* reading slots back: every slot of both fixtures, each out_len, and the errors (NULL
       arguments, bad enums and layers, empty slots, short buffers), none writing out */
    for (int b = 0; b < 2; b++) {
        unsigned fxf = b ? FX_BORROW : 0;
        int32_t fd = b ? NW_DTYPE_F16 : NW_DTYPE_F32;
        for (int32_t w = 0; w < 2; w++)
            for (int32_t L = 0; L < NL; L++)
                add_named((row){.fn = F_READ, .e0 = 0, .e1 = w, .e2 = L, .fx = fxf, .fdtype = fd, .dir = D_FULL},
                          "read weight %d layer %d%s", w, L, b ? " (borrowed f16)" : "");
        for (int32_t t = NW_NODE_AUTOENCODER_LATENT; t <= NW_NODE_ATTENTION_AUTOENCODER_LATENT; t++)
            add_named((row){.fn = F_READ, .e0 = 1, .e1 = t, .e2 = 1, .fx = fxf, .fdtype = fd, .dir = D_FULL},
                      "read autoencoder of node type %d layer 1%s", t, b ? " (borrowed f16)" : "");
    }
    add_named((row){.fn = F_READ, .e0 = 0, .e1 = NW_WEIGHT_UNEMBEDDING, .e2 = NW_NO_LAYER, .e3 = 3, .dir = D_FULL},
              "read unembedding, out_len above its size");
    add_named((row){.fn = F_READ, .e0 = 0, .e1 = NW_WEIGHT_LAYER_NORM_GAIN_FINAL, .e2 = NW_NO_LAYER, .dir = D_FULL},
              "read layer_norm_gain.final");
    static const struct { const char *what; int32_t e0, e1, e2, e3; unsigned nulls, fx, xfx; int tg, tl; nw_status e; } RD[] = {
        {"read: model NULL", 0, 0, 0, 0, NU_MODEL, 0, 0, 0, 0, EARG},
        {"read: model NULL (autoencoder)", 1, 3, 1, 0, NU_MODEL, 0, 0, 0, 0, EARG},
        {"read: out NULL", 0, 0, 0, 0, NU_OUT, 0, 0, 0, 0, EARG},
        {"read: out NULL (autoencoder)", 1, 3, 1, 0, NU_OUT, 0, 0, 0, 0, EARG},
        {"read: weight -1", 0, -1, 0, 0, 0, 0, 0, 0, 0, EARG},
        {"read: weight 18 (one past)", 0, 18, 0, 0, 0, 0, 0, 0, 0, EARG},
        {"read: weight INT32_MIN", 0, I32MIN, 0, 0, 0, 0, 0, 0, 0, EARG},
        {"read: node type 0 (not latent)", 1, 0, 1, 0, 0, 0, 0, 0, 0, EARG},
        {"read: node type 5 (one past)", 1, 5, 1, 0, 0, 0, 0, 0, 0, EARG},
        {"read: node type INT32_MAX", 1, I32MAX, 1, 0, 0, 0, 0, 0, 0, EARG},
        {"read: mlp.to_residual layer -1", 0, 0, -1, 0, 0, 0, 0, 0, 0, EIDX},
        {"read: mlp.to_residual layer n_layers", 0, 0, NL, 0, 0, 0, 0, 0, 0, EIDX},
        {"read: unembedding layer 0", 0, NW_WEIGHT_UNEMBEDDING, 0, 0, 0, 0, 0, 0, 0, EIDX},
        {"read: autoencoder layer n_layers", 1, 3, NL, 0, 0, 0, 0, 0, 0, EIDX},
        {"read: autoencoder layer INT32_MIN", 1, 3, I32MIN, 0, 0, 0, 0, 0, 0, EIDX},
        {"read: mlp.to_residual one short", 0, 0, 0, 1, 0, 0, 0, 0, 0, EBUF},
        {"read: attn.to_residual out_len 0", 0, 1, 1, 2, 0, 0, 0, 0, 0, EBUF},
        {"read: unembedding one short", 0, NW_WEIGHT_UNEMBEDDING, NW_NO_LAYER, 1, 0, 0, 0, 0, 0, EBUF},
        {"read: autoencoder one short", 1, 3, 1, 1, 0, 0, 0, 0, 0, EBUF},
        {"read: autoencoder out_len 0", 1, 4, 1, 2, 0, 0, 0, 0, 0, EBUF},
        {"read: borrowed f16 weight one short", 0, 0, 1, 1, 0, FX_BORROW, 0, 0, 0, EBUF},
        {"read: mlp.to_residual not set", 0, 0, 1, 0, 0, FX_ABSENT, 0, TG_WMLP, 1, EMIS},
        {"read: unembedding not set", 0, NW_WEIGHT_UNEMBEDDING, NW_NO_LAYER, 0, 0, 0, XF_NO_UNEMB, 0, 0, EMIS},
        {"read: no mlp autoencoder at layer 0", 1, 3, 0, 0, 0, FX_ABSENT, 0, TG_DEC1, 0, EMIS},
        {"read: empty model (autoencoder)", 1, 4, 1, 0, 0, FX_EMPTY_MODEL, 0, 0, 0, EMIS},
        {"read: empty model (weight)", 0, 1, 0, 0, 0, FX_EMPTY_MODEL, 0, 0, 0, EMIS},
    };
    for (size_t i = 0; i < sizeof RD / sizeof *RD; i++)
        add_named((row){.fn = F_READ, .e0 = RD[i].e0, .e1 = RD[i].e1, .e2 = RD[i].e2, .e3 = RD[i].e3, .nulls = RD[i].nulls,
                        .fx = RD[i].fx, .xfx = RD[i].xfx, .tg = RD[i].tg, .tl = RD[i].tl,
                        .fdtype = RD[i].fx & FX_BORROW ? NW_DTYPE_F16 : 0, .expect = RD[i].e, .dir = D_FULL}, "%s", RD[i].what);

    /* the call counter: each export once */
    for (int i = 0; i < CC_N; i++)
        add_named((row){.fn = F_CALL_COUNT, .e0 = i, .dir = D_FULL}, "%s counts %d", CC_NAMES[i], i ? 1 : 0);
}

/* ------------------------------------------------------------------ main */


/* ---- causality and autoencoder slots ----
 * Causal (the default): attn.qk_probs with any entry above the diagonal (k > q) that is not +-0 is
 * refused by every attention entry point; a key after the query writes exactly 0 and is never read.
 * Not causal (FX_NONCAUSAL): every key is read, and the write family includes k > q (the reference
 * sums the node writes over every key); the flattened layouts, which hold k <= q only, are refused.
 * QK_UP(q, k, h): the flat index of (q, k, h) in the fixture's (3, 3, 2) attn.qk_probs. */
#define QK_UP(q, k, h) (((q) * TT + (k)) * NH + (h))
#define V_AT(k, h, c) (((k) * NH + (h)) * DH + (c))
#define MASS(at, x) .tg = TG_QK, .tl = 1, .inj_set = 1, .inj_at = (at), .inj = (x)
static const row CAUSAL_ROWS[] = {
    {.what = "causal: get (a new model is causal)", .fn = F_CAUSAL, .e1 = 1},
    {.what = "causal: set 0", .fn = F_CAUSAL, .e0 = 0},
    {.what = "causal: set 1", .fn = F_CAUSAL, .e0 = 1},
    {.what = "causal: not causal, then get", .fn = F_CAUSAL, .fx = FX_NONCAUSAL, .e1 = 1},
    {.what = "causal: set 1 on a model whose pattern has mass above (the write is then refused)", .fn = F_CAUSAL,
     .fx = FX_NONCAUSAL, .e0 = 1},
    {.what = "causal: set 2", .fn = F_CAUSAL, .e0 = 2, .expect = EARG},
    {.what = "causal: set -1", .fn = F_CAUSAL, .e0 = -1, .expect = EARG},
    {.what = "causal: set INT32_MIN", .fn = F_CAUSAL, .e0 = I32MIN, .expect = EARG},
    {.what = "causal: set INT32_MAX", .fn = F_CAUSAL, .e0 = I32MAX, .expect = EARG},
    {.what = "causal: set, NULL model", .fn = F_CAUSAL, .e0 = 0, .nulls = NU_MODEL, .expect = EARG},
    {.what = "causal: get, NULL model", .fn = F_CAUSAL, .e1 = 1, .nulls = NU_MODEL, .expect = EARG},
    {.what = "causal: get, NULL out", .fn = F_CAUSAL, .e1 = 1, .nulls = NU_OUT, .expect = EARG},
    {.what = "act_fn: get (a new model's is tanh GELU)", .fn = F_ACT_FN, .e1 = 1},
    {.what = "act_fn: set gelu_tanh", .fn = F_ACT_FN, .e0 = NW_ACT_FN_GELU_TANH},
    {.what = "act_fn: set gelu_erf", .fn = F_ACT_FN, .e0 = NW_ACT_FN_GELU_ERF},
    {.what = "act_fn: set relu", .fn = F_ACT_FN, .e0 = NW_ACT_FN_RELU},
    {.what = "act_fn: set 3", .fn = F_ACT_FN, .e0 = 3, .expect = EARG},
    {.what = "act_fn: set -1", .fn = F_ACT_FN, .e0 = -1, .expect = EARG},
    {.what = "act_fn: set INT32_MIN", .fn = F_ACT_FN, .e0 = I32MIN, .expect = EARG},
    {.what = "act_fn: set INT32_MAX", .fn = F_ACT_FN, .e0 = I32MAX, .expect = EARG},
    {.what = "act_fn: set, NULL model", .fn = F_ACT_FN, .e0 = 1, .nulls = NU_MODEL, .expect = EARG},
    {.what = "act_fn: get, NULL model", .fn = F_ACT_FN, .e1 = 1, .nulls = NU_MODEL, .expect = EARG},
    {.what = "act_fn: get, NULL out", .fn = F_ACT_FN, .e1 = 1, .nulls = NU_OUT, .expect = EARG},
    {.what = "ln_eps: get (a new model's is 1e-5)", .fn = F_LN_EPS, .e1 = 1},
    {.what = "ln_eps: set 1e-5", .fn = F_LN_EPS, .e0 = 0},
    {.what = "ln_eps: set 1e-12", .fn = F_LN_EPS, .e0 = 1},
    {.what = "ln_eps: set 0.5", .fn = F_LN_EPS, .e0 = 2},
    {.what = "ln_eps: set 0", .fn = F_LN_EPS, .e0 = 3, .expect = EARG},
    {.what = "ln_eps: set -1e-5", .fn = F_LN_EPS, .e0 = 4, .expect = EARG},
    {.what = "ln_eps: set 1e-50 (0 in float32)", .fn = F_LN_EPS, .e0 = 5, .expect = EARG},
    {.what = "ln_eps: set 1e300 (inf in float32)", .fn = F_LN_EPS, .e0 = 6, .expect = EARG},
    {.what = "ln_eps: set NaN", .fn = F_LN_EPS, .e0 = LN_EPS_NAN, .expect = EARG},
    {.what = "ln_eps: set inf", .fn = F_LN_EPS, .e0 = LN_EPS_INF, .expect = EARG},
    {.what = "ln_eps: set, NULL model", .fn = F_LN_EPS, .e0 = 0, .nulls = NU_MODEL, .expect = EARG},
    {.what = "ln_eps: get, NULL model", .fn = F_LN_EPS, .e1 = 1, .nulls = NU_MODEL, .expect = EARG},
    {.what = "ln_eps: get, NULL out", .fn = F_LN_EPS, .e1 = 1, .nulls = NU_OUT, .expect = EARG},

    {.what = "remove ae (autoencoder_latent, 0)", .fn = F_REMOVE_AE, .e0 = 2, .e1 = 0},
    {.what = "remove ae (mlp_autoencoder_latent, 1)", .fn = F_REMOVE_AE, .e0 = 3, .e1 = 1},
    {.what = "remove ae (attention_autoencoder_latent, 1)", .fn = F_REMOVE_AE, .e0 = 4, .e1 = 1},
    {.what = "remove ae: empty slot (not an error)", .fn = F_REMOVE_AE, .fx = FX_ABSENT, .tg = TG_DEC1, .tl = 0, .e0 = 3, .e1 = 0},
    {.what = "remove ae: empty model", .fn = F_REMOVE_AE, .fx = FX_EMPTY_MODEL, .e0 = 4, .e1 = 0},
    {.what = "remove ae: NULL model", .fn = F_REMOVE_AE, .e0 = 2, .e1 = 0, .nulls = NU_MODEL, .expect = EARG},
    {.what = "remove ae: node type mlp_neuron", .fn = F_REMOVE_AE, .e0 = 0, .e1 = 0, .expect = EARG},
    {.what = "remove ae: node type attention_head", .fn = F_REMOVE_AE, .e0 = 1, .e1 = 0, .expect = EARG},
    {.what = "remove ae: node type 5 (one past)", .fn = F_REMOVE_AE, .e0 = 5, .e1 = 0, .expect = EARG},
    {.what = "remove ae: node type -1", .fn = F_REMOVE_AE, .e0 = -1, .e1 = 0, .expect = EARG},
    {.what = "remove ae: node type INT32_MIN", .fn = F_REMOVE_AE, .e0 = I32MIN, .e1 = 0, .expect = EARG},
    {.what = "remove ae: node type INT32_MAX", .fn = F_REMOVE_AE, .e0 = I32MAX, .e1 = 0, .expect = EARG},
    {.what = "remove ae: layer -1", .fn = F_REMOVE_AE, .e0 = 2, .e1 = -1, .expect = EIDX},
    {.what = "remove ae: layer n_layers", .fn = F_REMOVE_AE, .e0 = 2, .e1 = NL, .expect = EIDX},
    {.what = "remove ae: layer INT32_MIN", .fn = F_REMOVE_AE, .e0 = 2, .e1 = I32MIN, .expect = EIDX},
    {.what = "remove ae: layer INT32_MAX", .fn = F_REMOVE_AE, .e0 = 2, .e1 = I32MAX, .expect = EIDX},
    {.what = "set ae: occupied slot (refused; it keeps its autoencoder)", .fn = F_SET_AE, .fx = FX_OCCUPIED, .tg = TG_DEC1,
     .tl = 1, .e0 = 3, .e1 = 1, .e3 = 0, .expect = EARG},
    {.what = "set ae: occupied slot, another input kind", .fn = F_SET_AE, .fx = FX_OCCUPIED, .tg = TG_DEC0, .tl = 0,
     .e0 = 2, .e1 = 0, .e3 = 1, .expect = EARG},
    {.what = "set ae: occupied slot, borrowed", .fn = F_SET_AE, .fx = FX_OCCUPIED, .tg = TG_DEC2, .tl = 0, .e0 = 4, .e1 = 0,
     .e2 = NW_BORROW, .e3 = 1, .expect = EARG},
    {.what = "set ae: occupied slot, bad shape too (slot reported)", .fn = F_SET_AE, .fx = FX_OCCUPIED, .tg = TG_DEC1, .tl = 1,
     .e0 = 3, .e1 = 1, .e3 = 0, .vm = VM_SHAPE, .vi = 1, .vv = DFF + 1, .expect = EARG},

    /* causal: probability above the diagonal is refused by each attention entry point */
    {.what = "causal mass above: deriver derive", .fn = F_DERIVE, MASS(QK_UP(0, 1, 0), 0.25), .node = N_ATT(1, 2, 1, 1), .expect = EARG},
    {.what = "causal mass above: deriver derive_vector", .fn = F_DERIVE_VEC, MASS(QK_UP(1, 2, 1), 0.5), .node = N_ATT(1, 0, 0, 0), .expect = EARG},
    {.what = "causal mass above: node_write", .fn = F_NODE_WRITE, MASS(QK_UP(0, 2, 1), 1.0), .node = N_ATT(1, 2, 2, 1), .expect = EARG},
    {.what = "causal mass above: node_write_vectors", .fn = F_NODE_WRITE_VECS, MASS(QK_UP(0, 1, 1), 0.25), .node = N_ATT(1, 1, 0, 0),
     .nn = 3, .k = 1, .expect = EARG},
    {.what = "causal mass above: node_write_sized", .fn = F_SIZED, MASS(QK_UP(0, 1, 0), 0.25), .node = N_ATT(1, 2, 0, 1), .expect = EARG},
    {.what = "causal mass above: node_writes", .fn = F_NODE_WRITES, MASS(QK_UP(1, 2, 0), 0.25), XNODES(1, 1, 2, 3), .xix = 1,
     .ix = {2, 1, 0, 0, 0, 1}, .expect = EARG},
    {.what = "causal mass above: token_writes", .fn = F_TOKEN_WRITES, MASS(QK_UP(1, 2, 0), 0.25), XNODES(1, 1, 2, 3), .xix = 1,
     .ix = {2, 1, 0, 0, 0, 1}, .expect = EARG},
    {.what = "causal mass above: token_writes_top_k", .fn = F_TOP_K, MASS(QK_UP(1, 2, 0), 0.25), XNODES(1, 1, 2, 3), .xix = 1,
     .ix = {2, 1, 0, 0, 0, 1}, .topk = 2, .largest = 1, .expect = EARG},
    {.what = "causal mass above: node_write_to_direction", .fn = F_TO_DIR, MASS(QK_UP(0, 1, 0), 0.25), .node = N_ATT(1, 2, 0, 1),
     NDIR(D_FULL), .expect = EARG},
    {.what = "causal mass above: derive unflattened norm", .fn = F_DERIVE_DST, MASS(QK_UP(0, 1, 0), 0.25), .xtype = 2, .xlayer = 1, .expect = EARG},
    {.what = "causal mass above: derive unflattened projection", .fn = F_DERIVE_DST, MASS(QK_UP(0, 1, 0), 0.25), .xtype = 3, .xlayer = 1,
     NDIR(D_FULL), .expect = EARG},
    {.what = "causal mass above: derive flattened norm", .fn = F_DERIVE_DST, MASS(QK_UP(0, 1, 0), 0.25), .xtype = 4, .xlayer = 1, .expect = EARG},
    {.what = "causal mass above: derive flattened projection", .fn = F_DERIVE_DST, MASS(QK_UP(0, 1, 0), 0.25), .xtype = 5, .xlayer = 1,
     NDIR(D_SHARED), .expect = EARG},
    {.what = "causal mass above: derive per-token norm", .fn = F_DERIVE_DST, MASS(QK_UP(0, 1, 0), 0.25), .xtype = 6, .xlayer = 1, .expect = EARG},
    {.what = "causal mass above: derive per-token projection", .fn = F_DERIVE_DST, MASS(QK_UP(0, 1, 0), 0.25), .xtype = 7, .xlayer = 1,
     NDIR(D_FULL), .expect = EARG},
    {.what = "causal: NaN above the diagonal is mass", .fn = F_NODE_WRITE, MASS(QK_UP(1, 2, 1), NAN), .node = N_ATT(1, 2, 2, 1), .expect = EARG},
    {.what = "causal: +Inf above the diagonal is mass", .fn = F_NODE_WRITE, MASS(QK_UP(1, 2, 1), INFINITY), .node = N_ATT(1, 2, 2, 1), .expect = EARG},
    {.what = "causal: -Inf above the diagonal is mass", .fn = F_NODE_WRITE, MASS(QK_UP(0, 2, 0), -INFINITY), .node = N_ATT(1, 2, 2, 1), .expect = EARG},
    {.what = "causal: smallest subnormal above the diagonal is mass", .fn = F_NODE_WRITE, MASS(QK_UP(0, 2, 0), 0x1p-149),
     .node = N_ATT(1, 2, 2, 1), .expect = EARG},
    {.what = "causal: -0.0 above the diagonal is zero (OK)", .fn = F_NODE_WRITE, MASS(QK_UP(0, 2, 0), -0.0), .node = N_ATT(1, 0, 2, 0)},
    {.what = "causal: -0.0 above the diagonal, derive (OK)", .fn = F_DERIVE_DST, MASS(QK_UP(0, 1, 1), -0.0), .xtype = 3, .xlayer = 1, NDIR(D_FULL)},
    {.what = "causal: mass above in f16", .fn = F_NODE_WRITE, MASS(QK_UP(0, 1, 0), 0.25), .vdtype = NW_DTYPE_F16, .node = N_ATT(1, 2, 0, 1), .expect = EARG},
    {.what = "causal: -0.0 above in f16 (OK)", .fn = F_NODE_WRITE, MASS(QK_UP(0, 1, 0), -0.0), .vdtype = NW_DTYPE_F16, .node = N_ATT(1, 2, 0, 1)},
    {.what = "causal: mass above in bf16 transposed", .fn = F_NODE_WRITE, MASS(QK_UP(1, 2, 0), 0.5), .vdtype = NW_DTYPE_BF16,
     .vlayout = NWT_TRANSPOSED, .node = N_ATT(1, 2, 0, 1), .expect = EARG},
    {.what = "causal: mass above in f64 negative strides", .fn = F_NODE_WRITE, MASS(QK_UP(0, 2, 1), 1e-30), .vdtype = NW_DTYPE_F64,
     .vlayout = NWT_NEGALL, .node = N_ATT(1, 2, 0, 1), .expect = EARG},
    {.what = "causal: -0.0 above in f64 padded (OK)", .fn = F_NODE_WRITE, MASS(QK_UP(0, 2, 1), -0.0), .vdtype = NW_DTYPE_F64,
     .vlayout = NWT_PADDED, .node = N_ATT(1, 2, 0, 1)},
    {.what = "causal: mass above at the other layer only (OK here)", .fn = F_NODE_WRITE, .tg = TG_QK, .tl = 0, .inj_set = 1,
     .inj_at = QK_UP(0, 1, 0), .inj = 0.5, .node = N_ATT(1, 2, 0, 1)},
    {.what = "causal: mass above, mlp node (OK: attn.qk_probs not read)", .fn = F_NODE_WRITE, MASS(QK_UP(0, 1, 0), 0.5), .node = N_MLP(1, 2, 3)},
    {.what = "causal: T_k 4, mass at key 3", .fn = F_NODE_WRITE, .fx = FX_TK4, .tg = TG_QK, .tl = 1, .inj_set = 1,
     .inj_at = (2 * 4 + 3) * NH + 1, .inj = 0.125, .node = N_ATT(1, 0, 0, 0), .expect = EARG},
    {.what = "causal: T_k 4, key 3 after every query (a zero write)", .fn = F_NODE_WRITE, .fx = FX_TK4, .node = N_ATT(1, 2, 3, 1)},

    /* causal: nothing at a key after the query is read (NaN / Inf in attn.v there stay out) */
    {.what = "causal: NaN in v at key 2, node (0, 2, 1) writes 0", .fn = F_NODE_WRITE, .tg = TG_V, .tl = 1, .inj_set = 1,
     .inj_at = V_AT(2, 1, 0), .inj = NAN, .node = N_ATT(1, 0, 2, 1)},
    {.what = "causal: Inf in v at key 2, node (1, 2, 1) writes 0 (set)", .fn = F_NODE_WRITES, .tg = TG_V, .tl = 1, .inj_set = 1,
     .inj_at = V_AT(2, 1, 1), .inj = INFINITY, XNODES(1, 1, 3, 3), .xix = 1, .ix = {1, 2, 1, 0, 2, 1, 2, 0, 0}},
    {.what = "causal: NaN in v at key 2, token writes of (0, 2, 1)", .fn = F_TOKEN_WRITES, .tg = TG_V, .tl = 1, .inj_set = 1,
     .inj_at = V_AT(2, 1, 2), .inj = NAN, XNODES(1, 1, 2, 3), .xix = 1, .ix = {0, 2, 1, 1, 1, 1}},
    {.what = "causal: NaN in v at key 2, derive per-token norm (queries 0, 1 finite)", .fn = F_DERIVE_DST, .tg = TG_V, .tl = 1,
     .inj_set = 1, .inj_at = V_AT(2, 0, 1), .inj = NAN, .xtype = 6, .xlayer = 1},
    {.what = "causal: Inf in v at key 2, derive per-token norm", .fn = F_DERIVE_DST, .tg = TG_V, .tl = 1,
     .inj_set = 1, .inj_at = V_AT(2, 1, 1), .inj = INFINITY, .xtype = 6, .xlayer = 1},
    {.what = "causal: NaN in v at key 2, derive per-token projection", .fn = F_DERIVE_DST, .tg = TG_V, .tl = 1,
     .inj_set = 1, .inj_at = V_AT(2, 1, 1), .inj = NAN, .xtype = 7, .xlayer = 1, NDIR(D_FULL)},
    {.what = "causal: NaN in v at key 2, derive unflattened norm", .fn = F_DERIVE_DST, .tg = TG_V, .tl = 1,
     .inj_set = 1, .inj_at = V_AT(2, 0, 0), .inj = NAN, .xtype = 2, .xlayer = 1},
    {.what = "causal: NaN in v at key 2, derive flattened projection (shared)", .fn = F_DERIVE_DST, .tg = TG_V, .tl = 1,
     .inj_set = 1, .inj_at = V_AT(2, 0, 0), .inj = NAN, .xtype = 5, .xlayer = 1, NDIR(D_SHARED)},

    /* not causal: every key is read */
    {.what = "not causal: node (0, 2, 1), key after the query", .fn = F_NODE_WRITE, .fx = FX_NONCAUSAL, .node = N_ATT(1, 0, 2, 1)},
    {.what = "not causal: deriver derive (0, 1, 0)", .fn = F_DERIVE, .fx = FX_NONCAUSAL, .node = N_ATT(1, 0, 1, 0)},
    {.what = "not causal: node_write_vectors", .fn = F_NODE_WRITE_VECS, .fx = FX_NONCAUSAL, .node = N_ATT(1, 1, 2, 1), .nn = 3, .k = 2},
    {.what = "not causal: node_writes, keys after the query", .fn = F_NODE_WRITES, .fx = FX_NONCAUSAL, XNODES(1, 1, 3, 3), .xix = 1,
     .ix = {0, 1, 0, 0, 2, 1, 1, 2, 0}},
    {.what = "not causal: token_writes", .fn = F_TOKEN_WRITES, .fx = FX_NONCAUSAL, XNODES(1, 1, 2, 3), .xix = 1, .ix = {0, 2, 1, 1, 2, 0}},
    {.what = "not causal: token_writes_top_k", .fn = F_TOP_K, .fx = FX_NONCAUSAL, XNODES(1, 1, 2, 3), .xix = 1, .ix = {0, 2, 1, 1, 2, 0},
     .topk = 3, .largest = 0},
    {.what = "not causal: node_write_to_direction", .fn = F_TO_DIR, .fx = FX_NONCAUSAL, .node = N_ATT(1, 0, 2, 0), NDIR(D_FULL)},
    {.what = "not causal: derive unflattened norm (every key)", .fn = F_DERIVE_DST, .fx = FX_NONCAUSAL, .xtype = 2, .xlayer = 1},
    {.what = "not causal: derive unflattened projection", .fn = F_DERIVE_DST, .fx = FX_NONCAUSAL, .xtype = 3, .xlayer = 0, NDIR(D_FULL)},
    {.what = "not causal: derive unflattened projection, zero rows", .fn = F_DERIVE_DST, .fx = FX_NONCAUSAL, .xtype = 3, .xlayer = 1,
     NDIR(D_ZEROROWS)},
    {.what = "not causal: derive unflattened projection, shared, NW_OUT_ZEROED", .fn = F_DERIVE_DST, .fx = FX_NONCAUSAL, .xtype = 3,
     .xlayer = 1, NDIR(D_SHARED), .xflags = NW_OUT_ZEROED},
    {.what = "not causal: derive per-token norm (sum over every key)", .fn = F_DERIVE_DST, .fx = FX_NONCAUSAL, .xtype = 6, .xlayer = 1},
    {.what = "not causal: derive per-token projection", .fn = F_DERIVE_DST, .fx = FX_NONCAUSAL, .xtype = 7, .xlayer = 1, NDIR(D_FULL)},
    {.what = "not causal: derive per-token projection, shared", .fn = F_DERIVE_DST, .fx = FX_NONCAUSAL, .xtype = 7, .xlayer = 0,
     NDIR(D_SHARED)},
    {.what = "not causal: derive unflattened norm, all tensors f16", .fn = F_DERIVE_DST, .fx = FX_NONCAUSAL, .fdtype = NW_DTYPE_F16,
     .xtype = 2, .xlayer = 1},
    {.what = "not causal: derive per-token norm, bf16 transposed", .fn = F_DERIVE_DST, .fx = FX_NONCAUSAL, .fdtype = NW_DTYPE_BF16,
     .flayout = NWT_TRANSPOSED, .xtype = 6, .xlayer = 1},
    {.what = "not causal: flattened norm refused (k <= q only)", .fn = F_DERIVE_DST, .fx = FX_NONCAUSAL, .xtype = 4, .xlayer = 1, .expect = EUNS},
    {.what = "not causal: flattened projection refused", .fn = F_DERIVE_DST, .fx = FX_NONCAUSAL, .xtype = 5, .xlayer = 1, NDIR(D_FULL),
     .expect = EUNS},
    {.what = "not causal: NaN in v at key 2 reaches query 0 (per-token norm)", .fn = F_DERIVE_DST, .fx = FX_NONCAUSAL, .tg = TG_V,
     .tl = 1, .inj_set = 1, .inj_at = V_AT(2, 0, 1), .inj = NAN, .xtype = 6, .xlayer = 1},
};

int main(int argc, char **argv) {
    int verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    for (size_t i = 0; i < sizeof STATIC_ROWS / sizeof *STATIC_ROWS; i++) add(STATIC_ROWS[i]);
    gen_rows();
    gen_x_rows();
    gen_facts_rows();
    for (size_t i = 0; i < sizeof CAUSAL_ROWS / sizeof *CAUSAL_ROWS; i++) add(CAUSAL_ROWS[i]);
    gen_edge_rows();
    printf("boundary: %d rows\n", NROWS);
    int passed = 0, failed = 0;
    for (int i = 0; i < NROWS; i++) {
        ctx *c = calloc(1, sizeof *c);
        c->r = &ROWS[i];
        pthread_t t;
        if (pthread_create(&t, NULL, run_row, c) != 0) { fprintf(stderr, "pthread_create failed\n"); return 2; }
        pthread_join(t, NULL);
        if (c->failed) {
            failed++;
            printf("FAIL %4d %-28s %s\n          %s\n", i + 1, FN_NAME[ROWS[i].fn], ROWS[i].what, c->why);
        } else {
            passed++;
            if (verbose)
                printf("ok   %4d %-28s %s%s%s%s\n", i + 1, FN_NAME[ROWS[i].fn], ROWS[i].what, c->msg[0] ? "  [" : "",
                       c->msg, c->msg[0] ? "]" : "");
        }
        free(c);
    }
    /* nw_autoencoder_input_source_name: every listed name is accepted by
       nw_autoencoder_input_from_name; past the last (and SIZE_MAX) is NULL. */
    size_t listed = 0;
    for (; listed < 64 && nw_autoencoder_input_source_name(listed); listed++) {
        int32_t kind = -1;
        if (nw_autoencoder_input_from_name(nw_autoencoder_input_source_name(listed), &kind) == NW_OK && kind >= 0) passed++;
        else { failed++; printf("FAIL      nw_autoencoder_input_source_name(%zu) is not accepted\n", listed); }
    }
    if (listed == 7 && nw_autoencoder_input_source_name(listed) == NULL && nw_autoencoder_input_source_name(SIZE_MAX) == NULL) passed++;
    else { failed++; printf("FAIL      nw_autoencoder_input_source_name: %zu names, or no NULL past them\n", listed); }
    NROWS += (int)listed + 1;
    printf("boundary: %d rows, %d passed, %d failed\n", NROWS, passed, failed);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
