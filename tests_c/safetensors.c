/*
 * safetensors.c — the boundary table of the checkpoint loaders of libnodewrite's C ABI
 * (nw_model_load_safetensors, nw_model_load_autoencoder_safetensors), SQLite-style.
 *
 * Each row writes one file (a safetensors file, and a config.json or cfg.json beside it)
 * into a private temporary directory, makes one call, and asserts the exact status, a
 * non-empty nw_last_error_message() that contains the row's words on failure, and *out
 * untouched on failure. Successful rows check the dimensions inferred. Then the files the
 * real producers wrote (Tests/NodeWriteTests/Fixtures/checkpoints, given as argv[1]) are
 * loaded, with SAELens autoencoders, and a neuron's write is derived from each.
 * Each row runs on a fresh thread, so that its error message starts empty.
 * Last, a checkpoint that changes on disk: a model loaded from a copy of the GPT-2 fixture
 * is used by four threads while the file is truncated, rewritten in place with other
 * weights, replaced by rename and removed; every result must stay the one from before (the
 * model holds its tensors in memory of its own: no SIGBUS, no zeros, no new weights).
 *
 * Usage: safetensors CHECKPOINT_DIR [-v]
 */
#define _DEFAULT_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nodewrite.h"

static char dir[256], p_file[320], p_config[320], p_cfg[320];
static int verbose, failures, rows;

/* ----------------------------------------------------- writing test files */

typedef struct buf { unsigned char *p; size_t n, cap; } buf;
static void add(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void adds(buf *b, const char *s) { add(b, s, strlen(s)); }

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n)) { perror(path); exit(2); }
    fclose(f);
}

/* A file: 8-byte length (the header's own, or `length` when not ~0), header, `data` zero bytes. */
static void st_file(const char *header, uint64_t length, size_t data) {
    buf b = {0};
    uint64_t n = length == ~(uint64_t)0 ? strlen(header) : length;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(n >> (8 * i));
    add(&b, le, 8);
    adds(&b, header);
    for (size_t i = 0; i < data; i++) add(&b, "\0", 1);
    write_file(p_file, b.p, b.n);
    free(b.p);
}

/* A valid file of F32 tensors laid out in order: names[i] with shapes[i] (ndim <= 3). */
typedef struct tspec { const char *name; const char *dtype; int ndim; int64_t shape[3]; } tspec;
static void st_tensors(const tspec *t, int n, const char *metadata) {
    buf h = {0};
    char tmp[512];
    adds(&h, "{");
    if (metadata) { adds(&h, "\"__metadata__\":"); adds(&h, metadata); if (n) adds(&h, ","); }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        int64_t count = 1;
        for (int k = 0; k < t[i].ndim; k++) count *= t[i].shape[k];
        size_t item = strcmp(t[i].dtype, "F64") == 0 || strcmp(t[i].dtype, "I64") == 0 ? 8
                      : strcmp(t[i].dtype, "F16") == 0 || strcmp(t[i].dtype, "BF16") == 0 ? 2 : 4;
        size_t bytes = (size_t)count * item;
        int len = snprintf(tmp, sizeof tmp, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", t[i].name, t[i].dtype);
        for (int k = 0; k < t[i].ndim; k++) len += snprintf(tmp + len, sizeof tmp - (size_t)len, "%s%" PRId64, k ? "," : "", t[i].shape[k]);
        snprintf(tmp + len, sizeof tmp - (size_t)len, "],\"data_offsets\":[%zu,%zu]}", at, at + bytes);
        adds(&h, tmp);
        at += bytes;
    }
    adds(&h, "}");
    while (h.n % 8) adds(&h, " ");
    add(&h, "", 1);
    st_file((const char *)h.p, ~(uint64_t)0, at);
    free(h.p);
}

#define TL2 {"blocks.0.attn.W_O", "F32", 3, {2, 3, 4}}, {"blocks.0.mlp.W_out", "F32", 2, {5, 4}}, \
            {"blocks.1.attn.W_O", "F32", 3, {2, 3, 4}}, {"blocks.1.mlp.W_out", "F32", 2, {5, 4}}
