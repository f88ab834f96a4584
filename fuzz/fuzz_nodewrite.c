/*
 * fuzz_nodewrite.c — libFuzzer harness for libnodewrite, written against
 * include/nodewrite.h only.
 *
 * The input is decoded into a model (small dimensions, rarely extreme ones),
 * weights and decoders (copied or borrowed), store entries with arbitrary
 * dtypes, shapes and strides, and node indices, and drives every entry point
 * in a decoded order: create/destroy, set_weight, set_autoencoder, store
 * put/remove/clear, deriver create/requirements/output_shape/derive/
 * derive_vector/destroy, node_write, node_write_vectors, names, status_string; and the
 * 1.1 exports: layer-less weights (unembedding, final gain), resid.delta_* activations,
 * node_write_sized, node sets (node_writes, token_writes, token_writes_top_k), nw_derive
 * (every dst, with fuzzed directions), node_write_to_direction, vocab_size, dst names,
 * index counts and the thread count; the facts (every nw_*_info_get with fuzzed indices and
 * out->size, nw_saelens_hook_find with fuzzed names) and the slot states
 * (nw_model_weight_get, nw_model_autoencoder_get); causality (nw_model_set_causal / get_causal, so
 * that derives run on causal and non-causal models, with patterns that have mass above the diagonal
 * or not) and autoencoder slots (nw_model_remove_autoencoder; set_autoencoder refuses an occupied slot);
 * the edges' model facts (nw_model_set/get_mlp_activation, nw_model_set/get_layer_norm_epsilon).
 *
 * Views are truthful about memory, as the header requires of a caller: when a
 * view's shape and strides are valid per the contract (no overflow) its data
 * points at a malloc'd block holding exactly the elements it spans (so that
 * AddressSanitizer catches any read outside it), and when that span would be
 * too large the strides become 0 (one element). Views that are invalid per the
 * contract (negative shape, count or byte span overflowing int64, bad dtype or
 * ndim) are passed as they are: the library must reject them without reading.
 * Output buffers are malloc'd with exactly the capacity passed.
 *
 * Besides crashes and sanitizer reports, the harness traps on contract
 * violations it can see: an unknown status, a failure without a message, an
 * output written on failure, or a derive that succeeds with its output placed
 * over its direction's memory (it must be refused, the direction unchanged).
 *
 * Built with -DNW_FUZZ_REPLAY_MAIN it is a plain program that runs the inputs
 * named on the command line (files or directories) once each, linked against
 * the normal library: that is the corpus replay of `make test`.
 */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodewrite.h"

/* ----------------------------------------------------------- the reader */

typedef struct rd { const uint8_t *p; size_t n; } rd;

static uint8_t u8(rd *r) {
    if (r->n == 0) return 0;
    r->n--;
    return *r->p++;
}
static uint32_t u32(rd *r) { uint32_t v = 0; for (int i = 0; i < 4; i++) v |= (uint32_t)u8(r) << (8 * i); return v; }
static uint64_t u64(rd *r) { return (uint64_t)u32(r) | ((uint64_t)u32(r) << 32); }

/* Extreme sizes are tiny or far beyond any machine's memory (>= 2^40): a copy of
 * a few GiB that fits in memory is legitimate and would only make the fuzzer slow. */
static const int64_t EXTREME[] = {0, -1, 1, 2, INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1,
                                  (int64_t)1 << 40, (int64_t)1 << 41, (int64_t)1 << 61,
                                  (int64_t)1 << 62, -((int64_t)1 << 62), -((int64_t)1 << 40)};
#define NEXTREME (sizeof EXTREME / sizeof *EXTREME)

static const int32_t EXTREME32[] = {0, 1, 2, 3, 4, 5, 6, -1, -2, INT32_MIN, INT32_MAX, 7, 8};
#define NEXTREME32 (sizeof EXTREME32 / sizeof *EXTREME32)

/* an enum-like int32: mostly in 0..limit, sometimes out of range */
static int32_t e32(rd *r, int32_t limit) {
    uint8_t b = u8(r);
    if (b < 224) return (int32_t)(b % (uint8_t)limit);
    return EXTREME32[b % NEXTREME32];
}

/* a value relative to an extent n: the boundary values and a few in between */
static int64_t rel(rd *r, int64_t n) {
    uint8_t b = u8(r);
    switch (b % 16) {
    case 0: return -n - 1;
    case 1: return -n;
    case 2: return -1;
    case 3: return n - 1;
    case 4: return n;
    case 5: return EXTREME[u8(r) % NEXTREME];
    case 6: { /* arbitrary, but never a legitimate multi-GiB size */
        int64_t v = (int64_t)u64(r);
        if (v > 4096 && v < ((int64_t)1 << 40)) v += (int64_t)1 << 40;
        return v;
    }
    default: return n > 0 ? (int64_t)(b % (uint64_t)n) : 0;
    }
}

/* ------------------------------------------------------------- the state */

#define MAXBLOCKS 256
#define MAXD 4

typedef struct st {
    nw_model *model;
    nw_model_dims dims;
    nw_store *store;
    nw_deriver *derivers[MAXD];
    nw_model_dims ddims[MAXD]; /* the dims of each deriver's model */
    int64_t T, Tk, nlat, nvocab;
    void *blocks[MAXBLOCKS]; /* every block a view borrows, freed at the very end */
    int nblocks;
    const void *last_data; /* the data pointer of the last view made, its block and the block's size */
    void *last_block;
    size_t last_bytes;
} st;

static void keep(st *s, void *p) {
    if (s->nblocks < MAXBLOCKS) s->blocks[s->nblocks++] = p;
    else free(p); /* never reached by a borrowed block: see view() */
}

static void check(nw_status status) {
    if (status > 0 || status < NW_ERR_STALE_INPUT) __builtin_trap(); /* not a status */
    if (status != NW_OK) {
        const char *m = nw_last_error_message();
        if (m == NULL || m[0] == '\0') __builtin_trap(); /* a failure without a message */
    }
    const char *name = nw_status_string(status);
    if (name == NULL || strncmp(name, "NW_", 3) != 0) __builtin_trap();
}

/* A derive costs up to d_ff x d_model (MLP-input latents) or d_head x d_model
 * (attention) multiply-adds. Valid stride-0 views make enormous dimensions
 * legal, and the library then does the work it is asked for: the harness does
 * not ask for more than ~2^20 per call (that is a slow input, not a fault). */
static int heavy(const nw_model_dims *d) {
    int64_t a, b;
    if (d->d_model > ((int64_t)1 << 16)) return 1;
    if (__builtin_mul_overflow(d->d_ff, d->d_model, &a) || a > ((int64_t)1 << 20)) return 1;
    if (__builtin_mul_overflow(d->d_head, d->d_model, &b) || b > ((int64_t)1 << 20)) return 1;
    return 0;
}

static size_t isz(int32_t dtype) { return dtype == NW_DTYPE_F64 ? 8 : (dtype == NW_DTYPE_F32 ? 4 : 2); }

/* Builds a view of ndim axes whose "natural" extents are nat[] (what the model
 * expects), perturbed by the input. Returns 0 if no view could be made. */
