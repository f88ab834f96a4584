/*
 * fuzz_safetensors.c — libFuzzer harness for the checkpoint loaders of libnodewrite
 * (nw_model_load_safetensors, nw_model_load_autoencoder_safetensors), written against
 * include/nodewrite.h only.
 *
 * Input layout:
 *   byte 0       mode: bit 0 = 0 loads a model, 1 loads an SAELens autoencoder into a
 *                small model (bits 1-3: node type, bits 4-5: layer - 1)
 *   bytes 1-2    J, little-endian: the length of the JSON file that follows
 *   J bytes      config.json next to the model (mode 0; none when J = 0), or cfg.json (mode 1)
 *   the rest     the .safetensors file
 * The files are written to a private temporary directory (on /dev/shm when there is one)
 * and loaded by path, as a caller would.
 *
 * Besides crashes and sanitizer reports, the harness traps on contract violations it
 * can see: an unknown status, a failure without a message, *out written on failure, or
 * a loaded model whose dimensions are not all >= 1. A loaded model is used: every MLP
 * neuron's write of every layer is derived (reading all of W_out), and the token-space
 * top-1 of neuron 0 when an unembedding and final gain are present.
 *
 * Built with -DNW_FUZZ_REPLAY_MAIN it is a plain program that runs the inputs named on
 * the command line (files or directories) once each: the corpus replay of `make test`.
 */
#define _DEFAULT_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nodewrite.h"

static char dir[256];
static char p_model[320], p_config[320], p_cfg[320], p_sae[320];

static void cleanup(void) {
    if (!dir[0]) return;
    unlink(p_model); unlink(p_config); unlink(p_cfg); unlink(p_sae);
    rmdir(dir);
}

static void setup(void) {
    if (dir[0]) return;
    struct stat sb;
    const char *base = (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode)) ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/nw_fuzz_st_XXXXXX", base);
    if (!mkdtemp(dir)) { perror("mkdtemp"); abort(); }
    atexit(cleanup);
    snprintf(p_model, sizeof p_model, "%s/model.safetensors", dir);
    snprintf(p_config, sizeof p_config, "%s/config.json", dir);
    snprintf(p_cfg, sizeof p_cfg, "%s/cfg.json", dir);
    snprintf(p_sae, sizeof p_sae, "%s/sae_weights.safetensors", dir);
}

static void put(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); abort(); }
    if (n && fwrite(p, 1, n, f) != n) { perror(path); abort(); }
    fclose(f);
}

static void check(nw_status status) {
    if (status > 0 || status < NW_ERR_STALE_INPUT) __builtin_trap(); /* not a status */
    if (status != NW_OK) {
        const char *m = nw_last_error_message();
        if (m == NULL || m[0] == '\0') __builtin_trap(); /* a failure without a message */
    }
}

/* Uses a loaded model: every neuron's write of every layer, and a token-space top-1. */
static void use(nw_model *model) {
    nw_model_dims d;
    check(nw_model_dims_get(model, &d));
    if (d.n_layers < 1 || d.d_model < 1 || d.n_heads < 1 || d.d_head < 1 || d.d_ff < 1) __builtin_trap();
    if (d.d_ff > (1 << 16) || d.d_model > (1 << 16) || d.d_ff * d.d_model > (1 << 20) || d.n_layers > 64) return;
    nw_store *store = NULL;
    if (nw_store_create(&store) != NW_OK) __builtin_trap();
    float *post = malloc((size_t)d.d_ff * sizeof(float));
    float *out = malloc((size_t)(d.d_ff * d.d_model) * sizeof(float));
    int64_t *idx = malloc((size_t)d.d_ff * 2 * sizeof(int64_t));
    for (int64_t i = 0; i < d.d_ff; i++) { post[i] = 1.0f; idx[2 * i] = 0; idx[2 * i + 1] = i; }
    int64_t shape[2] = {1, d.d_ff};
    nw_tensor_view v = {post, NW_DTYPE_F32, 2, shape, NULL};
    for (int32_t L = 0; L < (int32_t)d.n_layers; L++) {
        check(nw_store_put(store, NW_ACT_MLP_POST_ACT, L, &v));
        nw_status s = nw_node_writes(model, store, NW_NODE_MLP_NEURON, L, idx, (size_t)d.d_ff, 2, out,
                                     (size_t)(d.d_ff * d.d_model), NULL);
        check(s);
        if (s != NW_OK) __builtin_trap(); /* every layer has its W_out */
        int64_t vocab = 0;
        check(nw_model_vocab_size(model, &vocab));
        if (vocab > 0 && vocab <= (1 << 20)) {
            float value;
            int64_t id;
            check(nw_token_writes_top_k(model, store, NW_NODE_MLP_NEURON, L, idx, 1, 2, 1, 1, &value, &id, 1));
        }
    }
    free(idx); free(out); free(post);
    nw_store_destroy(store);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    if (size < 3) return 0;
    uint8_t mode = data[0];
    size_t j = (size_t)data[1] | ((size_t)data[2] << 8);
    data += 3; size -= 3;
    if (j > size) j = size;
    const uint8_t *json = data, *file = data + j;
    size_t nfile = size - j;
    nw_model *sentinel = (nw_model *)(uintptr_t)0x5a5a;
    if ((mode & 1) == 0) {
        put(p_model, file, nfile);
        if (j) put(p_config, json, j); else unlink(p_config);
        nw_model *model = sentinel;
        nw_status s = nw_model_load_safetensors(p_model, &model);
        check(s);
        if (s != NW_OK) {
            if (model != sentinel) __builtin_trap(); /* written on failure */
            return 0;
        }
        use(model);
        nw_model_destroy(model);
    } else {
        put(p_sae, file, nfile);
        put(p_cfg, json, j);
        nw_model_dims dims = {2, 4, 2, 2, 6};
        nw_model *model = NULL;
        if (nw_model_create(&dims, &model) != NW_OK) __builtin_trap();
        int32_t type = (mode >> 1) & 7, layer = ((mode >> 4) & 3) - 1;
        check(nw_model_load_autoencoder_safetensors(model, dir, type, layer));
        check(nw_model_load_autoencoder_safetensors(model, p_sae, type, layer));
        nw_model_destroy(model);
    }
    return 0;
}

#ifdef NW_FUZZ_REPLAY_MAIN
#define FUZZ_REPLAY_NAME "fuzz_safetensors"
#include "replay_main.h"
#endif
