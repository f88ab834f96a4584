/* edges.c — median time and peak extra memory of every edge and attribution DST
 * (nw_derive_node) at GPT-2-small dimensions (d_model 768, 12 heads x 64, d_ff 3072), one
 * layer's output per call, on random weights and activations (attention probabilities a causal
 * softmax), an attention autoencoder on resid_delta_attn (the single autoencoder).
 * Peak extra memory: each DST runs in a child process of its own (fork; the parent never
 * derives, so no scratch memory or kernel threads carry over), whose first call's peak resident
 * set above its resident set before the call is reported (Linux: /proc/self/clear_refs resets
 * the peak), the output already paged in.
 * "zeroed ms": the same call with NW_OUT_ZEROED into an output that holds zeros already.
 * Not a test: it prints, never asserts.
 * Usage: bench_edges [T [n_latents [reps [threads]]]]   (default 1024 256 7 2) */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nodewrite.h"

enum { D = 768, H = 12, DH = 64, FF = 3072, NLAYERS = 2 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static unsigned seed = 12345;
static float *randoms(size_t n, float scale, float offset) {
    float *p = malloc(n * sizeof *p);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = offset + scale * ((float)(seed >> 8) / (float)(1u << 24) - 0.5f);
    }
    return p;
}

static void check(nw_status s, const char *what) {
    if (s != NW_OK) { fprintf(stderr, "%s: %s: %s\n", what, nw_status_string(s), nw_last_error_message()); exit(1); }
}

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) { v = atol(line + n); break; }
    if (f) fclose(f);
    return v;
}

static void reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) { fputs("5", f); fclose(f); }
}

/* keeps every tensor alive */
static int64_t SHAPES[256][3];
static int NSHAPES;
static nw_tensor_view tensor(int ndim, int64_t a, int64_t b, int64_t c, float scale, float offset) {
    int64_t *s = SHAPES[NSHAPES++];
    s[0] = a, s[1] = b, s[2] = c;
    size_t n = (size_t)a * (size_t)(ndim > 1 ? b : 1) * (size_t)(ndim > 2 ? c : 1);
    nw_tensor_view v = {randoms(n, scale, offset), NW_DTYPE_F32, ndim, s, NULL};
    return v;
}

static void softmax_rows(float *p, int64_t T) {
    for (int64_t q = 0; q < T; q++)
        for (int h = 0; h < H; h++) {
            double sum = 0;
            for (int64_t k = 0; k < T; k++) {
                float *x = &p[(q * T + k) * H + h];
                *x = k <= q ? expf(4 * *x) : 0.0f;
                sum += *x;
            }
            for (int64_t k = 0; k <= q; k++) p[(q * T + k) * H + h] = (float)(p[(q * T + k) * H + h] / sum);
        }
}

static nw_node_index node(int32_t type, int32_t layer, int32_t subnode, int64_t a, int64_t b, int64_t c) {
    nw_node_index n;
    memset(&n, 0, sizeof n);
    n.node_type = type, n.layer = layer, n.n_indices = type == NW_NODE_ATTENTION_HEAD ? 3 : 2, n.reserved = subnode;
    n.indices[0] = a, n.indices[1] = b, n.indices[2] = c;
    return n;
}

/* node() keeps a subnode in the node's reserved field; nw_derive_node takes it as an argument. */
static nw_status derive_node(const nw_model *m, const nw_store *s, int32_t dst, int32_t layer, const nw_node_index *node,
                             uint32_t flags, float *out, size_t out_len, int64_t shape[3], int32_t *ndim) {
    if (!node) return nw_derive_node(m, s, dst, layer, NULL, NW_SUBNODE_NONE, flags, out, out_len, shape, ndim);
    nw_node_index n = *node;
    n.reserved = 0;
    return nw_derive_node(m, s, dst, layer, &n, node->reserved, flags, out, out_len, shape, ndim);
}