static int view(rd *r, st *s, int ndim_nat, const int64_t *nat, nw_tensor_view *v, int64_t *shape, int64_t *strides) {
    if (s->nblocks >= MAXBLOCKS - 1) return 0;
    uint8_t mode = u8(r);
    int32_t dtype = (mode & 0xc0) == 0xc0 ? EXTREME32[u8(r) % NEXTREME32] : (int32_t)(mode & 3);
    int ndim = ndim_nat;
    if ((mode & 0x3c) == 0x3c) ndim = EXTREME32[u8(r) % NEXTREME32];
    int nd = ndim < 0 ? 0 : (ndim > 8 ? 8 : ndim); /* entries filled: shape/strides hold 8 */
    uint8_t smode = u8(r);
    for (int i = 0; i < nd; i++) {
        int64_t n = i < ndim_nat ? nat[i] : 1;
        shape[i] = (i < 4 && (smode & (1u << i))) ? rel(r, n) : n;
    }
    /* strides: NULL, row-major, column-major, negated, zero, or arbitrary */
    int kind = (smode >> 4) % 6;
    int64_t acc = 1;
    int ovf = 0;
    for (int i = 0; i < nd; i++) {
        int j = kind == 2 ? i : nd - 1 - i;
        strides[j] = acc;
        int64_t e = shape[j] > 0 ? shape[j] : 1;
        if (__builtin_mul_overflow(acc, e, &acc)) { acc = 1; ovf = 1; }
    }
    for (int i = 0; i < 8; i++) if (i >= nd) { shape[i] = 1; strides[i] = 1; }
    if (kind == 3) for (int i = 0; i < nd; i++) strides[i] = -strides[i];
    if (kind == 4) for (int i = 0; i < nd; i++) strides[i] = 0;
    if (kind == 5)
        for (int i = 0; i < nd; i++) {
            if (u8(r) & 1) strides[i] = EXTREME[u8(r) % NEXTREME];
            else strides[i] = (int8_t)u8(r);
        }
    int null_strides = kind == 0 && !ovf;
    /* is the view valid per the contract (shape >= 0, no overflow)? */
    int valid = dtype >= 0 && dtype <= 3 && ndim == nd;
    int64_t lo = 0, hi = 0, count = 1;
    for (int i = 0; i < nd && valid; i++) {
        if (shape[i] < 0) { valid = 0; break; }
        if (__builtin_mul_overflow(count, shape[i], &count)) valid = 0;
    }
    int empty = count == 0;
    for (int i = 0; i < nd && valid && !empty; i++) {
        int64_t ext;
        if (__builtin_mul_overflow(shape[i] - 1, strides[i], &ext)) { valid = 0; break; }
        if (ext < 0) { if (__builtin_add_overflow(lo, ext, &lo)) valid = 0; }
        else if (__builtin_add_overflow(hi, ext, &hi)) valid = 0;
    }
    int64_t span = 1, bytes = 0;
    if (valid && !empty) {
        if (__builtin_sub_overflow(hi, lo, &span) || __builtin_add_overflow(span, 1, &span) ||
            __builtin_mul_overflow(span, (int64_t)isz(dtype), &bytes))
            valid = 0;
    }
    if (valid && !empty && span > 4096) { /* too big to back with memory: one element, stride 0 */
        for (int i = 0; i < nd; i++) strides[i] = 0;
        null_strides = 0;
        lo = 0;
        span = 1;
    }
    size_t elems = (valid && !empty) ? (size_t)span : 1;
    size_t nbytes = elems * isz(dtype);
    uint8_t *block = malloc(nbytes);
    if (!block) return 0;
    for (size_t i = 0; i < nbytes; i++) block[i] = u8(r) ^ (uint8_t)(i * 37u);
    keep(s, block);
    v->data = (valid && !empty) ? block + (size_t)(-lo) * isz(dtype) : block;
    if ((mode & 0x3c) == 0x38) v->data = NULL;
    s->last_data = v->data;
    s->last_block = block;
    s->last_bytes = nbytes;
    v->dtype = dtype;
    v->ndim = ndim;
    v->shape = shape;
    v->strides = null_strides ? NULL : strides;
    return 1;
}

static int32_t layer_of(rd *r) {
    if (u8(r) < 240) return (int32_t)(u8(r) % 4);
    return EXTREME32[u8(r) % NEXTREME32];
}
static int yes(rd *r, int threshold) { return u8(r) < threshold; }

static void new_model(rd *r, st *s) {
    uint8_t b = u8(r);
    nw_model_dims d;
    if (b >= 248) { /* extreme dims */
        int64_t *f = &d.n_layers;
        for (int i = 0; i < 5; i++) {
            if (u8(r) & 1) f[i] = EXTREME[u8(r) % NEXTREME];
            else f[i] = 1 + u8(r) % 4;
        }
    } else {
        d.n_layers = 1 + b % 3;
        d.d_model = 1 + u8(r) % 8;
        d.n_heads = 1 + u8(r) % 3;
        d.d_head = 1 + u8(r) % 4;
        d.d_ff = 1 + u8(r) % 8;
    }
    nw_model *m = (nw_model *)(uintptr_t)0x1;
    nw_status status = nw_model_create(&d, &m);
    check(status);
    if (status != NW_OK) {
        if (m != (nw_model *)(uintptr_t)0x1) __builtin_trap();
        return;
    }
    nw_model_destroy(s->model); /* derivers keep the old one alive */
    s->model = m;
    nw_model_dims got;
    check(nw_model_dims_get(m, &got));
    if (memcmp(&got, &d, sizeof d) != 0) __builtin_trap();
    s->dims = d;
}

static nw_node_index node(rd *r, st *s) {
    nw_node_index n;
    n.node_type = e32(r, 5);
    int64_t nl = s->dims.n_layers > 4 || s->dims.n_layers < 1 ? 4 : s->dims.n_layers;
    if (u8(r) < 240) n.layer = (int32_t)(u8(r) % nl);
    else n.layer = EXTREME32[u8(r) % NEXTREME32];
    if (u8(r) < 240) n.n_indices = n.node_type == NW_NODE_ATTENTION_HEAD ? 3 : 2;
    else n.n_indices = EXTREME32[u8(r) % NEXTREME32];
    if (u8(r) < 250) n.reserved = 0;
    else n.reserved = EXTREME32[u8(r) % NEXTREME32];
    int64_t ext[4] = {s->T, s->dims.d_ff, 0, 0};
    if (n.node_type == NW_NODE_ATTENTION_HEAD) { ext[1] = s->Tk; ext[2] = s->dims.n_heads; }
    else if (n.node_type >= NW_NODE_AUTOENCODER_LATENT) ext[1] = s->nlat;
    for (int i = 0; i < 4; i++) n.indices[i] = rel(r, ext[i]);
    return n;
}

/* an output buffer of exactly cap floats, sentinel-filled */
static float *outbuf(size_t cap) {
    float *o = malloc((cap ? cap : 1) * sizeof(float));
    if (o) memset(o, 0xA5, (cap ? cap : 1) * sizeof(float));
    return o;
}
static int untouched(const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) if (b[i] != 0xA5) return 0;
    return 1;
}

/* capacity: the needed one, one less, or small */
static size_t capacity(rd *r, int64_t needed) {
    uint8_t b = u8(r);
    size_t small = (size_t)(b % 64);
    if (needed < 0 || needed > (1 << 20)) return small;
    switch (b % 4) {
    case 0: case 1: return (size_t)needed;
    case 2: return needed > 0 ? (size_t)needed - 1 : 0;
    default: return small;
    }
}

/* A fuzzed node and an output buffer of a fuzzed capacity around its (T, d_model) write; NULL
 * when the model is too heavy to derive or no buffer could be had. */
static float *node_and_out(rd *r, st *s, nw_node_index *n, size_t *cap) {
    if (heavy(&s->dims)) return NULL;
    *n = node(r, s);
    int64_t needed;
    if (__builtin_mul_overflow(s->T, s->dims.d_model, &needed)) needed = -1;
    *cap = capacity(r, needed);
    return outbuf(*cap);
}

/* The contract of a derive's shape query (out NULL, out_len 0; shape and nd filled with -7
 * before): never NW_OK (every output has an element), nothing written unless
 * NW_ERR_BUFFER_TOO_SMALL, and then 2 or 3 extents, none negative (unused_third: a 2-D shape
 * leaves shape[2] as it was). Returns the element count, -1 if it overflows, -2 if the query
 * failed (nothing to derive). */
static int64_t shape_query(nw_status status, const int64_t shape[3], int32_t nd, int unused_third) {
    check(status);
    if (status == NW_OK) __builtin_trap();
    if (status != NW_ERR_BUFFER_TOO_SMALL) {
        if (shape[0] != -7 || shape[1] != -7 || shape[2] != -7 || nd != -7) __builtin_trap();
        return -2;
    }
    if (nd != 2 && nd != 3) __builtin_trap();
    if (unused_third && nd == 2 && shape[2] != -7) __builtin_trap();
    int64_t count = 1;
    for (int i = 0; i < nd; i++) {
        if (shape[i] < 0) __builtin_trap();
        if (__builtin_mul_overflow(count, shape[i], &count)) return -1;
    }
    return count;
}

