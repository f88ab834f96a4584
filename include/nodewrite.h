/*
 * nodewrite.h — what one node of a transformer writes into the residual stream.
 *
 * The C interface of libnodewrite: a re-implementation of the single-node-write
 * deriver of OpenAI's transformer-debugger (TDB). A node is an MLP neuron at one
 * token, an attention head at one (query, key) token pair, or an autoencoder
 * latent at one token; its write is a vector of length d_model.
 *
 * Conventions used throughout
 * ---------------------------
 * - Every function that can fail returns an nw_status. NW_OK is 0; errors are
 *   negative. On failure nothing is written to any output argument, and
 *   nw_last_error_message() explains the failure, naming the argument.
 * - Enumerations are passed as int32_t and validated; an unknown value is
 *   NW_ERR_INVALID_ARGUMENT, never undefined behaviour.
 * - Outputs go into caller buffers with an explicit capacity in elements; a
 *   buffer that is too small is NW_ERR_BUFFER_TOO_SMALL, never an overrun.
 * - An output (out, out_shape, token_rows, values, ...) must share no byte with
 *   anything the call reads (its activations, weights, direction, node array) nor
 *   with another output of the call: NW_ERR_INVALID_ARGUMENT, never wrong values.
 *   Strided inputs are compared by the bytes from their lowest to highest element.
 * - Ownership is stated on every function: "copies" (the library keeps its own
 *   copy), "borrows until ..." (the caller keeps the memory alive and unchanged
 *   until then), "caller frees" (destroy with the matching _destroy function).
 *
 * Threading
 * ---------
 * - nw_model: configure it (nw_model_set_*, nw_model_remove_autoencoder) from one
 *   thread, before sharing it. Once configured it is read-only and may be used by any
 *   number of threads at once. Configuring it while another thread uses the model is a
 *   data race.
 * - nw_deriver: immutable once created; share it freely between threads. A
 *   deriver keeps its model alive (it holds a reference), and it captures the
 *   weights the model had when the deriver was created.
 * - nw_store: not synchronised. Do not nw_store_put while a derive reads the
 *   same store; use one store per thread, or stop writing before sharing it (any
 *   number of threads may then read it at once, the first reads of an attn.qk_probs
 *   entry included).
 * - nw_last_error_message() is thread-local.
 */
#ifndef NODEWRITE_H
#define NODEWRITE_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- version */

/** Version of the C ABI. Bumped only on an incompatible change; additions to
 *  this header (new functions, new enum values appended) keep it. */
#define NW_ABI_VERSION 1
#define NW_VERSION_MAJOR 1
#define NW_VERSION_MINOR 1
#define NW_VERSION_PATCH 0
#define NW_VERSION_STRING "1.1.0"

/* --------------------------------------------------------- export macro */

#if defined(__GNUC__) || defined(__clang__)
#  define NW_API __attribute__((visibility("default")))
#else
#  define NW_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ types */

/** Element types of a tensor view. Values are pinned; new ones are appended. */
enum nw_dtype {
    NW_DTYPE_F32 = 0,  /* IEEE float32 */
    NW_DTYPE_F16 = 1,  /* IEEE float16 */
    NW_DTYPE_BF16 = 2, /* bfloat16 (the top 16 bits of a float32) */
    NW_DTYPE_F64 = 3   /* IEEE float64 */
};

/** Node types, in TDB's NodeType values ("mlp_neuron", ...). Pinned. */
enum nw_node_type {
    NW_NODE_MLP_NEURON = 0,                  /* indices: (token, neuron) */
    NW_NODE_ATTENTION_HEAD = 1,              /* indices: (query token, key token, head) */
    NW_NODE_AUTOENCODER_LATENT = 2,          /* indices: (token, latent) */
    NW_NODE_MLP_AUTOENCODER_LATENT = 3,      /* indices: (token, latent) */
    NW_NODE_ATTENTION_AUTOENCODER_LATENT = 4 /* indices: (token, latent) */
};

/** Raw activations, in TDB's ActivationLocationType values, with their shapes
 *  (T = number of tokens). Pinned. */
enum nw_activation {
    NW_ACT_MLP_POST_ACT = 0,                        /* "mlp.post_act"  (T, d_ff) */
    NW_ACT_ATTN_QK_PROBS = 1,                       /* "attn.qk_probs" (T, T_k, n_heads) [query, key, head] */
    NW_ACT_ATTN_VALUE = 2,                          /* "attn.v"        (T_k, n_heads, d_head) */
    NW_ACT_ONLINE_AUTOENCODER_LATENT = 3,           /* "online_autoencoder_latent" (T, n_latents) */
    NW_ACT_ONLINE_MLP_AUTOENCODER_LATENT = 4,       /* "online_mlp_autoencoder_latent" (T, n_latents) */
    NW_ACT_ONLINE_ATTENTION_AUTOENCODER_LATENT = 5, /* "online_attention_autoencoder_latent" (T, n_latents) */
    NW_ACT_RESID_DELTA_MLP = 6,                     /* "resid.delta_mlp"  (T, d_model): the MLP layer's whole write */
    NW_ACT_RESID_DELTA_ATTN = 7,                    /* "resid.delta_attn" (T, d_model): the attention layer's whole write */
    /* The residual stream and attention's weighted values (added in 1.2, for edges): */
    NW_ACT_RESID_POST_EMB = 8,                      /* "resid.post_emb"  (T, d_model): after the embeddings; no layer (NW_NO_LAYER) */
    NW_ACT_RESID_POST_ATTN = 9,                     /* "resid.post_attn" (T, d_model): after layer L's attention */
    NW_ACT_RESID_POST_MLP = 10,                     /* "resid.post_mlp"  (T, d_model): after layer L's MLP */
    NW_ACT_ATTN_V_OUT = 11                          /* "attn.v_out" (T, n_heads, d_head): sum_k p[q,k,h] v[k,h,:] (TransformerLens: hook_z) */
};

/** Which pass of the model an activation comes from (TDB's PassType). Pinned. */
enum nw_pass {
    NW_PASS_FORWARD = 0, /* the activation itself */
    NW_PASS_BACKWARD = 1 /* the loss gradient at the activation, same shape */
};

/** Derived scalars computed from node writes, in TDB's DerivedScalarType values, for
 *  every node of one layer (nw_derive). g is the direction (TDB: the "final residual
 *  grad", the loss gradient at the input of the final layer norm), T the number of
 *  tokens, H = n_heads. "Write" is the node's write vector w (see nw_node_write).
 *  Pinned; new values are appended. */
