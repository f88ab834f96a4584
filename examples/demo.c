/* demo.c — the main job on the bundled fixture model, from C: for each node type,
 * compute a node's write and compare it with the original's saved output.
 * Usage: demo FIXTURE_DIR */
#include <math.h>

#include "nodewrite.h"
#include "../tests_c/fixture.h"

static void check(nw_status s, const char *what) {
    if (s != NW_OK) { fprintf(stderr, "%s: %s: %s\n", what, nw_status_string(s), nw_last_error_message()); exit(1); }
}

static nw_tensor_view tensor(const fx_safetensors *st, const char *name, fx_tensor *t) {
    if (fx_tensor_get(st, name, t) != 0) { fprintf(stderr, "missing %s\n", name); exit(1); }
    nw_tensor_view v = {t->data, NW_DTYPE_F32, t->ndim, t->shape, NULL};
    return v;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "Tests/NodeWriteTests/Fixtures";
    char path[1024], name[128];
    fx_safetensors st;
    snprintf(path, sizeof path, "%s/tdb_tiny.safetensors", dir);
    if (fx_open(&st, path) != 0) { fprintf(stderr, "cannot read %s\n", path); return 1; }
    fx_case *cases = NULL;
    snprintf(path, sizeof path, "%s/tdb_tiny.json", dir);
    int n = fx_cases(path, &cases);

    /* The fixture model: 3 layers, d_model 48, 3 heads x 16, d_ff 192, both autoencoders. */
    nw_model_dims dims = {3, 48, 3, 16, 192};
    nw_model *m;
    nw_store *s;
    check(nw_model_create(&dims, &m), "model");
    check(nw_store_create(&s), "store");
    const char *acts[] = {"mlp.post_act", "attn.qk_probs", "attn.v", "online_autoencoder_latent",
                          "online_mlp_autoencoder_latent", "online_attention_autoencoder_latent"};
    for (int l = 0; l < 3; l++) {
        fx_tensor t;
        nw_tensor_view v;
        snprintf(name, sizeof name, "weights.%d.mlp.to_residual", l);
        v = tensor(&st, name, &t); check(nw_model_set_weight(m, NW_WEIGHT_MLP_TO_RESIDUAL, l, &v, NW_BORROW), name);
        snprintf(name, sizeof name, "weights.%d.attn.to_residual", l);
        v = tensor(&st, name, &t); check(nw_model_set_weight(m, NW_WEIGHT_ATTN_TO_RESIDUAL, l, &v, NW_BORROW), name);
        snprintf(name, sizeof name, "autoencoders.mlp.%d.decoder_weight", l);
        v = tensor(&st, name, &t);
        check(nw_model_set_autoencoder(m, NW_NODE_MLP_AUTOENCODER_LATENT, l, NW_AE_INPUT_MLP_POST_ACT, &v, NW_BORROW), name);
        check(nw_model_set_autoencoder(m, NW_NODE_AUTOENCODER_LATENT, l, NW_AE_INPUT_MLP_POST_ACT, &v, NW_BORROW), name);
        snprintf(name, sizeof name, "autoencoders.attention.%d.decoder_weight", l);
        v = tensor(&st, name, &t);
        check(nw_model_set_autoencoder(m, NW_NODE_ATTENTION_AUTOENCODER_LATENT, l, NW_AE_INPUT_RESIDUAL, &v, NW_BORROW), name);
        for (int a = 0; a < 6; a++) {
            int32_t act;
            check(nw_activation_from_name(acts[a], &act), acts[a]);
            snprintf(name, sizeof name, "activations.%d.%s", l, acts[a]);
            v = tensor(&st, name, &t); check(nw_store_put(s, act, l, &v), name);
        }
    }
    printf("nodewrite %s (C ABI %u): node writes on the fixture model (3 layers, d_model 48)\n\n",
           nw_version_string(), nw_abi_version());
    printf("%-30s %-6s %-14s %6s %9s  %-34s %s\n", "node type", "layer", "indices", "token", "|write|",
           "top residual channels", "max |diff| vs original");
    int shown[5] = {0};
    for (int i = 0; i < n; i++) {
        const fx_case *c = &cases[i];
        nw_node_index node = {0, c->layer, c->n_indices, 0, {0, 0, 0, 0}};
        check(nw_node_type_from_name(c->node_type, &node.node_type), c->node_type);
        if (c->error[0] || shown[node.node_type]++ >= 2) continue;
        for (int k = 0; k < c->n_indices; k++) node.indices[k] = c->indices[k];
        float vec[48];
        int64_t row;
        nw_deriver *d;
        check(nw_node_write_deriver_create(m, &node, &d), c->id);
        check(nw_deriver_derive_vector(d, s, vec, 48, &row), c->id);
        nw_deriver_destroy(d);
        fx_tensor want;
        fx_tensor_get(&st, c->expected, &want);
        float norm = 0, diff = 0;
        int top[3] = {-1, -1, -1};
        for (int j = 0; j < 48; j++) {
            norm += vec[j] * vec[j];
            diff = fmaxf(diff, fabsf(vec[j] - want.data[row * 48 + j]));
        }
        for (int r = 0; r < 3; r++) /* the three largest |channels|, in order */
            for (int j = 0; j < 48; j++)
                if (j != top[0] && j != top[1] && (top[r] < 0 || fabsf(vec[j]) > fabsf(vec[top[r]]))) top[r] = j;
        char idx[32], chans[64];
        if (c->n_indices == 3) snprintf(idx, sizeof idx, "(%lld,%lld,%lld)", (long long)c->indices[0], (long long)c->indices[1], (long long)c->indices[2]);
        else snprintf(idx, sizeof idx, "(%lld,%lld)", (long long)c->indices[0], (long long)c->indices[1]);
        snprintf(chans, sizeof chans, "%d:%+.3f %d:%+.3f %d:%+.3f", top[0], vec[top[0]], top[1], vec[top[1]], top[2], vec[top[2]]);
        printf("%-30s %-6d %-14s %6lld %9.4f  %-34s %.2e\n", c->node_type, c->layer, idx, (long long)row, sqrtf(norm), chans, diff);
    }
    nw_model_destroy(m);
    nw_store_destroy(s);
    free(cases);
    fx_close(&st);
    return 0;
}
