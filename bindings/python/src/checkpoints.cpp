// Checkpoints on disk (safetensors): Model.from_safetensors and Model.load_autoencoder, read
// natively by the library (binding, docstrings, registration).
#include "args.hpp"
#include "info.hpp"
#include "model.hpp"
#include "objects.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

// A filesystem path argument (str or os.PathLike) as UTF-8.
std::string path_arg(py::handle obj, const char *what) {
    py::object fspath = py::module_::import("os").attr("fspath");
    py::object p;
    try {
        p = fspath(obj);
    } catch (py::error_already_set &e) {
        if (!e.matches(PyExc_TypeError)) throw;
        fail(NW_ERR_INVALID_ARGUMENT, std::string(what) + ": expected a path (str or os.PathLike), got " + type_name(obj));
    }
    if (!py::isinstance<py::str>(p))
        fail(NW_ERR_INVALID_ARGUMENT, std::string(what) + ": expected a str path, got " + type_name(p));
    return p.cast<std::string>();
}

// Model.from_safetensors(path): nw_model_load_safetensors (the file is mapped and borrowed).
std::unique_ptr<Model> model_from_safetensors(py::object path_obj) {
    std::string path = path_arg(path_obj, "path");
    auto m = std::make_unique<Model>();
    check(nw_model_load_safetensors(path.c_str(), &m->model));
    check(nw_model_dims_get(m->model, &m->dims));
    refresh_vocab(*m);
    m->source = path;
    return m;
}

// Model.load_autoencoder(path, node_type, layer): nw_model_load_autoencoder_safetensors.
void model_load_autoencoder(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Model &m = self_of<Model>(self, "Model");
    auto a = parse_args("load_autoencoder", args, kwargs, {{"path", true}, {"node_type", true}, {"layer", true}});
    std::string path = path_arg(a[0], "path");
    int32_t nt = node_type_arg(a[1]);
    int32_t l = to_layer(a[2]);
    set_under_lock(m, Slot(1, nt, l), nullptr, [&] {
        return nw_model_load_autoencoder_safetensors(m.model, path.c_str(), nt, l);
    }, "");
}

}  // namespace

void init_checkpoints(py::class_<Model> &cls) {
    cls.def_static("from_safetensors", &model_from_safetensors, R"doc(from_safetensors(path: str | os.PathLike) -> Model

A model from a checkpoint file, read natively (nw_model_load_safetensors): a Hugging Face GPT-2
model.safetensors (with config.json beside it, or n_head in its metadata) or a TransformerLens
state dict saved with safetensors. Dimensions are inferred and checked against each other; the
file is memory-mapped and its tensors borrowed in place (do not truncate or rewrite it while the
model is in use; replacing it by rename is safe). weights() lists what the library loaded (dtype as
stored in the file, copied False: mapped).
Raises ValueError (not a readable checkpoint, inconsistent shapes, ...), all NodeWriteError.
)doc")
        .def("load_autoencoder", &model_load_autoencoder, R"doc(load_autoencoder(self, path: str | os.PathLike, node_type: str, layer: int) -> None

Set the autoencoder of node_type at layer from an SAELens directory (cfg.json and
sae_weights.safetensors; nw_model_load_autoencoder_safetensors): the decoder W_dec, with what it
decodes into taken from cfg.json's hook_name (residual hooks, mlp.hook_post through
mlp.to_residual, attn.hook_z through attn.to_residual). The file is mapped and borrowed.
)doc");
}

}  // namespace nwpy
