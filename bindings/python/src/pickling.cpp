// Pickling support: what a Model or ActivationStore holds, as numpy arrays in each tensor's
// canonical layout (nodewrite/pickling.py turns them into __reduce_ex__ and rebuilds the objects).
//
// - A borrowed tensor (set_weight / set_autoencoder with copy=False, every store entry) is read
//   where the caller's object keeps it: a read-only numpy view of the memory the library reads
//   (base: the caller's object), after the same moved-memory check a derive makes. bfloat16
//   travels as its uint16 bit patterns (numpy has no bfloat16).
// - A copy the library made (copy=True, a checkpoint's tensors) is read back from the library
//   with nw_model_weight_read / nw_model_autoencoder_read (float32, what derives read).
// Locking as objects.hpp says: what the object holds is gathered under its mutex (no Python
// code), arrays are made with the mutex released, and the library's copies are read into them
// under the mutex again (a slot that changed in between is an error, never a torn read).
#include <mutex>

#include <cstring>

#include "args.hpp"
#include "info.hpp"
#include "objects.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

py::dtype bytes_dtype(int32_t dtype) {
    switch (dtype) {
    case NW_DTYPE_F32: return py::dtype("float32");
    case NW_DTYPE_F16: return py::dtype("float16");
    case NW_DTYPE_F64: return py::dtype("float64");
    case NW_DTYPE_BF16: return py::dtype("uint16");
    default: fail(NW_ERR_UNSUPPORTED_DTYPE, "pickling: unknown dtype " + std::to_string(dtype));
    }
}

std::vector<int64_t> contiguous_strides(const std::vector<int64_t> &shape) {
    std::vector<int64_t> s(shape.size(), 1);
    for (size_t i = shape.size(); i > 1; --i) s[i - 2] = s[i - 1] * std::max<int64_t>(shape[i - 1], 1);
    return s;
}

// A read-only numpy view of a borrowed tensor (data, shape, element strides), its base the
// caller's object, so the view keeps it alive.
py::array held_array(const Held &h, const void *data, const std::vector<int64_t> &shape,
                     std::vector<int64_t> strides) {
    check_not_moved(h);
    if (strides.empty()) strides = contiguous_strides(shape);
    const int64_t item = item_size(h.dtype);
    std::vector<py::ssize_t> dims(shape.begin(), shape.end()), bytes;
    for (int64_t s : strides) bytes.push_back(static_cast<py::ssize_t>(s * item));
    py::object base = h.owner ? h.owner : py::none();
    py::array a(bytes_dtype(h.dtype), dims, bytes, data, base);
    a.attr("setflags")(py::arg("write") = false);
    return a;
}

// One slot of a model as gathered under its mutex.
struct SlotCopy {
    int kind;  // 0 weight, 1 autoencoder
    int32_t e, layer;
    int32_t dtype = NW_DTYPE_F32, input = -1;
    std::vector<int64_t> shape;
    HeldPtr held;  // the borrowed object, or null for the library's copy
    py::object array;
    HeldPtr encoder[3];  // an autoencoder's encoder, latent bias, pre bias (borrowed or the binding's copies)
};

std::string source_name_of(int32_t input) {
    for (const auto &s : facts().autoencoder_sources)
        if (s.second == input) return s.first;
    fail(NW_ERR_INVALID_ARGUMENT, "pickling: no source name for autoencoder input " + std::to_string(input));
}