enum nw_dst {
    NW_DST_MLP_WRITE_NORM = 0,                       /* (T, d_ff):  a[t,n] * |W_out[n]|, signed like a */
    NW_DST_MLP_WRITE_TO_FINAL_RESIDUAL_GRAD = 1,     /* (T, d_ff):  a[t,n] * (W_out[n] . g[t]) */
    NW_DST_UNFLATTENED_ATTN_WRITE_NORM = 2,          /* (T, T, H):  p[q,k,h] * |v[k,h] @ W_O[h]| for k <= q, 0 above
                                                        (every k for a model that is not causal) */
    NW_DST_UNFLATTENED_ATTN_WRITE_TO_FINAL_RESIDUAL_GRAD = 3, /* (T, T, H): w(q,k,h) . g[q] for k <= q, 0 above (likewise) */
    NW_DST_ATTN_WRITE_NORM = 4,                      /* (T(T+1)/2, H): the k <= q values, row q(q+1)/2 + k (causal models only) */
    NW_DST_ATTN_WRITE_TO_FINAL_RESIDUAL_GRAD = 5,    /* (T(T+1)/2, H): likewise */
    NW_DST_ATTN_WRITE_NORM_PER_SEQUENCE_TOKEN = 6,   /* (T, H): |sum_k w(q,k,h)| (norm of the sum; the keys q reads) */
    NW_DST_ATTN_WRITE_TO_FINAL_RESIDUAL_GRAD_PER_SEQUENCE_TOKEN = 7, /* (T, H): sum_k w(q,k,h) . g[q] */
    NW_DST_ONLINE_AUTOENCODER_WRITE_NORM = 8,        /* (T, n_latents): z[t,l] * |write of l|, signed like z; the autoencoder_latent autoencoder */
    NW_DST_ONLINE_MLP_AUTOENCODER_WRITE_NORM = 9,    /* (T, n_latents): likewise, mlp_autoencoder_latent */
    NW_DST_ONLINE_ATTENTION_AUTOENCODER_WRITE_NORM = 10, /* (T, n_latents): likewise, attention_autoencoder_latent */
    NW_DST_ONLINE_AUTOENCODER_WRITE_TO_FINAL_RESIDUAL_GRAD = 11,           /* (T, n_latents): w(t,l) . g[t] */
    NW_DST_ONLINE_MLP_AUTOENCODER_WRITE_TO_FINAL_RESIDUAL_GRAD = 12,       /* (T, n_latents) */
    NW_DST_ONLINE_ATTENTION_AUTOENCODER_WRITE_TO_FINAL_RESIDUAL_GRAD = 13, /* (T, n_latents) */
    NW_DST_MLP_LAYER_WRITE_NORM = 14,                /* (T, 1): |resid.delta_mlp[t]| */
    NW_DST_ATTN_LAYER_WRITE_NORM = 15,               /* (T, 1): |resid.delta_attn[t]| */
    NW_DST_MLP_LAYER_WRITE_TO_FINAL_RESIDUAL_GRAD = 16,  /* (T, 1): resid.delta_mlp[t] . g[t] */
    NW_DST_ATTN_LAYER_WRITE_TO_FINAL_RESIDUAL_GRAD = 17, /* (T, 1): resid.delta_attn[t] . g[t] */
    /* Edges (added in 1.2; nw_derive_node). "node" is the call's node argument; u the row its
       write lands on; g the loss gradient at the downstream activation (backward pass). */
    NW_DST_ATTN_QUERY_IN_EDGE_ATTRIBUTION = 18,  /* (T, T, H): d p[q,k,h] along node's write, only Q live, x g */
    NW_DST_ATTN_KEY_IN_EDGE_ATTRIBUTION = 19,    /* (T, T, H): likewise, only K live (rows q >= u) */
    NW_DST_ATTN_VALUE_IN_EDGE_ATTRIBUTION = 20,  /* (T, T, H): p[q,k,h] (dv[k,h] . g_v_out[q,h]) (column u) */
    NW_DST_MLP_IN_EDGE_ATTRIBUTION = 21,         /* (T, d_ff): gelu'(pre) d pre x g (row u) */
    NW_DST_ONLINE_AUTOENCODER_IN_EDGE_ATTRIBUTION = 22,  /* (T, n_latents): d z x g, the single loaded autoencoder */
    NW_DST_GRAD_OF_SINGLE_SUBNODE_ATTRIBUTION = 23,      /* (T, d_model): G, gradient at the residual of act x g of node (a subnode) */
    NW_DST_ATTN_OUT_EDGE_ATTRIBUTION = 24,       /* (T, T, H) per upstream layer: p (v W_O) . G[q] */
    NW_DST_MLP_OUT_EDGE_ATTRIBUTION = 25,        /* (T, d_ff): a (W_out[n] . G[t]) */
    NW_DST_ONLINE_AUTOENCODER_OUT_EDGE_ATTRIBUTION = 26, /* (T, n_latents): z (write . G[t]) */
    NW_DST_TOKEN_OUT_EDGE_ATTRIBUTION = 27,      /* (T, 1), no layer: resid.post_emb[t] . G[t] */
    NW_DST_MLP_ACT_TIMES_GRAD = 28,              /* (T, d_ff): a x g */
    NW_DST_UNFLATTENED_ATTN_ACT_TIMES_GRAD = 29, /* (T, T, H): p x g */
    NW_DST_ATTN_ACT_TIMES_GRAD = 30,             /* (T(T+1)/2, H) */
    NW_DST_ATTN_ACT_TIMES_GRAD_PER_SEQUENCE_TOKEN = 31,  /* (T, H): sum over k */
    NW_DST_TOKEN_ATTRIBUTION = 32,               /* (T, 1), no layer: sum_d resid.post_emb x its gradient */
    NW_DST_ONLINE_AUTOENCODER_ACT_TIMES_GRAD = 33,           /* (T, n_latents), the single loaded autoencoder */
    NW_DST_ONLINE_MLP_AUTOENCODER_ACT_TIMES_GRAD = 34,       /* (T, n_latents) */
    NW_DST_ONLINE_ATTENTION_AUTOENCODER_ACT_TIMES_GRAD = 35, /* (T, n_latents) */
    NW_DST_AUTOENCODER_LATENT_GRAD_WRT_RESIDUAL_INPUT = 36,  /* (T, d_model): D[t] = [z[t,l] > 0] encoder[l], node the trace latent */
    NW_DST_ATTN_WRITE_TO_LATENT = 37,                        /* (T, T, H): p (v W_O) . D[q] */
    NW_DST_ATTN_WRITE_TO_LATENT_SUMMED_OVER_HEADS = 38,      /* (T, T, 1) */
    NW_DST_FLATTENED_ATTN_WRITE_TO_LATENT_SUMMED_OVER_HEADS = 39,  /* (T(T+1)/2, 1) */
    NW_DST_ATTN_WRITE_TO_LATENT_PER_SEQUENCE_TOKEN = 40,     /* (T, H): (v_out W_O) . D[q] */
    NW_DST_FLATTENED_ATTN_WRITE_TO_LATENT_SUMMED_OVER_HEADS_BATCHED = 41, /* (T(T+1)/2, n_latents), every latent, no node */
    NW_DST_ATTN_WRITE_TO_LATENT_PER_SEQUENCE_TOKEN_BATCHED = 42           /* (T, H, n_latents), every latent, no node */
};

/** Model weights, in TDB's WeightLocationType values and canonical layouts. Pinned. */
enum nw_weight {
    NW_WEIGHT_MLP_TO_RESIDUAL = 0,      /* "mlp.to_residual"  (d_ff, d_model) */
    NW_WEIGHT_ATTN_TO_RESIDUAL = 1,     /* "attn.to_residual" (n_heads, d_head, d_model) */
    NW_WEIGHT_UNEMBEDDING = 2,          /* "unembedding" (d_model, n_vocab); no layer (NW_NO_LAYER) */
    NW_WEIGHT_LAYER_NORM_GAIN_FINAL = 3, /* "layer_norm_gain.final" (d_model,); no layer (NW_NO_LAYER) */
    /* The read side of a layer (added in 1.2, for edges): */
    NW_WEIGHT_LAYER_NORM_GAIN_PRE_ATTN = 4, /* "layer_norm_gain.pre_attn" (d_model,): ln_1's gain */
    NW_WEIGHT_LAYER_NORM_BIAS_PRE_ATTN = 5, /* "layer_norm_bias.pre_attn" (d_model,) */
    NW_WEIGHT_LAYER_NORM_GAIN_PRE_MLP = 6,  /* "layer_norm_gain.pre_mlp" (d_model,): ln_2's gain */
    NW_WEIGHT_LAYER_NORM_BIAS_PRE_MLP = 7,  /* "layer_norm_bias.pre_mlp" (d_model,) */
    NW_WEIGHT_ATTN_TO_QUERY = 8,            /* "attn.to_query" (n_heads, d_model, d_head) */
    NW_WEIGHT_ATTN_TO_KEY = 9,              /* "attn.to_key"   (n_heads, d_model, d_head) */
    NW_WEIGHT_ATTN_TO_VALUE = 10,           /* "attn.to_value" (n_heads, d_model, d_head) */
    NW_WEIGHT_ATTN_QUERY_BIAS = 11,         /* "attn.query_bias" (n_heads, d_head) */
    NW_WEIGHT_ATTN_KEY_BIAS = 12,           /* "attn.key_bias"   (n_heads, d_head) */
    NW_WEIGHT_ATTN_VALUE_BIAS = 13,         /* "attn.value_bias" (n_heads, d_head) */
    NW_WEIGHT_ATTN_OUT_BIAS = 14,           /* "attn.out_bias" (d_model,) */
    NW_WEIGHT_MLP_TO_HIDDEN = 15,           /* "mlp.to_hidden" (d_model, d_ff) */
    NW_WEIGHT_MLP_IN_BIAS = 16,             /* "mlp.in_bias" (d_ff,) */
    NW_WEIGHT_MLP_OUT_BIAS = 17             /* "mlp.out_bias" (d_model,) */
};

/** The layer argument for weights that belong to no layer (the unembedding and the
 *  final layer norm's gain). */
#define NW_NO_LAYER (-1)

/** What an autoencoder was trained on. Pinned. */
enum nw_autoencoder_input {
    /* MLP post-activations: the decoded vector (length d_ff) goes through
       mlp.to_residual of the same layer. TDB: "mlp_post_act". */
    NW_AE_INPUT_MLP_POST_ACT = 0,
    /* A residual-stream quantity ("resid_delta_mlp", "resid_delta_attn", ...):
       the decoded vector (length d_model) is the write. */
    NW_AE_INPUT_RESIDUAL = 1,
    /* The attention layer's weighted sum of values z, heads and d_head flattened (TDB:
       "attn_weighted_sum_of_values"; SAELens: an SAE on blocks.L.attn.hook_z): the decoded
       vector (length n_heads*d_head) goes through attn.to_residual of the same layer. */
    NW_AE_INPUT_ATTN_Z = 2
};

/** Who owns weight memory handed to the model. Pinned. */
enum nw_ownership {
    NW_COPY = 0,  /* the library copies the data (converted to contiguous float32) */
    NW_BORROW = 1 /* the caller keeps the memory alive and unchanged until the model
                     and every deriver created from it are destroyed */
};

/** A read-only view of caller memory, like DLPack's DLTensor.
 *  Element (i0, i1, ...) is at data + (i0*strides[0] + i1*strides[1] + ...) elements.
 *  Strides are in ELEMENTS, not bytes (numpy and pybind11 use bytes: divide by
 *  the item size). strides == NULL means contiguous row-major. Strides may be
 *  zero or negative; shape entries must be >= 0. The view itself (this struct,
 *  shape and strides arrays) is only read during the call that receives it. */
