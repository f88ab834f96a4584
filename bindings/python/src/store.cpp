// nodewrite.ActivationStore: nw_store, borrowed raw activations (binding, docstrings,
// registration).
#include <algorithm>
#include <mutex>

#include "args.hpp"
#include "info.hpp"
#include "layouts.hpp"
#include "objects.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

struct Key {
    int32_t activation, layer, pass;
    std::string name;
    // "activation attn.v at layer 0" / "gradient of resid.post_emb" (messages)
    std::string what() const {
        return std::string(pass == NW_PASS_BACKWARD ? "gradient (backward pass) of " : "activation ") + name +
               (layer == NW_NO_LAYER ? std::string() : " at layer " + std::to_string(layer));
    }
};

// pass_type=: "forward" (default) or "backward" (TDB's PassType, or its str value).
int32_t pass_arg(py::handle obj) {
    if (!obj || obj.is_none()) return NW_PASS_FORWARD;
    std::string p = to_name(obj, "pass_type");
    if (p == "forward") return NW_PASS_FORWARD;
    if (p == "backward") return NW_PASS_BACKWARD;
    fail(NW_ERR_INVALID_ARGUMENT, "pass_type: '" + p + "' is not a pass; expected 'forward' (the activation) or "
                                  "'backward' (the loss gradient at it)");
}

// layer: an int for activations kept per layer, None for those of no layer (resid.post_emb).
Key activation_key(py::handle name, py::handle layer, py::handle pass = py::handle()) {
    int32_t a = activation_arg(name);
    const ActivationFacts &f = activation_facts(a);
    int32_t l;
    if (layer.is_none()) {
        if (f.has_layer)
            fail(NW_ERR_INVALID_ARGUMENT, "layer: None is for activations of no layer (resid.post_emb); " +
                                              f.name + " needs an int layer");
        l = NW_NO_LAYER;
    } else {
        if (!f.has_layer)
            fail(NW_ERR_INVALID_ARGUMENT, "layer: " + f.name + " belongs to no layer; pass layer=None");
        l = to_layer(layer);
    }
    return {a, l, pass_arg(pass), f.name};
}

std::map<std::pair<int32_t, int32_t>, HeldPtr> &entries_of(Store &s, int32_t pass) {
    return pass == NW_PASS_BACKWARD ? s.backward : s.entries;
}
const std::map<std::pair<int32_t, int32_t>, HeldPtr> &entries_of(const Store &s, int32_t pass) {
    return pass == NW_PASS_BACKWARD ? s.backward : s.entries;
}

py::object layer_value(int32_t layer) {
    return layer == NW_NO_LAYER ? py::object(py::none()) : py::object(py::int_(layer));
}

Store &store_self(py::handle self) { return self_of<Store>(self, "ActivationStore"); }

void store_put(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Store &s = store_self(self);
    auto a = parse_args("put", args, kwargs,
                        {{"name", true}, {"layer", true}, {"tensor", true}, {"layout", false}, {"batch", false},
                         {"pass_type", false}});
    Key k = activation_key(a[0], a[1], a[5]);
    std::string what = k.what();
    HeldPtr h = hold_tensor(a[2], what);
    // layout= / batch=: the tensor viewed in the canonical layout by strides (layouts.hpp).
    std::vector<int64_t> shape, strides;
    int64_t batch = -1;
    nw_tensor_view v = (a[3] || a[4]) ? view_in_layout(*h, k.activation, a[3], a[4], what, shape, strides, &batch)
                                      : h->view();
    h->layout_stated = a[3] && !a[3].is_none();
    h->batch = batch;
    h->canonical_shape.assign(v.shape, v.shape + v.ndim);
    h->canonical_data = v.data;
    if (v.strides) {
        h->canonical_strides.assign(v.strides, v.strides + v.ndim);
    } else {  // contiguous row-major
        h->canonical_strides.assign(static_cast<size_t>(v.ndim), 1);
        for (int32_t i = v.ndim - 1; i > 0; --i) h->canonical_strides[i - 1] = h->canonical_strides[i] * std::max<int64_t>(v.shape[i], 1);
    }
    HeldPtr old;  // dropped after unlocking (its destructor may run Python code)
    {
        std::unique_lock<std::shared_mutex> lock(s.mu);
        auto &entries = entries_of(s, k.pass);
        auto it = entries.find({k.activation, k.layer});
        const bool replaces_batched = it != entries.end() && it->second && it->second->batch >= 0;
        if (batch >= 0 && s.batch >= 0 && batch != s.batch && !(replaces_batched && s.batched == 1))
            fail(NW_ERR_INVALID_ARGUMENT,
                 what + ": batch " + std::to_string(batch) + ", but this store holds batch element " +
                     std::to_string(s.batch) + " (ActivationStore.batch); a store holds one batch "
                     "element: use one store per batch element");
        // The forward pass through nw_store_put (as before 1.2), the backward through nw_store_put_pass.
        nw_status st = k.pass == NW_PASS_FORWARD ? nw_store_put(s.store, k.activation, k.layer, &v)
                                                 : nw_store_put_pass(s.store, k.activation, k.layer, k.pass, &v);
        if (st != NW_OK) fail(st, nw_last_error_message());
        HeldPtr &slot = entries[{k.activation, k.layer}];
        old = std::move(slot);
        if (old && old->batch >= 0) --s.batched;
        if (batch >= 0) {
            ++s.batched;
            s.batch = batch;
        } else if (s.batched == 0) {
            s.batch = -1;
        }
        slot = std::move(h);
    }
}

