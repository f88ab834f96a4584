// Constants read from the library (the single source): versions, status names and codes,
// TDB names, autoencoder inputs (binding, docstrings, registration).
#include "args.hpp"
#include "objects.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

template <typename F>
py::tuple names(F name_of) {
    py::list out;
    for (int32_t i = 0; i < 1024; ++i) {
        const char *n = name_of(i);
        if (n == nullptr) break;
        out.append(py::str(n));
    }
    return py::tuple(out);
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
    mod.def("node_type_names", [] { return names(nw_node_type_name); },
            "node_type_names() -> tuple[str, ...]\n\nTDB NodeType values, in nw_node_type order.");
    mod.def("activation_names", [] { return names(nw_activation_name); },
            "activation_names() -> tuple[str, ...]\n\nTDB ActivationLocationType values, in nw_activation order.");
    mod.def("weight_names", [] { return names(nw_weight_name); },
            "weight_names() -> tuple[str, ...]\n\nTDB WeightLocationType values, in nw_weight order.");
    mod.def("dtype_names", [] { return names(nw_dtype_name); },
            "dtype_names() -> tuple[str, ...]\n\ndtype names, in nw_dtype order.");
    mod.def("autoencoder_input_kind", [](py::object name) -> py::object {
        std::string n = to_name(name, "input");
        int32_t out = -1;
        if (nw_autoencoder_input_from_name(n.c_str(), &out) != NW_OK) return py::none();
        if (out == NW_AE_INPUT_MLP_POST_ACT) return py::str("mlp_post_act");
        if (out == NW_AE_INPUT_RESIDUAL) return py::str("residual");
        if (out == NW_AE_INPUT_ATTN_Z) return py::str("attn_z");
        return py::none();
    }, "autoencoder_input_kind(name: str) -> str | None\n\n"
       "What the library does with an autoencoder trained on TDB's DerivedScalarType `name`: "
       "'mlp_post_act' (decoded through mlp.to_residual), 'residual' (the decoded vector is the "
       "write), 'attn_z' (attention's weighted sum of values, heads*d_head, decoded through "
       "attn.to_residual), or None (not supported).");
    mod.def("autoencoder_inputs", [] {
        py::list out;
        for (size_t i = 0;; ++i) {
            const char *n = nw_autoencoder_input_source_name(i);
            if (n == nullptr) break;
            out.append(py::str(n));
        }
        return py::tuple(out);
    }, "autoencoder_inputs() -> tuple[str, ...]\n\n"
       "Every TDB DerivedScalarType value Model.set_autoencoder accepts as input, from the library.");
}

}  // namespace nwpy