typedef struct nw_tensor_view {
    const void *data;
    int32_t dtype;          /* enum nw_dtype */
    int32_t ndim;           /* must be the ndim the receiving function expects */
    const int64_t *shape;   /* ndim entries */
    const int64_t *strides; /* ndim entries, in elements; NULL = contiguous */
} nw_tensor_view;

/** Dimensions of a transformer. All must be >= 1. */
typedef struct nw_model_dims {
    int64_t n_layers, d_model, n_heads, d_head, d_ff;
} nw_model_dims;

/** A node, as TDB's NodeIndex for the forward pass (node writes exist only for
 *  the forward pass, so there is no pass type). Indices follow TDB's order for
 *  the node type (see enum nw_node_type); negative indices count from the end,
 *  as in Python. */
typedef struct nw_node_index {
    int32_t node_type; /* enum nw_node_type */
    int32_t layer;     /* 0 ... n_layers-1 */
    int32_t n_indices; /* 2, or 3 for attention heads */
    int32_t reserved;  /* must be 0 */
    int64_t indices[4]; /* NW_INDEX_NONE where TDB has None (a trace latent's token, nw_derive_node) */
} nw_node_index;

/** Which part of an attention head a downstream subnode is (TDB's AttnSubNodeIndex's
 *  q_k_or_v: "attn.q", "attn.k", "attn.v"): nw_derive_node's subnode argument. Pinned. */
enum nw_subnode {
    NW_SUBNODE_NONE = 0,
    NW_SUBNODE_Q = 1,
    NW_SUBNODE_K = 2,
    NW_SUBNODE_V = 3
};

/** An index that is not given (TDB's None), as the token of a trace latent
 *  NodeIndex(attention_autoencoder_latent, L, (None, latent)). */
#define NW_INDEX_NONE INT64_MIN

/** One raw activation a deriver needs from the store. */
typedef struct nw_requirement {
    int32_t activation; /* enum nw_activation */
    int32_t layer;
} nw_requirement;

/* ----------------------------------------------------------------- errors */

typedef int32_t nw_status;

/** Status codes. Pinned, never reused; new ones are appended. */
enum nw_status_code {
    NW_OK = 0,
    NW_ERR_INVALID_ARGUMENT = -1,   /* NULL pointer, bad enum value, reserved field set, ... */
    NW_ERR_INDEX_OUT_OF_RANGE = -2, /* a node index or layer outside its dimension (TDB: IndexError) */
    NW_ERR_SHAPE_MISMATCH = -3,     /* a view's ndim or shape disagrees with the model or another view */
    NW_ERR_UNSUPPORTED_DTYPE = -4,  /* a dtype value that is not an nw_dtype */
    NW_ERR_MISSING_INPUT = -5,      /* a weight, autoencoder or activation that is needed is not there */
    NW_ERR_UNSUPPORTED = -6,        /* valid, but not something this library does */
    NW_ERR_OUT_OF_MEMORY = -7,      /* an allocation would be too large, or failed */
    NW_ERR_BUFFER_TOO_SMALL = -8,   /* an output capacity is smaller than needed */
    NW_ERR_STALE_INPUT = -9         /* borrowed memory or a mapped file changed since it was handed over */
};

/* ---------------------------------------------------------------- objects */

/** A transformer's dimensions and output weights (and autoencoder decoders).
 *  Create with nw_model_create; caller frees with nw_model_destroy. */
typedef struct nw_model nw_model;

/** Borrowed raw activations keyed by (activation, layer).
 *  Create with nw_store_create; caller frees with nw_store_destroy. */
typedef struct nw_store nw_store;

/** The node-write deriver of one node (TDB's ScalarDeriver for SINGLE_NODE_WRITE).
 *  Create with nw_node_write_deriver_create; caller frees with nw_deriver_destroy. */
typedef struct nw_deriver nw_deriver;

/* -------------------------------------------------------------- functions */

/* -- version and errors -- */

/** NW_ABI_VERSION of the library that is loaded (compare with the header's). */
NW_API uint32_t nw_abi_version(void);

/** The library's version, "MAJOR.MINOR.PATCH". Static storage; never NULL. */
NW_API const char *nw_version_string(void);

/** The name of a status ("NW_OK", "NW_ERR_INDEX_OUT_OF_RANGE", ...), or
 *  "NW_ERR_UNKNOWN" for a value that is not a status. Static storage. */
NW_API const char *nw_status_string(nw_status status);

/** A message explaining the last failure of a function of this library on the
 *  calling thread ("" if none). Thread-local storage, valid until the next call
 *  of a library function on this thread; copy it to keep it. Never NULL.
 *  A successful call does not clear it. */
NW_API const char *nw_last_error_message(void);

/** The number of calls of this library's functions made so far on the calling thread,
 *  this one excepted: a diagnostic for bindings that promise one library call per
 *  operation (a thread-local counter; it costs one increment per call). */
NW_API uint64_t nw_thread_call_count(void);

/* -- names (TDB's string values) -- */

/** TDB's name of a node type ("mlp_neuron", "attention_head", "autoencoder_latent",
 *  "mlp_autoencoder_latent", "attention_autoencoder_latent"), of an activation
 *  ("mlp.post_act", "attn.qk_probs", "attn.v", "online_autoencoder_latent",
 *  "online_mlp_autoencoder_latent", "online_attention_autoencoder_latent"), of a
 *  weight ("mlp.to_residual", "attn.to_residual"), or of a dtype ("float32",
 *  "float16", "bfloat16", "float64"). The activations and weights added in 1.1:
 *  "resid.delta_mlp", "resid.delta_attn"; "unembedding", "layer_norm_gain.final".
 *  Static storage; NULL for an unknown value. */
NW_API const char *nw_node_type_name(int32_t node_type);
NW_API const char *nw_activation_name(int32_t activation);
NW_API const char *nw_weight_name(int32_t weight);
NW_API const char *nw_dtype_name(int32_t dtype);

/** The value of a name listed above. Writes *out only on success.
 *  Returns NW_OK, or NW_ERR_INVALID_ARGUMENT for NULL arguments or an unknown name. */
NW_API nw_status nw_node_type_from_name(const char *name, int32_t *out);
NW_API nw_status nw_activation_from_name(const char *name, int32_t *out);
NW_API nw_status nw_weight_from_name(const char *name, int32_t *out);
NW_API nw_status nw_dtype_from_name(const char *name, int32_t *out);

/** The autoencoder input kind for TDB's DerivedScalarType value of what the
 *  autoencoder was trained on: "mlp_post_act" -> NW_AE_INPUT_MLP_POST_ACT;
 *  "resid_delta_mlp", "resid_delta_attn", "resid_post_mlp", "resid_post_attn",
 *  "resid_post_embedding" -> NW_AE_INPUT_RESIDUAL; "attn_weighted_sum_of_values" ->
 *  NW_AE_INPUT_ATTN_Z.
 *  Returns NW_OK, NW_ERR_INVALID_ARGUMENT (NULL), or NW_ERR_UNSUPPORTED (a name
 *  that is not a supported input). */
NW_API nw_status nw_autoencoder_input_from_name(const char *name, int32_t *out);

/** The i-th name nw_autoencoder_input_from_name accepts (i = 0, 1, ...), or NULL past
 *  the last. Static storage. */
NW_API const char *nw_autoencoder_input_source_name(size_t i);

/* -- facts: the library's tables --
 *
 * What each node type, derived scalar, activation, weight, dtype, autoencoder input and
 * SAELens hook is, as data (ggml's type traits), so that bindings ask instead of
 * re-encoding. Each info struct starts with a size field and only grows at its end:
 * the caller sets out->size = sizeof(the struct as its header declares it); the library
 * fills the first min(out->size, its own size) bytes, sets out->size to the number of
 * bytes it filled, and leaves any bytes past that untouched. Strings are static storage.
 * Enumerate a table by asking for 0, 1, ... until NW_ERR_INDEX_OUT_OF_RANGE.
 * Every _info_get returns NW_OK; NW_ERR_INVALID_ARGUMENT (out NULL, or out->size
 * smaller than the struct's first version); NW_ERR_INDEX_OUT_OF_RANGE (a value that is
 * not in the table: negative, or past the last). */

/** Symbols of a dimension in a shape rule. Pinned; new ones are appended. */
enum nw_dim {
    NW_DIM_NONE = 0,          /* an unused slot */
    NW_DIM_ONE = 1,           /* 1 */
    NW_DIM_TOKENS = 2,        /* T, the number of tokens (query tokens where there are two) */
    NW_DIM_TOKEN_PAIRS = 3,   /* T(T+1)/2, (query, key <= query) pairs, row q(q+1)/2 + k */
    NW_DIM_HEADS = 4,         /* n_heads */
    NW_DIM_D_HEAD = 5,        /* d_head */
    NW_DIM_D_MODEL = 6,       /* d_model */
    NW_DIM_D_FF = 7,          /* d_ff */
    NW_DIM_LATENTS = 8,       /* n_latents of the autoencoder involved */
    NW_DIM_VOCAB = 9,         /* n_vocab */
    NW_DIM_HEAD_CHANNELS = 10 /* n_heads * d_head */
};