#define GPT2 {"h.0.attn.c_proj.weight", "F32", 2, {6, 4}}, {"h.0.mlp.c_proj.weight", "F32", 2, {5, 4}}, \
             {"wte.weight", "F32", 2, {7, 4}}, {"ln_f.weight", "F32", 1, {4}}

/* ---------------------------------------------------------------- rows */

typedef struct row {
    const char *what;
    void (*make)(void);
    const char *config;  /* config.json next to the file (NULL: none) */
    nw_status expect;
    const char *says;    /* words the message must contain */
    nw_model_dims dims;  /* expected on success */
} row;

#define HDR(name, header, len, data) static void name(void) { st_file(header, len, data); }
#define NONE (~(uint64_t)0)
static void mk_empty(void) { write_file(p_file, "", 0); }
static void mk_7(void) { write_file(p_file, "\x02\0\0\0\0\0\0", 7); }
HDR(mk_len63, "{}", (uint64_t)1 << 63, 8)
HDR(mk_lenmax, "{}", ~(uint64_t)0 - 1, 8)
HDR(mk_lenpast, "{}", 3, 0)
HDR(mk_badjson, "{\"a\":", NONE, 0)
HDR(mk_notutf8, "{\"\xff\xfe\":1}", NONE, 0)
HDR(mk_dup, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", NONE, 8)
HDR(mk_surrogate, "{\"\\udc00\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", NONE, 4)
HDR(mk_dtype, "{\"a\":{\"dtype\":\"Q8\",\"shape\":[1],\"data_offsets\":[0,4]}}", NONE, 4)
HDR(mk_negshape, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", NONE, 4)
HDR(mk_overflow, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", NONE, 4)
HDR(mk_reversed, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", NONE, 4)
HDR(mk_mismatch, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", NONE, 8)
HDR(mk_outside, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", NONE, 8)
HDR(mk_overlap, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", NONE, 12)
static void mk_deep(void) {
    static char h[20016];
    strcpy(h, "{\"a\":");
    memset(h + 5, '[', 20000);
    h[20005] = 0;
    st_file(h, NONE, 0);
}
static void mk_longnum(void) {
    static char h[2100];
    strcpy(h, "{\"a\":{\"dtype\":\"F32\",\"shape\":[");
    size_t n = strlen(h);
    memset(h + n, '7', 1500);
    strcpy(h + n + 1500, "],\"data_offsets\":[0,4]}}");
    st_file(h, NONE, 4);
}
static void mk_tl(void) { tspec t[] = {TL2, {"unembed.W_U", "F32", 2, {4, 9}}, {"ln_final.w", "F32", 1, {4}}}; st_tensors(t, 6, NULL); }
static void mk_tl_f16(void) { tspec t[] = {{"blocks.0.attn.W_O", "F16", 3, {2, 3, 4}}, {"blocks.0.mlp.W_out", "BF16", 2, {5, 4}}, {"x", "I64", 1, {3}}}; st_tensors(t, 3, NULL); }
static void mk_tl_gap(void) { tspec t[] = {TL2, {"blocks.3.attn.W_O", "F32", 3, {2, 3, 4}}}; st_tensors(t, 5, NULL); }
static void mk_tl_shape(void) { tspec t[] = {TL2, {"blocks.2.attn.W_O", "F32", 3, {2, 3, 5}}, {"blocks.2.mlp.W_out", "F32", 2, {5, 4}}}; st_tensors(t, 6, NULL); }
static void mk_tl_i64(void) { tspec t[] = {{"blocks.0.attn.W_O", "I64", 3, {2, 3, 4}}, {"blocks.0.mlp.W_out", "F32", 2, {5, 4}}}; st_tensors(t, 2, NULL); }
static void mk_tl_missing(void) { tspec t[] = {TL2, {"blocks.2.attn.W_O", "F32", 3, {2, 3, 4}}}; st_tensors(t, 5, NULL); }
static void mk_tl_wu(void) { tspec t[] = {TL2, {"unembed.W_U", "F32", 2, {3, 9}}}; st_tensors(t, 5, NULL); }
static void mk_gpt2(void) { tspec t[] = {GPT2}; st_tensors(t, 4, NULL); }
static void mk_gpt2_meta(void) { tspec t[] = {GPT2}; st_tensors(t, 4, "{\"format\":\"pt\",\"n_head\":\"3\"}"); }
static void mk_gpt2_prefix(void) {
    tspec t[] = {{"transformer.h.0.attn.c_proj.weight", "F32", 2, {6, 4}}, {"transformer.h.0.mlp.c_proj.weight", "F32", 2, {5, 4}},
                 {"transformer.wte.weight", "F32", 2, {7, 4}}};
    st_tensors(t, 3, "{\"n_head\":\"2\"}");
}
static void mk_neither(void) { tspec t[] = {{"x", "F32", 1, {1}}}; st_tensors(t, 1, NULL); }

#define D(l, m, h, dh, f) {l, m, h, dh, f}
static const row ROWS[] = {
    {"empty file", mk_empty, NULL, NW_ERR_INVALID_ARGUMENT, "shorter than the 8-byte", {0}},
    {"7 bytes", mk_7, NULL, NW_ERR_INVALID_ARGUMENT, "shorter than the 8-byte", {0}},
    {"header length 2^63", mk_len63, NULL, NW_ERR_INVALID_ARGUMENT, "runs past the end", {0}},
    {"header length 2^64-2", mk_lenmax, NULL, NW_ERR_INVALID_ARGUMENT, "runs past the end", {0}},
    {"header length one past the file", mk_lenpast, NULL, NW_ERR_INVALID_ARGUMENT, "runs past the end", {0}},
    {"truncated JSON", mk_badjson, NULL, NW_ERR_INVALID_ARGUMENT, "malformed JSON", {0}},
    {"header not UTF-8", mk_notutf8, NULL, NW_ERR_INVALID_ARGUMENT, "UTF-8", {0}},
    {"duplicate names", mk_dup, NULL, NW_ERR_INVALID_ARGUMENT, "duplicate", {0}},
    {"name with a lone surrogate", mk_surrogate, NULL, NW_ERR_INVALID_ARGUMENT, "surrogate", {0}},
    {"unknown dtype", mk_dtype, NULL, NW_ERR_UNSUPPORTED_DTYPE, "Q8", {0}},
    {"negative shape", mk_negshape, NULL, NW_ERR_INVALID_ARGUMENT, "shape[0]", {0}},
    {"shape count overflows", mk_overflow, NULL, NW_ERR_INVALID_ARGUMENT, "overflows", {0}},
    {"data_offsets reversed", mk_reversed, NULL, NW_ERR_INVALID_ARGUMENT, "begin <= end", {0}},
    {"data_offsets not shape x itemsize", mk_mismatch, NULL, NW_ERR_INVALID_ARGUMENT, "needs 8", {0}},
    {"data_offsets outside the file", mk_outside, NULL, NW_ERR_INVALID_ARGUMENT, "past the end of the data", {0}},
    {"overlapping tensors", mk_overlap, NULL, NW_ERR_INVALID_ARGUMENT, "overlaps", {0}},
    {"20000-deep JSON", mk_deep, NULL, NW_ERR_INVALID_ARGUMENT, "nesting", {0}},
    {"1500-digit number", mk_longnum, NULL, NW_ERR_INVALID_ARGUMENT, "longer than", {0}},
    {"TL: valid", mk_tl, NULL, NW_OK, NULL, D(2, 4, 2, 3, 5)},
    {"TL: F16 / BF16 weights, an I64 tensor beside them", mk_tl_f16, NULL, NW_OK, NULL, D(1, 4, 2, 3, 5)},
    {"TL: gap in layers", mk_tl_gap, NULL, NW_ERR_SHAPE_MISMATCH, "layer 2 is missing", {0}},
    {"TL: layer 2 of another d_model", mk_tl_shape, NULL, NW_ERR_SHAPE_MISMATCH, "blocks.2.attn.W_O", {0}},
    {"TL: W_O as I64", mk_tl_i64, NULL, NW_ERR_UNSUPPORTED_DTYPE, "I64", {0}},
    {"TL: layer 2 without W_out", mk_tl_missing, NULL, NW_ERR_MISSING_INPUT, "blocks.2.mlp.W_out", {0}},
    {"TL: W_U of another d_model", mk_tl_wu, NULL, NW_ERR_SHAPE_MISMATCH, "unembed.W_U", {0}},
    {"GPT-2: no n_head anywhere", mk_gpt2, NULL, NW_ERR_INVALID_ARGUMENT, "n_head", {0}},
    {"GPT-2: n_head in config.json", mk_gpt2, "{\"n_head\": 2, \"n_layer\": 1, \"n_embd\": 4}", NW_OK, NULL, D(1, 4, 2, 3, 5)},
    {"GPT-2: config.json disagrees (n_embd)", mk_gpt2, "{\"n_head\": 2, \"n_embd\": 8}", NW_ERR_SHAPE_MISMATCH, "n_embd", {0}},
    {"GPT-2: config.json malformed", mk_gpt2, "{\"n_head\": ", NW_ERR_INVALID_ARGUMENT, "config.json", {0}},
    {"GPT-2: n_head in __metadata__", mk_gpt2_meta, NULL, NW_OK, NULL, D(1, 4, 3, 2, 5)},
    {"GPT-2: transformer. prefix", mk_gpt2_prefix, NULL, NW_OK, NULL, D(1, 4, 2, 3, 5)},
    {"neither layout", mk_neither, NULL, NW_ERR_INVALID_ARGUMENT, "not a checkpoint", {0}},
};
#define NROWS (sizeof ROWS / sizeof *ROWS)

static void fail(const char *what, const char *why) {
    fprintf(stderr, "FAIL %s: %s\n", what, why);
    failures++;
}

static void *run_row(void *arg) {
    const row *r = arg;
    unlink(p_config);
    r->make();
    if (r->config) write_file(p_config, r->config, strlen(r->config));
    nw_model *sentinel = (nw_model *)(uintptr_t)0x77, *model = sentinel;
    nw_status s = nw_model_load_safetensors(p_file, &model);
    const char *msg = nw_last_error_message();
    if (verbose) printf("%-50s %-26s %s\n", r->what, nw_status_string(s), msg);
    if (s != r->expect) {
        char why[512];
        snprintf(why, sizeof why, "status %s, expected %s (%s)", nw_status_string(s), nw_status_string(r->expect), msg);
        fail(r->what, why);
    }
    if (s != NW_OK) {
        if (model != sentinel) fail(r->what, "*out written on failure");
        if (!msg[0]) fail(r->what, "no message");
        if (r->says && !strstr(msg, r->says)) fail(r->what, "message lacks the expected words");
    } else {
        nw_model_dims d;
        if (nw_model_dims_get(model, &d) != NW_OK || memcmp(&d, &r->dims, sizeof d) != 0) fail(r->what, "dimensions");
        nw_model_destroy(model);
    }
    return NULL;
}

/* ----------------------------------------------- the producers' files */

/* Derives neuron 3 of layer 1 with activation 2 and compares with 2 * mlp.to_residual[3] read
 * through a copy of the model set from nothing else: a smoke test (the Swift tests compare
 * every weight bit for bit). Returns the write's first element for a plausibility check. */
static int derive_neuron(nw_model *m, float *first) {
    nw_model_dims d;
    if (nw_model_dims_get(m, &d) != NW_OK) return 0;
    float post[64] = {0}, out[32];
    post[3] = 2;
    int64_t shape[2] = {1, d.d_ff};
    nw_tensor_view v = {post, NW_DTYPE_F32, 2, shape, NULL};
    nw_store *st = NULL;
    nw_store_create(&st);
    nw_store_put(st, NW_ACT_MLP_POST_ACT, 1, &v);
    nw_node_index node = {NW_NODE_MLP_NEURON, 1, 2, 0, {0, 3, 0, 0}};
    nw_status s = nw_node_write(m, st, &node, out, 32);
    nw_store_destroy(st);
    *first = out[0];
    return s == NW_OK;
}

static void producers(const char *ckpt) {
    const char *files[] = {"gpt2/model.safetensors", "gpt2_f16/model.safetensors", "tl/model.safetensors"};
    for (int i = 0; i < 3; i++) {
        char path[1024], sae[1024];
        snprintf(path, sizeof path, "%s/%s", ckpt, files[i]);
        nw_model *m = NULL;
        rows++;
        nw_status s = nw_model_load_safetensors(path, &m);
        if (s != NW_OK) { fail(files[i], nw_last_error_message()); continue; }
        nw_model_dims d;
        nw_model_dims_get(m, &d);
        int64_t vocab = 0;
        nw_model_vocab_size(m, &vocab);
        if (d.n_layers != 2 || d.d_model != 32 || d.n_heads != 4 || d.d_head != 8 || d.d_ff != 64 || vocab != 50)
            fail(files[i], "dimensions");
        float first = 0;
        if (!derive_neuron(m, &first) || first == 0) fail(files[i], "derive");
        snprintf(sae, sizeof sae, "%s/sae_resid", ckpt);
        rows++;
        if (nw_model_load_autoencoder_safetensors(m, sae, NW_NODE_AUTOENCODER_LATENT, 1) != NW_OK) fail("sae_resid", nw_last_error_message());
        rows++;
        if (nw_model_load_autoencoder_safetensors(m, sae, NW_NODE_AUTOENCODER_LATENT, 0) != NW_ERR_INVALID_ARGUMENT) fail("sae_resid at layer 0", "status");
        snprintf(sae, sizeof sae, "%s/sae_mlp/sae_weights.safetensors", ckpt);
        rows++;
        if (nw_model_load_autoencoder_safetensors(m, sae, NW_NODE_MLP_AUTOENCODER_LATENT, 0) != NW_OK) fail("sae_mlp", nw_last_error_message());
        rows++;
        if (nw_model_load_autoencoder_safetensors(m, sae, NW_NODE_MLP_NEURON, 0) != NW_ERR_INVALID_ARGUMENT) fail("sae_mlp as a neuron", "status");
        nw_model_destroy(m);
    }
    /* SAELens hooks through cfg.json */
    struct { const char *cfg; nw_status expect; } cfgs[] = {
        {"{\"hook_name\": \"blocks.1.attn.hook_z\"}", NW_OK},
        {"{\"hook_name\": \"blocks.1.hook_embed\"}", NW_ERR_UNSUPPORTED},
        {"{\"metadata\": {\"hook_name\": \"blocks.1.hook_resid_pre\"}}", NW_OK},
        {"{\"hook_name\": \"blocks.1.hook_resid_pre\", \"d_in\": 33}", NW_ERR_SHAPE_MISMATCH},
        {"{}", NW_ERR_INVALID_ARGUMENT},
    };
    char path[1024], src[1024];
    snprintf(path, sizeof path, "%s/tl/model.safetensors", ckpt);
    nw_model *m = NULL;
    if (nw_model_load_safetensors(path, &m) != NW_OK) { fail("tl", "load"); return; }
    snprintf(src, sizeof src, "%s/sae_resid/sae_weights.safetensors", ckpt);
    FILE *f = fopen(src, "rb");
    buf b = {0};
    unsigned char chunk[4096];
    size_t n;
    while (f && (n = fread(chunk, 1, sizeof chunk, f)) > 0) add(&b, chunk, n);
    if (f) fclose(f);
    write_file(p_file, b.p, b.n);
    free(b.p);
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
        write_file(p_cfg, cfgs[i].cfg, strlen(cfgs[i].cfg));
        rows++;
        /* One autoencoder per slot: empty it before each load (the first load fills it). */
        if (nw_model_remove_autoencoder(m, NW_NODE_ATTENTION_AUTOENCODER_LATENT, 1) != NW_OK) fail("remove", nw_last_error_message());
        nw_status s = nw_model_load_autoencoder_safetensors(m, p_file, NW_NODE_ATTENTION_AUTOENCODER_LATENT, 1);
        if (verbose) printf("%-50s %-26s %s\n", cfgs[i].cfg, nw_status_string(s), nw_last_error_message());
        if (s != cfgs[i].expect) fail(cfgs[i].cfg, nw_status_string(s));
    }
    /* An occupied slot is refused, naming the slot and the fix; the slot keeps what it holds. */
    write_file(p_cfg, cfgs[0].cfg, strlen(cfgs[0].cfg));
    rows++;
    if (nw_model_load_autoencoder_safetensors(m, p_file, NW_NODE_ATTENTION_AUTOENCODER_LATENT, 1) != NW_OK) fail("fill", nw_last_error_message());
    rows++;
    if (nw_model_load_autoencoder_safetensors(m, p_file, NW_NODE_ATTENTION_AUTOENCODER_LATENT, 1) != NW_ERR_INVALID_ARGUMENT ||
        !strstr(nw_last_error_message(), "nw_model_remove_autoencoder"))
        fail("a second autoencoder in one slot", nw_last_error_message());
    rows++;
    if (nw_model_load_autoencoder_safetensors(m, NULL, 2, 1) != NW_ERR_INVALID_ARGUMENT) fail("NULL path", "status");
    rows++;
    if (nw_model_load_autoencoder_safetensors(NULL, p_file, 2, 1) != NW_ERR_INVALID_ARGUMENT) fail("NULL model", "status");
    nw_model_destroy(m);
    nw_model *untouched = (nw_model *)(uintptr_t)0x77;
    rows++;
    if (nw_model_load_safetensors(NULL, &untouched) != NW_ERR_INVALID_ARGUMENT || untouched != (nw_model *)(uintptr_t)0x77)
        fail("NULL path", "status");
    rows++;
    if (nw_model_load_safetensors(p_file, NULL) != NW_ERR_INVALID_ARGUMENT) fail("NULL out", "status");
    rows++;
    if (nw_model_load_safetensors(dir, &untouched) != NW_ERR_INVALID_ARGUMENT) fail("a directory", "status");
}

/* ------------------------------------------------ a checkpoint changing on disk */

typedef struct { nw_model *m; const float *ref; int *stop; long calls, wrong; } user;

/* An MLP and an attention node write at layer 1 (d_model 32, d_ff 64, 4 heads x 8, T = 3). */
static nw_status use_model(nw_model *m, float *out) {
    static float post[3 * 64], probs[3 * 3 * 4], v[3 * 4 * 8];
    static int filled;
    if (!__atomic_load_n(&filled, __ATOMIC_ACQUIRE)) { /* the same values whoever fills them */
        for (int i = 0; i < 3 * 64; i++) post[i] = (float)(i % 7) - 3;
        for (int i = 0; i < 3 * 3 * 4; i++) probs[i] = i / 4 % 3 <= i / 12 ? 0.5f : 0.0f;
        for (int i = 0; i < 3 * 4 * 8; i++) v[i] = (float)(i % 5) / 4;
        __atomic_store_n(&filled, 1, __ATOMIC_RELEASE);
    }
    int64_t sp[2] = {3, 64}, sq[3] = {3, 3, 4}, sv[3] = {3, 4, 8};
    nw_tensor_view a = {post, NW_DTYPE_F32, 2, sp, NULL}, b = {probs, NW_DTYPE_F32, 3, sq, NULL}, c = {v, NW_DTYPE_F32, 3, sv, NULL};
    nw_store *st = NULL;
    nw_status s = nw_store_create(&st);
    if (s == NW_OK) s = nw_store_put(st, NW_ACT_MLP_POST_ACT, 1, &a);
    if (s == NW_OK) s = nw_store_put(st, NW_ACT_ATTN_QK_PROBS, 1, &b);
    if (s == NW_OK) s = nw_store_put(st, NW_ACT_ATTN_VALUE, 1, &c);
    nw_node_index mlp = {NW_NODE_MLP_NEURON, 1, 2, 0, {2, 5, 0, 0}}, att = {NW_NODE_ATTENTION_HEAD, 1, 3, 0, {2, 1, 3, 0}};
    if (s == NW_OK) s = nw_node_write(m, st, &mlp, out, 3 * 32);
    if (s == NW_OK) s = nw_node_write(m, st, &att, out + 3 * 32, 3 * 32);
    nw_store_destroy(st);
    return s;
}

static void *keep_using(void *p) {
    user *u = p;
    float out[6 * 32];
    do {
        u->calls++;
        if (use_model(u->m, out) != NW_OK || memcmp(out, u->ref, sizeof out) != 0) u->wrong++;
    } while (!__atomic_load_n(u->stop, __ATOMIC_ACQUIRE));
    return NULL;
}

static void changing_file(const char *ckpt) {
    char src[1024], path[400], next[400];
    snprintf(src, sizeof src, "%s/gpt2/model.safetensors", ckpt);
    snprintf(path, sizeof path, "%s/changing.safetensors", dir);
    snprintf(next, sizeof next, "%s/next.safetensors", dir);
    FILE *f = fopen(src, "rb");
    buf b = {0};
    unsigned char chunk[4096];
    size_t n;
    while (f && (n = fread(chunk, 1, sizeof chunk, f)) > 0) add(&b, chunk, n);
    if (f) fclose(f);
    write_file(path, b.p, b.n);
    /* n_head comes from config.json beside the file */
    char cfg_src[1024], cfg_dst[400];
    snprintf(cfg_src, sizeof cfg_src, "%s/gpt2/config.json", ckpt);
    snprintf(cfg_dst, sizeof cfg_dst, "%s/config.json", dir);
    buf cb = {0};
    f = fopen(cfg_src, "rb");
    while (f && (n = fread(chunk, 1, sizeof chunk, f)) > 0) add(&cb, chunk, n);
    if (f) fclose(f);
    write_file(cfg_dst, cb.p, cb.n);
    free(cb.p);
    nw_model *m = NULL;
    rows++;
    if (nw_model_load_safetensors(path, &m) != NW_OK) { fail("changing file: load", nw_last_error_message()); free(b.p); return; }
    float ref[6 * 32];
    if (use_model(m, ref) != NW_OK) { fail("changing file: first use", nw_last_error_message()); nw_model_destroy(m); free(b.p); return; }
    int stop = 0;
    user users[4];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        users[t] = (user){m, ref, &stop, 0, 0};
        pthread_create(&th[t], NULL, keep_using, &users[t]);
    }
    struct timespec pause = {0, 20 * 1000 * 1000};
    /* truncated (as re-saving does first), to nothing and to half */
    if (truncate(path, 0) != 0) perror("truncate");
    nanosleep(&pause, NULL);
    if (truncate(path, (off_t)(b.n / 2)) != 0) perror("truncate");
    nanosleep(&pause, NULL);
    /* rewritten in place with other weights (every data byte changed), same size */
    unsigned char *other = malloc(b.n);
    memcpy(other, b.p, b.n);
    for (size_t i = 4096; i < b.n; i++) other[i] ^= 0x5a;
    FILE *w = fopen(path, "r+b");
    if (w) { fwrite(other, 1, b.n, w); fclose(w); }
    nanosleep(&pause, NULL);
    /* replaced by rename, then removed */
    write_file(next, other, b.n / 3);
    if (rename(next, path) != 0) perror("rename");
    nanosleep(&pause, NULL);
    unlink(path);
    nanosleep(&pause, NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    long calls = 0, wrong = 0;
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        calls += users[t].calls;
        wrong += users[t].wrong;
    }
    rows++;
    if (wrong) {
        char what[120];
        snprintf(what, sizeof what, "%ld of %ld calls", wrong, calls);
        fail("changing file: results changed with the file", what);
    }
    if (verbose) printf("changing file: %ld calls on 4 threads, all as before the file changed\n", calls);
    nw_model_destroy(m);
    unlink(cfg_dst);
    free(other);
    free(b.p);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s CHECKPOINT_DIR [-v]\n", argv[0]); return 2; }
    verbose = argc > 2 && strcmp(argv[2], "-v") == 0;
    snprintf(dir, sizeof dir, "/tmp/nw_st_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    snprintf(p_file, sizeof p_file, "%s/model.safetensors", dir);
    snprintf(p_config, sizeof p_config, "%s/config.json", dir);
    snprintf(p_cfg, sizeof p_cfg, "%s/cfg.json", dir);
    for (size_t i = 0; i < NROWS; i++) {
        pthread_t t;
        rows++;
        pthread_create(&t, NULL, run_row, (void *)&ROWS[i]);
        pthread_join(t, NULL);
    }
    producers(argv[1]);
    changing_file(argv[1]);
    unlink(p_file); unlink(p_config); unlink(p_cfg);
    rmdir(dir);
    printf("safetensors: %d rows, %d failures\n", rows, failures);
    return failures ? 1 : 0;
}