void store_remove(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Store &s = store_self(self);
    auto a = parse_args("remove", args, kwargs, {{"name", true}, {"layer", true}, {"pass_type", false}});
    Key k = activation_key(a[0], a[1], a[2]);
    HeldPtr old;
    {
        std::unique_lock<std::shared_mutex> lock(s.mu);
        check(k.pass == NW_PASS_FORWARD ? nw_store_remove(s.store, k.activation, k.layer)
                                        : nw_store_remove_pass(s.store, k.activation, k.layer, k.pass));
        auto &entries = entries_of(s, k.pass);
        auto it = entries.find({k.activation, k.layer});
        if (it != entries.end()) {
            old = std::move(it->second);
            entries.erase(it);
            if (old && old->batch >= 0 && --s.batched == 0) s.batch = -1;
        }
    }
}

void store_clear(py::handle self) {
    Store &s = store_self(self);
    std::map<std::pair<int32_t, int32_t>, HeldPtr> old, old_backward;
    {
        std::unique_lock<std::shared_mutex> lock(s.mu);
        nw_store_clear(s.store);
        old.swap(s.entries);
        old_backward.swap(s.backward);
        s.batch = -1;
        s.batched = 0;
    }
}

py::list store_keys(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    const Store &s = store_self(self);
    auto a = parse_args("keys", args, kwargs, {{"pass_type", false}});
    py::list out;
    for (const auto &kv : entries_of(s, pass_arg(a[0]))) {
        out.append(py::make_tuple(py::str(activation_facts(kv.first.first).name), layer_value(kv.first.second)));
    }
    return out;
}

py::object store_get(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    const Store &s = store_self(self);
    auto a = parse_args("get", args, kwargs, {{"name", true}, {"layer", true}, {"pass_type", false}});
    Key k = activation_key(a[0], a[1], a[2]);
    const auto &entries = entries_of(s, k.pass);
    auto it = entries.find({k.activation, k.layer});
    if (it == entries.end()) fail(NW_ERR_MISSING_INPUT, k.what() + " is not in the store");
    return it->second->owner;
}

// (name, layer) for the forward pass, (name, layer, pass_type) for either.
bool store_contains(py::handle self, py::handle key) {
    const Store &s = store_self(self);
    if (!PyTuple_Check(key.ptr()) || PyTuple_Size(key.ptr()) < 2 || PyTuple_Size(key.ptr()) > 3) return false;
    try {
        Key k = activation_key(PyTuple_GET_ITEM(key.ptr(), 0), PyTuple_GET_ITEM(key.ptr(), 1),
                               PyTuple_Size(key.ptr()) == 3 ? py::handle(PyTuple_GET_ITEM(key.ptr(), 2)) : py::handle());
        return entries_of(s, k.pass).count({k.activation, k.layer}) != 0;
    } catch (NwFailure &) {
        return false;
    }
}

}  // namespace

