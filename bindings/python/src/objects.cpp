// Helpers shared by the objects' files: see objects.hpp.
#include "objects.hpp"


namespace nwpy __attribute__((visibility("hidden"))) {

Model &model_arg(py::handle obj) {
    if (obj.is_none()) fail(NW_ERR_INVALID_ARGUMENT, "model: expected a nodewrite.Model, got None");
    try {
        return self_of<Model>(obj, "Model");
    } catch (NwFailure &f) {
        f.message = "model: " + f.message;
        throw;
    }
}

Store &store_arg(py::handle obj) {
    if (obj.is_none())
        fail(NW_ERR_INVALID_ARGUMENT, "store: expected a nodewrite.ActivationStore, got None");
    try {
        return self_of<Store>(obj, "ActivationStore");
    } catch (NwFailure &f) {
        f.message = "store: " + f.message;
        throw;
    }
}

std::vector<int64_t> stored_shape(const Store &s, int32_t activation, int32_t layer) {
    auto it = s.entries.find({activation, layer});
    if (it == s.entries.end() || !it->second) return {};
    return it->second->shape;
}

std::string shape_text(const std::vector<int64_t> &s) {
    std::string t = "(";
    for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + (s.size() == 1 ? ",)" : ")");
}

}  // namespace nwpy
