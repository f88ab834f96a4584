// nodewrite.Model: nw_model, its weights and autoencoders (binding, docstrings, registration).
#include <mutex>

#include "args.hpp"
#include "objects.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

const char *kModelDoc = R"doc(Model(n_layers: int, d_model: int, n_heads: int, d_head: int, d_ff: int)

A transformer's dimensions and output weights (TDB's ModelContext, reduced to what node writes
need), wrapping nw_model. All dimensions >= 1.

Configure it with set_weight / set_autoencoder; weights() and autoencoders() (and repr) tell
what is set. Derives may run from any number of threads, also while another thread sets a
weight (a derive sees the old or the new weight, never freed memory).
)doc";

std::unique_ptr<Model> model_new(const py::args &args, const py::kwargs &kwargs) {
    auto a = parse_args("Model", args, kwargs,
                        {{"n_layers", true}, {"d_model", true}, {"n_heads", true},
                         {"d_head", true}, {"d_ff", true}});
    auto m = std::make_unique<Model>();
    nw_model_dims d;
    d.n_layers = to_int(a[0], "n_layers", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    d.d_model = to_int(a[1], "d_model", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    d.n_heads = to_int(a[2], "n_heads", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    d.d_head = to_int(a[3], "d_head", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    d.d_ff = to_int(a[4], "d_ff", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    check(nw_model_create(&d, &m->model));
    check(nw_model_dims_get(m->model, &m->dims));
    return m;
}

std::string shape_text(const std::vector<int64_t> &s) {
    std::string t = "(";
    for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + (s.size() == 1 ? ",)" : ")");
}

// Hints for the common mistake of passing a checkpoint's 2-D attention output matrix.
std::string weight_hint(const Model &m, const std::string &name, const Held &h) {
    if (name != "attn.to_residual" || h.shape.size() != 2) return "";
    const auto &d = m.dims;
    std::string view = std::to_string(d.n_heads) + ", " + std::to_string(d.d_head) + ", " +
                       std::to_string(d.d_model);
    if (h.shape[0] == d.n_heads * d.d_head && h.shape[1] == d.d_model)
        return "a " + shape_text(h.shape) +
               " matrix such as GPT-2's c_proj weight (n_heads*d_head, d_model) is this weight "
               "viewed as (heads, d_head, d_model): pass w.reshape(" + view + ")";
    if (h.shape[0] == d.d_model && h.shape[1] == d.n_heads * d.d_head)
        return "a " + shape_text(h.shape) +
               " matrix in torch.nn.Linear's (out, in) layout is this weight transposed: pass "
               "w.T.reshape(" + view + ")";
    return "view a (n_heads*d_head, d_model) matrix as (heads, d_head, d_model) with "
           "w.reshape(" + view + ")";
}

// Sets a weight or decoder under the model's lock; the replaced object is dropped after
// unlocking (its destructor may run Python code).
template <class F>
void set_under_lock(Model &m, std::tuple<int, int32_t, int32_t> key, SetInfo info, F c_call,
                    const Subject &subject) {
    SetInfo old;
    {
        std::unique_lock<std::shared_mutex> lock(m.mu);  // waits for GIL-free readers only
        nw_status st = c_call();
        if (st != NW_OK) fail_library(st, nw_last_error_message(), &subject);
        auto it = m.set.find(key);
        if (it != m.set.end()) {
            old = std::move(it->second);
            it->second = std::move(info);
        } else {
            m.set.emplace(key, std::move(info));
        }
    }
}

void model_set_weight(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Model &m = self_of<Model>(self, "Model");
    auto a = parse_args("set_weight", args, kwargs,
                        {{"name", true}, {"layer", true}, {"weight", true}, {"copy", false}});
    std::string name = to_name(a[0], "weight name");
    int32_t weight = name_to_enum(name, "weight name", nw_weight_from_name);
    bool layerless = weight == NW_WEIGHT_UNEMBEDDING || weight == NW_WEIGHT_LAYER_NORM_GAIN_FINAL;
    if (a[1].is_none() && !layerless)
        fail(NW_ERR_INVALID_ARGUMENT, "layer: None is for the weights of no layer (unembedding, "
                                      "layer_norm_gain.final); " + name + " needs an int layer");
    int32_t l = a[1].is_none() ? NW_NO_LAYER : to_layer(a[1]);  // None: a weight of no layer
    bool do_copy = a[3] ? to_bool(a[3], "copy") : true;
    Subject subject{"weight " + name + (l == NW_NO_LAYER ? std::string() : " at layer " + std::to_string(l)),
                    layout_of(name), ""};
    HeldPtr h = hold_tensor(a[2], subject.what);
    subject.hint = weight_hint(m, name, *h);
    nw_tensor_view v = h->view();
    SetInfo info{do_copy, h->dtype, h->shape, "", do_copy ? nullptr : h};
    set_under_lock(m, std::make_tuple(0, weight, l), std::move(info), [&] {
        return nw_model_set_weight(m.model, weight, l, &v, do_copy ? NW_COPY : NW_BORROW);
    }, subject);
}

void model_set_autoencoder(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Model &m = self_of<Model>(self, "Model");
    auto a = parse_args("set_autoencoder", args, kwargs,
                        {{"node_type", true}, {"layer", true}, {"decoder", true},
                         {"input", true}, {"copy", false}});
    std::string nt_name = to_name(a[0], "node_type");
    int32_t nt = name_to_enum(nt_name, "node_type", nw_node_type_from_name);
    int32_t l = to_layer(a[1]);
    std::string input = to_name(a[3], "input");
    int32_t in = name_to_enum(input, "input", nw_autoencoder_input_from_name);
    bool do_copy = a[4] ? to_bool(a[4], "copy") : true;
    Subject subject{"decoder of " + nt_name + " at layer " + std::to_string(l),
                    layout_of("decoder"), ""};
    HeldPtr h = hold_tensor(a[2], subject.what);
    nw_tensor_view v = h->view();
    SetInfo info{do_copy, h->dtype, h->shape, input, do_copy ? nullptr : h};
    set_under_lock(m, std::make_tuple(1, nt, l), std::move(info), [&] {
        return nw_model_set_autoencoder(m.model, nt, l, in, &v, do_copy ? NW_COPY : NW_BORROW);
    }, subject);
}

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
    m->source = path;
    int64_t vocab = 0;
    check(nw_model_vocab_size(m->model, &vocab));
    for (int32_t l = 0; l < m->dims.n_layers; ++l) {
        m->set.emplace(std::make_tuple(0, int32_t(NW_WEIGHT_MLP_TO_RESIDUAL), l),
                       SetInfo{false, -1, {m->dims.d_ff, m->dims.d_model}, "", nullptr});
        m->set.emplace(std::make_tuple(0, int32_t(NW_WEIGHT_ATTN_TO_RESIDUAL), l),
                       SetInfo{false, -1, {m->dims.n_heads, m->dims.d_head, m->dims.d_model}, "", nullptr});
    }
    if (vocab > 0)
        m->set.emplace(std::make_tuple(0, int32_t(NW_WEIGHT_UNEMBEDDING), int32_t(NW_NO_LAYER)),
                       SetInfo{false, -1, {m->dims.d_model, vocab}, "", nullptr});
    return m;
}

// Model.load_autoencoder(path, node_type, layer): nw_model_load_autoencoder_safetensors.
void model_load_autoencoder(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Model &m = self_of<Model>(self, "Model");
    auto a = parse_args("load_autoencoder", args, kwargs, {{"path", true}, {"node_type", true}, {"layer", true}});
    std::string path = path_arg(a[0], "path");
    std::string nt_name = to_name(a[1], "node_type");
    int32_t nt = name_to_enum(nt_name, "node_type", nw_node_type_from_name);
    int32_t l = to_layer(a[2]);
    Subject subject{"autoencoder " + path + " for " + nt_name + " at layer " + std::to_string(l), "", ""};
    SetInfo info{false, -1, {}, "from " + path, nullptr};
    set_under_lock(m, std::make_tuple(1, nt, l), std::move(info), [&] {
        return nw_model_load_autoencoder_safetensors(m.model, path.c_str(), nt, l);
    }, subject);
}

py::dict describe(const Model &m, int kind) {
    py::dict out;
    for (const auto &kv : m.set) {
        if (std::get<0>(kv.first) != kind) continue;
        const char *n = kind == 0 ? nw_weight_name(std::get<1>(kv.first))
                                  : nw_node_type_name(std::get<1>(kv.first));
        const char *dt = nw_dtype_name(kv.second.dtype);
        py::dict d;
        d["copied"] = kv.second.copied;
        d["dtype"] = dt ? dt : "?";
        py::tuple shape(kv.second.shape.size());
        for (size_t i = 0; i < kv.second.shape.size(); ++i) shape[i] = py::int_(kv.second.shape[i]);
        d["shape"] = shape;
        if (kind == 1) d["input"] = kv.second.input;
        int32_t layer = std::get<2>(kv.first);
        py::object l = layer == NW_NO_LAYER ? py::object(py::none()) : py::object(py::int_(layer));
        out[py::make_tuple(n ? n : "?", l)] = d;
    }
    return out;
}

std::string model_repr(py::handle self) {
    const Model &m = self_of<Model>(self, "Model");
    std::string r = "nodewrite.Model(n_layers=" + std::to_string(m.dims.n_layers) +
                    ", d_model=" + std::to_string(m.dims.d_model) +
                    ", n_heads=" + std::to_string(m.dims.n_heads) +
                    ", d_head=" + std::to_string(m.dims.d_head) +
                    ", d_ff=" + std::to_string(m.dims.d_ff) + ")" +
                    (m.source.empty() ? std::string() : " loaded from " + m.source);
    std::string weights, aes;
    int nw = 0, na = 0;
    for (const auto &kv : m.set) {
        int kind = std::get<0>(kv.first);
        const char *n = kind == 0 ? nw_weight_name(std::get<1>(kv.first))
                                  : nw_node_type_name(std::get<1>(kv.first));
        std::string item = std::string(n ? n : "?") + "@" + std::to_string(std::get<2>(kv.first)) +
                           (kv.second.copied ? "" : " (borrowed)");
        std::string &list = kind == 0 ? weights : aes;
        int &count = kind == 0 ? nw : na;
        if (count < 8) list += (count ? ", " : "") + item;
        else if (count == 8) list += ", ...";
        ++count;
    }
    r += " with " + std::to_string(nw) + (nw == 1 ? " weight" : " weights");
    if (nw) r += " [" + weights + "]";
    r += ", " + std::to_string(na) + (na == 1 ? " autoencoder" : " autoencoders");
    if (na) r += " [" + aes + "]";
    return r;
}

}  // namespace

void init_model(py::module_ &mod) {
    py::class_<Model> cls(mod, "Model", kModelDoc);
    def_init(cls, &model_new, "Model",
             "__init__(self, n_layers: int, d_model: int, n_heads: int, d_head: int, d_ff: int) -> None");
    cls.def("set_weight", &model_set_weight, R"doc(set_weight(self, name: str, layer: int | None, weight: numpy.ndarray | torch.Tensor, copy: bool = True) -> None

Set an output weight of one layer, replacing any earlier one.

name: TDB's WeightLocationType value, "mlp.to_residual" (d_ff, d_model) or
"attn.to_residual" (n_heads, d_head, d_model) (a checkpoint's (n_heads*d_head, d_model)
matrix, e.g. GPT-2's c_proj weight, viewed with .reshape(n_heads, d_head, d_model)); or,
with layer None (weights of no layer), "unembedding" (d_model, n_vocab) and
"layer_norm_gain.final" (d_model,), used by token_writes.
weight: numpy array (float32, float16, float64) or CPU torch tensor (float32, float16,
bfloat16), any strides (transposed and negative-stride views work).
copy=True (default): the library converts and copies it now.
copy=False: borrowed in place: the model (and every deriver created while it is set) keeps a
reference to the object and reads its current values. Do not reallocate it in place
(numpy's resize(refcheck=False), torch's resize_ / set_): the library would read freed memory.
copy must be True or False.
Raises IndexError (layer), ValueError (name, type, dtype, shape), all NodeWriteError.
)doc")
        .def("set_autoencoder", &model_set_autoencoder, R"doc(set_autoencoder(self, node_type: str, layer: int, decoder: numpy.ndarray | torch.Tensor, input: str, copy: bool = True) -> None

Set the decoder of the autoencoder used by latent nodes of node_type at one layer.

node_type: "autoencoder_latent", "mlp_autoencoder_latent" or "attention_autoencoder_latent".
decoder: (n_latents, n_inputs), TDB's decoder.weight.T. input: TDB's DerivedScalarType
value of what the autoencoder was trained on: "mlp_post_act" (n_inputs = d_ff; the decoded
vector goes through mlp.to_residual) or a residual-stream type ("resid_delta_mlp",
"resid_delta_attn", "resid_post_mlp", "resid_post_attn", "resid_post_embedding";
n_inputs = d_model; the decoded vector is the write) or "attn_weighted_sum_of_values"
(attention's z, e.g. an SAE on blocks.L.attn.hook_z: n_inputs = n_heads*d_head; the decoded
vector goes through attn.to_residual); nodewrite.autoencoder_input_kind(name) asks the library. copy: as in set_weight (the same warning for copy=False).
)doc")
        .def("weights", [](py::handle self) { return describe(self_of<Model>(self, "Model"), 0); },
             "weights(self) -> dict[tuple[str, int], dict]\n\nThe weights set: {(name, layer): "
             "{'copied': bool, 'dtype': str, 'shape': tuple}}.")
        .def("autoencoders", [](py::handle self) { return describe(self_of<Model>(self, "Model"), 1); },
             "autoencoders(self) -> dict[tuple[str, int], dict]\n\nThe autoencoder decoders set: "
             "{(node_type, layer): {'copied': bool, 'dtype': str, 'shape': tuple, 'input': str}}.")
        .def_property_readonly("n_layers", [](py::handle s) { return self_of<Model>(s, "Model").dims.n_layers; }, "n_layers: int -- number of layers.")
        .def_property_readonly("d_model", [](py::handle s) { return self_of<Model>(s, "Model").dims.d_model; }, "d_model: int -- width of the residual stream.")
        .def_property_readonly("n_heads", [](py::handle s) { return self_of<Model>(s, "Model").dims.n_heads; }, "n_heads: int -- attention heads per layer.")
        .def_property_readonly("d_head", [](py::handle s) { return self_of<Model>(s, "Model").dims.d_head; }, "d_head: int -- width of one attention head.")
        .def_property_readonly("d_ff", [](py::handle s) { return self_of<Model>(s, "Model").dims.d_ff; }, "d_ff: int -- width of the MLP (neurons per layer).")
        .def_static("from_safetensors", &model_from_safetensors, R"doc(from_safetensors(path: str | os.PathLike) -> Model

A model from a checkpoint file, read natively (nw_model_load_safetensors): a Hugging Face GPT-2
model.safetensors (with config.json beside it, or n_head in its metadata) or a TransformerLens
state dict saved with safetensors. Dimensions are inferred and checked against each other; the
file is memory-mapped and its tensors borrowed in place (do not truncate or rewrite it while the
model is in use; replacing it by rename is safe). weights() lists the loaded output weights and
the unembedding (dtype '?': as stored in the file).
Raises ValueError (not a readable checkpoint, inconsistent shapes, ...), all NodeWriteError.
)doc")
        .def("load_autoencoder", &model_load_autoencoder, R"doc(load_autoencoder(self, path: str | os.PathLike, node_type: str, layer: int) -> None

Set the autoencoder of node_type at layer from an SAELens directory (cfg.json and
sae_weights.safetensors; nw_model_load_autoencoder_safetensors): the decoder W_dec, with what it
decodes into taken from cfg.json's hook_name (residual hooks, mlp.hook_post through
mlp.to_residual, attn.hook_z through attn.to_residual). The file is mapped and borrowed.
)doc")
        .def("__repr__", &model_repr, "__repr__(self) -> str");
}

}  // namespace nwpy