/** How a derived scalar lays out its values. Pinned; new ones are appended. */
enum nw_dst_layout {
    NW_LAYOUT_NODES = 0,              /* (T, width): one value per node (neurons, latents) */
    NW_LAYOUT_UNFLATTENED = 1,        /* (T, T, n_heads): [query, key, head] */
    NW_LAYOUT_FLATTENED = 2,          /* (T(T+1)/2, n_heads): the k <= q entries, row q(q+1)/2 + k */
    NW_LAYOUT_PER_SEQUENCE_TOKEN = 3, /* (T, n_heads): a head's write summed over keys */
    NW_LAYOUT_LAYER = 4,              /* (T, 1): the whole layer's write (a resid.delta activation) */
    NW_LAYOUT_RESIDUAL = 5,           /* (T, d_model): a residual-stream vector per token (a gradient) */
    NW_LAYOUT_TOKENS = 6              /* (T, 1), no layer: one value per token */
};

/** What a derived scalar measures of each write. Pinned; new ones are appended. */
enum nw_dst_quantity {
    NW_QUANTITY_NORM = 0,      /* |w|, signed like the node's activation */
    NW_QUANTITY_PROJECTION = 1,    /* w . g[t] (a direction is required) */
    NW_QUANTITY_IN_EDGE = 2,       /* d act along an upstream node's write, x its loss gradient (nw_derive_node) */
    NW_QUANTITY_OUT_EDGE = 3,      /* an upstream write . G, G a downstream subnode's gradient (nw_derive_node) */
    NW_QUANTITY_GRADIENT = 4,      /* a gradient at the residual stream (nw_derive_node) */
    NW_QUANTITY_ACT_TIMES_GRAD = 5, /* an activation x its loss gradient (nw_derive_node, no node) */
    NW_QUANTITY_TO_LATENT = 6      /* attention's write . an attention-autoencoder latent's gradient (nw_derive_node) */
};

/** A node type (enum nw_node_type). */
typedef struct nw_node_type_info {
    size_t size;                /* in: sizeof(nw_node_type_info); out: bytes filled */
    const char *name;           /* TDB's NodeType value, e.g. "attention_head" */
    int32_t n_indices;          /* 2, or 3 for attention heads */
    int32_t is_latent;          /* 1 for autoencoder latents (they need an autoencoder) */
    const char *index_names[4]; /* n_indices names in TDB's order, e.g. "query token", "key token",
                                   "head"; the first is the token the write lands on; NULL after */
    int32_t n_activations;      /* activations it reads (1 or 2) */
    int32_t activations[4];     /* enum nw_activation; the first holds the node's scalar */
    int32_t weight;             /* enum nw_weight of its output weight, or -1 (latents: their
                                   autoencoder's input kind decides) */
    int32_t width_dim;          /* enum nw_dim of its last index: D_FF, HEADS or LATENTS */
} nw_node_type_info;
NW_API nw_status nw_node_type_info_get(int32_t node_type, nw_node_type_info *out);

/** A derived scalar (enum nw_dst). Its output shape is dims[0 .. ndim) with T from the
 *  store, n_latents from the autoencoder of node_type. */
typedef struct nw_dst_info {
    size_t size;             /* in: sizeof(nw_dst_info); out: bytes filled */
    const char *name;        /* TDB's DerivedScalarType value */
    int32_t node_type;       /* enum nw_node_type whose nodes it covers; -1 for NW_LAYOUT_LAYER */
    int32_t layout;          /* enum nw_dst_layout */
    int32_t quantity;        /* enum nw_dst_quantity */
    int32_t needs_direction; /* 1: a direction is required; 0: none may be given */
    int32_t has_layer;       /* 1: computed at a layer (0 for layer-less DSTs) */
    int32_t ndim;            /* 2 or 3 */
    int32_t dims[4];         /* enum nw_dim, ndim entries, NW_DIM_NONE after */
    int32_t n_activations;   /* activations it reads at its layer */
    int32_t activations[4];  /* enum nw_activation */
} nw_dst_info;
NW_API nw_status nw_dst_info_get(int32_t dst, nw_dst_info *out);

/** A raw activation (enum nw_activation), in TDB's layout. */
typedef struct nw_activation_info {
    size_t size;              /* in: sizeof(nw_activation_info); out: bytes filled */
    const char *name;         /* TDB's ActivationLocationType value */
    int32_t ndim;             /* 2 or 3 */
    int32_t dims[4];          /* enum nw_dim, e.g. attn.qk_probs (TOKENS, TOKENS, HEADS) */
    int32_t has_layer;        /* 1: kept per layer */
    int32_t latent_node_type; /* for an online_*autoencoder_latent activation, the enum
                                 nw_node_type whose latents it holds; else -1 */
} nw_activation_info;
NW_API nw_status nw_activation_info_get(int32_t activation, nw_activation_info *out);

/** A model weight (enum nw_weight), in its canonical layout. */
typedef struct nw_weight_info {
    size_t size;       /* in: sizeof(nw_weight_info); out: bytes filled */
    const char *name;  /* TDB's WeightLocationType value */
    int32_t has_layer; /* 0: set with layer = NW_NO_LAYER */
    int32_t ndim;
    int32_t dims[4];   /* enum nw_dim, e.g. attn.to_residual (HEADS, D_HEAD, D_MODEL) */
} nw_weight_info;
NW_API nw_status nw_weight_info_get(int32_t weight, nw_weight_info *out);

/** An element type (enum nw_dtype). */
typedef struct nw_dtype_info {
    size_t size;       /* in: sizeof(nw_dtype_info); out: bytes filled */
    const char *name;  /* "float32", "float16", "bfloat16", "float64" */
    int32_t item_size; /* bytes per element */
    int32_t reserved;  /* 0 */
} nw_dtype_info;
NW_API nw_status nw_dtype_info_get(int32_t dtype, nw_dtype_info *out);

/** What an autoencoder was trained on (enum nw_autoencoder_input). */
typedef struct nw_autoencoder_input_info {
    size_t size;       /* in: sizeof(nw_autoencoder_input_info); out: bytes filled */
    const char *name;  /* "mlp_post_act", "residual" or "attn_z" */
    int32_t input_dim; /* enum nw_dim of n_inputs: D_FF, D_MODEL or HEAD_CHANNELS */
    int32_t weight;    /* enum nw_weight the decoded vector goes through, or -1 (it is the write) */
} nw_autoencoder_input_info;
NW_API nw_status nw_autoencoder_input_info_get(int32_t input, nw_autoencoder_input_info *out);

/** An SAELens hook nodewrite reads SAEs on: the hook is "blocks.L." + suffix. */
typedef struct nw_saelens_hook_info {
    size_t size;           /* in: sizeof(nw_saelens_hook_info); out: bytes filled */
    const char *suffix;    /* "hook_mlp_out", "mlp.hook_post", "hook_attn_out", "attn.hook_z",
                              "hook_resid_pre", "hook_resid_mid", "hook_resid_post" */
    int32_t node_type;     /* enum nw_node_type of its latents */
    int32_t input;         /* enum nw_autoencoder_input */
    const char *tdb_input; /* TDB's DerivedScalarType of what it reads ("resid_delta_mlp", ...);
                              for hook_resid_pre "resid_post_mlp" (of layer L-1), and
                              "resid_post_embedding" at L = 0 (two rows) */
    int32_t min_layer;     /* the row holds for layers L >= min_layer ... */
    int32_t max_layer;     /* ... and L <= max_layer, or any L when -1 (hook_resid_pre has a
                              row for L = 0 and one for L >= 1; nw_saelens_hook_find picks) */
} nw_saelens_hook_info;
NW_API nw_status nw_saelens_hook_info_get(int32_t i, nw_saelens_hook_info *out);

/** The row of the SAELens hook table (nw_saelens_hook_info_get) that a hook name
 *  "blocks.L.<suffix>" is, into *row, and its layer L into *layer. Writes only on success.
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL; a name not of that form);
 *  NW_ERR_UNSUPPORTED (a "blocks.L." hook nodewrite does not read). */
NW_API nw_status nw_saelens_hook_find(const char *hook_name, int32_t *row, int32_t *layer);

/* -- model -- */

/** Creates a model with the given dimensions and no weights.
 *  Ownership: copies *dims; caller frees *out with nw_model_destroy.
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL pointer, a dimension < 1,
 *  n_layers > INT32_MAX (layers are int32_t), or d_model*d_ff or
 *  n_heads*d_head*d_model overflowing int64);
 *  NW_ERR_OUT_OF_MEMORY. */
NW_API nw_status nw_model_create(const nw_model_dims *dims, nw_model **out);

/** Releases the caller's reference to a model. Derivers created from it keep it
 *  alive until they are destroyed. NULL is a no-op. */
NW_API void nw_model_destroy(nw_model *model);

/** Copies the model's dimensions into *out. Returns NW_OK or NW_ERR_INVALID_ARGUMENT. */
NW_API nw_status nw_model_dims_get(const nw_model *model, nw_model_dims *out);

