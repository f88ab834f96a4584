/* c_parity.c — runs every parity fixture case through libnodewrite.so, loaded with
 * dlopen, using only include/nodewrite.h. Usage: c_parity LIB FIXTURE_DIR */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <math.h>

#include "nodewrite.h"
#include "fixture.h"

/* The library's functions, resolved by name with the header's types. */
#define NW_FUNCTIONS(X) X(nw_abi_version) X(nw_version_string) X(nw_status_string) \
    X(nw_last_error_message) X(nw_node_type_from_name) X(nw_model_create) X(nw_model_destroy) \
    X(nw_model_set_weight) X(nw_model_set_autoencoder) X(nw_store_create) X(nw_store_destroy) \
    X(nw_store_put) X(nw_node_write_deriver_create) X(nw_deriver_destroy) X(nw_deriver_derive) \
    X(nw_deriver_derive_vector) X(nw_deriver_output_shape) X(nw_node_write)
#define DECLARE(f) static __typeof__(&f) p_##f;
NW_FUNCTIONS(DECLARE)

static fx_safetensors st;
static int failures, passes;

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL %s: ", c->id); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, " (%s)\n", p_nw_last_error_message()); return 0; } } while (0)

static nw_tensor_view view_of(const char *name, fx_tensor *t) {
    if (fx_tensor_get(&st, name, t) != 0) { fprintf(stderr, "fixture tensor %s missing\n", name); exit(2); }
    nw_tensor_view v = {t->data, NW_DTYPE_F32, t->ndim, t->shape, NULL};
    return v;
}

static nw_model *make_model(const char *autoencoders, int64_t n_layers) {
    nw_model_dims dims = {n_layers, 48, 3, 16, 192};
    nw_model *m = NULL;
    if (p_nw_model_create(&dims, &m) != NW_OK) exit(2);
    char name[128];
    fx_tensor t;
    for (int l = 0; l < n_layers; l++) {
        nw_tensor_view v;
        snprintf(name, sizeof name, "weights.%d.mlp.to_residual", l);
        v = view_of(name, &t);
        if (p_nw_model_set_weight(m, NW_WEIGHT_MLP_TO_RESIDUAL, l, &v, NW_BORROW) != NW_OK) exit(2);
        snprintf(name, sizeof name, "weights.%d.attn.to_residual", l);
        v = view_of(name, &t);
        if (p_nw_model_set_weight(m, NW_WEIGHT_ATTN_TO_RESIDUAL, l, &v, NW_COPY) != NW_OK) exit(2);
        snprintf(name, sizeof name, "autoencoders.mlp.%d.decoder_weight", l);
        v = view_of(name, &t);
        if (strcmp(autoencoders, "single") == 0 &&
            p_nw_model_set_autoencoder(m, NW_NODE_AUTOENCODER_LATENT, l, NW_AE_INPUT_MLP_POST_ACT, &v, NW_BORROW) != NW_OK)
            exit(2);
        if (strcmp(autoencoders, "multi") == 0) {
            if (p_nw_model_set_autoencoder(m, NW_NODE_MLP_AUTOENCODER_LATENT, l, NW_AE_INPUT_MLP_POST_ACT, &v, NW_BORROW) != NW_OK)
                exit(2);
            snprintf(name, sizeof name, "autoencoders.attention.%d.decoder_weight", l);
            v = view_of(name, &t);
            if (p_nw_model_set_autoencoder(m, NW_NODE_ATTENTION_AUTOENCODER_LATENT, l, NW_AE_INPUT_RESIDUAL, &v, NW_BORROW) != NW_OK)
                exit(2);
        }
    }
    return m;
}

static nw_store *make_store(int64_t n_layers) {
    static const struct { int32_t act; const char *name; } acts[] = {
        {NW_ACT_MLP_POST_ACT, "mlp.post_act"}, {NW_ACT_ATTN_QK_PROBS, "attn.qk_probs"}, {NW_ACT_ATTN_VALUE, "attn.v"},
        {NW_ACT_ONLINE_AUTOENCODER_LATENT, "online_autoencoder_latent"},
        {NW_ACT_ONLINE_MLP_AUTOENCODER_LATENT, "online_mlp_autoencoder_latent"},
        {NW_ACT_ONLINE_ATTENTION_AUTOENCODER_LATENT, "online_attention_autoencoder_latent"}};
    nw_store *s = NULL;
    if (p_nw_store_create(&s) != NW_OK) exit(2);
    for (int l = 0; l < n_layers; l++)
        for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
            char name[128];
            fx_tensor t;
            snprintf(name, sizeof name, "activations.%d.%s", l, acts[i].name);
            nw_tensor_view v = view_of(name, &t);
            if (p_nw_store_put(s, acts[i].act, l, &v) != NW_OK) exit(2);
        }
    return s;
}

