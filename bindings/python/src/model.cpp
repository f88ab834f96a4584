// nodewrite.Model: nw_model, its weights and autoencoders (binding, docstrings, registration).
#include <mutex>

#include <cstring>

#include "args.hpp"
#include "info.hpp"
#include "model.hpp"
#include "objects.hpp"
#include "outputs.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

void refresh_vocab(Model &m) { check(nw_model_vocab_size(m.model, &m.n_vocab)); }

namespace {

const char *kModelDoc = R"doc(Model(n_layers: int, d_model: int, n_heads: int, d_head: int, d_ff: int, *, causal: bool = True, layer_norm_epsilon: float = 1e-5, mlp_activation: str = "gelu_tanh")

A transformer's dimensions and output weights (TDB's ModelContext, reduced to what node writes
need), wrapping nw_model. All dimensions >= 1. causal: whether attention is causal (TDB's and
TransformerLens's default models are); causal=False reads every key (see Model.causal).
layer_norm_epsilon (finite, above 0 in float32) and mlp_activation ("gelu_tanh", TDB's and
TransformerLens's gelu_new / gelu_fast / gelu_pytorch_tanh; "gelu_erf", TransformerLens's
"gelu"; "relu") are the blocks' LayerNorm epsilon and MLP activation, which the edge DSTs
differentiate (nodewrite.derive with node=); the write-family DSTs do not depend on them.

Configure it with set_weight / set_autoencoder; weights() and autoencoders() (and repr) tell
what is set. Derives may run from any number of threads, also while another thread sets a
weight (a derive sees the old or the new weight, never freed memory).
)doc";

// The Python names of enum nw_mlp_activation, in enum order.
const char *const kActivationNames[] = {"gelu_tanh", "gelu_erf", "relu"};

int32_t mlp_activation_from_name(const std::string &name) {
    for (int32_t i = 0; i < 3; i++)
        if (name == kActivationNames[i]) return i;
    fail(NW_ERR_INVALID_ARGUMENT,
         "mlp_activation = '" + name + "': expected 'gelu_tanh' (TDB's; TransformerLens's gelu_new, "
         "gelu_fast, gelu_pytorch_tanh), 'gelu_erf' (TransformerLens's 'gelu') or 'relu'");
}

// A real number (int, float, numpy scalar; not bool or str) for layer_norm_epsilon.
double to_epsilon(py::handle obj) {
    if (PyBool_Check(obj.ptr()) || PyUnicode_Check(obj.ptr()) || !PyNumber_Check(obj.ptr()) ||
        PyComplex_Check(obj.ptr()))
        fail(NW_ERR_INVALID_ARGUMENT, "layer_norm_epsilon: expected a float such as 1e-5, got " + type_name(obj));
    double v = PyFloat_AsDouble(obj.ptr());
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        fail(NW_ERR_INVALID_ARGUMENT, "layer_norm_epsilon: expected a float such as 1e-5, got " + type_name(obj));
    }
    return v;
}