/** Sets an output weight of one layer, replacing any earlier one.
 *  weight: NW_WEIGHT_MLP_TO_RESIDUAL, shape (d_ff, d_model); or
 *  NW_WEIGHT_ATTN_TO_RESIDUAL, shape (n_heads, d_head, d_model); or a weight of no
 *  layer, with layer = NW_NO_LAYER: NW_WEIGHT_UNEMBEDDING (d_model, n_vocab), n_vocab >= 1
 *  taken from the view, or NW_WEIGHT_LAYER_NORM_GAIN_FINAL (d_model,). Any dtype and
 *  strides (e.g. the permuted views TDB's ModelContext.get_weight returns).
 *  Ownership: NW_COPY copies the data now; NW_BORROW borrows it until the model
 *  and every deriver created from it are destroyed. The view struct itself is
 *  only read during this call.
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL, bad enum, bad ownership,
 *  negative shape, element count or byte span overflowing int64);
 *  NW_ERR_INDEX_OUT_OF_RANGE (layer, or a layer other than NW_NO_LAYER for a weight of
 *  no layer); NW_ERR_UNSUPPORTED_DTYPE;
 *  NW_ERR_SHAPE_MISMATCH (ndim or shape); NW_ERR_OUT_OF_MEMORY (NW_COPY). */
NW_API nw_status nw_model_set_weight(nw_model *model, int32_t weight, int32_t layer,
                                     const nw_tensor_view *w, int32_t ownership);

/** Sets the decoder of the autoencoder used by latent nodes of node_type
 *  (NW_NODE_AUTOENCODER_LATENT, NW_NODE_MLP_AUTOENCODER_LATENT or
 *  NW_NODE_ATTENTION_AUTOENCODER_LATENT) at one layer. A slot holds one autoencoder: an
 *  occupied slot is NW_ERR_INVALID_ARGUMENT (empty it first with nw_model_remove_autoencoder).
 *  decoder: (n_latents, n_inputs), TDB's decoder.weight.T; n_inputs must be d_ff
 *  for NW_AE_INPUT_MLP_POST_ACT, d_model for NW_AE_INPUT_RESIDUAL and n_heads*d_head for
 *  NW_AE_INPUT_ATTN_Z.
 *  An MLP and an attention autoencoder may be set together; each node type uses
 *  its own. Ownership as nw_model_set_weight.
 *  Returns as nw_model_set_weight, and NW_ERR_INVALID_ARGUMENT for a node_type
 *  that is not a latent type or a bad input kind. */
NW_API nw_status nw_model_set_autoencoder(nw_model *model, int32_t node_type, int32_t layer,
                                          int32_t input, const nw_tensor_view *decoder,
                                          int32_t ownership);

/** Whether the model's attention is causal (every query attends to keys <= itself), as
 *  TDB's and TransformerLens's default models are. A new model is causal. For a causal
 *  model, attn.qk_probs with probability above the diagonal (an entry with k > q that is
 *  not +0 or -0; NaN and inf count) is refused with NW_ERR_INVALID_ARGUMENT by every call
 *  that reads it, the message naming the first such entry (it is a layout mistake, query
 *  and key swapped, or a non-causal model); the entry is scanned on its first read (once
 *  per nw_store_put; a SIMD pass over the upper triangle). Nothing at a key after the query
 *  is read: a node (q, k > q, h) writes exactly 0. A non-causal model (causal = 0) reads
 *  every key. Derivers keep the causality the model had when they were created. Configure
 *  it before sharing the model (see Threading).
 *  Returns NW_OK or NW_ERR_INVALID_ARGUMENT (NULL, causal not 0 or 1). */
NW_API nw_status nw_model_set_causal(nw_model *model, int32_t causal);

/** 1 if the model is causal, 0 if not, into *out.
 *  Returns NW_OK or NW_ERR_INVALID_ARGUMENT (NULL). */
NW_API nw_status nw_model_get_causal(const nw_model *model, int32_t *out);

/** Empties the autoencoder slot (node_type, layer) so that another autoencoder can be set
 *  there (nw_model_set_autoencoder refuses an occupied slot). Empty already is not an error.
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL, not a latent node type);
 *  NW_ERR_INDEX_OUT_OF_RANGE (layer). */
NW_API nw_status nw_model_remove_autoencoder(nw_model *model, int32_t node_type, int32_t layer);

/** What the model holds in one weight slot (nw_model_weight_get). */
typedef struct nw_weight_state {
    size_t size;       /* in: sizeof(nw_weight_state); out: bytes filled */
    int32_t present;   /* 0: not set (everything below is 0) */
    int32_t dtype;     /* enum nw_dtype as held (NW_COPY: F32; a checkpoint's tensors: the file's) */
    int32_t ownership; /* enum nw_ownership (a checkpoint's tensors, read into the library's
                          memory: NW_COPY) */
    int32_t ndim;
    int64_t shape[4];  /* ndim entries, in the weight's canonical layout */
} nw_weight_state;

/** The state of weight slot (weight, layer): layer = NW_NO_LAYER for a weight of no
 *  layer. Writes out as the info structs do (out->size first).
 *  Returns NW_OK (also for an empty slot: present = 0); NW_ERR_INVALID_ARGUMENT (NULL,
 *  bad enum, out->size too small); NW_ERR_INDEX_OUT_OF_RANGE (layer). */
NW_API nw_status nw_model_weight_get(const nw_model *model, int32_t weight, int32_t layer,
                                     nw_weight_state *out);

/** What the model holds in one autoencoder slot (nw_model_autoencoder_get). */
typedef struct nw_autoencoder_state {
    size_t size;       /* in: sizeof(nw_autoencoder_state); out: bytes filled */
    int32_t present;   /* 0: no autoencoder (everything below is 0) */
    int32_t input;     /* enum nw_autoencoder_input */
    int32_t dtype;     /* enum nw_dtype of the decoder as held */
    int32_t ownership; /* enum nw_ownership */
    int64_t n_latents;
    int64_t n_inputs;
} nw_autoencoder_state;

/** The state of the autoencoder slot (node_type, layer) (a latent node type).
 *  Returns as nw_model_weight_get, and NW_ERR_INVALID_ARGUMENT for a node type that is
 *  not a latent type. */
NW_API nw_status nw_model_autoencoder_get(const nw_model *model, int32_t node_type, int32_t layer,
                                          nw_autoencoder_state *out);

/* -- store -- */

/** Creates an empty activation store. Caller frees *out with nw_store_destroy.
 *  Returns NW_OK, NW_ERR_INVALID_ARGUMENT (NULL) or NW_ERR_OUT_OF_MEMORY. */
NW_API nw_status nw_store_create(nw_store **out);

/** Destroys a store (not the memory its views borrow). NULL is a no-op. */
NW_API void nw_store_destroy(nw_store *store);

/** Puts the raw activation (activation, layer), replacing any earlier one.
 *  Shapes are checked against each other and the model when a derive reads
 *  them; here only the view itself is validated (ndim as listed in enum
 *  nw_activation, shape >= 0, no int64 overflow of count or span). The first read
 *  of an attn.qk_probs entry by a causal model scans it above the diagonal (see
 *  nw_model_set_causal): once per put, whatever the number of calls or threads.
 *  Ownership: borrows t->data until the store is destroyed or the entry
 *  replaced; copies the view's shape and strides.
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL, bad enum, layer < 0, bad shape);
 *  NW_ERR_UNSUPPORTED_DTYPE; NW_ERR_SHAPE_MISMATCH (ndim); NW_ERR_OUT_OF_MEMORY. */
NW_API nw_status nw_store_put(nw_store *store, int32_t activation, int32_t layer,
                              const nw_tensor_view *t);

/** Removes (activation, layer) if present; absent is not an error.
 *  Returns NW_OK, or NW_ERR_INVALID_ARGUMENT (NULL, bad enum, layer < 0). */
NW_API nw_status nw_store_remove(nw_store *store, int32_t activation, int32_t layer);

/** Removes every entry. NULL is a no-op. */
NW_API void nw_store_clear(nw_store *store);

/* -- node-write deriver -- */

/** Creates the node-write deriver of one node of a model. Validates everything
 *  that does not depend on the activations: the node type, layer, number of
 *  indices, the non-token indices against the model (neuron < d_ff, head <
 *  n_heads, latent < n_latents; negative ones count from the end), and that the
 *  weights (and the node's autoencoder) it needs are set.
 *  Ownership: copies *node; the deriver holds a reference to the model and the
 *  weights it uses; caller frees *out with nw_deriver_destroy.
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL, bad node type, n_indices,
 *  reserved != 0); NW_ERR_INDEX_OUT_OF_RANGE (layer or an index);
 *  NW_ERR_MISSING_INPUT (a weight or autoencoder not set); NW_ERR_OUT_OF_MEMORY. */
NW_API nw_status nw_node_write_deriver_create(const nw_model *model, const nw_node_index *node,
                                              nw_deriver **out);

/** Destroys a deriver. NULL is a no-op. */
NW_API void nw_deriver_destroy(nw_deriver *deriver);

/** The raw activations the deriver reads (attention: attn.qk_probs and attn.v
 *  at the node's layer; MLP: mlp.post_act; latents: the node type's online_*
 *  latent). Writes min(needed, capacity) entries to out and the number needed
 *  to *count; out may be NULL when capacity is 0 (to ask for the count).
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL); NW_ERR_BUFFER_TOO_SMALL
 *  (capacity < needed: *count is written, out is not). */
NW_API nw_status nw_deriver_requirements(const nw_deriver *deriver, nw_requirement *out,
                                         size_t capacity, size_t *count);