void init_store(py::module_ &mod) {
    py::class_<Store> cls(mod, "ActivationStore", R"doc(ActivationStore()

Raw activations keyed by (TDB ActivationLocationType value, layer), wrapping nw_store.

Entries are borrowed, never copied: the store keeps a reference to each array or tensor
put into it, and derives read its current values in place.
)doc");
    def_init(cls, [](const py::args &args, const py::kwargs &kwargs) {
                 parse_args("ActivationStore", args, kwargs, {});
                 auto s = std::make_unique<Store>();
                 check(nw_store_create(&s->store));
                 return s;
             }, "ActivationStore", "__init__(self) -> None");
    cls.def("put", &store_put, R"doc(put(self, name: str, layer: int | None, tensor: numpy.ndarray | torch.Tensor, layout: str | None = None, batch: int | None = None, pass_type: str = "forward") -> None

Put a raw activation (or, with pass_type="backward", the loss gradient at it), replacing any
earlier one at (name, layer, pass_type).

name: "mlp.post_act" (T, d_ff), "attn.qk_probs" (T, T_k, n_heads), "attn.v"
(T_k, n_heads, d_head), "online_autoencoder_latent", "online_mlp_autoencoder_latent",
"online_attention_autoencoder_latent" (T, n_latents), "resid.delta_mlp", "resid.delta_attn"
(T, d_model); for the edge DSTs also the residual stream "resid.post_emb" (T, d_model; no layer:
layer=None), "resid.post_attn", "resid.post_mlp" (T, d_model) and "attn.v_out" (T, n_heads,
d_head; TransformerLens's hook_z). nodewrite.ACTIVATIONS lists them, nodewrite.activation_info
gives each one's shape. layer: an int, or None for resid.post_emb (NodeWriteValueError otherwise).
tensor: numpy array or CPU torch tensor as in Model.set_weight; read in place (zero-copy) by every
later derive. The store keeps a reference to it; do not reallocate it in place (numpy's
resize(refcheck=False), torch's resize_ / set_): the library would read freed memory. Shapes are
checked against the model when a derive reads them.

pass_type: "forward" (the activation, the default) or "backward" (TDB's PassType.BACKWARD: the
gradient of the loss with respect to that activation, same shape; the edge DSTs of derive read
them); TDB's PassType enum works too. Each pass has its own entries.

layout: the order of the tensor's dimensions, one letter each, when it is not the canonical
one: for attn.qk_probs a permutation of "qkh" (query, key, head; TransformerLens's
hook_pattern is "bhqk"), for attn.v of "thd" (token, head, d_head; TL's hook_v is "bthd"),
for mlp.post_act and latents of "tn", for resid.delta_* of "td"; plus at most one "b" for a
batch dimension, which needs batch= (an index, negative counts from the end). The tensor is
viewed in the canonical layout by strides (no copy). Shape checks alone cannot tell (h, q, k)
from (q, k, h) when T equals n_heads: say the layout. get() returns the object as passed.
One library call (nw_store_put, or nw_store_put_pass for the backward pass).
)doc")
        .def_property_readonly("batch", [](py::handle self) -> py::object {
            const Store &s = store_self(self);
            return s.batch < 0 ? py::object(py::none()) : py::object(py::int_(s.batch));
        }, "batch: int | None -- the batch element the entries put with batch= read (counted from 0; a "
           "store holds one), or None when no entry was put with batch=. Helpers that take a store and "
           "a batch check it against this.")
        .def("remove", &store_remove, "remove(self, name: str, layer: int | None, pass_type: str = \"forward\") -> None\n\n"
             "Remove (name, layer) of that pass if present.")
        .def("clear", &store_clear, "clear(self) -> None\n\nRemove every entry (of both passes).")
        .def("get", &store_get, "get(self, name: str, layer: int | None, pass_type: str = \"forward\") -> object\n\n"
             "The object put at (name, layer) for that pass; NodeWriteKeyError (a KeyError) if there is none.")
        .def("keys", &store_keys, "keys(self, pass_type: str = \"forward\") -> list[tuple[str, int | None]]\n\n"
             "The (name, layer) pairs of one pass in the store (layer None for resid.post_emb).")
        .def("__len__", [](py::handle self) {
            const Store &s = store_self(self);
            return s.entries.size() + s.backward.size();
        }, "__len__(self) -> int\n\nThe number of entries, of both passes.")
        .def("__contains__", &store_contains, "__contains__(self, key: tuple[str, int | None] | tuple[str, int | None, str]) -> bool\n\n"
             "(name, layer) in store: a forward entry; (name, layer, pass_type) in store: an entry of that pass.")
        .def("__repr__", [](py::handle self) {
            const Store &s = store_self(self);
            return "nodewrite.ActivationStore(" + std::to_string(s.entries.size() + s.backward.size()) +
                   " entries)";
        }, "__repr__(self) -> str");
}

}  // namespace nwpy
