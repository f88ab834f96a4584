// nodewrite.derive: a derived scalar for every node of one layer in one library call, also with
// out=: TDB's write family (nw_derive) and the edge and attribution DSTs (nw_derive_node, with
// node= and detach_layer_norm_scale=) (binding, docstrings, registration).
#include "args.hpp"
#include "info.hpp"
#include "objects.hpp"
#include "outputs.hpp"

#include <algorithm>

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

// The library's words for the C caller, in the Python API's terms (the node argument, the store's
// pass, the model's setters), for the messages of nw_derive_node.
std::string python_words(std::string msg) {
    static const std::pair<const char *, const char *> words[] = {
        {"needs NW_SUBNODE_Q, NW_SUBNODE_K or NW_SUBNODE_V (TDB's q_k_or_v)",
         "needs q_k_or_v=\"attn.q\", \"attn.k\" or \"attn.v\" (NodeIndex(..., q_k_or_v=...), TDB's AttnSubNodeIndex)"},
        {"pass NW_SUBNODE_NONE", "pass q_k_or_v=None"},
        {"subnode = 1", "node.q_k_or_v = 'attn.q'"},
        {"subnode = 2", "node.q_k_or_v = 'attn.k'"},
        {"subnode = 3", "node.q_k_or_v = 'attn.v'"},
        {"subnode: an attention head", "node.q_k_or_v: an attention head"},
        {"node.indices", "node.tensor_indices"},
        {"node.n_indices = ", "len(node.tensor_indices) = "},
        {"is NW_INDEX_NONE (TDB's None)", "is None"},
        {"token NW_INDEX_NONE", "token None"},
        {"NW_INDEX_NONE", "None"},
        {"takes no node; pass NULL", "takes no node; pass node=None"},
        {"node is NULL but", "node is None but"},
        {"pass NW_NO_LAYER = -1", "pass layer=None"},
        {"put it with pass NW_PASS_BACKWARD", "put it with ActivationStore.put(..., pass_type=\"backward\")"},
        {"(set it with nw_model_set_weight)", "(set it with Model.set_weight)"},
        {"set it with nw_model_set_autoencoder_encoder", "set it with Model.set_autoencoder(..., encoder=...)"},
        {"(nw_model_set_autoencoder)", "(Model.set_autoencoder)"},
        {"(nw_model_remove_autoencoder)", "(Model.remove_autoencoder)"},
    };
    for (const auto &w : words) {
        const std::string from = w.first, to = w.second;
        for (size_t at = msg.find(from); at != std::string::npos; at = msg.find(from, at + to.size()))
            msg.replace(at, from.size(), to);
    }
    return msg;
}

bool is_write_family(const DstFacts &f) {
    return f.quantity == NW_QUANTITY_NORM || f.quantity == NW_QUANTITY_PROJECTION;
}

// The output shape of an edge DST at `layer`, from the library's shape rule and what the store
// holds (T from an entry at that layer or of no layer, either pass, the DST's own activations
// first; n_latents from a latent activation at that layer); empty when the store cannot tell (the
// library then reports the shape). No library call.
std::vector<int64_t> edge_shape(const Model &m, const Store &s, const DstFacts &f, int32_t layer) {
    std::vector<int64_t> shape = predicted_shape(m, s, f.dims, f.activations, layer);
    if (!shape.empty()) return shape;
    int64_t tokens = -1, latents = -1;
    auto scan = [&](const std::map<std::pair<int32_t, int32_t>, HeldPtr> &entries, bool own_first) {
        for (const auto &kv : entries) {
            const int32_t act = kv.first.first, l = kv.first.second;
            if ((l != layer && l != NW_NO_LAYER) || !kv.second) continue;
            const bool own = std::find(f.activations.begin(), f.activations.end(), act) != f.activations.end();
            if (own_first != own) continue;
            const std::vector<int32_t> &rule = activation_facts(act).dims;
            const std::vector<int64_t> &sh = kv.second->canonical_shape;
            if (sh.size() != rule.size()) continue;
            for (size_t i = 0; i < rule.size(); ++i) {
                if (rule[i] == NW_DIM_TOKENS && tokens < 0) tokens = sh[i];
                if (rule[i] == NW_DIM_LATENTS && latents < 0 && l == layer) latents = sh[i];
            }
        }
    };
    for (bool own : {true, false}) {
        scan(s.entries, own);
        scan(s.backward, own);
    }
    for (int32_t d : f.dims) {
        int64_t v = d == NW_DIM_TOKENS ? tokens
                    : d == NW_DIM_TOKEN_PAIRS ? (tokens < 0 || tokens > (int64_t{1} << 31) ? -1 : tokens * (tokens + 1) / 2)
                    : d == NW_DIM_LATENTS ? latents
                    : model_dim_size(m, d);
        if (v < 0) return {};
        shape.push_back(v);
    }
    return shape;
}

