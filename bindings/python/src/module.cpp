// nodewrite._core: a thin pybind11 layer over the public C header include/nodewrite.h.
//
// Files, one job each:
//   module.cpp   PYBIND11_MODULE: the Python names and their docstrings (this file)
//   errors.*     NwFailure, fail helpers, the translator to nodewrite.errors
//   args.*       Python -> C arguments: integers, layers, names, bools, node indices
//   dlpack.hpp   the DLPack ABI structs
//   views.*      held tensors: buffer protocol / DLPack -> nw_tensor_view, keep-alive
//   objects.*    Model, ActivationStore, NodeWriteDeriver, node_write(_vectors), locking
//
// Rules the binding keeps (see shared CONVENTIONS, "The Python binding"):
// - It calls only functions declared in nodewrite.h.
// - Inputs are never copied or cast: a numpy array (buffer protocol) or a CPU tensor
//   (DLPack, e.g. torch) is passed to C as a view with ELEMENT strides, and the
//   Python object (plus its Py_buffer / DLPack capsule) is kept alive for as long as
//   C may read it.
// - Every failure becomes an NwFailure{status, message}; one translator hands it to
//   nodewrite.errors._raise_for, the single status -> exception mapping.
// - The GIL is released only in inner scopes around the C calls that do the work,
//   after everything has been read from Python objects.
//
// Locking (so that no sequence of Python calls, from any number of threads, can make
// the library read freed or changing memory):
// - Writers (Model.set_*, ActivationStore.put/remove/clear) hold the GIL for their
//   whole duration and take the object's mutex exclusively.
// - Readers that run without the GIL (derive, node_write, node_write_vectors) take the
//   mutexes shared, and never wait for the GIL while holding one. Readers that run
//   with the GIL held (deriver creation, output shape) need no mutex: no writer can
//   run while they hold the GIL.
// - A thread never waits for a mutex while holding the GIL unless it is a writer
//   waiting for readers, and readers do not need the GIL to finish: no deadlock.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>

#include "errors.hpp"
#include "nodewrite.h"
#include "objects.hpp"

namespace py = pybind11;
using namespace nwpy;

namespace {

template <typename F>
py::tuple names(F name_of) {
    py::list out;
    for (int32_t i = 0; i < 64; ++i) {
        const char *n = name_of(i);
        if (n == nullptr) break;
        out.append(py::str(n));
    }
    return py::tuple(out);
}

}  // namespace