std::unique_ptr<Model> model_new(const py::args &args, const py::kwargs &kwargs) {
    auto a = parse_args("Model", args, kwargs,
                        {{"n_layers", true}, {"d_model", true}, {"n_heads", true},
                         {"d_head", true}, {"d_ff", true}, {"causal", false},
                         {"layer_norm_epsilon", false}, {"mlp_activation", false}}, 5);
    const bool causal = a[5] ? to_bool(a[5], "causal") : true;
    const double eps = a[6] ? to_epsilon(a[6]) : 1e-5;
    const int32_t act = a[7] ? mlp_activation_from_name(to_name(a[7], "mlp_activation")) : NW_ACT_FN_GELU_TANH;
    auto m = std::make_unique<Model>();
    nw_model_dims d;
    d.n_layers = to_int(a[0], "n_layers", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    d.d_model = to_int(a[1], "d_model", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    d.n_heads = to_int(a[2], "n_heads", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    d.d_head = to_int(a[3], "d_head", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    d.d_ff = to_int(a[4], "d_ff", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    check(nw_model_create(&d, &m->model));
    check(nw_model_dims_get(m->model, &m->dims));
    if (!causal) check(nw_model_set_causal(m->model, 0));  // a new model is causal
    if (a[6]) check(nw_model_set_layer_norm_epsilon(m->model, eps));
    if (a[7]) check(nw_model_set_mlp_activation(m->model, act));
    m->causal = causal;
    return m;
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

void model_set_weight(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Model &m = self_of<Model>(self, "Model");
    auto a = parse_args("set_weight", args, kwargs,
                        {{"name", true}, {"layer", true}, {"weight", true}, {"copy", false}});
    int32_t weight = weight_arg(a[0], "weight name");
    const WeightFacts &wf = weight_facts(weight);
    if (a[1].is_none() && wf.has_layer)
        fail(NW_ERR_INVALID_ARGUMENT, "layer: None is for the weights of no layer; " + wf.name +
                                          " needs an int layer");
    int32_t l = a[1].is_none() ? NW_NO_LAYER : to_layer(a[1]);  // None: a weight of no layer
    bool do_copy = a[3] ? to_bool(a[3], "copy") : true;
    std::string what = "weight " + wf.name + (l == NW_NO_LAYER ? std::string() : " at layer " + std::to_string(l));
    HeldPtr h = hold_tensor(a[2], what);
    std::string hint = weight_hint(m, wf.name, *h);
    nw_tensor_view v = h->view();
    set_under_lock(m, Slot(0, weight, l), do_copy ? nullptr : h, [&] {
        return nw_model_set_weight(m.model, weight, l, &v, do_copy ? NW_COPY : NW_BORROW);
    }, hint);
}

// The decoder's shape for an autoencoder input kind, from the library's table (for replace=, which
// checks what the library would refuse before it empties the slot).
void check_decoder(const Model &m, int32_t node_type, int32_t layer, int32_t kind, const Held &h,
                   const std::string &what) {
    const NodeTypeFacts &nt = node_type_facts(node_type);
    if (!nt.is_latent)
        fail(NW_ERR_INVALID_ARGUMENT, "node_type " + nt.name + " is not an autoencoder latent type");
    if (layer < 0 || layer >= m.dims.n_layers)
        fail(NW_ERR_INDEX_OUT_OF_RANGE, "layer " + std::to_string(layer) + " is out of range (0 ..< " +
                                            std::to_string(m.dims.n_layers) + ")");
    const AutoencoderInputFacts &in = facts().autoencoder_inputs.at(static_cast<size_t>(kind));
    const int64_t n_inputs = model_dim_size(m, in.input_dim);
    if (h.shape.size() != 2 || h.shape[1] != n_inputs || h.shape[0] < 0)
        fail(NW_ERR_SHAPE_MISMATCH, what + ": shape " + shape_text(h.shape) + ", expected (n_latents, " +
                                        dim_name(in.input_dim) + " = " + std::to_string(n_inputs) + ")");
}

// The borrowed-object slots of one autoencoder: its decoder (kind 1) and its encoder, latent bias
// and pre bias (kinds 2, 3, 4).
constexpr int kEncoderSlot = 2, kLatentBiasSlot = 3, kPreBiasSlot = 4;

HeldPtr zeros_held(int64_t n, const std::string &what) {
    py::array_t<float> z(static_cast<py::ssize_t>(n));
    if (n > 0) std::memset(z.mutable_data(), 0, static_cast<size_t>(n) * sizeof(float));
    return hold_tensor(z, what);
}

// A contiguous copy of what h reads, in its dtype (bfloat16 as uint16 bit patterns), held as
// the binding's own object (for pickling an encoder set with copy=True).
HeldPtr copy_held(const Held &h) {
    check_not_moved(h);
    const int64_t item = item_size(h.dtype);
    std::vector<py::ssize_t> dims(h.shape.begin(), h.shape.end()), bytes;
    std::vector<int64_t> el = h.strides;
    if (el.empty()) {
        el.assign(h.shape.size(), 1);
        for (size_t i = h.shape.size(); i > 1; --i) el[i - 2] = el[i - 1] * std::max<int64_t>(h.shape[i - 1], 1);
    }
    for (int64_t s : el) bytes.push_back(static_cast<py::ssize_t>(s * item));
    const char *np = h.dtype == NW_DTYPE_F16 ? "float16" : h.dtype == NW_DTYPE_F64 ? "float64"
                   : h.dtype == NW_DTYPE_BF16 ? "uint16" : "float32";
    py::array view(py::dtype(np), dims, bytes, h.data, py::none());  // a view (base None) ...
    py::array copy = py::array::ensure(py::module_::import("numpy").attr("array")(view, py::arg("order") = "C"));
    auto c = std::make_shared<Held>();  // ... copied into memory of its own
    c->owner = copy;
    c->data = copy.data();
    c->dtype = h.dtype;
    c->shape = h.shape;
    c->what = h.what;
    return c;
}

void check_vector(const Held &h, int64_t n, const std::string &what, const char *dim) {
    if (h.shape.size() != 1 || h.shape[0] != n)
        fail(NW_ERR_SHAPE_MISMATCH, what + ": shape " + shape_text(h.shape) + ", expected (" + dim + " = " +
                                        std::to_string(n) + ",)");
}

void model_set_autoencoder(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Model &m = self_of<Model>(self, "Model");
    auto a = parse_args("set_autoencoder", args, kwargs,
                        {{"node_type", true}, {"layer", true}, {"decoder", true},
                         {"input", true}, {"copy", false}, {"replace", false},
                         {"encoder", false}, {"latent_bias", false}, {"pre_bias", false}});
    int32_t nt = node_type_arg(a[0]);
    int32_t l = to_layer(a[1]);
    int32_t in = autoencoder_source_arg(a[3], "input");
    bool do_copy = a[4] ? to_bool(a[4], "copy") : true;
    bool replace = a[5] ? to_bool(a[5], "replace") : false;
    const std::string of = " of " + node_type_facts(nt).name + " at layer " + std::to_string(l);
    std::string what = "decoder" + of;
    HeldPtr h = hold_tensor(a[2], what);
    // The encoder (TDB's encoder.weight, (n_latents, n_inputs) like the decoder) and its biases
    // (zeros when not given), checked against the decoder before anything is set.
    const bool has_encoder = a[6] && !a[6].is_none();
    HeldPtr enc, lb, pb;
    if (!has_encoder) {
        if (a[7] && !a[7].is_none())
            fail(NW_ERR_INVALID_ARGUMENT, "latent_bias: given without encoder=; pass the encoder too");
        if (a[8] && !a[8].is_none())
            fail(NW_ERR_INVALID_ARGUMENT, "pre_bias: given without encoder=; pass the encoder too");
    } else {
        enc = hold_tensor(a[6], "encoder" + of);
        if (h->shape.size() != 2 || enc->shape != h->shape)
            fail(NW_ERR_SHAPE_MISMATCH, "encoder" + of + ": shape " + shape_text(enc->shape) +
                                            ", expected the decoder's " + shape_text(h->shape) +
                                            " (n_latents, n_inputs): TDB's encoder.weight");
        const int64_t n_latents = h->shape[0], n_inputs = h->shape[1];
        lb = (a[7] && !a[7].is_none()) ? hold_tensor(a[7], "latent_bias" + of) : zeros_held(n_latents, "latent_bias" + of);
        pb = (a[8] && !a[8].is_none()) ? hold_tensor(a[8], "pre_bias" + of) : zeros_held(n_inputs, "pre_bias" + of);
        check_vector(*lb, n_latents, "latent_bias" + of, "n_latents");
        check_vector(*pb, n_inputs, "pre_bias" + of, "n_inputs");
    }
    if (replace) check_decoder(m, nt, l, in, *h, what);
    nw_tensor_view v = h->view();
    nw_tensor_view ev{}, lv{}, pv{};
    if (has_encoder) {
        ev = enc->view();
        lv = lb->view();
        pv = pb->view();
    }
    const int32_t own = do_copy ? NW_COPY : NW_BORROW;
    HeldPtr kept[3];  // copy=True: the binding's copies of the encoder and biases (for pickling)
    if (do_copy && has_encoder) {
        kept[0] = copy_held(*enc);
        kept[1] = copy_held(*lb);
        kept[2] = copy_held(*pb);
    }
    std::vector<HeldPtr> old;  // dropped after unlocking (their destructors may run Python code)
    {
        std::unique_lock<std::shared_mutex> lock(m.mu);  // waits for GIL-free readers only
        ++m.writes;
        if (replace) {  // the slot is emptied only for a decoder the library will take
            nw_status st = nw_model_remove_autoencoder(m.model, nt, l);
            if (st != NW_OK) fail(st, nw_last_error_message());
        }
        nw_status st = nw_model_set_autoencoder(m.model, nt, l, in, &v, own);
        if (st != NW_OK) fail(st, nw_last_error_message());
        if (has_encoder) {
            st = nw_model_set_autoencoder_encoder(m.model, nt, l, &ev, &lv, &pv, own);
            if (st != NW_OK) {
                std::string msg = nw_last_error_message();
                nw_model_remove_autoencoder(m.model, nt, l);  // nothing half-set stays
                fail(st, msg + " (the autoencoder" + of + " was not set)");
            }
        }
        refresh_vocab(m);
        const HeldPtr held[4] = {h, enc, lb, pb};
        const int kinds[4] = {1, kEncoderSlot, kLatentBiasSlot, kPreBiasSlot};
        for (int i = 0; i < 4; ++i) {
            auto it = m.borrowed.find(Slot(kinds[i], nt, l));
            if (it != m.borrowed.end()) {
                old.push_back(std::move(it->second));
                m.borrowed.erase(it);
            }
            if (!do_copy && held[i]) m.borrowed.emplace(Slot(kinds[i], nt, l), held[i]);
            if (i == 0) continue;
            auto kt = m.encoder_copies.find(Slot(kinds[i], nt, l));
            if (kt != m.encoder_copies.end()) {
                old.push_back(std::move(kt->second));
                m.encoder_copies.erase(kt);
            }
            if (kept[i - 1]) m.encoder_copies.emplace(Slot(kinds[i], nt, l), kept[i - 1]);
        }
    }
}

void model_remove_autoencoder(py::handle self, const py::args &args, const py::kwargs &kwargs) {
    Model &m = self_of<Model>(self, "Model");
    auto a = parse_args("remove_autoencoder", args, kwargs, {{"node_type", true}, {"layer", true}});
    int32_t nt = node_type_arg(a[0]);
    int32_t l = to_layer(a[1]);
    std::vector<HeldPtr> old;  // dropped after unlocking
    {
        std::unique_lock<std::shared_mutex> lock(m.mu);
        ++m.writes;
        check(nw_model_remove_autoencoder(m.model, nt, l));
        refresh_vocab(m);
        for (int kind : {1, kEncoderSlot, kLatentBiasSlot, kPreBiasSlot}) {
            auto it = m.borrowed.find(Slot(kind, nt, l));
            if (it != m.borrowed.end()) {
                old.push_back(std::move(it->second));
                m.borrowed.erase(it);
            }
            auto kt = m.encoder_copies.find(Slot(kind, nt, l));
            if (kt != m.encoder_copies.end()) {
                old.push_back(std::move(kt->second));
                m.encoder_copies.erase(kt);
            }
        }
    }
}

bool model_causal(py::handle self) {
    const Model &m = self_of<Model>(self, "Model");
    int32_t c = 1;
    check(nw_model_get_causal(m.model, &c));
    return c != 0;
}

double model_layer_norm_epsilon(py::handle self) {
    const Model &m = self_of<Model>(self, "Model");
    double e = 0;
    check(nw_model_get_layer_norm_epsilon(m.model, &e));
    return e;
}

std::string model_mlp_activation(py::handle self) {
    const Model &m = self_of<Model>(self, "Model");
    int32_t a = 0;
    check(nw_model_get_mlp_activation(m.model, &a));
    if (a < 0 || a > 2) fail(NW_ERR_UNSUPPORTED, "nw_model_get_mlp_activation gave an activation this binding does not know: " + std::to_string(a));
    return kActivationNames[a];
}

// What the library holds in a weight slot, or None when the slot is empty.
py::object weight_state(const Model &m, int32_t weight, int32_t layer) {
    nw_weight_state st;
    std::memset(&st, 0, sizeof st);
    st.size = sizeof st;
    check(nw_model_weight_get(m.model, weight, layer, &st));
    if (!st.present) return py::none();
    py::tuple shape(static_cast<size_t>(st.ndim > 0 && st.ndim <= 4 ? st.ndim : 0));
    for (size_t i = 0; i < shape.size(); ++i) shape[i] = py::int_(st.shape[i]);
    py::dict d;
    d["copied"] = st.ownership == NW_COPY;
    d["dtype"] = dtype_text(st.dtype);
    d["shape"] = shape;
    return d;
}

py::object autoencoder_state(const Model &m, int32_t node_type, int32_t layer) {
    nw_autoencoder_state st;
    std::memset(&st, 0, sizeof st);
    st.size = sizeof st;
    check(nw_model_autoencoder_get(m.model, node_type, layer, &st));
    if (!st.present) return py::none();
    py::dict d;
    d["copied"] = st.ownership == NW_COPY;
    d["dtype"] = dtype_text(st.dtype);
    d["shape"] = py::make_tuple(st.n_latents, st.n_inputs);
    const auto &inputs = facts().autoencoder_inputs;
    d["input"] = st.input >= 0 && static_cast<size_t>(st.input) < inputs.size() ? inputs[st.input].name : "?";
    return d;
}

// Every weight slot, in table order: (name, layer or None, state).
template <class F>
void each_weight(const Model &m, F f) {
    for (size_t w = 0; w < facts().weights.size(); ++w) {
        const WeightFacts &wf = facts().weights[w];
        if (!wf.has_layer) {
            f(wf.name, NW_NO_LAYER, weight_state(m, static_cast<int32_t>(w), NW_NO_LAYER));
            continue;
        }
        for (int32_t l = 0; l < m.dims.n_layers; ++l) f(wf.name, l, weight_state(m, static_cast<int32_t>(w), l));
    }
}

template <class F>
void each_autoencoder(const Model &m, F f) {
    for (size_t t = 0; t < facts().node_types.size(); ++t) {
        if (!facts().node_types[t].is_latent) continue;
        for (int32_t l = 0; l < m.dims.n_layers; ++l)
            f(facts().node_types[t].name, l, autoencoder_state(m, static_cast<int32_t>(t), l));
    }
}

py::object layer_key(int32_t layer) {
    return layer == NW_NO_LAYER ? py::object(py::none()) : py::object(py::int_(layer));
}

py::dict model_weights(py::handle self) {
    const Model &m = self_of<Model>(self, "Model");
    py::dict out;
    each_weight(m, [&](const std::string &name, int32_t l, py::object st) {
        if (!st.is_none()) out[py::make_tuple(name, layer_key(l))] = st;
    });
    return out;
}

py::dict model_autoencoders(py::handle self) {
    const Model &m = self_of<Model>(self, "Model");
    py::dict out;
    each_autoencoder(m, [&](const std::string &name, int32_t l, py::object st) {
        if (!st.is_none()) out[py::make_tuple(name, l)] = st;
    });
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
    auto lister = [](std::string &list, int &count) {
        return [&list, &count](const std::string &name, int32_t l, py::object st) {
            if (st.is_none()) return;
            bool copied = py::cast<bool>(st["copied"]);
            std::string item = name + "@" + std::to_string(l) + (copied ? "" : " (borrowed)");
            if (count < 8) list += (count ? ", " : "") + item;
            else if (count == 8) list += ", ...";
            ++count;
        };
    };
    std::string weights, aes;
    int nw = 0, na = 0;
    each_weight(m, lister(weights, nw));
    each_autoencoder(m, lister(aes, na));
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
             "__init__(self, n_layers: int, d_model: int, n_heads: int, d_head: int, d_ff: int, *, causal: bool = True, "
             "layer_norm_epsilon: float = 1e-5, mlp_activation: str = \"gelu_tanh\") -> None");
    cls.def("set_weight", &model_set_weight, R"doc(set_weight(self, name: str, layer: int | None, weight: numpy.ndarray | torch.Tensor, copy: bool = True) -> None

Set a weight of one layer, replacing any earlier one.

name: TDB's WeightLocationType value (nodewrite.WEIGHTS lists them, nodewrite.weight_info gives
each one's shape). The output side: "mlp.to_residual" (d_ff, d_model) and "attn.to_residual"
(n_heads, d_head, d_model) (a checkpoint's (n_heads*d_head, d_model) matrix, e.g. GPT-2's c_proj
weight, viewed with .reshape(n_heads, d_head, d_model)); with layer None (weights of no layer),
"unembedding" (d_model, n_vocab) and "layer_norm_gain.final" (d_model,), used by token_writes.
The read side, which the edge DSTs of derive read: "layer_norm_gain.pre_attn",
"layer_norm_bias.pre_attn", "layer_norm_gain.pre_mlp", "layer_norm_bias.pre_mlp" (d_model,);
"attn.to_query", "attn.to_key", "attn.to_value" (n_heads, d_model, d_head); "attn.query_bias",
"attn.key_bias", "attn.value_bias" (n_heads, d_head); "attn.out_bias", "mlp.out_bias" (d_model,);
"mlp.to_hidden" (d_model, d_ff); "mlp.in_bias" (d_ff,).
weight: numpy array (float32, float16, float64) or CPU torch tensor (float32, float16,
bfloat16), any strides (transposed and negative-stride views work).
copy=True (default): the library converts and copies it now.
copy=False: borrowed in place: the model (and every deriver created while it is set) keeps a
reference to the object and reads its current values. Do not reallocate it in place
(numpy's resize(refcheck=False), torch's resize_ / set_): the library would read freed memory.
copy must be True or False.
Raises IndexError (layer), ValueError (name, type, dtype, shape), all NodeWriteError.
)doc")
        .def("set_autoencoder", &model_set_autoencoder, R"doc(set_autoencoder(self, node_type: str, layer: int, decoder: numpy.ndarray | torch.Tensor, input: str, copy: bool = True, replace: bool = False, encoder: numpy.ndarray | torch.Tensor | None = None, latent_bias: numpy.ndarray | torch.Tensor | None = None, pre_bias: numpy.ndarray | torch.Tensor | None = None) -> None

Set the autoencoder used by latent nodes of node_type at one layer: its decoder, and optionally
its encoder. A slot (node_type, layer) holds one autoencoder: an occupied slot is refused
(NodeWriteValueError) unless replace=True (or empty it first with remove_autoencoder).

node_type: "autoencoder_latent", "mlp_autoencoder_latent" or "attention_autoencoder_latent".
decoder: (n_latents, n_inputs), TDB's decoder.weight.T. input: TDB's DerivedScalarType
value of what the autoencoder was trained on: "mlp_post_act" (n_inputs = d_ff; the decoded
vector goes through mlp.to_residual) or a residual-stream type ("resid_delta_mlp",
"resid_delta_attn", "resid_post_mlp", "resid_post_attn", "resid_post_embedding";
n_inputs = d_model; the decoded vector is the write) or "attn_weighted_sum_of_values"
(attention's z, e.g. an SAE on blocks.L.attn.hook_z: n_inputs = n_heads*d_head; the decoded
vector goes through attn.to_residual); nodewrite.autoencoder_input_kind(name) asks the library.
encoder: (n_latents, n_inputs), TDB's encoder.weight (the decoder's shape), with latent_bias
(n_latents,) and pre_bias (n_inputs,) (zeros when not given): z = relu((x - pre_bias) @ encoder.T +
latent_bias). The edge DSTs of derive need it (in-edges into latents, a latent's gradient, attention
to a latent); node writes do not. latent_bias / pre_bias without encoder= are refused. Every shape
is checked before anything is set: a refused encoder leaves the slot as it was (with replace=True:
empty only if the library itself refuses the encoder after taking the decoder).
copy: as in set_weight, for every array given (the same warning for copy=False).
Raises IndexError (layer), ValueError (node_type, input, dtype, shape, an occupied slot), all
NodeWriteError. Two library calls with an encoder (nw_model_set_autoencoder, then
nw_model_set_autoencoder_encoder), one without; replace=True adds nw_model_remove_autoencoder.
)doc")
        .def("remove_autoencoder", &model_remove_autoencoder, R"doc(remove_autoencoder(self, node_type: str, layer: int) -> None

Empty the autoencoder slot (node_type, layer), so that another autoencoder can be set there
(set_autoencoder refuses an occupied slot unless replace=True). An empty slot is not an error.
)doc")
        .def_property_readonly("causal", &model_causal,
             "causal: bool -- whether attention is causal (every query attends to keys <= itself; "
             "Model(..., causal=False) otherwise). For a causal model, attn.qk_probs with probability "
             "above the diagonal is refused (a layout mistake, query and key swapped, or a model that "
             "is not causal); a non-causal model reads every key.")
        .def_property_readonly("layer_norm_epsilon", &model_layer_norm_epsilon,
             "layer_norm_epsilon: float -- the epsilon of the blocks' LayerNorms, which the edge DSTs "
             "recompute (Model(..., layer_norm_epsilon=); TDB's and TransformerLens's default 1e-5).")
        .def_property_readonly("mlp_activation", &model_mlp_activation,
             "mlp_activation: str -- the MLP's activation function, which the edge DSTs differentiate: "
             "'gelu_tanh' (TDB's, the default), 'gelu_erf' or 'relu' (Model(..., mlp_activation=)).")
        .def("weights", &model_weights,
             "weights(self) -> dict[tuple[str, int | None], WeightState]\n\nThe weights the library holds "
             "(nw_model_weight_get): {(name, layer or None): {'copied': bool, 'dtype': str, 'shape': "
             "tuple[int, ...]}}; dtype as held ('float32' for a copy), copied False for borrowed memory "
             "(copy=False, or a checkpoint's mapped tensors).")
        .def("autoencoders", &model_autoencoders,
             "autoencoders(self) -> dict[tuple[str, int], AutoencoderState]\n\nThe autoencoders the library "
             "holds (nw_model_autoencoder_get): {(node_type, layer): {'copied': bool, 'dtype': str, "
             "'shape': (n_latents, n_inputs), 'input': 'mlp_post_act' | 'residual' | 'attn_z'}}.")
        .def_property_readonly("n_layers", [](py::handle s) { return self_of<Model>(s, "Model").dims.n_layers; }, "n_layers: int -- number of layers.")
        .def_property_readonly("d_model", [](py::handle s) { return self_of<Model>(s, "Model").dims.d_model; }, "d_model: int -- width of the residual stream.")
        .def_property_readonly("n_heads", [](py::handle s) { return self_of<Model>(s, "Model").dims.n_heads; }, "n_heads: int -- attention heads per layer.")
        .def_property_readonly("d_head", [](py::handle s) { return self_of<Model>(s, "Model").dims.d_head; }, "d_head: int -- width of one attention head.")
        .def_property_readonly("d_ff", [](py::handle s) { return self_of<Model>(s, "Model").dims.d_ff; }, "d_ff: int -- width of the MLP (neurons per layer).")
        .def("__repr__", &model_repr, "__repr__(self) -> str");
    init_checkpoints(cls);
}

}  // namespace nwpy