static int64_t tokens_of(st *s, const nw_deriver *d) {
    int64_t shape[2];
    if (nw_deriver_output_shape(d, s->store, shape) != NW_OK) return -1;
    int64_t n;
    if (__builtin_mul_overflow(shape[0], shape[1], &n)) return -1;
    return n;
}


/* ------------------------------------------------------ the 1.1 exports */

/* a node set of one type at one layer: *nn nodes, *k indices each (k as the type needs,
 * sometimes not), n_nodes sometimes one that must be refused before anything is read
 * (n_nodes * k * 8 overflows int64). Returns the malloc'd indices (NULL when nn is 0). */
static int64_t *node_set(rd *r, st *s, int32_t *type, int32_t *layer, size_t *nn, size_t *k, size_t *n_arg) {
    *type = e32(r, 5);
    int64_t nl = s->dims.n_layers > 4 || s->dims.n_layers < 1 ? 4 : s->dims.n_layers;
    *layer = u8(r) < 240 ? (int32_t)(u8(r) % nl) : EXTREME32[u8(r) % NEXTREME32];
    int32_t want = nw_node_type_index_count(*type);
    uint8_t kb = u8(r);
    *k = kb < 240 ? (size_t)(want ? want : 2) : (kb & 1 ? (size_t)(kb % 5) : SIZE_MAX);
    *nn = u8(r) % 7;
    *n_arg = *nn;
    uint8_t nb = u8(r);
    if (nb >= 248) { /* huge: refused (too large) whatever k is */
        static const size_t HUGE[] = {SIZE_MAX, (size_t)1 << 63, (size_t)1 << 62, (size_t)1 << 61,
                                      ((size_t)1 << 60) + 1, SIZE_MAX / 4 + 1, SIZE_MAX / 3, ((size_t)1 << 61) + 3};
        *n_arg = HUGE[nb % 8];
    }
    size_t kk = *k <= 3 ? *k : 0;
    int64_t ext[3] = {s->T, s->dims.d_ff, 1};
    if (*type == NW_NODE_ATTENTION_HEAD) { ext[1] = s->Tk; ext[2] = s->dims.n_heads; }
    else if (*type >= NW_NODE_AUTOENCODER_LATENT) ext[1] = s->nlat;
    size_t total = *nn * kk;
    if (*n_arg != *nn && kk != 0 && *k == (size_t)want) total = 0; /* huge: must not be read */
    if (total == 0) return NULL;
    int64_t *ix = malloc(total * sizeof(int64_t));
    if (!ix) return NULL;
    for (size_t i = 0; i < total; i++) ix[i] = rel(r, ext[i % kk]);
    return ix;
}

/* token-space work per node is n_vocab x d_model (plus the node's write): bounded like heavy() */
static int heavy_tokens(st *s, size_t nn) {
    int64_t nv = 0, w;
    if (nw_model_vocab_size(s->model, &nv) != NW_OK) return 1;
    if (__builtin_mul_overflow(nv, s->dims.d_model, &w) || __builtin_mul_overflow(w, (int64_t)(nn ? nn : 1), &w)) return 1;
    return w > ((int64_t)1 << 20);
}

/* a direction view: none, (T, d_model) or (d_model,) */
/* After a call that succeeded with a direction: the same call with its `count` floats of output
 * placed over the direction's block must be refused (the output would overlap an input), and
 * the block left as it was. `call` makes the call with the given output. */
static void refuse_output_over_direction(st *s, const nw_tensor_view *dp, int64_t count,
                                         nw_status (*call)(void *ctx, float *out, size_t cap), void *ctx) {
    if (dp == NULL || dp->data == NULL || dp->data != s->last_data || count <= 0) return;
    uint8_t *copy = malloc(s->last_bytes);
    if (!copy) return;
    memcpy(copy, s->last_block, s->last_bytes);
    nw_status status = call(ctx, (float *)s->last_block, (size_t)count);
    check(status);
    if (status != NW_ERR_INVALID_ARGUMENT || memcmp(copy, s->last_block, s->last_bytes) != 0) __builtin_trap();
    free(copy);
}

typedef struct { st *s; int32_t dst, layer; const nw_tensor_view *dp; const nw_node_index *node; } alias_call;
static nw_status derive_into(void *p, float *out, size_t cap) {
    alias_call *a = p;
    int64_t shape[3];
    int32_t nd;
    return nw_derive(a->s->model, a->s->store, a->dst, a->layer, a->dp, 0, out, cap, shape, &nd);
}
static nw_status to_direction_into(void *p, float *out, size_t cap) {
    alias_call *a = p;
    int64_t shape[2];
    return nw_node_write_to_direction(a->s->model, a->s->store, a->node, a->dp, out, cap, shape);
}

static const nw_tensor_view *direction(rd *r, st *s, nw_tensor_view *v, int64_t *shape, int64_t *strides) {
    uint8_t b = u8(r);
    if (b < 40) return NULL;
    int64_t nat[2] = {s->T, s->dims.d_model};
    if (b < 100) { nat[0] = s->dims.d_model; return view(r, s, 1, nat, v, shape, strides) ? v : NULL; }
    return view(r, s, 2, nat, v, shape, strides) ? v : NULL;
}

/* A size-led struct call (tables 0-6: the info tables with index i; 7, 8: the weight and
 * autoencoder slot states of model m at (i, layer)) with a fuzzed out->size or NULL out, its
 * contract checked: the status is one the header allows, nothing is written on failure, and on
 * success out->size = min(the caller's, the library's) with nothing written past it. */
static nw_status sized_call(rd *r, size_t size, int table, int32_t i, nw_model *m, int32_t layer) {
    enum { SLACK = 64 };
    unsigned char buf[512 + SLACK];
    memset(buf, 0xA5, sizeof buf);
    static const size_t DELTA[] = {0, 1, 8, SLACK};
    uint8_t b = u8(r);
    size_t caller = b % 6 == 0 ? 0 : b % 6 == 1 ? size - 1 - u8(r) % 4 : b % 6 == 2 ? SIZE_MAX
                  : size + DELTA[u8(r) % 4];
    memcpy(buf, &caller, sizeof caller);
    void *out = b == 255 ? NULL : buf;
    nw_status status;
    switch (table) {
    case 0: status = nw_node_type_info_get(i, out); break;
    case 1: status = nw_dst_info_get(i, out); break;
    case 2: status = nw_activation_info_get(i, out); break;
    case 3: status = nw_weight_info_get(i, out); break;
    case 4: status = nw_dtype_info_get(i, out); break;
    case 5: status = nw_autoencoder_input_info_get(i, out); break;
    case 6: status = nw_saelens_hook_info_get(i, out); break;
    case 7: status = nw_model_weight_get(m, i, layer, out); break;
    default: status = nw_model_autoencoder_get(m, i, layer, out); break;
    }
    check(status);
    if (status != NW_OK && status != NW_ERR_INVALID_ARGUMENT && status != NW_ERR_INDEX_OUT_OF_RANGE) __builtin_trap();
    size_t after;
    memcpy(&after, buf, sizeof after);
    if (status != NW_OK) {
        if (after != caller) __builtin_trap();
        for (size_t k = sizeof caller; k < sizeof buf; k++) if (buf[k] != 0xA5) __builtin_trap();
        return status;
    }
    if (out == NULL || caller < size || after != size) __builtin_trap(); /* the library's size: the header's */
    for (size_t k = size; k < sizeof buf; k++) if (buf[k] != 0xA5) __builtin_trap();
    if (table == 7) {
        nw_weight_state w;
        memcpy(&w, buf, sizeof w);
        if (w.present == 0 && (w.dtype || w.ownership || w.ndim || w.shape[0])) __builtin_trap();
        if (w.present == 1 && (w.dtype < 0 || w.dtype > 3 || w.ownership < 0 || w.ownership > 1 || w.ndim < 1 || w.ndim > 3))
            __builtin_trap();
        if (w.present != 0 && w.present != 1) __builtin_trap();
    } else if (table == 8) {
        nw_autoencoder_state a;
        memcpy(&a, buf, sizeof a);
        if (a.present == 0 && (a.input || a.dtype || a.ownership || a.n_latents || a.n_inputs)) __builtin_trap();
        if (a.present == 1 && (a.input < 0 || a.input > 2 || a.dtype < 0 || a.dtype > 3 || a.n_latents < 0 || a.n_inputs < 1))
            __builtin_trap();
        if (a.present != 0 && a.present != 1) __builtin_trap();
    } else {
        const char *name;
        memcpy(&name, buf + sizeof(size_t), sizeof name); /* every info struct's second field is a name */
        if (name == NULL || name[0] == '\0') __builtin_trap();
    }
    return status;
}