/** The shape of the deriver's output for this store: (T, d_model), T being the
 *  number of (query) tokens of its activations. Checks that every activation the
 *  deriver reads is present and agrees with the model and the others (as a derive
 *  does), but not the node's token indices. Writes shape[0..1].
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT; NW_ERR_MISSING_INPUT;
 *  NW_ERR_SHAPE_MISMATCH. */
NW_API nw_status nw_deriver_output_shape(const nw_deriver *deriver, const nw_store *store,
                                         int64_t shape[2]);

/** Derives TDB's output: a (T, d_model) row-major float32 array, zero except the
 *  node's token row (the query token for attention), into out[0 .. T*d_model).
 *  The store must not change during the call.
 *  Ownership: borrows store's views during the call; out is the caller's.
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL); NW_ERR_MISSING_INPUT (an
 *  activation not in the store); NW_ERR_SHAPE_MISMATCH (an activation's shape
 *  disagrees with the model or another activation); NW_ERR_INDEX_OUT_OF_RANGE
 *  (a token index outside T); NW_ERR_BUFFER_TOO_SMALL (out_len < T*d_model).
 *  On any error, out is untouched. */
NW_API nw_status nw_deriver_derive(const nw_deriver *deriver, const nw_store *store,
                                   float *out, size_t out_len);

/** Derives the write vector alone: d_model float32 values into out, and the
 *  (non-negative) token row it belongs to into *token_row (token_row may be NULL).
 *  Returns as nw_deriver_derive, with out_len >= d_model. */
NW_API nw_status nw_deriver_derive_vector(const nw_deriver *deriver, const nw_store *store,
                                          float *out, size_t out_len, int64_t *token_row);

/** One-shot: the (T, d_model) output of the node-write deriver of node.
 *  Same as create + derive + destroy, without allocating.
 *  Returns as nw_node_write_deriver_create and nw_deriver_derive. */
NW_API nw_status nw_node_write(const nw_model *model, const nw_store *store,
                               const nw_node_index *node, float *out, size_t out_len);

/** Write vectors of many nodes: row i of out (n_nodes x d_model, row-major)
 *  is the write vector of nodes[i], and token_rows[i] (if token_rows is not
 *  NULL) its token row. All nodes are validated before anything is written:
 *  on error, out and token_rows are untouched and nw_last_error_message()
 *  names the first failing node.
 *  Returns as nw_node_write, with out_len >= n_nodes*d_model. */
NW_API nw_status nw_node_write_vectors(const nw_model *model, const nw_store *store,
                                       const nw_node_index *nodes, size_t n_nodes,
                                       float *out, size_t out_len, int64_t *token_rows);

/* -- one node, one crossing -- */

/** Flags of calls that fill large, mostly-zero outputs. Pinned; new ones are appended. */
enum nw_output_flags {
    /* The caller promises that out[0 .. the output's size) holds zeros already (for
       example fresh memory from calloc, which the system maps lazily): entries that are
       zero are then not written, so pages that stay zero are never touched. */
    NW_OUT_ZEROED = 1
};

/** nw_node_write that also reports the size of its output: writes (T, d_model) to
 *  out_shape on NW_OK and on NW_ERR_BUFFER_TOO_SMALL (out untouched then), so a
 *  caller can learn T without creating a deriver. out may be NULL when out_len is 0.
 *  flags: 0 or NW_OUT_ZEROED (then only the token row is written).
 *  Returns as nw_node_write, and NW_ERR_INVALID_ARGUMENT for an unknown flag. */
NW_API nw_status nw_node_write_sized(const nw_model *model, const nw_store *store,
                                     const nw_node_index *node, uint32_t flags, float *out,
                                     size_t out_len, int64_t out_shape[2]);

/* -- node sets -- */

/** The number of tensor indices of a node type (2, or 3 for attention heads), or 0 for a
 *  value that is not an nw_node_type. */
NW_API int32_t nw_node_type_index_count(int32_t node_type);

/** Write vectors of a node set: n_nodes nodes of one node type at one layer, given as a
 *  row-major int64 array indices[n_nodes][n_indices] in TDB's index order for the type
 *  (n_indices must be nw_node_type_index_count(node_type); negative indices count from
 *  the end). Row i of out (n_nodes x d_model, row-major float32) is the write vector of
 *  node i, and token_rows[i] (if token_rows is not NULL) the token row it lands on.
 *  Every index is validated before anything is written; an empty set (n_nodes = 0) is
 *  valid and writes nothing. Nodes that share a weight matrix (one head; all neurons of a
 *  layer) are computed together as one blocked product, on nw_get_num_threads() threads;
 *  the result is bit-identical for every thread count and equal to nw_node_write's row.
 *  Ownership: indices, out and token_rows are the caller's, read or written during the call.
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL, bad node type, n_indices, n_nodes too
 *  large); NW_ERR_INDEX_OUT_OF_RANGE (layer, or any index; the message names the node);
 *  NW_ERR_MISSING_INPUT; NW_ERR_SHAPE_MISMATCH; NW_ERR_BUFFER_TOO_SMALL (out_len <
 *  n_nodes*d_model); NW_ERR_OUT_OF_MEMORY. On any error nothing is written. */
NW_API nw_status nw_node_writes(const nw_model *model, const nw_store *store, int32_t node_type,
                                int32_t layer, const int64_t *indices, size_t n_nodes,
                                size_t n_indices, float *out, size_t out_len, int64_t *token_rows);

/* -- threads -- */

/** Sets the number of threads the library's node-set and layer-wide computations use
 *  (process-wide). n >= 1 sets it; n = 0 restores the default: the environment variable
 *  NODEWRITE_NUM_THREADS if it holds a positive integer, else the number of CPUs this
 *  process may run on. Results do not depend on it.
 *  Returns NW_OK, or NW_ERR_INVALID_ARGUMENT for n < 0 or n > 1024. */
NW_API nw_status nw_set_num_threads(int32_t n);

/** The number of threads in use (see nw_set_num_threads); always >= 1. */
NW_API int32_t nw_get_num_threads(void);

/* -- derived scalars (TDB's write family) -- */

/** TDB's name of a derived scalar ("mlp_write_norm", ...; see enum nw_dst), or NULL for
 *  an unknown value. Static storage. */
NW_API const char *nw_dst_name(int32_t dst);

/** The value of a derived scalar's TDB name. Writes *out only on success.
 *  Returns NW_OK, or NW_ERR_INVALID_ARGUMENT for NULL arguments or an unknown name. */
NW_API nw_status nw_dst_from_name(const char *name, int32_t *out);

/** Derives one derived scalar (enum nw_dst) for every node of one layer into out,
 *  row-major float32, in TDB's shape (see enum nw_dst). The shape is written to
 *  out_shape[0 .. *out_ndim) and its rank to *out_ndim on NW_OK and on
 *  NW_ERR_BUFFER_TOO_SMALL (out untouched then; out may be NULL when out_len is 0).
 *  direction: NULL for the norms; for the *_to_final_residual_grad values, a (T, d_model)
 *  view (row t is used for writes landing on token t) or a (d_model,) view used for every
 *  token; any dtype and strides. Rows of the direction that are all zero cost nothing.
 *  Reads the activations of the layer the DST needs (mlp.post_act; attn.qk_probs and
 *  attn.v; the autoencoder's online_* latents; resid.delta_*), and the weights.
 *  Nothing of size (T, T, n_heads, d_head), (T, T, n_heads, d_model) or
 *  (n_latents, d_model) is formed. For a causal model (nw_model_set_causal) entries above
 *  the diagonal (k > q) are exactly 0 and nothing at a key after its query is read; for a
 *  model that is not causal every key is read, and the flattened layouts (which hold the
 *  k <= q pairs only) are refused.
 *  flags: 0 or NW_OUT_ZEROED (then the zeros above the diagonal and the rows of tokens
 *  whose direction row is zero are not written).
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL, bad dst, an unknown flag, a direction
 *  given to a norm or missing for a projection, attn.qk_probs with probability above the
 *  diagonal for a causal model); NW_ERR_INDEX_OUT_OF_RANGE (layer); NW_ERR_MISSING_INPUT;
 *  NW_ERR_SHAPE_MISMATCH (an activation, or the direction); NW_ERR_UNSUPPORTED_DTYPE;
 *  NW_ERR_UNSUPPORTED (NW_DST_ATTN_WRITE_NORM or NW_DST_ATTN_WRITE_TO_FINAL_RESIDUAL_GRAD for a
 *  model that is not causal: derive the unflattened one); NW_ERR_BUFFER_TOO_SMALL;
 *  NW_ERR_OUT_OF_MEMORY. On any error out is untouched. */
NW_API nw_status nw_derive(const nw_model *model, const nw_store *store, int32_t dst,
                           int32_t layer, const nw_tensor_view *direction, uint32_t flags,
                           float *out, size_t out_len, int64_t out_shape[3], int32_t *out_ndim);

/** TDB's single_node_write_to_final_residual_grad: a (T, 1) float32 column, w . g[t] in
 *  the row t the node's write lands on, 0 elsewhere. direction as in nw_derive (required).
 *  Writes (T, 1) to out_shape on NW_OK and NW_ERR_BUFFER_TOO_SMALL.
 *  Returns as nw_node_write and nw_derive. */
