// The library's facts: see info.hpp. Registers the _core functions nodewrite/info.py builds its
// named tuples from.
#include "info.hpp"

#include <cstring>

#include "args.hpp"
#include "errors.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

Facts *g_facts = nullptr;  // set once at import, never freed (module lifetime)

std::string str_or_empty(const char *s) { return s ? std::string(s) : std::string(); }

template <class T, size_t N>
std::vector<int32_t> first(const T (&a)[N], int32_t n) {
    std::vector<int32_t> v;
    for (int32_t i = 0; i < n && i < static_cast<int32_t>(N); ++i) v.push_back(a[i]);
    return v;
}

std::vector<int32_t> until_none(const int32_t (&a)[4], int32_t n) {
    std::vector<int32_t> v;
    for (int32_t i = 0; i < n && i < 4; ++i)
        if (a[i] != NW_DIM_NONE) v.push_back(a[i]);
    return v;
}

// Calls get(i, &info) for i = 0, 1, ... until NW_ERR_INDEX_OUT_OF_RANGE; any other failure is
// an import error (a library that does not match the header).
template <class Info, class Get, class Row>
void read_table(const char *what, Get get, Row row) {
    for (int32_t i = 0; i < 4096; ++i) {
        Info info;
        std::memset(&info, 0, sizeof info);
        info.size = sizeof info;
        nw_status st = get(i, &info);
        if (st == NW_ERR_INDEX_OUT_OF_RANGE) return;
        if (st != NW_OK)
            throw std::runtime_error(std::string("nodewrite: reading the library's ") + what +
                                     " table failed at row " + std::to_string(i) + ": " +
                                     nw_last_error_message());
        row(info);
    }
}

template <class Known>
int32_t lookup(const std::unordered_map<std::string, int32_t> &map, const std::string &name,
               const std::string &what, const char *kind, Known known) {
    auto it = map.find(name);
    if (it != map.end()) return it->second;
    fail(NW_ERR_INVALID_ARGUMENT,
         what + ": unknown " + kind + " '" + name + "'; expected one of " + known());  // listed on failure only
}

