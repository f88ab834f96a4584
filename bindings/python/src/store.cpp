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
    int32_t activation, layer;
    std::string name;
};

Key activation_key(py::handle name, py::handle layer) {
    int32_t a = activation_arg(name);
    return {a, to_layer(layer), activation_facts(a).name};
}

Store &store_self(py::handle self) { return self_of<Store>(self, "ActivationStore"); }

void store_put(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Store &s = store_self(self);
    auto a = parse_args("put", args, kwargs,
                        {{"name", true}, {"layer", true}, {"tensor", true}, {"layout", false}, {"batch", false}});
    Key k = activation_key(a[0], a[1]);
    std::string what = "activation " + k.name + " at layer " + std::to_string(k.layer);
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
        auto it = s.entries.find({k.activation, k.layer});
        const bool replaces_batched = it != s.entries.end() && it->second && it->second->batch >= 0;
        if (batch >= 0 && s.batch >= 0 && batch != s.batch && !(replaces_batched && s.batched == 1))
            fail(NW_ERR_INVALID_ARGUMENT,
                 what + ": batch " + std::to_string(batch) + ", but this store holds batch element " +
                     std::to_string(s.batch) + " (ActivationStore.batch); a store holds one batch "
                     "element: use one store per batch element");
        nw_status st = nw_store_put(s.store, k.activation, k.layer, &v);
        if (st != NW_OK) fail(st, nw_last_error_message());
        HeldPtr &slot = s.entries[{k.activation, k.layer}];
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
    auto a = parse_args("remove", args, kwargs, {{"name", true}, {"layer", true}});
    Key k = activation_key(a[0], a[1]);
    HeldPtr old;
    {
        std::unique_lock<std::shared_mutex> lock(s.mu);
        check(nw_store_remove(s.store, k.activation, k.layer));
        auto it = s.entries.find({k.activation, k.layer});
        if (it != s.entries.end()) {
            old = std::move(it->second);
            s.entries.erase(it);
            if (old && old->batch >= 0 && --s.batched == 0) s.batch = -1;
        }
    }
}

void store_clear(py::handle self) {
    Store &s = store_self(self);
    std::map<std::pair<int32_t, int32_t>, HeldPtr> old;
    {
        std::unique_lock<std::shared_mutex> lock(s.mu);
        nw_store_clear(s.store);
        old.swap(s.entries);
        s.batch = -1;
        s.batched = 0;
    }
}

py::list store_keys(py::handle self) {
    const Store &s = store_self(self);
    py::list out;
    for (const auto &kv : s.entries) {
        out.append(py::make_tuple(py::str(activation_facts(kv.first.first).name), kv.first.second));
    }
    return out;
}

py::object store_get(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    const Store &s = store_self(self);
    auto a = parse_args("get", args, kwargs, {{"name", true}, {"layer", true}});
    Key k = activation_key(a[0], a[1]);
    auto it = s.entries.find({k.activation, k.layer});
    if (it == s.entries.end())
        fail(NW_ERR_MISSING_INPUT, "activation " + k.name + " at layer " +
                                       std::to_string(k.layer) + " is not in the store");
    return it->second->owner;
}

bool store_contains(py::handle self, py::handle key) {
    const Store &s = store_self(self);
    if (!PyTuple_Check(key.ptr()) || PyTuple_Size(key.ptr()) != 2) return false;
    try {
        Key k = activation_key(PyTuple_GET_ITEM(key.ptr(), 0), PyTuple_GET_ITEM(key.ptr(), 1));
        return s.entries.count({k.activation, k.layer}) != 0;
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
    cls.def("put", &store_put, R"doc(put(self, name: str, layer: int, tensor: numpy.ndarray | torch.Tensor, layout: str | None = None, batch: int | None = None) -> None

Put a raw activation, replacing any earlier one at (name, layer).

name: "mlp.post_act" (T, d_ff), "attn.qk_probs" (T, T_k, n_heads), "attn.v"
(T_k, n_heads, d_head), "online_autoencoder_latent", "online_mlp_autoencoder_latent",
"online_attention_autoencoder_latent" (T, n_latents). tensor: numpy array or CPU torch
tensor as in Model.set_weight; read in place (zero-copy) by every later derive. The store
keeps a reference to it; do not reallocate it in place (numpy's resize(refcheck=False),
torch's resize_ / set_): the library would read freed memory. Shapes are checked against the
model when a derive reads them.

layout: the order of the tensor's dimensions, one letter each, when it is not the canonical
one: for attn.qk_probs a permutation of "qkh" (query, key, head; TransformerLens's
hook_pattern is "bhqk"), for attn.v of "thd" (token, head, d_head; TL's hook_v is "bthd"),
for mlp.post_act and latents of "tn", for resid.delta_* of "td"; plus at most one "b" for a
batch dimension, which needs batch= (an index, negative counts from the end). The tensor is
viewed in the canonical layout by strides (no copy). Shape checks alone cannot tell (h, q, k)
from (q, k, h) when T equals n_heads: say the layout. get() returns the object as passed.
)doc")
        .def_property_readonly("batch", [](py::handle self) -> py::object {
            const Store &s = store_self(self);
            return s.batch < 0 ? py::object(py::none()) : py::object(py::int_(s.batch));
        }, "batch: int | None -- the batch element the entries put with batch= read (counted from 0; a "
           "store holds one), or None when no entry was put with batch=. Helpers that take a store and "
           "a batch check it against this.")
        .def("remove", &store_remove, "remove(self, name: str, layer: int) -> None\n\nRemove (name, layer) if present.")
        .def("clear", &store_clear, "clear(self) -> None\n\nRemove every entry.")
        .def("get", &store_get, "get(self, name: str, layer: int) -> object\n\nThe object put at (name, layer); KeyError if there is none.")
        .def("keys", &store_keys, "keys(self) -> list[tuple[str, int]]\n\nThe (name, layer) pairs in the store.")
        .def("__len__", [](py::handle self) { return store_self(self).entries.size(); }, "__len__(self) -> int")
        .def("__contains__", &store_contains, "__contains__(self, key: tuple[str, int]) -> bool")
        .def("__repr__", [](py::handle self) {
            return "nodewrite.ActivationStore(" + std::to_string(store_self(self).entries.size()) +
                   " entries)";
        }, "__repr__(self) -> str");
}

}  // namespace nwpy
