/* edges_parity.c — every case of tdb_edges (TDB's in-edges, out-edges, act-times-grad and
 * attention-to-latent outputs) through the C ABI: nw_store_put_pass, nw_model_set_weight (read
 * side), nw_model_set_autoencoder_encoder, nw_derive_node. Within 1e-5 x max(1, max |TDB|),
 * exact zeros where TDB's are zero, TDB's AssertionError as NW_ERR_UNSUPPORTED; the same bits
 * on 1 and 2 threads. Usage: edges_parity FIXTURE_DIR */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodewrite.h"
#include "fixture.h"
#include "json_min.h"
#include "edges_fixture.h"

static fx_safetensors st;
static const jm_node *activations;
static int failures;

#define FAIL(...) do { fprintf(stderr, "FAIL "); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); failures++; } while (0)

static nw_tensor_view view_of(const fx_tensor *t) {
    nw_tensor_view v = {(void *)t->data, NW_DTYPE_F32, t->ndim, t->shape, NULL};
    return v;
}

static fx_tensor tensor(const char *name) {
    fx_tensor t;
    if (fx_tensor_get(&st, name, &t) != 0) { fprintf(stderr, "fixture tensor %s missing\n", name); exit(2); }
    return t;
}

typedef struct setup { nw_model *model; nw_store *store; } setup;

static setup make_setup(const char *store_name) {
    setup s;
    nw_model_dims dims = {3, 48, 3, 16, 192};
    if (nw_model_create(&dims, &s.model) != NW_OK || nw_store_create(&s.store) != NW_OK) exit(2);
    static const char *weights[][2] = {
        {"mlp.to_residual", "mlp.to_residual"}, {"attn.to_residual", "attn.to_residual"},
        {"ln_1.gain", "layer_norm_gain.pre_attn"}, {"ln_1.bias", "layer_norm_bias.pre_attn"},
        {"ln_2.gain", "layer_norm_gain.pre_mlp"}, {"ln_2.bias", "layer_norm_bias.pre_mlp"},
        {"attn.to_query", "attn.to_query"}, {"attn.to_key", "attn.to_key"}, {"attn.to_value", "attn.to_value"},
        {"attn.query_bias", "attn.query_bias"}, {"attn.key_bias", "attn.key_bias"}, {"attn.value_bias", "attn.value_bias"},
        {"attn.out_bias", "attn.out_bias"}, {"mlp.to_hidden", "mlp.to_hidden"}, {"mlp.in_bias", "mlp.in_bias"},
        {"mlp.out_bias", "mlp.out_bias"},
    };
    char name[256];
    for (int l = 0; l < 3; l++) {
        for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++) {
            int32_t w;
            if (nw_weight_from_name(weights[i][1], &w) != NW_OK) { FAIL("weight name %s", weights[i][1]); continue; }
            snprintf(name, sizeof name, "weights.%d.%s", l, weights[i][0]);
            fx_tensor t = tensor(name);
            nw_tensor_view v = view_of(&t);
            if (nw_model_set_weight(s.model, w, l, &v, NW_BORROW) != NW_OK) FAIL("set %s: %s", name, nw_last_error_message());
        }
        for (int which = 0; which < 2; which++) {
            const char *ae = which == 0 ? "mlp" : "attention";
            if (strcmp(store_name, "both") && strcmp(store_name, which == 0 ? "mlp" : "attn")) continue;
            int32_t type = which == 0 ? NW_NODE_MLP_AUTOENCODER_LATENT : NW_NODE_ATTENTION_AUTOENCODER_LATENT;
            int32_t input = which == 0 ? NW_AE_INPUT_MLP_POST_ACT : NW_AE_INPUT_RESIDUAL;
            fx_tensor t[4];
            const char *parts[4] = {"decoder_weight", "encoder_weight", "latent_bias", "pre_bias"};
            nw_tensor_view v[4];
            for (int k = 0; k < 4; k++) {
                snprintf(name, sizeof name, "autoencoders.%s.%d.%s", ae, l, parts[k]);
                t[k] = tensor(name);
                v[k] = view_of(&t[k]);
            }
            if (nw_model_set_autoencoder(s.model, type, l, input, &v[0], NW_BORROW) != NW_OK) FAIL("decoder: %s", nw_last_error_message());
            if (nw_model_set_autoencoder_encoder(s.model, type, l, &v[1], &v[2], &v[3], NW_BORROW) != NW_OK)
                FAIL("encoder: %s", nw_last_error_message());
        }
    }
    for (int i = 0; i < activations->count; i++) {
        const jm_node *a = activations->items[i];
        if (strcmp(jm_str(a, "store"), store_name)) continue;
        int32_t location;
        if (nw_activation_from_name(jm_str(a, "location"), &location) != NW_OK) { FAIL("activation %s", jm_str(a, "location")); continue; }
        const jm_node *layer = jm_get(a, "layer");
        int32_t l = layer && layer->kind == JM_NUMBER ? (int32_t)layer->number : NW_NO_LAYER;
        int32_t pass = strcmp(jm_str(a, "pass"), "backward") ? NW_PASS_FORWARD : NW_PASS_BACKWARD;
        fx_tensor t = tensor(jm_str(a, "tensor"));
        nw_tensor_view v = view_of(&t);
        if (nw_store_put_pass(s.store, location, l, pass, &v) != NW_OK) FAIL("put %s: %s", jm_str(a, "tensor"), nw_last_error_message());
    }
    return s;
}