int main(int argc, char **argv) {
    int64_t T = argc > 1 ? atoll(argv[1]) : 1024, NL = argc > 2 ? atoll(argv[2]) : 256;
    int reps = argc > 3 ? atoi(argv[3]) : 7, threads = argc > 4 ? atoi(argv[4]) : 2;
    if (reps > 63) reps = 63;
    check(nw_set_num_threads(threads), "threads");
    nw_model_dims dims = {NLAYERS, D, H, DH, FF};
    nw_model *m;
    nw_store *s;
    check(nw_model_create(&dims, &m), "model");
    check(nw_store_create(&s), "store");
    for (int l = 0; l < NLAYERS; l++) {
        static const struct { int32_t w; int ndim; int a, b, c; float scale, offset; } W[] = {
            {NW_WEIGHT_MLP_TO_RESIDUAL, 2, FF, D, 0, 0.05f, 0}, {NW_WEIGHT_ATTN_TO_RESIDUAL, 3, H, DH, D, 0.05f, 0},
            {NW_WEIGHT_LAYER_NORM_GAIN_PRE_ATTN, 1, D, 0, 0, 0.2f, 1}, {NW_WEIGHT_LAYER_NORM_BIAS_PRE_ATTN, 1, D, 0, 0, 0.2f, 0},
            {NW_WEIGHT_LAYER_NORM_GAIN_PRE_MLP, 1, D, 0, 0, 0.2f, 1}, {NW_WEIGHT_LAYER_NORM_BIAS_PRE_MLP, 1, D, 0, 0, 0.2f, 0},
            {NW_WEIGHT_ATTN_TO_QUERY, 3, H, D, DH, 0.1f, 0}, {NW_WEIGHT_ATTN_TO_KEY, 3, H, D, DH, 0.1f, 0},
            {NW_WEIGHT_ATTN_TO_VALUE, 3, H, D, DH, 0.1f, 0}, {NW_WEIGHT_ATTN_QUERY_BIAS, 2, H, DH, 0, 0.1f, 0},
            {NW_WEIGHT_ATTN_KEY_BIAS, 2, H, DH, 0, 0.1f, 0}, {NW_WEIGHT_ATTN_VALUE_BIAS, 2, H, DH, 0, 0.1f, 0},
            {NW_WEIGHT_ATTN_OUT_BIAS, 1, D, 0, 0, 0.1f, 0}, {NW_WEIGHT_MLP_TO_HIDDEN, 2, D, FF, 0, 0.1f, 0},
            {NW_WEIGHT_MLP_IN_BIAS, 1, FF, 0, 0, 0.5f, 0}, {NW_WEIGHT_MLP_OUT_BIAS, 1, D, 0, 0, 0.1f, 0},
        };
        for (size_t i = 0; i < sizeof W / sizeof *W; i++) {
            nw_tensor_view v = tensor(W[i].ndim, W[i].a, W[i].b, W[i].c, W[i].scale, W[i].offset);
            check(nw_model_set_weight(m, W[i].w, l, &v, NW_BORROW), "weight");
        }
        nw_tensor_view dec = tensor(2, NL, D, 0, 0.1f, 0), enc = tensor(2, NL, D, 0, 0.1f, 0);
        nw_tensor_view lb = tensor(1, NL, 0, 0, 0.1f, 0), pb = tensor(1, D, 0, 0, 0.1f, 0);
        check(nw_model_set_autoencoder(m, NW_NODE_ATTENTION_AUTOENCODER_LATENT, l, NW_AE_INPUT_RESIDUAL, &dec, NW_BORROW), "ae");
        check(nw_model_set_autoencoder_encoder(m, NW_NODE_ATTENTION_AUTOENCODER_LATENT, l, &enc, &lb, &pb, NW_BORROW), "encoder");
        for (int pass = 0; pass < 2; pass++) {
            static const struct { int32_t a; int ndim; int kind; } A[] = {
                {NW_ACT_MLP_POST_ACT, 2, 0}, {NW_ACT_ATTN_QK_PROBS, 3, 1}, {NW_ACT_ATTN_VALUE, 3, 2}, {NW_ACT_ATTN_V_OUT, 3, 2},
                {NW_ACT_RESID_POST_ATTN, 2, 3}, {NW_ACT_RESID_POST_MLP, 2, 3}, {NW_ACT_RESID_DELTA_ATTN, 2, 3},
                {NW_ACT_RESID_DELTA_MLP, 2, 3}, {NW_ACT_ONLINE_ATTENTION_AUTOENCODER_LATENT, 2, 4},
            };
            for (size_t i = 0; i < sizeof A / sizeof *A; i++) {
                int k = A[i].kind;
                nw_tensor_view v = tensor(A[i].ndim, T, k == 0 ? FF : k == 1 ? T : k == 2 ? H : k == 4 ? NL : D, k == 1 ? H : DH,
                                          pass ? 0.01f : 2.0f, pass == 0 && k == 4 ? 0.1f : 0);
                if (A[i].a == NW_ACT_ATTN_QK_PROBS && pass == 0) softmax_rows((float *)v.data, T);
                check(nw_store_put_pass(s, A[i].a, l, pass, &v), "activation");
            }
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        nw_tensor_view v = tensor(2, T, D, 0, pass ? 0.01f : 2.0f, 0);
        check(nw_store_put_pass(s, NW_ACT_RESID_POST_EMB, NW_NO_LAYER, pass, &v), "resid.post_emb");
    }
    int64_t u = T / 2;
    nw_node_index up = node(NW_NODE_MLP_NEURON, 0, 0, u, 17, 0);
    nw_node_index vsub = node(NW_NODE_ATTENTION_HEAD, 1, NW_SUBNODE_V, T - 1, u, 3);
    nw_node_index ksub = node(NW_NODE_ATTENTION_HEAD, 1, NW_SUBNODE_K, T - 1, u, 3);
    nw_node_index lat = node(NW_NODE_ATTENTION_AUTOENCODER_LATENT, 1, 0, T - 1, 5, 0);
    nw_node_index trace = node(NW_NODE_ATTENTION_AUTOENCODER_LATENT, 1, 0, NW_INDEX_NONE, 5, 0);
    struct { int32_t dst; int32_t layer; const nw_node_index *node; const char *label; } calls[] = {
        {NW_DST_ATTN_QUERY_IN_EDGE_ATTRIBUTION, 1, &up, "upstream neuron (u = T/2, L0), layer 1"},
        {NW_DST_ATTN_KEY_IN_EDGE_ATTRIBUTION, 1, &up, "upstream neuron (u = T/2, L0), layer 1"},
        {NW_DST_ATTN_VALUE_IN_EDGE_ATTRIBUTION, 1, &up, "upstream neuron (u = T/2, L0), layer 1"},
        {NW_DST_MLP_IN_EDGE_ATTRIBUTION, 1, &up, "upstream neuron (u = T/2, L0), layer 1"},
        {NW_DST_ONLINE_AUTOENCODER_IN_EDGE_ATTRIBUTION, 1, &up, "upstream neuron, attention-AE latents of layer 1"},
        {NW_DST_GRAD_OF_SINGLE_SUBNODE_ATTRIBUTION, 1, &vsub, "V subnode (T-1, T/2, 3)"},
        {NW_DST_GRAD_OF_SINGLE_SUBNODE_ATTRIBUTION, 1, &ksub, "K subnode (T-1, T/2, 3)"},
        {NW_DST_GRAD_OF_SINGLE_SUBNODE_ATTRIBUTION, 1, &lat, "attention-AE latent (T-1, 5)"},
        {NW_DST_ATTN_OUT_EDGE_ATTRIBUTION, 0, &vsub, "onto the V subnode's G, layer 0"},
        {NW_DST_MLP_OUT_EDGE_ATTRIBUTION, 0, &vsub, "onto the V subnode's G, layer 0"},
        {NW_DST_ONLINE_AUTOENCODER_OUT_EDGE_ATTRIBUTION, 0, &vsub, "onto the V subnode's G, layer 0"},
        {NW_DST_TOKEN_OUT_EDGE_ATTRIBUTION, NW_NO_LAYER, &vsub, "onto the V subnode's G"},
        {NW_DST_MLP_ACT_TIMES_GRAD, 1, NULL, ""},
        {NW_DST_UNFLATTENED_ATTN_ACT_TIMES_GRAD, 1, NULL, ""},
        {NW_DST_ATTN_ACT_TIMES_GRAD, 1, NULL, ""},
        {NW_DST_ATTN_ACT_TIMES_GRAD_PER_SEQUENCE_TOKEN, 1, NULL, ""},
        {NW_DST_TOKEN_ATTRIBUTION, NW_NO_LAYER, NULL, ""},
        {NW_DST_ONLINE_AUTOENCODER_ACT_TIMES_GRAD, 1, NULL, ""},
        {NW_DST_ONLINE_ATTENTION_AUTOENCODER_ACT_TIMES_GRAD, 1, NULL, ""},
        {NW_DST_AUTOENCODER_LATENT_GRAD_WRT_RESIDUAL_INPUT, 1, &trace, "trace latent 5"},
        {NW_DST_ATTN_WRITE_TO_LATENT, 1, &trace, "trace latent 5"},
        {NW_DST_ATTN_WRITE_TO_LATENT_SUMMED_OVER_HEADS, 1, &trace, "trace latent 5"},
        {NW_DST_FLATTENED_ATTN_WRITE_TO_LATENT_SUMMED_OVER_HEADS, 1, &trace, "trace latent 5"},
        {NW_DST_ATTN_WRITE_TO_LATENT_PER_SEQUENCE_TOKEN, 1, &trace, "trace latent 5"},
        {NW_DST_FLATTENED_ATTN_WRITE_TO_LATENT_SUMMED_OVER_HEADS_BATCHED, 1, NULL, "every latent"},
        {NW_DST_ATTN_WRITE_TO_LATENT_PER_SEQUENCE_TOKEN_BATCHED, 1, NULL, "every latent"},
    };
    printf("edges: d_model %d, %d heads x %d, d_ff %d, T = %lld, n_latents = %lld, %d threads, median of %d calls\n", D, H,
           DH, FF, (long long)T, (long long)NL, threads, reps);
    printf("%-58s %10s %10s %10s %9s  %s\n", "dst", "median ms", "zeroed ms", "output MB", "extra MB", "node");
    fflush(stdout);
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid > 0) {
            int status;
            waitpid(pid, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status)) printf("%-58s failed\n", nw_dst_name(calls[i].dst));
            continue;
        }
        int64_t shape[3];
        int32_t ndim;
        nw_status st = derive_node(m, s, calls[i].dst, calls[i].layer, calls[i].node, 0, NULL, 0, shape, &ndim);
        if (st != NW_ERR_BUFFER_TOO_SMALL) check(st, nw_dst_name(calls[i].dst));
        size_t n = 1;
        for (int k = 0; k < ndim; k++) n *= (size_t)shape[k];
        float *out = malloc(n * sizeof(float));
        if (!out) { printf("%-58s output of %zu floats does not fit\n", nw_dst_name(calls[i].dst), n); continue; }
        memset(out, 0x7f, n * sizeof(float)); /* paged in (a zero fill may become calloc) */
        reset_peak();
        long before = status_kb("VmRSS:");
        check(derive_node(m, s, calls[i].dst, calls[i].layer, calls[i].node, 0, out, n, shape, &ndim), "first call");
        long extra = status_kb("VmHWM:") - before;
        double samples[64];
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            check(derive_node(m, s, calls[i].dst, calls[i].layer, calls[i].node, 0, out, n, shape, &ndim), "call");
            samples[r] = now() - t0;
        }
        qsort(samples, (size_t)reps, sizeof(double), cmp);
        double plain = samples[reps / 2];
        /* NW_OUT_ZEROED: the output holds zeros already (torch.zeros' pages), only non-zero entries are written */
        for (int r = 0; r < reps; r++) {
            memset(out, 0, n * sizeof(float));
            double t0 = now();
            check(derive_node(m, s, calls[i].dst, calls[i].layer, calls[i].node, NW_OUT_ZEROED, out, n, shape, &ndim), "zeroed");
            samples[r] = now() - t0;
        }
        qsort(samples, (size_t)reps, sizeof(double), cmp);
        printf("%-58s %10.3f %10.3f %10.1f %9.1f  %s\n", nw_dst_name(calls[i].dst), 1e3 * plain, 1e3 * samples[reps / 2],
               (double)n * 4 / 1048576.0, extra / 1024.0, calls[i].label);
        fflush(stdout);
        free(out);
        _exit(0);
    }
    nw_store_destroy(s);
    nw_model_destroy(m);
    return 0;
}
