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

std::string layout_of(const std::string &name) {
    // Only for messages; the library checks the shapes.
    if (name == "mlp.post_act") return "(T, d_ff)";
    if (name == "attn.qk_probs") return "(T, T_k, n_heads) [query, key, head]";
    if (name == "attn.v") return "(T_k, n_heads, d_head)";
    if (name.rfind("online_", 0) == 0) return "(T, n_latents)";
    if (name == "mlp.to_residual") return "(d_ff, d_model)";
    if (name == "attn.to_residual") return "(n_heads, d_head, d_model)";
    if (name == "decoder") return "(n_latents, n_inputs)";
    if (name == "unembedding") return "(d_model, n_vocab)";
    if (name == "layer_norm_gain.final") return "(d_model,)";
    if (name.rfind("resid.delta_", 0) == 0) return "(T, d_model)";
    return "";
}

}  // namespace nwpy