/* nw_model_weight_read / nw_model_autoencoder_read of slot (e, layer) (kind 0 / 1) into a buffer
 * of a fuzzed capacity around the slot's element count, or NULL: the status is one the header
 * allows; on failure nothing is written; on success exactly the slot's elements, nothing past. */
static void read_back(rd *r, int kind, int32_t e, nw_model *m, int32_t layer) {
    int64_t count = -1;
    if (m) {
        nw_weight_state w = {.size = sizeof w};
        nw_autoencoder_state a = {.size = sizeof a};
        if (kind == 0 && nw_model_weight_get(m, e, layer, &w) == NW_OK && w.present) {
            count = 1;
            for (int i = 0; i < w.ndim && count >= 0; i++)
                if (__builtin_mul_overflow(count, w.shape[i], &count)) count = -1;
        } else if (kind == 1 && nw_model_autoencoder_get(m, e, layer, &a) == NW_OK && a.present) {
            if (__builtin_mul_overflow(a.n_latents, a.n_inputs, &count)) count = -1;
        }
    }
    if (count > ((int64_t)1 << 20)) return; /* a broadcast view of a huge model: not copied here */
    size_t cap = capacity(r, count < 0 ? 0 : count);
    float *o = outbuf(cap);
    if (!o) return;
    float *op = yes(r, 240) ? o : NULL;
    nw_status status = kind == 0 ? nw_model_weight_read(m, e, layer, op, cap) : nw_model_autoencoder_read(m, e, layer, op, cap);
    check(status);
    if (status != NW_OK && status != NW_ERR_INVALID_ARGUMENT && status != NW_ERR_INDEX_OUT_OF_RANGE &&
        status != NW_ERR_MISSING_INPUT && status != NW_ERR_BUFFER_TOO_SMALL)
        __builtin_trap();
    if (status != NW_OK && !untouched(o, (cap ? cap : 1) * sizeof(float))) __builtin_trap();
    if (status == NW_OK && (count < 0 || (size_t)count > cap || !untouched(o + count, (cap - (size_t)count) * sizeof(float))))
        __builtin_trap();
    if (status == NW_OK && count > 0) { /* a second read into a zeroed buffer gives the same bits */
        float *again = calloc((size_t)count, sizeof(float));
        if (again) {
            nw_status st2 = kind == 0 ? nw_model_weight_read(m, e, layer, again, (size_t)count)
                                      : nw_model_autoencoder_read(m, e, layer, again, (size_t)count);
            if (st2 != NW_OK || memcmp(o, again, (size_t)count * sizeof(float))) __builtin_trap();
            free(again);
        }
    }
    free(o);
}