// {'dims': (n_layers, d_model, n_heads, d_head, d_ff), 'causal': bool,
//  'weights': [(name, layer | None, array, dtype, copied)],
//  'autoencoders': [(node_type, layer, input source name, array, dtype, copied,
//                    ((encoder, dtype), (latent_bias, dtype), (pre_bias, dtype)) | None)]}
py::dict model_state(py::handle obj) {
    Model &m = model_arg(obj);
    std::vector<SlotCopy> slots;
    int32_t causal = 1;
    {
        std::shared_lock<std::shared_mutex> lock(m.mu);
        check(nw_model_get_causal(m.model, &causal));
        for (size_t w = 0; w < facts().weights.size(); ++w) {
            const bool has_layer = facts().weights[w].has_layer;
            for (int32_t l = has_layer ? 0 : NW_NO_LAYER; l < (has_layer ? m.dims.n_layers : NW_NO_LAYER + 1); ++l) {
                nw_weight_state st;
                std::memset(&st, 0, sizeof st);
                st.size = sizeof st;
                check(nw_model_weight_get(m.model, static_cast<int32_t>(w), l, &st));
                if (!st.present) continue;
                SlotCopy c{0, static_cast<int32_t>(w), l};
                c.shape.assign(st.shape, st.shape + std::min<int32_t>(std::max<int32_t>(st.ndim, 0), 4));
                c.dtype = st.dtype;
                auto it = m.borrowed.find(Slot(0, static_cast<int32_t>(w), l));
                if (st.ownership == NW_BORROW && it != m.borrowed.end()) c.held = it->second;
                slots.push_back(std::move(c));
            }
        }
        for (size_t t = 0; t < facts().node_types.size(); ++t) {
            if (!facts().node_types[t].is_latent) continue;
            for (int32_t l = 0; l < m.dims.n_layers; ++l) {
                nw_autoencoder_state st;
                std::memset(&st, 0, sizeof st);
                st.size = sizeof st;
                check(nw_model_autoencoder_get(m.model, static_cast<int32_t>(t), l, &st));
                if (!st.present) continue;
                SlotCopy c{1, static_cast<int32_t>(t), l};
                c.shape = {st.n_latents, st.n_inputs};
                c.dtype = st.dtype;
                c.input = st.input;
                auto it = m.borrowed.find(Slot(1, static_cast<int32_t>(t), l));
                if (st.ownership == NW_BORROW && it != m.borrowed.end()) c.held = it->second;
                // The encoder: set only through set_autoencoder(encoder=), which keeps it in
                // borrowed (copy=False) or encoder_copies (copy=True).
                for (int k = 0; k < 3; ++k) {
                    const Slot sl(2 + k, static_cast<int32_t>(t), l);
                    auto b = m.borrowed.find(sl);
                    auto cp = m.encoder_copies.find(sl);
                    if (st.ownership == NW_BORROW && b != m.borrowed.end()) c.encoder[k] = b->second;
                    else if (st.ownership != NW_BORROW && cp != m.encoder_copies.end()) c.encoder[k] = cp->second;
                }
                if ((c.encoder[0] != nullptr) != (c.encoder[1] != nullptr) || (c.encoder[0] != nullptr) != (c.encoder[2] != nullptr))
                    fail(NW_ERR_INVALID_ARGUMENT, "pickling: the encoder of " + node_type_facts(static_cast<int32_t>(t)).name +
                                                      " at layer " + std::to_string(l) + " is incomplete; set the autoencoder again");
                slots.push_back(std::move(c));
            }
        }
    }
    // Arrays, with the mutex released: views of borrowed objects, new float32 arrays for copies.
    for (SlotCopy &c : slots) {
        if (c.held) {
            c.array = held_array(*c.held, c.held->data, c.held->shape, c.held->strides);
        } else {
            std::vector<py::ssize_t> dims(c.shape.begin(), c.shape.end());
            c.array = py::array_t<float>(dims);
        }
    }
    {
        std::shared_lock<std::shared_mutex> lock(m.mu);
        for (SlotCopy &c : slots) {
            if (c.held) continue;
            auto a = py::reinterpret_borrow<py::array_t<float>>(c.array);
            float *out = a.mutable_data();
            const size_t n = static_cast<size_t>(a.size());
            nw_status st = c.kind == 0 ? nw_model_weight_read(m.model, c.e, c.layer, out, n)
                                       : nw_model_autoencoder_read(m.model, c.e, c.layer, out, n);
            if (st != NW_OK)
                fail(st, std::string("pickling: the model changed while it was pickled: ") + nw_last_error_message());
        }
    }
    py::list weights, aes;
    for (SlotCopy &c : slots) {
        const char *dtype = c.held ? dtype_text(c.dtype) : "float32";
        py::object copied = py::bool_(!c.held);
        if (c.kind == 0) {
            py::object layer = c.layer == NW_NO_LAYER ? py::object(py::none()) : py::object(py::int_(c.layer));
            weights.append(py::make_tuple(weight_facts(c.e).name, layer, c.array, dtype, copied));
        } else {
            py::object enc = py::none();
            if (c.encoder[0]) {
                py::list parts;
                for (int k = 0; k < 3; ++k) {
                    const Held &h = *c.encoder[k];
                    parts.append(py::make_tuple(held_array(h, h.data, h.shape, h.strides), dtype_text(h.dtype)));
                }
                enc = py::tuple(parts);
            }
            aes.append(py::make_tuple(node_type_facts(c.e).name, c.layer, source_name_of(c.input), c.array, dtype, copied, enc));
        }
    }
    py::dict d;
    d["dims"] = py::make_tuple(m.dims.n_layers, m.dims.d_model, m.dims.n_heads, m.dims.d_head, m.dims.d_ff);
    d["causal"] = py::bool_(causal != 0);
    d["weights"] = weights;
    d["autoencoders"] = aes;
    {
        std::shared_lock<std::shared_mutex> lock(m.mu);
        d["writes"] = py::int_(m.writes);
    }
    return d;
}