NW_API nw_status nw_node_write_to_direction(const nw_model *model, const nw_store *store,
                                            const nw_node_index *node,
                                            const nw_tensor_view *direction, float *out,
                                            size_t out_len, int64_t out_shape[2]);

/** The number of vocabulary entries of the model's unembedding, or 0 if none is set.
 *  Returns NW_OK or NW_ERR_INVALID_ARGUMENT (NULL). */
NW_API nw_status nw_model_vocab_size(const nw_model *model, int64_t *out);

/** Token-space writes of a node set (indices as in nw_node_writes): row i of out
 *  (n_nodes x n_vocab, row-major float32) is u - mean(u), u = w_i @ (unembedding *
 *  layer_norm_gain.final[:, None]) (TDB's TokenWriteConverter: the final layer norm's
 *  gain only). Needs both layer-less weights set on the model.
 *  Returns as nw_node_writes, with out_len >= n_nodes*n_vocab. */
NW_API nw_status nw_token_writes(const nw_model *model, const nw_store *store, int32_t node_type,
                                 int32_t layer, const int64_t *indices, size_t n_nodes,
                                 size_t n_indices, float *out, size_t out_len);

/** The top_k entries per node of nw_token_writes, without forming the (n_nodes, n_vocab)
 *  array: values[i*top_k + j] and token_ids[i*top_k + j], j = 0 .. top_k-1, the largest
 *  first (largest != 0) or the smallest first (largest == 0); ties go to the lower token
 *  id. 1 <= top_k <= n_vocab; capacity (in elements, of each of values and token_ids)
 *  >= n_nodes*top_k.
 *  Returns as nw_token_writes, and NW_ERR_INVALID_ARGUMENT for a top_k out of range. */
NW_API nw_status nw_token_writes_top_k(const nw_model *model, const nw_store *store,
                                       int32_t node_type, int32_t layer, const int64_t *indices,
                                       size_t n_nodes, size_t n_indices, int64_t top_k,
                                       int32_t largest, float *values, int64_t *token_ids,
                                       size_t capacity);

/* -- edges: attribution between nodes -- */

/** Flags of nw_derive_node (with enum nw_output_flags). Pinned; new ones are appended. */
enum nw_edge_flags {
    /* TDB's detach_layer_norm_scale_for_attribution: the scale of the LayerNorm directly in
       front of the downstream subnode is a constant (its mean subtraction and gain are not). */
    NW_DETACH_LAYER_NORM_SCALE = 2
};

/** Puts a raw activation of one pass: pass NW_PASS_FORWARD is nw_store_put; NW_PASS_BACKWARD
 *  puts the loss gradient at that activation (same shape). layer = NW_NO_LAYER for
 *  resid.post_emb. Ownership, checks and returns as nw_store_put, and
 *  NW_ERR_INVALID_ARGUMENT for a bad pass. */
NW_API nw_status nw_store_put_pass(nw_store *store, int32_t activation, int32_t layer, int32_t pass,
                                   const nw_tensor_view *t);

/** Removes (activation, layer, pass) if present. Returns as nw_store_remove. */
NW_API nw_status nw_store_remove_pass(nw_store *store, int32_t activation, int32_t layer, int32_t pass);

/** Derives one derived scalar that involves a node, or one of the edge family's, for every
 *  node of one layer, in TDB's shape (nw_dst_info_get gives it; layer-less DSTs such as
 *  NW_DST_TOKEN_OUT_EDGE_ATTRIBUTION take layer = NW_NO_LAYER). node:
 *  - in-edges (NW_DST_*_IN_EDGE_ATTRIBUTION): the upstream node (any node type; a whole
 *    attention head, subnode NW_SUBNODE_NONE); layer is the downstream layer. A layer the node
 *    does not precede is all zeros, as TDB's.
 *  - NW_DST_GRAD_OF_SINGLE_SUBNODE_ATTRIBUTION and out-edges: the downstream subnode (an
 *    attention head with subnode NW_SUBNODE_Q, _K or _V; an MLP neuron or a latent with
 *    NW_SUBNODE_NONE); the gradient at the subnode's layer, out-edges at each upstream layer
 *    (zeros where it does not precede).
 *  - attention to a latent: the trace latent, an attention_autoencoder_latent node
 *    (NW_INDEX_NONE, latent); the _BATCHED forms and act-times-grad take node = NULL.
 *  subnode: enum nw_subnode (TDB's q_k_or_v), NW_SUBNODE_NONE unless node is an attention head
 *  as a downstream subnode. node->reserved must be 0.
 *  The write-family DSTs (0 ... 17) take node = NULL and are nw_derive without a direction
 *  (the norms; a projection is NW_ERR_INVALID_ARGUMENT: call nw_derive with the direction).
 *  Reads, for layer L: the residual each recomputed block reads (resid.post_emb for L = 0,
 *  else resid.post_mlp of L-1, before attention; resid.post_attn of L before the MLP), the
 *  loss gradient (backward pass) at the downstream activation, the forward activations the
 *  upstream node's write needs, and the model's read-side weights of layer L
 *  (layer_norm_*, attn.to_query/key/value and biases, mlp.to_hidden, mlp.in_bias) and
 *  autoencoder encoders (nw_model_set_autoencoder_encoder). Edge DSTs and the generic
 *  online_autoencoder_* DSTs use the single autoencoder the model holds, whichever latent
 *  node type it was set under; with more than one they are NW_ERR_UNSUPPORTED, as in TDB.
 *  flags: 0, NW_OUT_ZEROED, NW_DETACH_LAYER_NORM_SCALE.
 *  Nothing of size (T, T, n_heads, d_head) or larger is formed.
 *  Returns as nw_derive, and NW_ERR_INVALID_ARGUMENT for a node that the DST does not take
 *  (a subnode without Q/K/V, a node given to a DST that takes none, none given where needed,
 *  a trace latent whose token is not NW_INDEX_NONE, a gradient asked at another layer than
 *  its subnode's); NW_ERR_MISSING_INPUT naming a read-side weight, encoder or (backward)
 *  activation that is not there; NW_ERR_UNSUPPORTED for a model that is not causal, or with
 *  more than one autoencoder where TDB asks for the single one. The inputs are read and
 *  checked before out, out_shape and out_ndim are written (the shape is written on NW_OK and
 *  NW_ERR_BUFFER_TOO_SMALL). */
NW_API nw_status nw_derive_node(const nw_model *model, const nw_store *store, int32_t dst,
                                int32_t layer, const nw_node_index *node, int32_t subnode, uint32_t flags,
                                float *out, size_t out_len, int64_t out_shape[3], int32_t *out_ndim);

/** Sets the encoder of the autoencoder in slot (node_type, layer), which must hold its decoder
 *  already: encoder (n_latents, n_inputs) as TDB's encoder.weight, latent_bias (n_latents,),
 *  pre_bias (n_inputs,) (z = relu((x - pre_bias) @ encoder.T + latent_bias)). Replaces an
 *  earlier encoder of that slot. Ownership as nw_model_set_weight.
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL, not a latent type, bad ownership);
 *  NW_ERR_INDEX_OUT_OF_RANGE (layer); NW_ERR_MISSING_INPUT (no decoder in the slot);
 *  NW_ERR_UNSUPPORTED_DTYPE; NW_ERR_SHAPE_MISMATCH; NW_ERR_OUT_OF_MEMORY. */
NW_API nw_status nw_model_set_autoencoder_encoder(nw_model *model, int32_t node_type, int32_t layer,
                                                  const nw_tensor_view *encoder,
                                                  const nw_tensor_view *latent_bias,
                                                  const nw_tensor_view *pre_bias, int32_t ownership);

/* -- checkpoints on disk (safetensors) -- */