static void step_new(rd *r, st *s, uint8_t op) {
    nw_status status;
    switch (op) {
    case 0: { /* layer-less weights; and the layered ones with NW_NO_LAYER */
        uint8_t b = u8(r);
        int32_t w = (b & 3) == 3 ? e32(r, 4) : 2 + (b & 1);
        int64_t nat[3] = {s->dims.d_model, s->nvocab, 0};
        int ndim = w == NW_WEIGHT_LAYER_NORM_GAIN_FINAL ? 1 : 2;
        if (w == NW_WEIGHT_MLP_TO_RESIDUAL) { nat[0] = s->dims.d_ff; nat[1] = s->dims.d_model; }
        if (w == NW_WEIGHT_ATTN_TO_RESIDUAL) { nat[0] = s->dims.n_heads; nat[1] = s->dims.d_head; nat[2] = s->dims.d_model; ndim = 3; }
        nw_tensor_view v;
        int64_t shape[8], strides[8];
        if (!view(r, s, ndim, nat, &v, shape, strides)) return;
        int32_t layer = yes(r, 200) ? NW_NO_LAYER : layer_of(r);
        int32_t own = e32(r, 2);
        int64_t before = -7, after = -7;
        check(nw_model_vocab_size(s->model, &before));
        status = nw_model_set_weight(s->model, w, layer, &v, own);
        check(status);
        check(nw_model_vocab_size(s->model, &after));
        if (status != NW_OK && after != before) __builtin_trap(); /* a failed set changed the model */
        if (status == NW_OK && w == NW_WEIGHT_UNEMBEDDING && after != v.shape[1]) __builtin_trap();
        if (status == NW_OK && w >= NW_WEIGHT_UNEMBEDDING && layer != NW_NO_LAYER) __builtin_trap();
        break;
    }
    case 1: { /* resid.delta_* */
        uint8_t b = u8(r);
        int32_t act = b < 240 ? NW_ACT_RESID_DELTA_MLP + (b & 1) : e32(r, 8);
        int64_t nat[2] = {s->T, s->dims.d_model};
        nw_tensor_view v;
        int64_t shape[8], strides[8];
        if (!view(r, s, 2, nat, &v, shape, strides)) return;
        check(nw_store_put(s->store, act, layer_of(r), &v));
        break;
    }
    case 2: { /* node_write_sized */
        nw_node_index n;
        size_t cap;
        float *o = node_and_out(r, s, &n, &cap);
        if (!o) return;
        uint8_t b = u8(r);
        float *op = b & 1 ? NULL : o;
        if (op == NULL && (b & 2)) cap = 0;
        int64_t shape[2] = {-7, -7};
        int64_t *sp = b & 4 ? NULL : shape;
        status = nw_node_write_sized(s->model, s->store, &n, 0, op, cap, sp);
        check(status);
        if (status != NW_OK && !untouched(o, (cap ? cap : 1) * sizeof(float))) __builtin_trap();
        if (status != NW_OK && status != NW_ERR_BUFFER_TOO_SMALL && (shape[0] != -7 || shape[1] != -7)) __builtin_trap();
        if (sp && (status == NW_OK || status == NW_ERR_BUFFER_TOO_SMALL) && (shape[0] < 0 || shape[1] != s->dims.d_model))
            __builtin_trap();
        if (status == NW_OK && op == NULL) __builtin_trap();
        free(o);
        break;
    }
    case 3: case 4: case 5: { /* node sets: node_writes, token_writes, token_writes_top_k */
        if (heavy(&s->dims)) return;
        int32_t type, layer;
        size_t nn, k, n_arg;
        int64_t *ix = node_set(r, s, &type, &layer, &nn, &k, &n_arg);
        const int64_t *ip = ix;
        if (!ip && n_arg != 0 && (u8(r) & 1)) ip = (const int64_t *)(uintptr_t)0x10; /* never read: must be refused */
        if (ip == (const int64_t *)(uintptr_t)0x10 && (n_arg == nn && k == (size_t)nw_node_type_index_count(type) && k))
            ip = NULL; /* a real small set without indices: NULL, which must be refused */
        if (op != 3 && heavy_tokens(s, nn)) { free(ix); return; }
        int64_t nv = 1;
        nw_model_vocab_size(s->model, &nv);
        if (op == 3) {
            int64_t needed;
            if (__builtin_mul_overflow((int64_t)nn, s->dims.d_model, &needed)) needed = -1;
            size_t cap = capacity(r, needed);
            float *o = outbuf(cap);
            int64_t toks[8];
            memset(toks, 0xA5, sizeof toks);
            int64_t *tp = (u8(r) & 1) ? toks : NULL;
            if (o) {
                status = nw_node_writes(s->model, s->store, type, layer, ip, n_arg, k, o, cap, tp);
                check(status);
                if (status != NW_OK && (!untouched(o, (cap ? cap : 1) * sizeof(float)) || !untouched(toks, sizeof toks)))
                    __builtin_trap();
                if (status == NW_OK && (n_arg != nn || !untouched(toks + nn, sizeof toks - nn * sizeof *toks))) __builtin_trap();
                if (status == NW_OK && tp)
                    for (size_t i = 0; i < nn; i++) if (toks[i] < 0) __builtin_trap(); /* T may be 2^50 (stride 0) */
                free(o);
            }
        } else if (op == 4) {
            int64_t needed;
            if (__builtin_mul_overflow((int64_t)nn, nv, &needed)) needed = -1;
            size_t cap = capacity(r, needed);
            float *o = outbuf(cap);
            if (o) {
                status = nw_token_writes(s->model, s->store, type, layer, ip, n_arg, k, (u8(r) < 250) ? o : NULL, cap);
                check(status);
                if (status != NW_OK && !untouched(o, (cap ? cap : 1) * sizeof(float))) __builtin_trap();
                if (status == NW_OK && n_arg != nn) __builtin_trap();
                free(o);
            }
        } else {
            int64_t topk = rel(r, nv + 1);
            if (topk == 0 && (u8(r) & 1)) topk = 1;
            int32_t largest = (int32_t)(int8_t)u8(r);
            int64_t needed;
            if (topk < 0 || __builtin_mul_overflow((int64_t)nn, topk, &needed)) needed = -1;
            size_t cap = capacity(r, needed);
            float *vals = outbuf(cap);
            int64_t *ids = malloc((cap ? cap : 1) * sizeof(int64_t));
            if (vals && ids) {
                memset(ids, 0xA5, (cap ? cap : 1) * sizeof(int64_t));
                uint8_t b = u8(r);
                status = nw_token_writes_top_k(s->model, s->store, type, layer, ip, n_arg, k, topk, largest,
                                               b >= 250 ? NULL : vals, b == 249 ? NULL : ids, cap);
                check(status);
                if (status != NW_OK && (!untouched(vals, (cap ? cap : 1) * sizeof(float)) ||
                                        !untouched(ids, (cap ? cap : 1) * sizeof(int64_t))))
                    __builtin_trap();
                if (status == NW_OK) {
                    if (n_arg != nn || topk < 1 || topk > nv) __builtin_trap();
                    for (size_t i = 0; i < nn * (size_t)topk; i++) {
                        if (ids[i] < 0 || ids[i] >= nv) __builtin_trap();
                        size_t row = i / (size_t)topk, j = i % (size_t)topk;
                        /* sorted: the wanted end first (NaN aside) */
                        if (j > 0 && vals[i] == vals[i] && vals[i - 1] == vals[i - 1] &&
                            (largest ? vals[i] > vals[i - 1] : vals[i] < vals[i - 1]))
                            __builtin_trap();
                        (void)row;
                    }
                }
            }
            free(vals);
            free(ids);
        }
        free(ix);
        break;
    }
    case 6: { /* nw_derive: shape query (out NULL, out_len 0), then the derive if it is small */
        if (heavy(&s->dims)) return;
        int32_t dst = e32(r, 18);
        int32_t layer = layer_of(r);
        nw_tensor_view v;
        int64_t vshape[8], vstrides[8];
        const nw_tensor_view *dp = direction(r, s, &v, vshape, vstrides);
        int64_t shape[3] = {-7, -7, -7};
        int32_t nd = -7;
        status = nw_derive(s->model, s->store, dst, layer, dp, 0, NULL, 0, shape, &nd);
        int64_t count = shape_query(status, shape, nd, 1);
        if (count == -2) break;
        int64_t cost = s->dims.d_model * (1 + s->dims.d_ff) + s->dims.d_head * s->dims.d_model, work;
        if (count < 0 || __builtin_mul_overflow(count, cost, &work) || work > ((int64_t)1 << 22)) break;
        size_t cap = capacity(r, count);
        float *o = outbuf(cap);
        if (!o) return;
        int64_t shape2[3] = {-7, -7, -7};
        int32_t nd2 = -7;
        status = nw_derive(s->model, s->store, dst, layer, dp, 0, o, cap, shape2, &nd2);
        check(status);
        if (status != NW_OK && !untouched(o, (cap ? cap : 1) * sizeof(float))) __builtin_trap();
        if ((status == NW_OK || status == NW_ERR_BUFFER_TOO_SMALL) && (nd2 != nd || memcmp(shape, shape2, sizeof shape)))
            __builtin_trap();
        if (status == NW_OK && (size_t)count > cap) __builtin_trap();
        if (status != NW_OK && status != NW_ERR_BUFFER_TOO_SMALL && status != NW_ERR_OUT_OF_MEMORY) __builtin_trap();
        if (status == NW_OK && !untouched(o + count, (cap - (size_t)count) * sizeof(float))) __builtin_trap();
        free(o);
        if (status == NW_OK) {
            alias_call a = {s, dst, layer, dp, NULL};
            refuse_output_over_direction(s, dp, count, derive_into, &a);
        }
        break;
    }
    case 7: { /* node_write_to_direction */
        if (heavy(&s->dims)) return;
        nw_node_index n = node(r, s);
        nw_tensor_view v;
        int64_t vshape[8], vstrides[8];
        const nw_tensor_view *dp = direction(r, s, &v, vshape, vstrides);
        size_t cap = capacity(r, s->T);
        float *o = outbuf(cap);
        if (!o) return;
        uint8_t b = u8(r);
        float *op = b & 1 ? NULL : o;
        if (op == NULL && (b & 2)) cap = 0;
        int64_t shape[2] = {-7, -7};
        status = nw_node_write_to_direction(s->model, s->store, &n, dp, op, cap, shape);
        check(status);
        if (status != NW_OK && !untouched(o, (cap ? cap : 1) * sizeof(float))) __builtin_trap();
        if (status != NW_OK && status != NW_ERR_BUFFER_TOO_SMALL && (shape[0] != -7 || shape[1] != -7)) __builtin_trap();
        if ((status == NW_OK || status == NW_ERR_BUFFER_TOO_SMALL) && (shape[0] < 0 || shape[1] != 1)) __builtin_trap();
        if (status == NW_OK && (op == NULL || dp == NULL)) __builtin_trap();
        if (status == NW_OK) { /* zero off the token row */
            int nonzero = 0;
            for (int64_t t = 0; t < shape[0]; t++) nonzero += o[t] != 0.0f;
            if (nonzero > 1) __builtin_trap();
        }
        free(o);
        if (status == NW_OK) {
            alias_call a = {s, 0, 0, dp, &n};
            refuse_output_over_direction(s, dp, shape[0], to_direction_into, &a);
        }
        break;
    }
    case 8: { /* vocab size, dst names, index counts, threads */
        int32_t v = (u8(r) & 1) ? EXTREME32[u8(r) % NEXTREME32] : (int32_t)(u8(r) % 20);
        const char *nm = nw_dst_name(v);
        int32_t out = 0x5a5a5a5a;
        if (nm) { check(nw_dst_from_name(nm, &out)); if (out != v) __builtin_trap(); }
        else if (v >= 0 && v <= 17) __builtin_trap();
        char name[48];
        size_t len = u8(r) % sizeof name;
        for (size_t i = 0; i < len; i++) name[i] = (char)u8(r);
        name[len] = '\0';
        out = 0x5a5a5a5a;
        status = nw_dst_from_name(name, &out);
        check(status);
        if (status != NW_OK && out != 0x5a5a5a5a) __builtin_trap();
        check(nw_dst_from_name(NULL, &out));
        check(nw_dst_from_name(name, NULL));
        int32_t c = nw_node_type_index_count(v);
        if (c != (v == 1 ? 3 : (v >= 0 && v <= 4 ? 2 : 0))) __builtin_trap();
        int64_t nv = -7;
        status = nw_model_vocab_size((u8(r) < 250) ? s->model : NULL, &nv);
        check(status);
        if (status != NW_OK && nv != -7) __builtin_trap();
        if (status == NW_OK && nv < 0) __builtin_trap();
        check(nw_model_vocab_size(s->model, NULL));
        static const int32_t TH[] = {0, 1, 2, 3, 1, 2, -1, 1025, INT32_MIN, INT32_MAX};
        int32_t th = TH[u8(r) % 10], before = nw_get_num_threads();
        status = nw_set_num_threads(th);
        check(status);
        int32_t after = nw_get_num_threads();
        if (after < 1 || (status == NW_OK && th > 0 && after != th) || (status != NW_OK && after != before)) __builtin_trap();
        break;
    }
    case 9: { /* the facts: a table row with a fuzzed index and out->size; a fuzzed hook name */
        int tb = u8(r) % 7;
        int32_t i = (u8(r) & 1) ? EXTREME32[u8(r) % NEXTREME32] : (int32_t)(u8(r) % 24);
        size_t size = tb == 0 ? sizeof(nw_node_type_info) : tb == 1 ? sizeof(nw_dst_info)
                    : tb == 2 ? sizeof(nw_activation_info) : tb == 3 ? sizeof(nw_weight_info)
                    : tb == 4 ? sizeof(nw_dtype_info) : tb == 5 ? sizeof(nw_autoencoder_input_info)
                    : sizeof(nw_saelens_hook_info);
        status = sized_call(r, size, tb, i, NULL, 0);
        (void)status;
        char name[48];
        static const char *const SUFFIX[] = {"hook_mlp_out", "mlp.hook_post", "hook_attn_out", "attn.hook_z",
                                             "hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_z", ""};
        if (u8(r) & 1) {
            size_t len = u8(r) % sizeof name;
            for (size_t k = 0; k < len; k++) name[k] = (char)u8(r);
            name[len] = '\0';
        } else {
            snprintf(name, sizeof name, "blocks.%lld.%s", (long long)rel(r, 12), SUFFIX[u8(r) % 9]);
        }
        int32_t row = 0x5a5a5a5a, layer = 0x5a5a5a5a;
        uint8_t nulls = u8(r);
        status = nw_saelens_hook_find(nulls == 1 ? NULL : name, nulls == 2 ? NULL : &row, nulls == 3 ? NULL : &layer);
        check(status);
        if (status != NW_OK && (row != 0x5a5a5a5a || layer != 0x5a5a5a5a)) __builtin_trap();
        if (status != NW_OK && status != NW_ERR_INVALID_ARGUMENT && status != NW_ERR_UNSUPPORTED) __builtin_trap();
        if (status == NW_OK) {
            nw_saelens_hook_info h = {.size = sizeof h};
            if (layer < 0 || nw_saelens_hook_info_get(row, &h) != NW_OK) __builtin_trap();
            if (layer < h.min_layer || (h.max_layer >= 0 && layer > h.max_layer)) __builtin_trap();
        }
        break;
    }
    case 10: { /* slot states of the current model */
        int kind = u8(r) & 1;
        int32_t e = kind ? e32(r, 5) : e32(r, 4);
        int32_t layer = (u8(r) & 3) == 0 ? NW_NO_LAYER : layer_of(r);
        nw_model *m = yes(r, 250) ? s->model : NULL;
        status = sized_call(r, kind ? sizeof(nw_autoencoder_state) : sizeof(nw_weight_state), 7 + kind, e, m, layer);
        (void)status;
        read_back(r, kind, e, m, layer);
        break;
    }
    case 11: { /* causality: set (valid or not), then get */
        int32_t before = -7, after = -7, v = (u8(r) & 1) ? EXTREME32[u8(r) % NEXTREME32] : (int32_t)(u8(r) & 1);
        check(nw_model_get_causal(s->model, &before));
        status = nw_model_set_causal(u8(r) < 250 ? s->model : NULL, v);
        check(status);
        check(nw_model_get_causal(s->model, &after));
        if (before != 0 && before != 1) __builtin_trap();
        if (after != (status == NW_OK ? v : before)) __builtin_trap();
        int32_t untouched_out = 0x5a5a5a5a;
        if (nw_model_get_causal(NULL, &untouched_out) != NW_ERR_INVALID_ARGUMENT || untouched_out != 0x5a5a5a5a) __builtin_trap();
        check(nw_model_get_causal(s->model, NULL));
        break;
    }
    case 12: { /* remove an autoencoder; a set into the slot must then not be refused as occupied */
        int32_t type = e32(r, 5), layer = layer_of(r);
        status = nw_model_remove_autoencoder(u8(r) < 250 ? s->model : NULL, type, layer);
        check(status);
        if (status == NW_OK && yes(r, 128)) {
            int32_t input = e32(r, 2);
            int64_t nat[2] = {s->nlat, input == NW_AE_INPUT_MLP_POST_ACT ? s->dims.d_ff : s->dims.d_model};
            nw_tensor_view v;
            int64_t shape[8], strides[8];
            if (!view(r, s, 2, nat, &v, shape, strides)) return;
            status = nw_model_set_autoencoder(s->model, type, layer, input, &v, e32(r, 2));
            check(status);
            if (status == NW_OK) { /* now occupied: a second set is refused, whatever it holds */
                status = nw_model_set_autoencoder(s->model, type, layer, input, &v, NW_COPY);
                if (status != NW_ERR_INVALID_ARGUMENT) __builtin_trap();
                check(status);
            }
        }
        break;
    }
    case 13: { /* edges: nw_store_put_pass / nw_store_remove_pass of any activation, either pass */
        int32_t act = e32(r, 12), pass = yes(r, 240) ? (int32_t)(u8(r) & 1) : EXTREME32[u8(r) % NEXTREME32];
        int64_t nat[3] = {s->T, s->dims.d_model, 0};
        int ndim = 2;
        switch (act) {
        case NW_ACT_MLP_POST_ACT: nat[1] = s->dims.d_ff; break;
        case NW_ACT_ATTN_QK_PROBS: nat[1] = s->Tk; nat[2] = s->dims.n_heads; ndim = 3; break;
        case NW_ACT_ATTN_VALUE: case NW_ACT_ATTN_V_OUT: nat[1] = s->dims.n_heads; nat[2] = s->dims.d_head; ndim = 3; break;
        case NW_ACT_ONLINE_AUTOENCODER_LATENT: case NW_ACT_ONLINE_MLP_AUTOENCODER_LATENT:
        case NW_ACT_ONLINE_ATTENTION_AUTOENCODER_LATENT: nat[1] = s->nlat; break;
        default: break;
        }
        int32_t layer = act == NW_ACT_RESID_POST_EMB && yes(r, 200) ? NW_NO_LAYER : layer_of(r);
        nw_store *sp = yes(r, 250) ? s->store : NULL;
        if (yes(r, 40)) {
            status = nw_store_remove_pass(sp, act, layer, pass);
            check(status);
            break;
        }
        nw_tensor_view v;
        int64_t shape[8], strides[8];
        if (!view(r, s, ndim, nat, &v, shape, strides)) return;
        status = nw_store_put_pass(sp, act, layer, pass, yes(r, 250) ? &v : NULL);
        check(status);
        break;
    }
    case 14: { /* edges: read-side weights (any weight at a layer) and autoencoder encoders */
        if (yes(r, 128)) {
            int32_t w = e32(r, 18);
            nw_weight_info wi;
            memset(&wi, 0, sizeof wi);
            wi.size = sizeof wi;
            int64_t nat[3] = {1, 1, 1};
            int ndim = 1;
            if (nw_weight_info_get(w, &wi) == NW_OK) {
                ndim = wi.ndim;
                for (int i = 0; i < ndim && i < 3; i++)
                    nat[i] = wi.dims[i] == NW_DIM_D_FF ? s->dims.d_ff : wi.dims[i] == NW_DIM_HEADS ? s->dims.n_heads
                           : wi.dims[i] == NW_DIM_D_HEAD ? s->dims.d_head : wi.dims[i] == NW_DIM_VOCAB ? s->nvocab : s->dims.d_model;
            }
            nw_tensor_view v;
            int64_t shape[8], strides[8];
            if (!view(r, s, ndim, nat, &v, shape, strides)) return;
            status = nw_model_set_weight(yes(r, 250) ? s->model : NULL, w, wi.has_layer || yes(r, 20) ? layer_of(r) : NW_NO_LAYER,
                                         &v, e32(r, 2));
            check(status);
            break;
        }
        int32_t type = e32(r, 5), input = e32(r, 3);
        int64_t nin = input == NW_AE_INPUT_MLP_POST_ACT ? s->dims.d_ff
                    : input == NW_AE_INPUT_ATTN_Z ? s->dims.n_heads * s->dims.d_head : s->dims.d_model;
        int64_t en[2] = {s->nlat, nin}, ln[1] = {s->nlat}, pn[1] = {nin};
        nw_tensor_view e, lb, pb;
        int64_t es[8], est[8], ls[8], lst[8], ps[8], pst[8];
        if (!view(r, s, 2, en, &e, es, est) || !view(r, s, 1, ln, &lb, ls, lst) || !view(r, s, 1, pn, &pb, ps, pst)) return;
        status = nw_model_set_autoencoder_encoder(yes(r, 250) ? s->model : NULL, type, layer_of(r), yes(r, 250) ? &e : NULL,
                                                  yes(r, 250) ? &lb : NULL, yes(r, 250) ? &pb : NULL, e32(r, 2));
        check(status);
        break;
    }
    case 15: { /* edges: nw_derive_node, shape query then the derive if it is small */
        if (heavy(&s->dims)) return;
        int32_t dst = e32(r, 43);
        int32_t layer = yes(r, 30) ? NW_NO_LAYER : layer_of(r);
        nw_node_index n = node(r, s);
        int32_t sub = yes(r, 200) ? (int32_t)(u8(r) % 4) : EXTREME32[u8(r) % NEXTREME32];
        if (yes(r, 40)) n.indices[0] = NW_INDEX_NONE;
        const nw_node_index *np = yes(r, 200) ? &n : NULL;
        uint32_t flags = yes(r, 240) ? (uint32_t)(u8(r) % 4) : u32(r);
        int64_t shape[3] = {-7, -7, -7};
        int32_t nd = -7;
        status = nw_derive_node(s->model, s->store, dst, layer, np, sub, flags & ~(uint32_t)NW_OUT_ZEROED, NULL, 0, shape, &nd);
        int64_t count = shape_query(status, shape, nd, 0);
        if (count == -2) break;
        int64_t cost = s->dims.d_model * (1 + s->dims.d_ff + s->dims.n_heads * s->dims.d_head) * (1 + s->T) + s->nlat, work;
        if (count < 0 || __builtin_mul_overflow(count, cost, &work) || work > ((int64_t)1 << 22)) break;
        size_t cap = capacity(r, count);
        float *o = outbuf(cap);
        if (!o) return;
        if (flags & NW_OUT_ZEROED) memset(o, 0, (cap ? cap : 1) * sizeof(float));
        float *before = malloc((cap ? cap : 1) * sizeof(float));
        if (!before) { free(o); return; }
        memcpy(before, o, (cap ? cap : 1) * sizeof(float));
        int64_t shape2[3] = {-7, -7, -7};
        int32_t nd2 = -7;
        status = nw_derive_node(s->model, s->store, dst, layer, np, sub, flags, o, cap, shape2, &nd2);
        check(status);
        if (status != NW_OK && status != NW_ERR_OUT_OF_MEMORY && memcmp(o, before, (cap ? cap : 1) * sizeof(float))) __builtin_trap();
        if (status == NW_ERR_BUFFER_TOO_SMALL && (nd2 != nd || memcmp(shape, shape2, sizeof shape))) __builtin_trap();
        if (status == NW_OK && ((size_t)count > cap || nd2 != nd || memcmp(shape, shape2, sizeof shape))) __builtin_trap();
        if (status == NW_OK && !untouched(o + count, (cap - (size_t)count) * sizeof(float))) __builtin_trap();
        free(before);
        free(o);
        break;
    }
    case 16: { /* model facts of the edges: the MLP activation and the LayerNorm epsilon, set (valid or
                  not), then get; a refused set changes nothing; derives that follow use them */
        int32_t before = -7, after = -7, v = (u8(r) & 1) ? EXTREME32[u8(r) % NEXTREME32] : (int32_t)(u8(r) % 3);
        check(nw_model_get_mlp_activation(s->model, &before));
        status = nw_model_set_mlp_activation(u8(r) < 250 ? s->model : NULL, v);
        check(status);
        check(nw_model_get_mlp_activation(s->model, &after));
        if (before < 0 || before > 2 || after != (status == NW_OK ? v : before)) __builtin_trap();
        static const double EPS[] = {1e-5, 1e-12, 0.5, 0.0, -1e-5, 1e-50, 1e300, 1e38, 3.5e38};
        double e = (u8(r) & 1) ? EPS[u8(r) % (sizeof EPS / sizeof *EPS)] : (u8(r) & 1 ? NAN : INFINITY);
        double eb = -7, ea = -7;
        check(nw_model_get_layer_norm_epsilon(s->model, &eb));
        status = nw_model_set_layer_norm_epsilon(u8(r) < 250 ? s->model : NULL, e);
        check(status);
        check(nw_model_get_layer_norm_epsilon(s->model, &ea));
        if (!(eb > 0) || ea != (status == NW_OK ? e : eb)) __builtin_trap();
        if (status == NW_OK && !((float)e > 0 && isfinite((float)e))) __builtin_trap();
        double untouched_eps = -7;
        if (nw_model_get_layer_norm_epsilon(NULL, &untouched_eps) != NW_ERR_INVALID_ARGUMENT || untouched_eps != -7) __builtin_trap();
        check(nw_model_get_mlp_activation(s->model, NULL));
        check(nw_model_get_layer_norm_epsilon(s->model, NULL));
        break;
    }
    default: /* new vocabulary size for the views that follow */
        s->nvocab = 1 + u8(r) % 9;
        break;
    }
}