py::object derive(const py::args &args, const py::kwargs &kwargs) {
    auto a = parse_args("derive", args, kwargs,
                        {{"model", true}, {"store", true}, {"dst", true}, {"layer", true},
                         {"direction", false}, {"out", false}, {"node", false},
                         {"detach_layer_norm_scale", false}}, 4);
    Model &m = model_arg(a[0]);
    Store &s = store_arg(a[1]);
    int32_t dst = dst_arg(a[2]);
    const DstFacts &f = dst_facts(dst);
    int32_t layer;
    if (a[3].is_none()) {
        if (f.has_layer)
            fail(NW_ERR_INVALID_ARGUMENT, "layer: None is for the DSTs of no layer (token_out_edge_attribution, "
                                          "token_attribution); " + f.name + " needs an int layer");
        layer = NW_NO_LAYER;
    } else {
        if (!f.has_layer)
            fail(NW_ERR_INVALID_ARGUMENT, "layer: " + f.name + " belongs to no layer; pass layer=None");
        layer = to_layer(a[3]);
    }
    const bool has_node = a[6] && !a[6].is_none();
    const bool detach = a[7] ? to_bool(a[7], "detach_layer_norm_scale") : false;
    HeldPtr out_held;
    if (a[5] && !a[5].is_none()) out_held = hold_out(a[5]);
    if (!is_write_family(f)) {
        // Edges, act-times-grad and attention-to-latent: one nw_derive_node call.
        if (a[4] && !a[4].is_none())
            fail(NW_ERR_INVALID_ARGUMENT, "direction: " + f.name + " takes none (its gradients come from the "
                                          "store's backward pass: ActivationStore.put(..., pass_type=\"backward\"))");
        nw_node_index node{};
        int32_t subnode = NW_SUBNODE_NONE;
        if (has_node) node = node_from_py(a[6], &subnode);
        const nw_node_index *np = has_node ? &node : nullptr;
        const uint32_t extra = detach ? NW_DETACH_LAYER_NORM_SCALE : 0;
        try {
            return sized_call(
                m, s,
                [&] {
                    check_everything(m, s);
                    return edge_shape(m, s, f, layer);
                },
                [&](float *p, size_t len, uint32_t flags, Reported *r) {
                    return nw_derive_node(m.model, s.store, dst, layer, np, subnode, flags | extra, p, len,
                                          r->shape, &r->ndim);
                },
                /*zeroable=*/!out_held, out_held, a[5]);
        } catch (NwFailure &e) {
            e.message = python_words(e.message);
            throw;
        }
    }
    if (has_node)
        fail(NW_ERR_INVALID_ARGUMENT, "node: " + f.name + " is a write-family DST (every node of the layer) and "
                                      "takes no node; for one node's write use node_write or node_write_to_direction");
    if (detach)
        fail(NW_ERR_INVALID_ARGUMENT, "detach_layer_norm_scale: applies to the edge DSTs, not to " + f.name);
    HeldPtr dir;
    nw_tensor_view dir_view{};
    const nw_tensor_view *dirp = nullptr;
    if (a[4] && !a[4].is_none()) {
        dir = hold_tensor(a[4], "direction");
        dir_view = dir->view();
        dirp = &dir_view;
    }
    return sized_call(
        m, s,
        [&] {
            check_reads(m, s, f.activations, layer);
            return predicted_shape(m, s, f.dims, f.activations, layer);
        },
        [&](float *p, size_t len, uint32_t flags, Reported *r) {
            return nw_derive(m.model, s.store, dst, layer, dirp, flags, p, len, r->shape, &r->ndim);
        },
        /*zeroable=*/!out_held, out_held, a[5]);
}

}  // namespace