/* One case; returns 1 if it passed. */
static int run_case(const fx_case *c, nw_model *m, nw_store *s) {
    enum { T = 7, D = 48, SENTINEL_BITS = 0x7fc0dead };
    float out[T * D], vec[D];
    nw_node_index node = {0, c->layer, c->n_indices, 0, {0, 0, 0, 0}};
    for (int i = 0; i < c->n_indices; i++) node.indices[i] = c->indices[i];
    CHECK(p_nw_node_type_from_name(c->node_type, &node.node_type) == NW_OK, "node type %s", c->node_type);
    for (int i = 0; i < T * D; i++) memcpy(&out[i], &(uint32_t){SENTINEL_BITS}, 4);

    nw_deriver *d = NULL;
    nw_status st_create = p_nw_node_write_deriver_create(m, &node, &d);
    nw_status st_derive = st_create == NW_OK ? p_nw_deriver_derive(d, s, out, T * D) : st_create;
    nw_status st_oneshot = p_nw_node_write(m, s, &node, st_derive == NW_OK ? vec : out, st_derive == NW_OK ? 0 : T * D);
    if (c->error[0]) {
        nw_status want = strcmp(c->error, "IndexError") == 0 ? NW_ERR_INDEX_OUT_OF_RANGE : NW_ERR_MISSING_INPUT;
        CHECK(st_derive == want, "status %s, want %s", p_nw_status_string(st_derive), p_nw_status_string(want));
        CHECK(st_oneshot == want, "one-shot status %s", p_nw_status_string(st_oneshot));
        CHECK(p_nw_last_error_message()[0] != '\0', "no error message");
        for (int i = 0; i < T * D; i++) {
            uint32_t bits;
            memcpy(&bits, &out[i], 4);
            CHECK(bits == SENTINEL_BITS, "output written on error at %d", i);
        }
        p_nw_deriver_destroy(d);
        return 1;
    }
    CHECK(st_derive == NW_OK, "derive: %s", p_nw_status_string(st_derive));
    CHECK(st_oneshot == NW_ERR_BUFFER_TOO_SMALL, "one-shot with out_len 0: %s", p_nw_status_string(st_oneshot));
    int64_t shape[2] = {0, 0};
    CHECK(p_nw_deriver_output_shape(d, s, shape) == NW_OK && shape[0] == T && shape[1] == D, "output shape");

    fx_tensor want;
    CHECK(fx_tensor_get(&st, c->expected, &want) == 0 && want.count == T * D, "expected tensor %s", c->expected);
    float max_abs = 0, max_diff = 0;
    for (int i = 0; i < T * D; i++) max_abs = fmaxf(max_abs, fabsf(want.data[i]));
    int64_t row = c->indices[0] < 0 ? c->indices[0] + T : c->indices[0];
    for (int t = 0; t < T; t++)
        for (int j = 0; j < D; j++) {
            float got = out[t * D + j], ref = want.data[t * D + j];
            if (t != row) CHECK(got == 0.0f && ref == 0.0f, "row %d not exactly zero", t);
            max_diff = fmaxf(max_diff, fabsf(got - ref));
        }
    float tolerance = 1e-5f * fmaxf(1.0f, max_abs);
    CHECK(max_diff <= tolerance, "max |diff| %g > %g", max_diff, tolerance);

    int64_t token_row = -1;
    CHECK(p_nw_deriver_derive_vector(d, s, vec, D, &token_row) == NW_OK && token_row == row, "derive_vector");
    CHECK(memcmp(vec, &out[row * D], sizeof vec) == 0, "derive_vector differs from derive's token row");
    float again[T * D];
    CHECK(p_nw_node_write(m, s, &node, again, T * D) == NW_OK && memcmp(again, out, sizeof again) == 0,
          "one-shot differs from the deriver");
    p_nw_deriver_destroy(d);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s LIB FIXTURE_DIR\n", argv[0]); return 2; }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
#define RESOLVE(f) *(void **)(&p_##f) = dlsym(lib, #f); \
    if (!p_##f) { fprintf(stderr, "missing symbol %s\n", #f); return 2; }
    NW_FUNCTIONS(RESOLVE)
    if (p_nw_abi_version() != NW_ABI_VERSION || strcmp(p_nw_version_string(), NW_VERSION_STRING) != 0) {
        fprintf(stderr, "version mismatch: %u %s\n", p_nw_abi_version(), p_nw_version_string());
        return 1;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/tdb_tiny.safetensors", argv[2]);
    if (fx_open(&st, path) != 0) { fprintf(stderr, "cannot read %s\n", path); return 2; }
    snprintf(path, sizeof path, "%s/tdb_tiny.json", argv[2]);
    fx_case *cases;
    int n = fx_cases(path, &cases);
    if (n <= 0) { fprintf(stderr, "no cases in %s\n", path); return 2; }

    const char *modes[] = {"none", "single", "multi"};
    nw_model *models[3];
    for (int i = 0; i < 3; i++) models[i] = make_model(modes[i], 3);
    nw_store *s = make_store(3);
    for (int i = 0; i < n; i++) {
        int mode = strcmp(cases[i].autoencoders, "single") == 0 ? 1 : strcmp(cases[i].autoencoders, "multi") == 0 ? 2 : 0;
        if (run_case(&cases[i], models[mode], s)) passes++; else failures++;
    }
    for (int i = 0; i < 3; i++) p_nw_model_destroy(models[i]);
    p_nw_store_destroy(s);
    free(cases);
    fx_close(&st);
    printf("c_parity: %d fixture cases through dlopen(\"%s\")\n", n, argv[1]);
    printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