PYBIND11_MODULE(_core, mod) {
    mod.doc() = "nodewrite._core: pybind11 layer over the C ABI of libnodewrite (nodewrite.h). "
                "Use the nodewrite package, not this module.";

    register_error_translator();

    mod.attr("HEADER_ABI_VERSION") = static_cast<uint32_t>(NW_ABI_VERSION);
    mod.attr("HEADER_VERSION") = NW_VERSION_STRING;
    mod.def("abi_version", &nw_abi_version, "NW_ABI_VERSION of the loaded libnodewrite.");
    mod.def("version_string", [] { return std::string(nw_version_string()); },
            "Version of the loaded libnodewrite, 'MAJOR.MINOR.PATCH'.");
    mod.def("status_string", [](int32_t s) { return std::string(nw_status_string(s)); },
            py::arg("status"), "Name of a status code ('NW_OK', 'NW_ERR_...').");
    mod.def("last_error_message", [] { return std::string(nw_last_error_message()); },
            "The library's last error message on this thread.");
    mod.def("node_type_names", [] { return names(nw_node_type_name); },
            "TDB NodeType values, in nw_node_type order.");
    mod.def("activation_names", [] { return names(nw_activation_name); },
            "TDB ActivationLocationType values, in nw_activation order.");
    mod.def("weight_names", [] { return names(nw_weight_name); },
            "TDB WeightLocationType values, in nw_weight order.");
    mod.def("dtype_names", [] { return names(nw_dtype_name); }, "dtype names, in nw_dtype order.");

    py::class_<Model>(mod, "Model", R"doc(
A transformer's dimensions and output weights (TDB's ModelContext, reduced to what
node writes need), wrapping nw_model.

Model(n_layers, d_model, n_heads, d_head, d_ff); all dimensions >= 1.
Configure it (set_weight, set_autoencoder) before sharing it between threads; derives
may then run from any number of threads.
)doc")
        .def(py::init(&model_new), py::arg("n_layers"), py::arg("d_model"), py::arg("n_heads"),
             py::arg("d_head"), py::arg("d_ff"))
        .def("set_weight", &model_set_weight, py::arg("name"), py::arg("layer"),
             py::arg("weight"), py::arg("copy") = true, R"doc(
Set an output weight of one layer, replacing any earlier one.

name: TDB's WeightLocationType value, "mlp.to_residual" (d_ff, d_model) or
"attn.to_residual" (n_heads, d_head, d_model). weight: numpy array (float32, float16,
float64) or CPU torch tensor (float32, float16, bfloat16), any strides (transposed and
negative-stride views work). copy=True (default): the library converts and copies it now.
copy=False: borrowed in place; the model (and every deriver created while it is set)
keeps a reference to the object; do not change its values while in use.
Raises IndexError (layer), ValueError (name, dtype, shape), all NodeWriteError.
)doc")
        .def("set_autoencoder", &model_set_autoencoder, py::arg("node_type"), py::arg("layer"),
             py::arg("decoder"), py::arg("input"), py::arg("copy") = true, R"doc(
Set the decoder of the autoencoder used by latent nodes of node_type at one layer.

node_type: "autoencoder_latent", "mlp_autoencoder_latent" or "attention_autoencoder_latent".
decoder: (n_latents, n_inputs), TDB's decoder.weight.T. input: TDB's DerivedScalarType
value of what the autoencoder was trained on: "mlp_post_act" (n_inputs = d_ff; the decoded
vector goes through mlp.to_residual) or a residual-stream type ("resid_delta_mlp",
"resid_delta_attn", "resid_post_mlp", "resid_post_attn", "resid_post_embedding";
n_inputs = d_model; the decoded vector is the write). copy: as in set_weight.
)doc")
        .def_property_readonly("n_layers", [](const Model &m) { return m.dims.n_layers; }, "Number of layers.")
        .def_property_readonly("d_model", [](const Model &m) { return m.dims.d_model; }, "Width of the residual stream.")
        .def_property_readonly("n_heads", [](const Model &m) { return m.dims.n_heads; }, "Attention heads per layer.")
        .def_property_readonly("d_head", [](const Model &m) { return m.dims.d_head; }, "Width of one attention head.")
        .def_property_readonly("d_ff", [](const Model &m) { return m.dims.d_ff; }, "Width of the MLP (neurons per layer).")
        .def("__repr__", [](const Model &m) {
            return "nodewrite.Model(n_layers=" + std::to_string(m.dims.n_layers) +
                   ", d_model=" + std::to_string(m.dims.d_model) +
                   ", n_heads=" + std::to_string(m.dims.n_heads) +
                   ", d_head=" + std::to_string(m.dims.d_head) +
                   ", d_ff=" + std::to_string(m.dims.d_ff) + ")";
        });

    py::class_<Store>(mod, "ActivationStore", R"doc(
Raw activations keyed by (TDB ActivationLocationType value, layer), wrapping nw_store.

Entries are borrowed, never copied: the store keeps a reference to each array or tensor
put into it, and derives read its current values in place.
)doc")
        .def(py::init(&store_new))
        .def("put", &store_put, py::arg("name"), py::arg("layer"), py::arg("tensor"), R"doc(
Put a raw activation, replacing any earlier one at (name, layer).

name: "mlp.post_act" (T, d_ff), "attn.qk_probs" (T, T_k, n_heads), "attn.v"
(T_k, n_heads, d_head), "online_autoencoder_latent", "online_mlp_autoencoder_latent",
"online_attention_autoencoder_latent" (T, n_latents). tensor: numpy array or CPU torch
tensor as in Model.set_weight; read in place (zero-copy) by every later derive.
Shapes are checked against the model when a derive reads them.
)doc")
        .def("remove", &store_remove, py::arg("name"), py::arg("layer"),
             "Remove (name, layer) if present.")
        .def("clear", &store_clear, "Remove every entry.")
        .def("get", &store_get, py::arg("name"), py::arg("layer"),
             "The object put at (name, layer); KeyError if there is none.")
        .def("keys", &store_keys, "The (name, layer) pairs in the store.")
        .def("__len__", [](const Store &s) { return s.entries.size(); }, "Number of entries.")
        .def("__contains__", &store_contains, "Whether (name, layer) is in the store.")
        .def("__repr__", [](const Store &s) {
            return "nodewrite.ActivationStore(" + std::to_string(s.entries.size()) +
                   " entries)";
        });

    py::class_<Deriver>(mod, "NodeWriteDeriver", R"doc(
The node-write deriver of one node (TDB's ScalarDeriver for SINGLE_NODE_WRITE),
wrapping nw_deriver.

NodeWriteDeriver(model, node) validates the node against the model (layer, non-token
indices, weights and autoencoder present) and captures the model's current weights.
Immutable; share it between threads freely.
)doc")
        .def(py::init(&deriver_new), py::arg("model"), py::arg("node"))
        .def_property_readonly(
            "requirements", [](const Deriver &d) { return py::list(d.requirements); },
            "The raw activations it reads, as [(ActivationLocationType value, layer), ...].")
        .def_property_readonly("model", [](const Deriver &d) { return d.model_obj; },
                               "The Model it was created from.")
        .def_property_readonly("node", [](const Deriver &d) { return d.node_obj; },
                               "The node it derives the write of.")
        .def("derive", &deriver_derive, py::arg("store"), R"doc(
TDB's output: a new float32 numpy array (T, d_model), zero except the node's token row
(the query token for attention nodes). Releases the GIL during the computation.
)doc")
        .def("derive_vector", &deriver_derive_vector, py::arg("store"), R"doc(
The write vector alone: (float32 numpy array (d_model,), token_row: int).
)doc")
        .def("__repr__", [](const Deriver &d) {
            return "nodewrite.NodeWriteDeriver(" + py::repr(d.node_obj).cast<std::string>() + ")";
        });

    mod.def("node_write", &node_write, py::arg("model"), py::arg("store"), py::arg("node"),
            R"doc(
One-shot: the (T, d_model) float32 output of the node-write deriver of node (as
NodeWriteDeriver(model, node).derive(store)).
)doc");
    mod.def("node_write_vectors", &node_write_vectors, py::arg("model"), py::arg("store"),
            py::arg("nodes"), R"doc(
Write vectors of many nodes in one call: (vectors float32 (n, d_model), token_rows int64 (n,)).
All nodes are validated before anything is computed; the error names the first failing node.
)doc");
}
