/* checks.c — what the input checks cost: medians per call of single-node writes and of the
 * attention write family (nw_derive) on a store that is reused (the causality scan of
 * attn.qk_probs runs once per store entry), the first call after a put (which pays the scan),
 * and checkpoint loading (the bundled GPT-2 fixture and a GPT-2-small-shaped file written here).
 * Not a test: it prints, never asserts. Run it against two builds of the library to compare:
 *   LD_LIBRARY_PATH=<dir of libnodewrite.so> build/bench_checks [fixtures dir] [--quick]
 * GPT-2-small dimensions (d_model 768, 12 heads x 64, d_ff 3072); attn.qk_probs is causal
 * (lower-triangular rows that sum to 1); 1 thread. Times are the calling thread's CPU time. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nodewrite.h"

#define BENCH_CLOCK CLOCK_THREAD_CPUTIME_ID
#include "support.h"

enum { D = 768, H = 12, DH = 64, FF = 3072, LAYERS = 12, VOCAB = 50257, CTX = 1024 };

/* A safetensors file of GPT-2 small as Hugging Face saves it (every tensor, f32, random). */
static void write_gpt2_small(const char *path) {
    char header[16384];
    int n = snprintf(header, sizeof header, "{\"__metadata__\":{\"n_head\":\"%d\"}", H);
    size_t offset = 0;
    struct { const char *fmt; int64_t r, c; } per_layer[] = {
        {"h.%d.attn.c_attn.weight", D, 3 * D}, {"h.%d.attn.c_proj.weight", D, D},
        {"h.%d.mlp.c_fc.weight", D, FF}, {"h.%d.mlp.c_proj.weight", FF, D}};
    for (int l = 0; l < LAYERS; l++)
        for (int t = 0; t < 4; t++) {
            char name[64];
            snprintf(name, sizeof name, per_layer[t].fmt, l);
            size_t bytes = (size_t)(per_layer[t].r * per_layer[t].c) * 4;
            n += snprintf(header + n, sizeof header - (size_t)n,
                          ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}", name,
                          (long long)per_layer[t].r, (long long)per_layer[t].c, offset, offset + bytes);
            offset += bytes;
        }
    struct { const char *name; int64_t r, c; } rest[] = {{"wte.weight", VOCAB, D}, {"wpe.weight", CTX, D}, {"ln_f.weight", D, 0}};
    for (int t = 0; t < 3; t++) {
        size_t bytes = (size_t)(rest[t].r * (rest[t].c ? rest[t].c : 1)) * 4;
        if (rest[t].c)
            n += snprintf(header + n, sizeof header - (size_t)n, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                          rest[t].name, (long long)rest[t].r, (long long)rest[t].c, offset, offset + bytes);
        else
            n += snprintf(header + n, sizeof header - (size_t)n, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}",
                          rest[t].name, (long long)rest[t].r, offset, offset + bytes);
        offset += bytes;
    }
    n += snprintf(header + n, sizeof header - (size_t)n, "}");
    while (n % 8) header[n++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    uint64_t len = (uint64_t)n;
    fwrite(&len, 8, 1, f);
    fwrite(header, 1, (size_t)n, f);
    unsigned seed = 7;
    float *chunk = randoms(1 << 20, &seed);
    for (size_t done = 0; done < offset; done += (size_t)4 << 20) {
        size_t bytes = offset - done < ((size_t)4 << 20) ? offset - done : (size_t)4 << 20;
        fwrite(chunk, 1, bytes, f);
    }
    free(chunk);
    fclose(f);
}