// [(activation, layer | None, array, dtype, pass_type, batch | None)]: each entry of both passes
// as the library reads it (after layout= and batch=), in the canonical layout, and the batch
// element it was put with (batch=), which ActivationStore.batch reports.
py::list store_state(py::handle obj) {
    Store &s = store_arg(obj);
    std::vector<std::pair<std::pair<int32_t, int32_t>, HeldPtr>> entries;
    std::vector<const char *> passes;
    std::vector<int64_t> batches;
    {
        std::shared_lock<std::shared_mutex> lock(s.mu);
        for (const auto &kv : s.entries)
            if (kv.second) entries.emplace_back(kv.first, kv.second), passes.push_back("forward"), batches.push_back(kv.second->batch);
        for (const auto &kv : s.backward)
            if (kv.second) entries.emplace_back(kv.first, kv.second), passes.push_back("backward"), batches.push_back(kv.second->batch);
    }
    py::list out;
    for (size_t i = 0; i < entries.size(); ++i) {
        const auto &e = entries[i];
        const Held &h = *e.second;
        const void *data = h.canonical_data ? h.canonical_data : h.data;
        const std::vector<int64_t> &shape = h.canonical_data ? h.canonical_shape : h.shape;
        const std::vector<int64_t> &strides = h.canonical_data ? h.canonical_strides : h.strides;
        py::object layer = e.first.second == NW_NO_LAYER ? py::object(py::none()) : py::object(py::int_(e.first.second));
        out.append(py::make_tuple(activation_facts(e.first.first).name, layer,
                                  held_array(h, data, shape, strides), dtype_text(h.dtype), passes[i],
                                  batches[i] < 0 ? py::object(py::none()) : py::object(py::int_(batches[i]))));
    }
    return out;
}

// Marks an entry of an unpickled store as put with batch=batch (its tensor arrived already
// sliced to that element), as ActivationStore.put(batch=) records it: the store's batch is then
// that element, and a later put with another batch= is refused as on the original store.
void store_mark_batch(py::handle obj, py::handle name, py::handle layer, py::handle pass, int64_t batch) {
    Store &s = store_arg(obj);
    const int32_t a = activation_arg(name);
    const int32_t l = layer.is_none() ? NW_NO_LAYER : to_layer(layer);
    const std::string p = py::str(pass);
    if (p != "forward" && p != "backward") fail(NW_ERR_INVALID_ARGUMENT, "pass_type: '" + p + "' is not a pass");
    if (batch < 0) fail(NW_ERR_INVALID_ARGUMENT, "batch: " + std::to_string(batch) + " is not a batch element");
    std::unique_lock<std::shared_mutex> lock(s.mu);
    auto &entries = p == "backward" ? s.backward : s.entries;
    auto it = entries.find({a, l});
    if (it == entries.end() || !it->second)
        fail(NW_ERR_MISSING_INPUT, "unpickling: no entry " + activation_facts(a).name + " to mark as batch " + std::to_string(batch));
    if (s.batch >= 0 && s.batch != batch)
        fail(NW_ERR_INVALID_ARGUMENT, "unpickling: entries of batch elements " + std::to_string(s.batch) + " and " +
                                          std::to_string(batch) + " in one store");
    if (it->second->batch < 0) ++s.batched;
    it->second->batch = batch;
    s.batch = batch;
}

}  // namespace

void init_pickling(py::module_ &mod) {
    mod.def("_model_state", &model_state,
            "_model_state(model: Model) -> dict\n\nWhat the model holds, for pickling (nodewrite/pickling.py).");
    mod.def("_store_state", &store_state,
            "_store_state(store: ActivationStore) -> list\n\nWhat the store holds, for pickling (nodewrite/pickling.py).");
    mod.def("_model_writes", [](py::handle obj) {
        Model &m = model_arg(obj);
        std::shared_lock<std::shared_mutex> lock(m.mu);
        return m.writes;
    }, "_model_writes(model: Model) -> int\n\nWrites begun on the model (set_weight, set_autoencoder, load_autoencoder, remove_autoencoder).");
    mod.def("_store_mark_batch", &store_mark_batch,
            "_store_mark_batch(store: ActivationStore, name: str, layer: int | None, pass_type: str, batch: int) -> None\n\n"
            "Marks an unpickled entry as put with batch= (nodewrite/pickling.py).");
}

}  // namespace nwpy
