// The library's facts (nw_*_info_get), read once at import into plain C++ tables, and the
// name -> enum lookups every argument goes through (no nw_*_from_name call per Python call).
// Nothing here is re-encoded: every row comes from the library; the only names the binding
// itself gives are those of the header's small enums nw_dim, nw_dst_layout, nw_dst_quantity
// (the header's comments, as words).
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "nodewrite.h"

namespace py = pybind11;

namespace nwpy __attribute__((visibility("hidden"))) {

struct NodeTypeFacts {
    std::string name;
    int32_t n_indices = 0;
    bool is_latent = false;
    std::vector<std::string> index_names;
    std::vector<int32_t> activations;  // enum nw_activation; [0] holds the node's scalar (its T)
    int32_t weight = -1;               // enum nw_weight or -1
    int32_t width_dim = NW_DIM_NONE;
};

struct DstFacts {
    std::string name;
    int32_t node_type = -1;
    int32_t layout = 0, quantity = 0;
    bool needs_direction = false, has_layer = true;
    std::vector<int32_t> dims;         // enum nw_dim
    std::vector<int32_t> activations;  // enum nw_activation
};

struct ActivationFacts {
    std::string name;
    std::vector<int32_t> dims;
    bool has_layer = true;
    int32_t latent_node_type = -1;
};

struct WeightFacts {
    std::string name;
    bool has_layer = true;
    std::vector<int32_t> dims;
};

struct DTypeFacts {
    std::string name;
    int32_t item_size = 0;
};

struct AutoencoderInputFacts {
    std::string name;
    int32_t input_dim = NW_DIM_NONE;
    int32_t weight = -1;
};

struct SAELensHookFacts {
    std::string suffix;
    int32_t node_type = -1, input = -1;
    std::string tdb_input;
};

struct Facts {
    std::vector<NodeTypeFacts> node_types;
    std::vector<DstFacts> dsts;
    std::vector<ActivationFacts> activations;
    std::vector<WeightFacts> weights;
    std::vector<DTypeFacts> dtypes;
    std::vector<AutoencoderInputFacts> autoencoder_inputs;
    std::vector<SAELensHookFacts> saelens_hooks;
    // TDB DerivedScalarType names an autoencoder may be trained on -> enum nw_autoencoder_input.
    std::vector<std::pair<std::string, int32_t>> autoencoder_sources;
    std::unordered_map<std::string, int32_t> node_type_of, dst_of, activation_of, weight_of,
        dtype_of, source_of;
};

// The tables, filled by init_info at import (before any other init_*).
const Facts &facts();

// Names of the header's enums nw_dim ("tokens", "d_model", ...), nw_dst_layout ("nodes",
// "unflattened", ...) and nw_dst_quantity ("norm", "projection").
const char *dim_name(int32_t dim);
const char *layout_name(int32_t layout);
const char *quantity_name(int32_t quantity);

// A name argument (str or str-valued Enum) -> the enum value, from the tables. An unknown name
// is a NodeWriteValueError naming `what` and listing the known names.
int32_t node_type_arg(py::handle obj, const std::string &what = "node_type");
int32_t activation_arg(py::handle obj, const std::string &what = "activation");
int32_t weight_arg(py::handle obj, const std::string &what = "weight name");
int32_t dst_arg(py::handle obj, const std::string &what = "dst");
int32_t autoencoder_source_arg(py::handle obj, const std::string &what = "input");
// The same for a name already read as a string.
int32_t node_type_named(const std::string &name, const std::string &what = "node_type");

// Table rows by enum value (the value was validated by an *_arg above or came from the library).
const NodeTypeFacts &node_type_facts(int32_t node_type);
const DstFacts &dst_facts(int32_t dst);
const ActivationFacts &activation_facts(int32_t activation);
const WeightFacts &weight_facts(int32_t weight);
// "float32", ... or "?" for a value the library does not name.
const char *dtype_text(int32_t dtype);
// Bytes per element of a dtype (from the table); 0 for an unknown value.
int32_t item_size(int32_t dtype);

// Layout letters of an activation for ActivationStore.put(layout=): one per dimension of its
// table shape (tokens -> 't', or 'q' and 'k' where there are two; heads 'h'; d_head and
// d_model 'd'; d_ff and latents 'n').
std::string layout_letters(int32_t activation);

// An activation's shape rule as text, for messages: "(T, d_ff)".
std::string dims_text(const std::vector<int32_t> &dims);

void init_info(py::module_ &m);

}  // namespace nwpy