/* The case's node argument (its node, or its trace latent); returns 0 when it has none. */
static int node_of(const jm_node *c, nw_node_index *n) {
    const jm_node *node = jm_get(c, "node");
    if (!node) node = jm_get(c, "trace_latent");
    if (!node) return 0;
    memset(n, 0, sizeof *n);
    nw_node_type_from_name(jm_str(node, "node_type"), &n->node_type);
    n->layer = (int32_t)jm_get(node, "layer")->number;
    const jm_node *idx = jm_get(node, "tensor_indices");
    n->n_indices = idx->count;
    for (int i = 0; i < idx->count && i < 4; i++)
        n->indices[i] = idx->items[i]->kind == JM_NULL ? NW_INDEX_NONE : (int64_t)idx->items[i]->number;
    const char *sub = jm_str(node, "subnode");
    n->reserved = !sub ? NW_SUBNODE_NONE : sub[0] == 'q' ? NW_SUBNODE_Q : sub[0] == 'k' ? NW_SUBNODE_K : NW_SUBNODE_V;
    return 1;
}

static nw_status derive(setup *s, int32_t dst, int32_t layer, const nw_node_index *node, uint32_t flags,
                        float **out, int64_t shape[3], int32_t *ndim) {
    size_t need = 0;
    nw_status st0 = ef_derive_node(s->model, s->store, dst, layer, node, flags, NULL, 0, shape, ndim);
    if (st0 != NW_ERR_BUFFER_TOO_SMALL) return st0;
    need = 1;
    for (int i = 0; i < *ndim; i++) need *= (size_t)shape[i];
    *out = malloc(need * sizeof(float) + 1);
    for (size_t i = 0; i < need; i++) (*out)[i] = NAN;
    return ef_derive_node(s->model, s->store, dst, layer, node, flags, *out, need, shape, ndim);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: edges_parity FIXTURE_DIR\n"); return 2; }
    char path[1024];
    snprintf(path, sizeof path, "%s/tdb_edges.safetensors", argv[1]);
    if (fx_open(&st, path) != 0) { fprintf(stderr, "cannot read %s\n", path); return 2; }
    snprintf(path, sizeof path, "%s/tdb_edges.json", argv[1]);
    size_t size;
    char *text = fx_read_file(path, &size);
    if (!text) { fprintf(stderr, "cannot read %s\n", path); return 2; }
    jm_node *manifest = jm_parse(text);
    activations = jm_get(manifest, "activations");
    const jm_node *cases = jm_get(manifest, "cases");
    const char *stores[4] = {"none", "mlp", "attn", "both"};
    setup setups[4];
    for (int i = 0; i < 4; i++) setups[i] = make_setup(stores[i]);
    nw_set_num_threads(1);
    int checked = 0, outputs = 0, errors = 0;
    {   /* the subnode is an argument: a node's reserved field stays 0, and is refused otherwise */
        nw_node_index head = {0};
        head.node_type = NW_NODE_ATTENTION_HEAD, head.layer = 1, head.n_indices = 3, head.reserved = NW_SUBNODE_V;
        head.indices[0] = 6, head.indices[1] = 3, head.indices[2] = 0;
        float out[7 * 48];
        int64_t shape[3];
        int32_t ndim;
        nw_status r = nw_derive_node(setups[0].model, setups[0].store, NW_DST_GRAD_OF_SINGLE_SUBNODE_ATTRIBUTION, 1, &head,
                                     NW_SUBNODE_NONE, 0, out, 7 * 48, shape, &ndim);
        if (r != NW_ERR_INVALID_ARGUMENT) FAIL("node.reserved = 3: status %d, expected NW_ERR_INVALID_ARGUMENT", r);
        head.reserved = 0;
        r = nw_derive_node(setups[0].model, setups[0].store, NW_DST_GRAD_OF_SINGLE_SUBNODE_ATTRIBUTION, 1, &head,
                           NW_SUBNODE_V, 0, out, 7 * 48, shape, &ndim);
        if (r != NW_OK) FAIL("the V subnode as an argument: %s", nw_last_error_message());
    }
    for (int ci = 0; ci < cases->count; ci++) {
        const jm_node *c = cases->items[ci];
        const char *id = jm_str(c, "id"), *dst_name = jm_str(c, "dst"), *store = jm_str(c, "store");
        if (!strcmp(jm_str(c, "group"), "single_node_write")) continue;
        setup *s = NULL;
        for (int i = 0; i < 4; i++) if (!strcmp(stores[i], store)) s = &setups[i];
        int32_t dst;
        if (nw_dst_from_name(dst_name, &dst) != NW_OK) { FAIL("%s: dst %s unknown", id, dst_name); continue; }
        nw_node_index node;
        const nw_node_index *np = node_of(c, &node) ? &node : NULL;
        const jm_node *detach = jm_get(c, "detach");
        uint32_t flags = detach && detach->number ? NW_DETACH_LAYER_NORM_SCALE : 0;
        checked++;
        if (jm_get(c, "error")) {
            int32_t layer = np ? np->layer : 0;
            if (!strcmp(dst_name, "token_out_edge_attribution")) layer = NW_NO_LAYER;
            float *out = NULL;
            int64_t shape[3];
            int32_t ndim = 0;
            nw_status r = derive(s, dst, layer, np, flags, &out, shape, &ndim);
            if (r != NW_ERR_UNSUPPORTED) FAIL("%s %s: status %d, expected NW_ERR_UNSUPPORTED (TDB: AssertionError)", id, dst_name, r);
            else errors++;
            free(out);
            continue;
        }
        const jm_node *expected = jm_get(c, "expected");
        for (int k = 0; k < expected->count; k++) {
            const char *key = expected->keys[k];
            int32_t layer = strcmp(key, "none") ? atoi(key) : NW_NO_LAYER;
            fx_tensor want = tensor(expected->items[k]->string);
            float *out = NULL;
            int64_t shape[3] = {0, 0, 0};
            int32_t ndim = 0;
            nw_status r = derive(s, dst, layer, np, flags, &out, shape, &ndim);
            if (r != NW_OK) { FAIL("%s %s layer %s: %s", id, dst_name, key, nw_last_error_message()); free(out); continue; }
            int same = ndim == want.ndim;
            for (int i = 0; same && i < ndim; i++) same = shape[i] == want.shape[i];
            if (!same) { FAIL("%s layer %s: shape", id, key); free(out); continue; }
            double scale = 1, worst = 0;
            for (int64_t i = 0; i < want.count; i++) scale = fmax(scale, fabs(want.data[i]));
            for (int64_t i = 0; i < want.count; i++) {
                if (want.data[i] == 0 && out[i] != 0) { FAIL("%s layer %s [%lld]: %g where TDB has 0", id, key, (long long)i, out[i]); break; }
                worst = fmax(worst, fabs((double)out[i] - want.data[i]));
            }
            if (!(worst <= 1e-5 * scale)) FAIL("%s %s layer %s: max error %g (scale %g)", id, dst_name, key, worst, scale);
            /* the same bits on 2 threads */
            nw_set_num_threads(2);
            float *out2 = NULL;
            r = derive(s, dst, layer, np, flags, &out2, shape, &ndim);
            nw_set_num_threads(1);
            if (r != NW_OK || memcmp(out, out2, (size_t)want.count * sizeof(float)))
                FAIL("%s layer %s: 2 threads differ", id, key);
            free(out);
            free(out2);
            outputs++;
        }
    }
    printf("edges_parity: %d cases (%d outputs, %d of TDB's errors as NW_ERR_UNSUPPORTED) through the C ABI: %s\n",
           checked, outputs, errors, failures ? "FAILED" : "ok");
    for (int i = 0; i < 4; i++) { nw_store_destroy(setups[i].store); nw_model_destroy(setups[i].model); }
    jm_free(manifest);
    free(text);
    fx_close(&st);
    return failures ? 1 : 0;
}