std::string join_names(const std::vector<std::string> &names) {
    std::string out;
    for (const auto &n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

template <class Rows>
std::string names_of(const Rows &rows) {
    std::vector<std::string> v;
    for (const auto &r : rows) v.push_back(r.name);
    return join_names(v);
}

py::object name_or_none(int32_t value, const char *(*name_of)(int32_t)) {
    if (value < 0) return py::none();
    const char *n = name_of(value);
    return n ? py::object(py::str(n)) : py::object(py::none());
}

const char *node_type_name_of(int32_t v) {
    const Facts &f = facts();
    return v >= 0 && static_cast<size_t>(v) < f.node_types.size() ? f.node_types[v].name.c_str() : nullptr;
}
const char *activation_name_of(int32_t v) {
    const Facts &f = facts();
    return v >= 0 && static_cast<size_t>(v) < f.activations.size() ? f.activations[v].name.c_str() : nullptr;
}
const char *weight_name_of(int32_t v) {
    const Facts &f = facts();
    return v >= 0 && static_cast<size_t>(v) < f.weights.size() ? f.weights[v].name.c_str() : nullptr;
}
const char *ae_input_name_of(int32_t v) {
    const Facts &f = facts();
    return v >= 0 && static_cast<size_t>(v) < f.autoencoder_inputs.size() ? f.autoencoder_inputs[v].name.c_str() : nullptr;
}

py::tuple name_tuple(const std::vector<int32_t> &values, const char *(*name_of)(int32_t)) {
    py::tuple t(values.size());
    for (size_t i = 0; i < values.size(); ++i) t[i] = name_or_none(values[i], name_of);
    return t;
}

py::tuple str_tuple(const std::vector<std::string> &values) {
    py::tuple t(values.size());
    for (size_t i = 0; i < values.size(); ++i) t[i] = py::str(values[i]);
    return t;
}

void load_facts() {
    auto *f = new Facts;
    read_table<nw_node_type_info>("node type", nw_node_type_info_get, [&](const nw_node_type_info &i) {
        NodeTypeFacts r;
        r.name = str_or_empty(i.name);
        r.n_indices = i.n_indices;
        r.is_latent = i.is_latent != 0;
        for (int32_t k = 0; k < i.n_indices && k < 4; ++k) r.index_names.push_back(str_or_empty(i.index_names[k]));
        r.activations = first(i.activations, i.n_activations);
        r.weight = i.weight;
        r.width_dim = i.width_dim;
        f->node_types.push_back(std::move(r));
    });
    read_table<nw_dst_info>("derived scalar", nw_dst_info_get, [&](const nw_dst_info &i) {
        DstFacts r;
        r.name = str_or_empty(i.name);
        r.node_type = i.node_type;
        r.layout = i.layout;
        r.quantity = i.quantity;
        r.needs_direction = i.needs_direction != 0;
        r.has_layer = i.has_layer != 0;
        r.dims = until_none(i.dims, i.ndim);
        r.activations = first(i.activations, i.n_activations);
        f->dsts.push_back(std::move(r));
    });
    read_table<nw_activation_info>("activation", nw_activation_info_get, [&](const nw_activation_info &i) {
        f->activations.push_back({str_or_empty(i.name), until_none(i.dims, i.ndim), i.has_layer != 0,
                                  i.latent_node_type});
    });
    read_table<nw_weight_info>("weight", nw_weight_info_get, [&](const nw_weight_info &i) {
        f->weights.push_back({str_or_empty(i.name), i.has_layer != 0, until_none(i.dims, i.ndim)});
    });
    read_table<nw_dtype_info>("dtype", nw_dtype_info_get, [&](const nw_dtype_info &i) {
        f->dtypes.push_back({str_or_empty(i.name), i.item_size});
    });
    read_table<nw_autoencoder_input_info>("autoencoder input", nw_autoencoder_input_info_get,
                                          [&](const nw_autoencoder_input_info &i) {
        f->autoencoder_inputs.push_back({str_or_empty(i.name), i.input_dim, i.weight});
    });
    read_table<nw_saelens_hook_info>("SAELens hook", nw_saelens_hook_info_get, [&](const nw_saelens_hook_info &i) {
        f->saelens_hooks.push_back({str_or_empty(i.suffix), i.node_type, i.input, str_or_empty(i.tdb_input)});
    });
    for (size_t i = 0; i < 4096; ++i) {
        const char *n = nw_autoencoder_input_source_name(i);
        if (n == nullptr) break;
        int32_t kind = -1;
        if (nw_autoencoder_input_from_name(n, &kind) != NW_OK)
            throw std::runtime_error(std::string("nodewrite: the library names the autoencoder input '") + n +
                                     "' but does not accept it");
        f->autoencoder_sources.emplace_back(n, kind);
        f->source_of[n] = kind;
    }
    for (size_t i = 0; i < f->node_types.size(); ++i) f->node_type_of[f->node_types[i].name] = static_cast<int32_t>(i);
    for (size_t i = 0; i < f->dsts.size(); ++i) f->dst_of[f->dsts[i].name] = static_cast<int32_t>(i);
    for (size_t i = 0; i < f->activations.size(); ++i) f->activation_of[f->activations[i].name] = static_cast<int32_t>(i);
    for (size_t i = 0; i < f->weights.size(); ++i) f->weight_of[f->weights[i].name] = static_cast<int32_t>(i);
    for (size_t i = 0; i < f->dtypes.size(); ++i) f->dtype_of[f->dtypes[i].name] = static_cast<int32_t>(i);
    g_facts = f;
}

}  // namespace

const Facts &facts() { return *g_facts; }

const char *dim_name(int32_t dim) {
    switch (dim) {
        case NW_DIM_ONE: return "one";
        case NW_DIM_TOKENS: return "tokens";
        case NW_DIM_TOKEN_PAIRS: return "token_pairs";
        case NW_DIM_HEADS: return "heads";
        case NW_DIM_D_HEAD: return "d_head";
        case NW_DIM_D_MODEL: return "d_model";
        case NW_DIM_D_FF: return "d_ff";
        case NW_DIM_LATENTS: return "latents";
        case NW_DIM_VOCAB: return "vocab";
        case NW_DIM_HEAD_CHANNELS: return "head_channels";
        default: return "?";
    }
}

const char *layout_name(int32_t layout) {
    switch (layout) {
        case NW_LAYOUT_NODES: return "nodes";
        case NW_LAYOUT_UNFLATTENED: return "unflattened";
        case NW_LAYOUT_FLATTENED: return "flattened";
        case NW_LAYOUT_PER_SEQUENCE_TOKEN: return "per_sequence_token";
        case NW_LAYOUT_LAYER: return "layer";
        case NW_LAYOUT_RESIDUAL: return "residual";
        case NW_LAYOUT_TOKENS: return "tokens";
        default: return "?";
    }
}

const char *quantity_name(int32_t quantity) {
    switch (quantity) {
        case NW_QUANTITY_NORM: return "norm";
        case NW_QUANTITY_PROJECTION: return "projection";
        case NW_QUANTITY_IN_EDGE: return "in_edge";
        case NW_QUANTITY_OUT_EDGE: return "out_edge";
        case NW_QUANTITY_GRADIENT: return "gradient";
        case NW_QUANTITY_ACT_TIMES_GRAD: return "act_times_grad";
        case NW_QUANTITY_TO_LATENT: return "to_latent";
        default: return "?";
    }
}

int32_t node_type_named(const std::string &name, const std::string &what) {
    return lookup(facts().node_type_of, name, what, "node type", [] { return names_of(facts().node_types); });
}

int32_t node_type_arg(py::handle obj, const std::string &what) {
    return node_type_named(to_name(obj, what), what);
}

int32_t activation_arg(py::handle obj, const std::string &what) {
    return lookup(facts().activation_of, to_name(obj, what), what, "activation", [] { return names_of(facts().activations); });
}

int32_t weight_arg(py::handle obj, const std::string &what) {
    return lookup(facts().weight_of, to_name(obj, what), what, "weight", [] { return names_of(facts().weights); });
}

int32_t dst_arg(py::handle obj, const std::string &what) {
    std::string name = to_name(obj, what);
    auto it = facts().dst_of.find(name);
    if (it != facts().dst_of.end()) return it->second;
    fail(NW_ERR_INVALID_ARGUMENT, what + ": unsupported derived scalar type '" + name +
                                      "'; supported: " + names_of(facts().dsts));
}

int32_t autoencoder_source_arg(py::handle obj, const std::string &what) {
    return lookup(facts().source_of, to_name(obj, what), what, "autoencoder input", [] {
        std::vector<std::string> known;
        for (const auto &s : facts().autoencoder_sources) known.push_back(s.first);
        return join_names(known);
    });
}

const NodeTypeFacts &node_type_facts(int32_t v) { return facts().node_types.at(static_cast<size_t>(v)); }
const DstFacts &dst_facts(int32_t v) { return facts().dsts.at(static_cast<size_t>(v)); }
const ActivationFacts &activation_facts(int32_t v) { return facts().activations.at(static_cast<size_t>(v)); }
const WeightFacts &weight_facts(int32_t v) { return facts().weights.at(static_cast<size_t>(v)); }

const char *dtype_text(int32_t dtype) {
    const Facts &f = facts();
    if (dtype < 0 || static_cast<size_t>(dtype) >= f.dtypes.size()) return "?";
    return f.dtypes[static_cast<size_t>(dtype)].name.c_str();
}

int32_t item_size(int32_t dtype) {
    const Facts &f = facts();
    if (dtype < 0 || static_cast<size_t>(dtype) >= f.dtypes.size()) return 0;
    return f.dtypes[static_cast<size_t>(dtype)].item_size;
}

std::string layout_letters(int32_t activation) {
    const ActivationFacts &a = activation_facts(activation);
    int tokens = 0;
    for (int32_t d : a.dims) tokens += d == NW_DIM_TOKENS;
    std::string out;
    int seen_tokens = 0;
    for (int32_t d : a.dims) {
        switch (d) {
            case NW_DIM_TOKENS: out += tokens > 1 ? (seen_tokens++ == 0 ? 'q' : 'k') : 't'; break;
            case NW_DIM_HEADS: out += 'h'; break;
            case NW_DIM_D_HEAD:
            case NW_DIM_D_MODEL: out += 'd'; break;
            default: out += 'n'; break;  // d_ff, latents
        }
    }
    return out;
}

std::string dims_text(const std::vector<int32_t> &dims) {
    std::string out = "(";
    for (size_t i = 0; i < dims.size(); ++i) {
        const char *t = "?";
        switch (dims[i]) {
            case NW_DIM_ONE: t = "1"; break;
            case NW_DIM_TOKENS: t = "T"; break;
            case NW_DIM_TOKEN_PAIRS: t = "T(T+1)/2"; break;
            case NW_DIM_HEADS: t = "n_heads"; break;
            case NW_DIM_D_HEAD: t = "d_head"; break;
            case NW_DIM_D_MODEL: t = "d_model"; break;
            case NW_DIM_D_FF: t = "d_ff"; break;
            case NW_DIM_LATENTS: t = "n_latents"; break;
            case NW_DIM_VOCAB: t = "n_vocab"; break;
            case NW_DIM_HEAD_CHANNELS: t = "n_heads*d_head"; break;
        }
        out += (i ? ", " : "") + std::string(t);
    }
    return out + (dims.size() == 1 ? ",)" : ")");
}

void init_info(py::module_ &mod) {
    load_facts();
    auto dims_tuple = [](const std::vector<int32_t> &dims) {
        py::tuple t(dims.size());
        for (size_t i = 0; i < dims.size(); ++i) t[i] = py::str(dim_name(dims[i]));
        return t;
    };
    mod.def("node_type_table", [=] {
        py::list out;
        for (const auto &r : facts().node_types)
            out.append(py::make_tuple(r.name, r.n_indices, r.is_latent, str_tuple(r.index_names),
                                      name_tuple(r.activations, activation_name_of),
                                      name_or_none(r.weight, weight_name_of), dim_name(r.width_dim)));
        return py::tuple(out);
    }, "node_type_table() -> tuple[tuple[str, int, bool, tuple[str, ...], tuple[str, ...], str | None, str], ...]\n\n"
       "Rows of nw_node_type_info_get, read at import: (name, n_indices, is_latent, index_names, "
       "activations, weight, width).");
    mod.def("dst_table", [=] {
        py::list out;
        for (const auto &r : facts().dsts)
            out.append(py::make_tuple(r.name, name_or_none(r.node_type, node_type_name_of),
                                      layout_name(r.layout), quantity_name(r.quantity), r.needs_direction,
                                      r.has_layer, dims_tuple(r.dims), name_tuple(r.activations, activation_name_of)));
        return py::tuple(out);
    }, "dst_table() -> tuple[tuple[str, str | None, str, str, bool, bool, tuple[str, ...], tuple[str, ...]], ...]\n\n"
       "Rows of nw_dst_info_get: (name, node_type, layout, quantity, needs_direction, has_layer, "
       "dims, activations).");
    mod.def("activation_table", [=] {
        py::list out;
        for (const auto &r : facts().activations)
            out.append(py::make_tuple(r.name, dims_tuple(r.dims), r.has_layer,
                                      name_or_none(r.latent_node_type, node_type_name_of)));
        return py::tuple(out);
    }, "activation_table() -> tuple[tuple[str, tuple[str, ...], bool, str | None], ...]\n\n"
       "Rows of nw_activation_info_get: (name, dims, has_layer, latent_node_type).");
    mod.def("weight_table", [=] {
        py::list out;
        for (const auto &r : facts().weights) out.append(py::make_tuple(r.name, r.has_layer, dims_tuple(r.dims)));
        return py::tuple(out);
    }, "weight_table() -> tuple[tuple[str, bool, tuple[str, ...]], ...]\n\n"
       "Rows of nw_weight_info_get: (name, has_layer, dims).");
    mod.def("dtype_table", [] {
        py::list out;
        for (const auto &r : facts().dtypes) out.append(py::make_tuple(r.name, r.item_size));
        return py::tuple(out);
    }, "dtype_table() -> tuple[tuple[str, int], ...]\n\nRows of nw_dtype_info_get: (name, item_size).");
    mod.def("autoencoder_input_table", [] {
        py::list out;
        for (const auto &r : facts().autoencoder_inputs)
            out.append(py::make_tuple(r.name, dim_name(r.input_dim), name_or_none(r.weight, weight_name_of)));
        return py::tuple(out);
    }, "autoencoder_input_table() -> tuple[tuple[str, str, str | None], ...]\n\n"
       "Rows of nw_autoencoder_input_info_get: (name, input_dim, weight).");
    mod.def("saelens_hook_table", [] {
        py::list out;
        for (const auto &r : facts().saelens_hooks)
            out.append(py::make_tuple(r.suffix, name_or_none(r.node_type, node_type_name_of),
                                      name_or_none(r.input, ae_input_name_of), r.tdb_input));
        return py::tuple(out);
    }, "saelens_hook_table() -> tuple[tuple[str, str, str, str], ...]\n\n"
       "Rows of nw_saelens_hook_info_get: (suffix, node_type, input, tdb_input).");
    mod.def("saelens_hook_find", [](py::handle hook_name) {
        std::string name = to_name(hook_name, "hook_name");
        int32_t row = -1, layer = -1;
        check(nw_saelens_hook_find(name.c_str(), &row, &layer));
        return py::make_tuple(row, layer);
    }, "saelens_hook_find(hook_name: str) -> tuple[int, int]\n\n"
       "nw_saelens_hook_find: (row of saelens_hook_table(), layer) of 'blocks.L.<suffix>'.");
    mod.def("autoencoder_source_table", [] {
        py::list out;
        for (const auto &s : facts().autoencoder_sources)
            out.append(py::make_tuple(s.first, name_or_none(s.second, ae_input_name_of)));
        return py::tuple(out);
    }, "autoencoder_source_table() -> tuple[tuple[str, str], ...]\n\n"
       "Every TDB DerivedScalarType value Model.set_autoencoder accepts as input, with the "
       "autoencoder input kind it means (nw_autoencoder_input_source_name / _from_name).");
}

}  // namespace nwpy