int main(int argc, char **argv) {
    const char *fixtures = argc > 1 && argv[1][0] != '-' ? argv[1] : "Tests/NodeWriteTests/Fixtures";
    int quick = argc > 1 && strcmp(argv[argc - 1], "--quick") == 0;
    int reps = quick ? 7 : 21;
    check(nw_set_num_threads(1), "threads");
    /* Present from this version on; an older library measures as causal-unaware. */
    nw_status (*set_causal)(nw_model *, int32_t) = (nw_status (*)(nw_model *, int32_t))dlsym(RTLD_DEFAULT, "nw_model_set_causal");
    printf("nodewrite %s: checks' cost, d_model %d, %d heads x %d, d_ff %d, 1 thread, median of %d, thread CPU time\n",
           nw_version_string(), D, H, DH, FF, reps);

    unsigned seed = 1234;
    float *w_out = randoms((size_t)FF * D, &seed), *w_o = randoms((size_t)H * DH * D, &seed);
    nw_model_dims dims = {1, D, H, DH, FF};
    nw_model *m;
    check(nw_model_create(&dims, &m), "model");
    int64_t s_out[2] = {FF, D}, s_o[3] = {H, DH, D};
    nw_tensor_view v = view(w_out, 2, s_out);
    check(nw_model_set_weight(m, NW_WEIGHT_MLP_TO_RESIDUAL, 0, &v, NW_COPY), "w_out");
    v = view(w_o, 3, s_o);
    check(nw_model_set_weight(m, NW_WEIGHT_ATTN_TO_RESIDUAL, 0, &v, NW_COPY), "w_o");

    printf("%-6s %-58s %12s\n", "T", "what", "median");
    const int Ts[] = {64, 256, 1024};
    for (int ti = 0; ti < 3; ti++) {
        const int T = Ts[ti];
        float *post = randoms((size_t)T * FF, &seed), *val = randoms((size_t)T * H * DH, &seed);
        float *probs = randoms((size_t)T * T * H, &seed), *g = randoms((size_t)T * D, &seed);
        for (int q = 0; q < T; q++)
            for (int h = 0; h < H; h++) {
                float sum = 0;
                for (int k = 0; k < T; k++) {
                    float *p = &probs[((size_t)q * T + k) * H + h];
                    *p = k <= q ? *p + 0.5f : 0.0f;
                    sum += *p;
                }
                for (int k = 0; k <= q; k++) probs[((size_t)q * T + k) * H + h] /= sum;
            }
        int64_t s_post[2] = {T, FF}, s_probs[3] = {T, T, H}, s_v[3] = {T, H, DH}, s_g[2] = {T, D};
        nw_store *s;
        check(nw_store_create(&s), "store");
        nw_tensor_view vp = view(probs, 3, s_probs), gv = view(g, 2, s_g);
        v = view(post, 2, s_post); check(nw_store_put(s, NW_ACT_MLP_POST_ACT, 0, &v), "put");
        check(nw_store_put(s, NW_ACT_ATTN_QK_PROBS, 0, &vp), "put");
        v = view(val, 3, s_v); check(nw_store_put(s, NW_ACT_ATTN_VALUE, 0, &v), "put");
        size_t out_n = (size_t)T * T * H > (size_t)T * FF ? (size_t)T * T * H : (size_t)T * FF;
        float *out = calloc(out_n, sizeof *out);
        int64_t shape[3];
        int32_t ndim;
        int inner = T >= 1024 ? 20 : 200;
        double t;
        char what[96];
        nw_node_index att = {NW_NODE_ATTENTION_HEAD, 0, 3, 0, {T - 1, T / 2, 5, 0}};
        nw_node_index mlp = {NW_NODE_MLP_NEURON, 0, 2, 0, {T - 1, 1234, 0, 0}};
        /* The first attention call after a put: it pays the scan (once; new put each sample). */
        {
            double samples[64];
            for (int r = 0; r < reps; r++) {
                check(nw_store_put(s, NW_ACT_ATTN_QK_PROBS, 0, &vp), "put");
                double t0 = now();
                check(nw_node_write_sized(m, s, &att, 0, out, (size_t)T * D, NULL), "first");
                samples[r] = now() - t0;
            }
            qsort(samples, (size_t)reps, sizeof(double), cmp);
            printf("%-6d %-58s %9.2f us\n", T, "attention node write, first call after nw_store_put", samples[reps / 2] * 1e6);
        }
        MEDIAN(t, reps, inner, check(nw_node_write_sized(m, s, &att, 0, out, (size_t)T * D, NULL), "node"); sink = out[0]);
        printf("%-6d %-58s %9.2f us\n", T, "attention node write (T, d_model), store reused", t * 1e6);
        MEDIAN(t, reps, inner, check(nw_node_write_sized(m, s, &mlp, 0, out, (size_t)T * D, NULL), "node"); sink = out[0]);
        printf("%-6d %-58s %9.2f us\n", T, "mlp node write (T, d_model)", t * 1e6);
        const int32_t dsts[] = {NW_DST_UNFLATTENED_ATTN_WRITE_NORM, NW_DST_UNFLATTENED_ATTN_WRITE_TO_FINAL_RESIDUAL_GRAD,
                                NW_DST_ATTN_WRITE_NORM_PER_SEQUENCE_TOKEN,
                                NW_DST_ATTN_WRITE_TO_FINAL_RESIDUAL_GRAD_PER_SEQUENCE_TOKEN,
                                NW_DST_MLP_WRITE_TO_FINAL_RESIDUAL_GRAD};
        for (int causal = 1; causal >= 0; causal--) {
            if (!causal) {
                if (!set_causal) break;
                check(set_causal(m, 0), "set_causal");
            }
            for (size_t i = 0; i < sizeof dsts / sizeof dsts[0]; i++) {
                if (!causal && dsts[i] == NW_DST_MLP_WRITE_TO_FINAL_RESIDUAL_GRAD) continue;
                const nw_tensor_view *dir = dsts[i] % 2 == 1 ? &gv : NULL;
                int n_inner = T >= 1024 ? 3 : T >= 256 ? 20 : 100;
                MEDIAN(t, reps, n_inner, check(nw_derive(m, s, dsts[i], 0, dir, 0, out, out_n, shape, &ndim), "derive"); sink = out[0]);
                snprintf(what, sizeof what, "derive %s%s", nw_dst_name(dsts[i]), causal ? "" : " (not causal)");
                printf("%-6d %-58s %9.2f us\n", T, what, t * 1e6);
            }
        }
        if (set_causal) check(set_causal(m, 1), "set_causal");
        printf("\n");
        free(post); free(val); free(probs); free(g); free(out);
        nw_store_destroy(s);
    }
    nw_model_destroy(m);
    free(w_out); free(w_o);

    /* Loading checkpoints. */
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoints/gpt2/model.safetensors", fixtures);
    double t;
    MEDIAN(t, reps, 20, { nw_model *x; check(nw_model_load_safetensors(path, &x), path); nw_model_destroy(x); });
    printf("load the bundled GPT-2 fixture (%s)%*s %9.2f us\n", "2 layers, d_model 32", 20, "", t * 1e6);
    char big[] = "/tmp/nodewrite_checks_XXXXXX";
    int fd = mkstemp(big);
    if (fd < 0) { perror("mkstemp"); return 1; }
    close(fd);
    write_gpt2_small(big);
    nw_model *x;
    check(nw_model_load_safetensors(big, &x), big); /* warm the page cache */
    nw_model_destroy(x);
    int load_reps = quick ? 3 : 7;
    MEDIAN(t, load_reps, 1, { check(nw_model_load_safetensors(big, &x), big); nw_model_destroy(x); });
    printf("load a GPT-2-small-shaped file (498 MB, f32, in the page cache)           %9.2f ms\n", t * 1e3);
    /* Per call on the loaded model: an attention and an MLP node write at T = 64, layer 5. */
    check(nw_model_load_safetensors(big, &x), big);
    {
        const int T = 64;
        float *val = randoms((size_t)T * H * DH, &seed), *post = randoms((size_t)T * FF, &seed);
        float *probs = calloc((size_t)T * T * H, sizeof *probs), *out = malloc((size_t)T * D * sizeof *out);
        for (int q = 0; q < T; q++)
            for (int k = 0; k <= q; k++)
                for (int h = 0; h < H; h++) probs[((size_t)q * T + k) * H + h] = 1.0f / (float)(q + 1);
        int64_t s_probs[3] = {T, T, H}, s_v[3] = {T, H, DH}, s_post[2] = {T, FF};
        nw_store *s;
        check(nw_store_create(&s), "store");
        v = view(probs, 3, s_probs); check(nw_store_put(s, NW_ACT_ATTN_QK_PROBS, 5, &v), "put");
        v = view(val, 3, s_v); check(nw_store_put(s, NW_ACT_ATTN_VALUE, 5, &v), "put");
        v = view(post, 2, s_post); check(nw_store_put(s, NW_ACT_MLP_POST_ACT, 5, &v), "put");
        nw_node_index att = {NW_NODE_ATTENTION_HEAD, 5, 3, 0, {T - 1, T / 2, 5, 0}};
        nw_node_index mlp = {NW_NODE_MLP_NEURON, 5, 2, 0, {T - 1, 1234, 0, 0}};
        int64_t shape[3];
        int32_t ndim;
        MEDIAN(t, reps, 200, check(nw_node_write_sized(x, s, &att, 0, out, (size_t)T * D, NULL), "node"); sink = out[0]);
        printf("%-6d %-58s %9.2f us\n", T, "loaded model: attention node write", t * 1e6);
        MEDIAN(t, reps, 200, check(nw_node_write_sized(x, s, &mlp, 0, out, (size_t)T * D, NULL), "node"); sink = out[0]);
        printf("%-6d %-58s %9.2f us\n", T, "loaded model: mlp node write", t * 1e6);
        MEDIAN(t, reps, 20, check(nw_derive(x, s, NW_DST_UNFLATTENED_ATTN_WRITE_NORM, 5, NULL, 0, out, (size_t)T * D, shape, &ndim), "derive"); sink = out[0]);
        printf("%-6d %-58s %9.2f us\n", T, "loaded model: derive unflattened_attn_write_norm", t * 1e6);
        nw_store_destroy(s);
        free(val); free(post); free(probs); free(out);
    }
    nw_model_destroy(x);
    unlink(big);
    return 0;
}
