// Constants read from the library (the single source): versions, status names and codes,
// and the names of its tables (info.hpp), in enum order (binding, docstrings, registration).
#include "args.hpp"
#include "info.hpp"
#include "objects.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

template <class Rows>
py::tuple names(const Rows &rows) {
    py::tuple t(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) t[i] = py::str(rows[i].name);
    return t;
}

}  // namespace

void init_constants(py::module_ &mod) {
    mod.attr("HEADER_ABI_VERSION") = static_cast<uint32_t>(NW_ABI_VERSION);
    mod.attr("HEADER_VERSION") = NW_VERSION_STRING;
    mod.def("abi_version", &nw_abi_version, "abi_version() -> int\n\nNW_ABI_VERSION of the loaded libnodewrite.");
    mod.def("version_string", [] { return std::string(nw_version_string()); },
            "version_string() -> str\n\nVersion of the loaded libnodewrite, 'MAJOR.MINOR.PATCH'.");
    mod.def("status_string", [](int32_t s) { return std::string(nw_status_string(s)); },
            "status_string(status: int) -> str\n\nName of a status code ('NW_OK', 'NW_ERR_...').");
    mod.def("statuses", [] {
        // Every status the library names: codes are 0 and negative, pinned, appended only.
        py::dict out;
        for (int32_t s = 0; s >= -1024; --s) {
            std::string n = nw_status_string(s);
            if (n == "NW_ERR_UNKNOWN") break;
            out[py::str(n)] = s;
        }
        return out;
    }, "statuses() -> dict[str, int]\n\n{'NW_OK': 0, 'NW_ERR_INVALID_ARGUMENT': -1, ...} from the library.");
    mod.def("last_error_message", [] { return std::string(nw_last_error_message()); },
            "last_error_message() -> str\n\nThe library's last error message on this thread.");
    mod.def("node_type_names", [] { return names(facts().node_types); },
            "node_type_names() -> tuple[str, ...]\n\nTDB NodeType values, in nw_node_type order.");
    mod.def("activation_names", [] { return names(facts().activations); },
            "activation_names() -> tuple[str, ...]\n\nTDB ActivationLocationType values, in nw_activation order.");
    mod.def("weight_names", [] { return names(facts().weights); },
            "weight_names() -> tuple[str, ...]\n\nTDB WeightLocationType values, in nw_weight order.");
    mod.def("dtype_names", [] { return names(facts().dtypes); },
            "dtype_names() -> tuple[str, ...]\n\ndtype names, in nw_dtype order.");
    mod.def("dst_names", [] { return names(facts().dsts); },
            "dst_names() -> tuple[str, ...]\n\nThe derived scalars derive() supports (TDB DerivedScalarType values), in nw_dst order.");
    mod.def("node_type_index_count", [](py::handle node_type) {
        return node_type_facts(node_type_arg(node_type)).n_indices;
    }, "node_type_index_count(node_type: str) -> int\n\nThe number of tensor indices of a node type (2, or 3 for attention heads).");
    mod.def("autoencoder_input_kind", [](py::handle name) -> py::object {
        std::string n = to_name(name, "input");
        auto it = facts().source_of.find(n);
        if (it == facts().source_of.end()) return py::none();
        return py::str(facts().autoencoder_inputs.at(static_cast<size_t>(it->second)).name);
    }, "autoencoder_input_kind(name: str) -> str | None\n\n"
       "What the library does with an autoencoder trained on TDB's DerivedScalarType `name`: "
       "'mlp_post_act' (decoded through mlp.to_residual), 'residual' (the decoded vector is the "
       "write), 'attn_z' (attention's weighted sum of values, heads*d_head, decoded through "
       "attn.to_residual), or None (not supported).");
    mod.def("autoencoder_inputs", [] {
        py::tuple t(facts().autoencoder_sources.size());
        for (size_t i = 0; i < facts().autoencoder_sources.size(); ++i) t[i] = py::str(facts().autoencoder_sources[i].first);
        return t;
    }, "autoencoder_inputs() -> tuple[str, ...]\n\n"
       "Every TDB DerivedScalarType value Model.set_autoencoder accepts as input, from the library.");
}

}  // namespace nwpy