/** Creates a model from a safetensors checkpoint file, inferring its dimensions from
 *  the weights and checking them against each other. Two layouts are read, told apart
 *  by their tensor names:
 *  - Hugging Face GPT-2, with or without the "transformer." prefix:
 *    h.{L}.attn.c_proj.weight, Conv1D (n_heads*d_head, d_model), viewed as
 *    (n_heads, d_head, d_model); h.{L}.mlp.c_proj.weight (d_ff, d_model);
 *    wte.weight (or lm_head.weight) (n_vocab, d_model), the tied unembedding, viewed
 *    as (d_model, n_vocab); ln_f.weight, the final layer norm's gain. n_heads is not
 *    in the weights: it is read from the file's __metadata__ ("n_head", a decimal
 *    string) if there, else from "n_head" of a config.json in the same directory
 *    (whose n_layer, n_embd and n_inner, when given, must agree with the weights).
 *  - TransformerLens state dicts: blocks.{L}.attn.W_O (n_heads, d_head, d_model),
 *    blocks.{L}.mlp.W_out (d_ff, d_model), unembed.W_U (d_model, n_vocab),
 *    ln_final.w (d_model,).
 *  Layers must be 0 ... n_layers-1 without gaps. The unembedding and the final gain
 *  are optional (set when present). The read side (what the edge DSTs read) is set from
 *  the tensors present: GPT-2's h.{L}.ln_1 / ln_2 weight and bias, attn.c_attn.weight
 *  (d_model, 3*n_heads*d_head; query, key, value columns, each head's d_head together)
 *  viewed as NW_WEIGHT_ATTN_TO_QUERY / _KEY / _VALUE and attn.c_attn.bias as their biases,
 *  attn.c_proj.bias, mlp.c_fc.weight and bias, mlp.c_proj.bias; TransformerLens's
 *  blocks.{L}.ln1.w/.b, ln2.w/.b, attn.W_Q/W_K/W_V, b_Q/b_K/b_V, b_O, mlp.W_in, b_in,
 *  b_out. For GPT-2, config.json's layer_norm_epsilon and activation_function (gelu_new,
 *  gelu_fast, gelu_pytorch_tanh -> NW_ACT_FN_GELU_TANH; gelu -> NW_ACT_FN_GELU_ERF; relu)
 *  are set when that file is read; another activation_function, scale_attn_weights false
 *  or scale_attn_by_inverse_layer_idx true leave the read side unset (the edge DSTs then
 *  refuse with NW_ERR_MISSING_INPUT). Other tensors are ignored. Tensors may be F32,
 *  F16, BF16 or F64. The file itself is checked in full (header length, JSON, names,
 *  dtypes, shapes, data offsets inside the file and not overlapping) before any
 *  weight is used; path must be UTF-8.
 *  Ownership: copies. Each tensor the model uses is read (pread, never mapped) into
 *  memory the library owns, in the file's dtype, and the file is closed when the load
 *  returns: whatever happens to the file afterwards (truncated, rewritten in place,
 *  replaced by rename, deleted), the model keeps the numbers it loaded and never reads
 *  the file again. (A mapping would read a rewrite's new bytes, and a truncation gives
 *  zeros or kills the process with SIGBUS, which no check before a read can rule out;
 *  the copy costs the load the time to read the tensors used, measured at 91 ms of CPU
 *  time for the 296 MB a GPT-2-small-shaped file's model uses (bench/checks.c), and
 *  nothing per call. To share a mapping anyway, map the file
 *  yourself and pass views with nw_model_set_weight(NW_BORROW), under that contract.)
 *  A file that changes while it is read is refused with NW_ERR_STALE_INPUT: it is
 *  checked after the last read against its device, inode, size and modification and
 *  change times (to the nanosecond) when opened; file systems keep those at their own
 *  granularity (every write is seen on Linux 6.13+; on older kernels a write within
 *  one timer tick of the previous one may not be). Write checkpoints to another name
 *  and rename them into place. Caller frees *out with nw_model_destroy.
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL, a path that is not UTF-8, a file
 *  that cannot be read or is not valid safetensors, a layout that is not one of the
 *  above, no n_heads for GPT-2); NW_ERR_UNSUPPORTED_DTYPE (a dtype safetensors does
 *  not define, or a weight of another dtype such as I64); NW_ERR_MISSING_INPUT (a
 *  layer without one of its two tensors); NW_ERR_SHAPE_MISMATCH (a gap in the layers,
 *  or a tensor whose shape disagrees with the others; the message names it);
 *  NW_ERR_STALE_INPUT (the file changed while it was read); NW_ERR_OUT_OF_MEMORY. On
 *  failure *out is not written. */
NW_API nw_status nw_model_load_safetensors(const char *path, nw_model **out);

/** Sets an SAELens sparse autoencoder as the autoencoder of the latent node type
 *  node_type (as nw_model_set_autoencoder) at layer. path is an SAELens directory
 *  holding cfg.json and sae_weights.safetensors (or the path of that .safetensors
 *  file, with cfg.json beside it). The decoder is W_dec (d_sae, d_in) = (n_latents,
 *  n_inputs). The input kind comes from cfg.json's hook_name (top level or under
 *  "metadata"): blocks.L.hook_resid_pre, hook_resid_mid, hook_resid_post,
 *  hook_mlp_out, hook_attn_out -> NW_AE_INPUT_RESIDUAL (d_in = d_model);
 *  blocks.L.mlp.hook_post -> NW_AE_INPUT_MLP_POST_ACT (d_in = d_ff);
 *  blocks.L.attn.hook_z -> NW_AE_INPUT_ATTN_Z (d_in = n_heads*d_head). L must equal
 *  layer. cfg.json's d_in and d_sae, when given, must agree with W_dec.
 *  Ownership: as nw_model_load_safetensors (W_dec is read into memory the library
 *  owns, kept as long as the model or a deriver uses the autoencoder); an occupied
 *  slot is refused as by nw_model_set_autoencoder (before any file is read).
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL, not a latent node type, a path that
 *  is not UTF-8, a file that cannot be read or is malformed, no hook_name, a hook
 *  layer other than layer); NW_ERR_INDEX_OUT_OF_RANGE (layer); NW_ERR_UNSUPPORTED
 *  (a hook nodewrite does not read); NW_ERR_UNSUPPORTED_DTYPE; NW_ERR_MISSING_INPUT (no
 *  W_dec); NW_ERR_SHAPE_MISMATCH (W_dec's shape); NW_ERR_STALE_INPUT (a file changed
 *  while it was read); NW_ERR_OUT_OF_MEMORY. On failure the model is unchanged. */
NW_API nw_status nw_model_load_autoencoder_safetensors(nw_model *model, const char *path,
                                                       int32_t node_type, int32_t layer);

/** The function between the MLP's two matrices (mlp.pre_act -> mlp.post_act), which the edge
 *  DSTs differentiate (nw_derive_node). Pinned. TransformerLens's act_fn "gelu_new",
 *  "gelu_fast" and "gelu_pytorch_tanh" are NW_ACT_FN_GELU_TANH (one formula; the constants
 *  agree to float32), "gelu" is NW_ACT_FN_GELU_ERF, "relu" NW_ACT_FN_RELU. */
enum nw_mlp_activation {
    NW_ACT_FN_GELU_TANH = 0, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): TDB's, the default */
    NW_ACT_FN_GELU_ERF = 1,  /* x Phi(x), Phi the standard normal CDF; derivative Phi(x) + x phi(x) */
    NW_ACT_FN_RELU = 2       /* max(x, 0); derivative 1 where x > 0, else 0 (torch's at 0) */
};

/** Sets the model's MLP activation function (enum nw_mlp_activation; a new model has
 *  NW_ACT_FN_GELU_TANH, TDB's). Read by every later nw_derive_node call; the
 *  write-family DSTs do not depend on it. Configure it before sharing the model (see
 *  Threading). Returns NW_OK or NW_ERR_INVALID_ARGUMENT (NULL, an unknown value); on
 *  failure the model is unchanged. */
NW_API nw_status nw_model_set_mlp_activation(nw_model *model, int32_t activation);

/** The model's MLP activation function (enum nw_mlp_activation) into *out.
 *  Returns NW_OK or NW_ERR_INVALID_ARGUMENT (NULL). */
NW_API nw_status nw_model_get_mlp_activation(const nw_model *model, int32_t *out);

/** Sets the epsilon of the blocks' LayerNorms, s = sqrt(mean((x - mean x)^2) + epsilon)
 *  (a new model has TDB's 1e-5; TransformerLens's cfg.eps). The edge DSTs compute in float32
 *  with float32(epsilon). Read by every later nw_derive_node call. Configure it before sharing
 *  the model (see Threading). Returns NW_OK or NW_ERR_INVALID_ARGUMENT (NULL; epsilon not
 *  finite, or not above 0 once rounded to float32); on failure the model is unchanged. */
NW_API nw_status nw_model_set_layer_norm_epsilon(nw_model *model, double epsilon);

/** The model's LayerNorm epsilon, as it was set (a double), into *out.
 *  Returns NW_OK or NW_ERR_INVALID_ARGUMENT (NULL). */
NW_API nw_status nw_model_get_layer_norm_epsilon(const nw_model *model, double *out);

/* -- model: reading back what a model holds -- */

/** Copies what weight slot (weight, layer) holds into out, float32, row-major in the weight's
 *  canonical layout (the shape nw_model_weight_get reports): the values derives read (a
 *  float16, bfloat16 or float64 weight as the library converts it). layer = NW_NO_LAYER for a
 *  weight of no layer. This is how a binding reads back a copy the library made or a
 *  checkpoint's tensor (to pickle a model). out_len is in elements.
 *  Ownership: reads the slot; writes out only; out is the caller's.
 *  Returns NW_OK; NW_ERR_INVALID_ARGUMENT (NULL model, bad enum, out NULL for a non-empty
 *  weight); NW_ERR_INDEX_OUT_OF_RANGE (layer); NW_ERR_MISSING_INPUT (empty slot);
 *  NW_ERR_BUFFER_TOO_SMALL (out_len below the element count; out not written). */
NW_API nw_status nw_model_weight_read(const nw_model *model, int32_t weight, int32_t layer, float *out,
                                      size_t out_len);

/** Copies the decoder of the autoencoder in slot (node_type, layer) into out, float32,
 *  (n_latents, n_inputs) row-major (nw_model_autoencoder_get gives its shape and input kind).
 *  Ownership and returns as nw_model_weight_read, and NW_ERR_INVALID_ARGUMENT for a node type
 *  that is not a latent type. */
NW_API nw_status nw_model_autoencoder_read(const nw_model *model, int32_t node_type, int32_t layer,
                                           float *out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif /* NODEWRITE_H */