static void step(rd *r, st *s) {
    uint8_t b = u8(r);
    if (b >= 216) { step_new(r, s, (uint8_t)((b - 216) % 18)); return; }
    uint8_t op = b % 18;
    nw_status status;
    switch (op) {
    case 0: { /* set_weight */
        int32_t w = e32(r, 2);
        int64_t nat[3] = {s->dims.d_ff, s->dims.d_model, 0};
        int ndim = 2;
        if (w == NW_WEIGHT_ATTN_TO_RESIDUAL) { nat[0] = s->dims.n_heads; nat[1] = s->dims.d_head; nat[2] = s->dims.d_model; ndim = 3; }
        nw_tensor_view v;
        int64_t shape[8], strides[8];
        if (!view(r, s, ndim, nat, &v, shape, strides)) return;
        int32_t layer = layer_of(r);
        nw_model *m = yes(r, 250) ? s->model : NULL;
        const nw_tensor_view *vp = yes(r, 250) ? &v : NULL;
        int32_t own = e32(r, 2);
        status = nw_model_set_weight(m, w, layer, vp, own);
        check(status);
        break;
    }
    case 1: { /* set_autoencoder */
        int32_t type = e32(r, 5), input = e32(r, 2);
        int64_t nat[2] = {s->nlat, input == NW_AE_INPUT_MLP_POST_ACT ? s->dims.d_ff : s->dims.d_model};
        nw_tensor_view v;
        int64_t shape[8], strides[8];
        if (!view(r, s, 2, nat, &v, shape, strides)) return;
        int32_t layer = layer_of(r);
        nw_model *m = yes(r, 250) ? s->model : NULL;
        int32_t own = e32(r, 2);
        status = nw_model_set_autoencoder(m, type, layer, input, &v, own);
        check(status);
        break;
    }
    case 2: case 3: { /* store_put */
        int32_t act = e32(r, 6);
        int64_t nat[3];
        int ndim = 2;
        switch (act) {
        case NW_ACT_MLP_POST_ACT: nat[0] = s->T; nat[1] = s->dims.d_ff; break;
        case NW_ACT_ATTN_QK_PROBS: nat[0] = s->T; nat[1] = s->Tk; nat[2] = s->dims.n_heads; ndim = 3; break;
        case NW_ACT_ATTN_VALUE: nat[0] = s->Tk; nat[1] = s->dims.n_heads; nat[2] = s->dims.d_head; ndim = 3; break;
        default: nat[0] = s->T; nat[1] = s->nlat; break;
        }
        nw_tensor_view v;
        int64_t shape[8], strides[8];
        if (!view(r, s, ndim, nat, &v, shape, strides)) return;
        int32_t layer = layer_of(r);
        nw_store *sp = yes(r, 250) ? s->store : NULL;
        const nw_tensor_view *vp = yes(r, 250) ? &v : NULL;
        status = nw_store_put(sp, act, layer, vp);
        check(status);
        break;
    }
    case 4: { /* store_remove */
        nw_store *sp = yes(r, 250) ? s->store : NULL;
        int32_t act = e32(r, 6);
        int32_t layer = layer_of(r);
        check(nw_store_remove(sp, act, layer));
        break;
    }
    case 5: /* store_clear, rarely */
        if (u8(r) < 16) nw_store_clear(s->store);
        break;
    case 6: { /* deriver_create */
        nw_node_index n = node(r, s);
        int slot = u8(r) % MAXD;
        nw_deriver *d = (nw_deriver *)(uintptr_t)0x1;
        status = nw_node_write_deriver_create(s->model, &n, &d);
        check(status);
        if (status != NW_OK) { if (d != (nw_deriver *)(uintptr_t)0x1) __builtin_trap(); break; }
        nw_deriver_destroy(s->derivers[slot]);
        s->derivers[slot] = d;
        s->ddims[slot] = s->dims;
        break;
    }
    case 7: { /* requirements */
        nw_deriver *d = s->derivers[u8(r) % MAXD];
        nw_requirement req[3];
        size_t cap = u8(r) % 4, cnt = 0xA5A5A5A5u;
        memset(req, 0xA5, sizeof req);
        status = nw_deriver_requirements(d, cap ? req : NULL, cap, &cnt);
        check(status);
        if (status == NW_ERR_BUFFER_TOO_SMALL && (!untouched(req, sizeof req) || cnt <= cap)) __builtin_trap();
        if (status == NW_ERR_INVALID_ARGUMENT && !untouched(req, sizeof req)) __builtin_trap();
        if (status == NW_OK && (cnt < 1 || cnt > 2 || cnt > cap)) __builtin_trap();
        if (status == NW_OK && !untouched(req + cnt, sizeof req - cnt * sizeof *req)) __builtin_trap();
        break;
    }
    case 8: { /* output_shape */
        int64_t shape[2] = {-7, -7};
        status = nw_deriver_output_shape(s->derivers[u8(r) % MAXD], s->store, shape);
        check(status);
        if (status != NW_OK && (shape[0] != -7 || shape[1] != -7)) __builtin_trap();
        if (status == NW_OK && (shape[0] < 0 || shape[1] != s->dims.d_model)) {
            /* shape[1] is d_model of the deriver's model, which may be an older one */
            if (shape[0] < 0 || shape[1] < 1) __builtin_trap();
        }
        break;
    }
    case 9: { /* derive */
        int slot = u8(r) % MAXD;
        nw_deriver *d = s->derivers[slot];
        if (d && heavy(&s->ddims[slot])) return;
        size_t cap = capacity(r, d ? tokens_of(s, d) : 16);
        float *o = outbuf(cap);
        if (!o) return;
        float *op = yes(r, 250) ? o : NULL;
        status = nw_deriver_derive(d, s->store, op, cap);
        check(status);
        if (status != NW_OK && !untouched(o, (cap ? cap : 1) * sizeof(float))) __builtin_trap();
        free(o);
        break;
    }
    case 10: { /* derive_vector */
        int slot = u8(r) % MAXD;
        nw_deriver *d = s->derivers[slot];
        if (d && heavy(&s->ddims[slot])) return;
        size_t cap = capacity(r, s->dims.d_model);
        float *o = outbuf(cap);
        if (!o) return;
        int64_t tok = -7;
        int64_t *tp = (u8(r) & 1) ? &tok : NULL;
        status = nw_deriver_derive_vector(d, s->store, o, cap, tp);
        check(status);
        if (status != NW_OK && (tok != -7 || !untouched(o, (cap ? cap : 1) * sizeof(float)))) __builtin_trap();
        if (status == NW_OK && tok < -7) __builtin_trap();
        free(o);
        break;
    }
    case 11: { /* node_write */
        nw_node_index n;
        size_t cap;
        float *o = node_and_out(r, s, &n, &cap);
        if (!o) return;
        const nw_node_index *np = yes(r, 250) ? &n : NULL;
        status = nw_node_write(s->model, s->store, np, o, cap);
        check(status);
        if (status != NW_OK && !untouched(o, (cap ? cap : 1) * sizeof(float))) __builtin_trap();
        free(o);
        break;
    }
    case 12: { /* node_write_vectors */
        if (heavy(&s->dims)) return;
        nw_node_index nodes[6];
        size_t nn = u8(r) % 7;
        for (size_t i = 0; i < nn; i++) nodes[i] = node(r, s);
        int64_t needed;
        if (__builtin_mul_overflow((int64_t)nn, s->dims.d_model, &needed)) needed = -1;
        size_t cap = capacity(r, needed);
        float *o = outbuf(cap);
        if (!o) return;
        int64_t toks[6];
        memset(toks, 0xA5, sizeof toks);
        int64_t *tp = (u8(r) & 1) ? toks : NULL;
        status = nw_node_write_vectors(s->model, s->store, nodes, nn, o, cap, tp);
        check(status);
        if (status != NW_OK && (!untouched(o, (cap ? cap : 1) * sizeof(float)) || !untouched(toks, sizeof toks)))
            __builtin_trap();
        if (status == NW_OK && !untouched(toks + nn, sizeof toks - nn * sizeof *toks)) __builtin_trap();
        free(o);
        break;
    }
    case 13: { /* names and statuses */
        int32_t v = EXTREME32[u8(r) % NEXTREME32], out = 0x5a5a5a5a;
        const char *names[4] = {nw_node_type_name(v), nw_activation_name(v), nw_weight_name(v), nw_dtype_name(v)};
        status = NW_OK;
        if (names[0]) { check(nw_node_type_from_name(names[0], &out)); if (out != v) __builtin_trap(); }
        if (names[1]) { check(nw_activation_from_name(names[1], &out)); if (out != v) __builtin_trap(); }
        if (names[2]) { check(nw_weight_from_name(names[2], &out)); if (out != v) __builtin_trap(); }
        if (names[3]) { check(nw_dtype_from_name(names[3], &out)); if (out != v) __builtin_trap(); }
        char name[24];
        size_t len = u8(r) % sizeof name;
        for (size_t i = 0; i < len; i++) name[i] = (char)u8(r);
        name[len] = '\0';
        out = 0x5a5a5a5a;
        check(nw_node_type_from_name(name, &out));
        check(nw_activation_from_name(name, &out));
        check(nw_weight_from_name(name, &out));
        check(nw_dtype_from_name(name, &out));
        check(nw_autoencoder_input_from_name(name, &out));
        const char *ss = nw_status_string((int32_t)u32(r));
        if (!ss) __builtin_trap();
        break;
    }
    case 14: /* deriver_destroy */
        {
            int slot = u8(r) % MAXD;
            nw_deriver_destroy(s->derivers[slot]);
            s->derivers[slot] = NULL;
        }
        break;
    case 15: /* a new model (derivers keep the old one) */
        new_model(r, s);
        break;
    case 16: /* new token counts / latent count for the views that follow */
        s->T = u8(r) % 7;
        s->Tk = (u8(r) & 1) ? s->T : u8(r) % 7;
        s->nlat = 1 + u8(r) % 9;
        break;
    default: { /* dims_get with NULLs */
        nw_model_dims d;
        nw_model *m = (u8(r) & 1) ? s->model : NULL;
        nw_model_dims *dp = (u8(r) & 1) ? &d : NULL;
        status = nw_model_dims_get(m, dp);
        check(status);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rd r = {data, size};
    st s;
    memset(&s, 0, sizeof s);
    s.T = 3;
    s.Tk = 3;
    s.nlat = 4;
    s.nvocab = 5;
    s.dims = (nw_model_dims){1, 4, 1, 2, 4};
    if (nw_store_create(&s.store) != NW_OK) __builtin_trap();
    nw_set_num_threads(1); /* each input starts on one thread; step_new may change it */
    new_model(&r, &s);
    if (!s.model) {
        nw_model_dims d = {1, 4, 1, 2, 4};
        if (nw_model_create(&d, &s.model) != NW_OK) __builtin_trap();
        s.dims = d;
    }
    for (int i = 0; i < 64 && r.n > 0; i++) step(&r, &s);
    for (int i = 0; i < MAXD; i++) nw_deriver_destroy(s.derivers[i]);
    nw_model_destroy(s.model);
    nw_store_destroy(s.store);
    for (int i = 0; i < s.nblocks; i++) free(s.blocks[i]);
    return 0;
}

#ifdef NW_FUZZ_REPLAY_MAIN
#define FUZZ_REPLAY_NAME "fuzz"
#include "replay_main.h"
#endif