void init_write_family(py::module_ &mod) {
    mod.def("derive", &derive, R"doc(derive(model: Model, store: ActivationStore, dst: str, layer: int | None, *, node: NodeIndex | None = None, direction: numpy.ndarray | torch.Tensor | None = None, detach_layer_norm_scale: bool = False, out: numpy.ndarray | torch.Tensor | None = None) -> numpy.ndarray | torch.Tensor

One of TDB's derived scalars for every node of one layer, in TDB's shape (nodewrite.dst_info(dst)
gives its shape rule, layout and quantity). One library call, without the GIL; get_num_threads()
threads; bit-identical for every thread count.

dst: TDB's DerivedScalarType value, one of nodewrite.DSTS; any other string is a
NodeWriteValueError (a ValueError) listing them.

The write family (quantity "norm" or "projection"; nw_derive): "mlp_write_norm" (T, d_ff),
"unflattened_attn_write_to_final_residual_grad" (T, T, n_heads), "attn_write_norm"
(T(T+1)/2, n_heads), ..., "mlp_layer_write_norm" (T, 1). They read the layer's activations
(mlp.post_act; attn.qk_probs and attn.v; the autoencoder's online_* latents; resid.delta_mlp /
resid.delta_attn) and the output weights. direction: for the "..._to_final_residual_grad" values
(required there, refused for the norms): a (T, d_model) array (row t for writes landing on token
t; TDB's final residual grad) or one (d_model,) vector for every token; numpy or CPU torch, any
float dtype and strides, read in place. Rows that are all zero cost nothing. They take no node.

Edges and attributions (quantity "in_edge", "out_edge", "gradient", "act_times_grad",
"to_latent"; nw_derive_node): the gradients they need are the store's backward pass
(ActivationStore.put(..., pass_type="backward")), never a direction=. node is:
- in-edges ("attn_query_in_edge_attribution", "attn_key_in_edge_attribution",
  "attn_value_in_edge_attribution" (T, T, n_heads), "mlp_in_edge_attribution" (T, d_ff),
  "online_autoencoder_in_edge_attribution" (T, n_latents)): the upstream node, any node type (an
  attention head is a plain NodeIndex("attention_head", L, (q, k, h)), no q_k_or_v); layer is the
  downstream layer (all zeros where the node does not precede it).
- "grad_of_single_subnode_attribution" (T, d_model) and the out-edges ("attn_out_edge_attribution"
  (T, T, n_heads), "mlp_out_edge_attribution" (T, d_ff), "online_autoencoder_out_edge_attribution"
  (T, n_latents), "token_out_edge_attribution" (T, 1), layer=None): the downstream subnode, an
  attention head with q_k_or_v ("attn.q", "attn.k" or "attn.v"; TDB's AttnSubNodeIndex works too),
  an MLP neuron or a latent. The gradient is asked at the subnode's layer, the out-edges at each
  upstream layer.
- attention to a latent ("autoencoder_latent_grad_wrt_residual_input" (T, d_model),
  "attn_write_to_latent" (T, T, n_heads), "attn_write_to_latent_summed_over_heads" (T, T, 1),
  "flattened_attn_write_to_latent_summed_over_heads" (T(T+1)/2, 1),
  "attn_write_to_latent_per_sequence_token" (T, n_heads)): the trace latent,
  NodeIndex("attention_autoencoder_latent", L, (None, latent)).
- None for act-times-grad ("mlp_act_times_grad", "unflattened_attn_act_times_grad",
  "attn_act_times_grad", "attn_act_times_grad_per_sequence_token", "token_attribution" (T, 1),
  layer=None, "online_{,mlp_,attention_}autoencoder_act_times_grad") and the two "_batched" forms
  ("flattened_attn_write_to_latent_summed_over_heads_batched" (T(T+1)/2, n_latents),
  "attn_write_to_latent_per_sequence_token_batched" (T, n_heads, n_latents)).
They read the residual stream the recomputed block reads (resid.post_emb for layer 0, else
resid.post_mlp of the layer before, in front of attention; resid.post_attn in front of the MLP),
the loss gradient at the downstream activation (backward pass), the activations of the upstream
node's write, and the model's read-side weights (layer_norm_gain/bias.pre_attn / .pre_mlp,
attn.to_query/key/value and their biases, mlp.to_hidden, mlp.in_bias; Model.set_weight) and
autoencoder encoders (Model.set_autoencoder(..., encoder=)). The online_autoencoder_* DSTs and every
edge DST use the single autoencoder the model holds, whichever latent type it was set under; with an
MLP and an attention autoencoder both set they fail (NodeWriteError), as TDB's do.
detach_layer_norm_scale: TDB's detach_layer_norm_scale_for_attribution (the scale of the LayerNorm
in front of the downstream subnode is a constant); edge DSTs only.

layer: an int; None for the DSTs of no layer (token_out_edge_attribution, token_attribution).
out: optional C-contiguous writable float32 array of the output's shape, written in place and
returned.
Raises NodeWriteValueError (a ValueError) naming the argument: a node given to a DST that takes
none or missing where one is needed, a subnode without q_k_or_v, a trace latent whose token is not
None, a gradient asked at another layer than its subnode's, a direction given to an edge DST, a
layer where None is needed (or the reverse), a shape (an activation or gradient of the wrong shape),
a model that is not causal (edges); NodeWriteKeyError (a KeyError) naming a missing activation,
backward-pass gradient, read-side weight or encoder; NodeWriteIndexError (layer, node indices).
)doc");
}

}  // namespace nwpy
