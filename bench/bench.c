/* bench.c — medians per call at GPT-2-small dimensions (d_model 768, 12 heads × 64,
 * d_ff 3072) for each node type, against baselines run in the same process:
 *   fill     zero-filling T × d_model floats (the floor for the (T, d_model) output)
 *   C loop   the same single product written as a plain C loop (the floor for a vector)
 *   original the original's formulation for attention: the whole (T, T, heads, d_head)
 *            weighted-value tensor, then one slice, then the head's matrix product.
 * Not a test: it prints, never asserts. Usage: bench [--quick] */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nodewrite.h"

#define BENCH_CLOCK CLOCK_MONOTONIC
#include "support.h"

enum { D = 768, H = 12, DH = 64, FF = 3072, LATENTS = 4096 };

static const char *us(double seconds, char *buf) {
    snprintf(buf, 32, "%10.2f us", seconds * 1e6);
    return buf;
}

int main(int argc, char **argv) {
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    unsigned seed = 1234;
    float *w_out = randoms((size_t)FF * D, &seed), *w_o = randoms((size_t)H * DH * D, &seed);
    float *w_o_checkpoint = randoms((size_t)D * H * DH, &seed);
    float *dec_mlp = randoms((size_t)LATENTS * FF, &seed), *dec_res = randoms((size_t)LATENTS * D, &seed);
    nw_model_dims dims = {1, D, H, DH, FF};
    nw_model *m;
    check(nw_model_create(&dims, &m), "model");
    int64_t s_out[2] = {FF, D}, s_o[3] = {H, DH, D}, s_dm[2] = {LATENTS, FF}, s_dr[2] = {LATENTS, D};
    nw_tensor_view v;
    v = view(w_out, 2, s_out); check(nw_model_set_weight(m, NW_WEIGHT_MLP_TO_RESIDUAL, 0, &v, NW_BORROW), "w_out");
    v = view(w_o, 3, s_o); check(nw_model_set_weight(m, NW_WEIGHT_ATTN_TO_RESIDUAL, 0, &v, NW_BORROW), "w_o");
    v = view(dec_mlp, 2, s_dm);
    check(nw_model_set_autoencoder(m, NW_NODE_MLP_AUTOENCODER_LATENT, 0, NW_AE_INPUT_MLP_POST_ACT, &v, NW_BORROW), "ae");
    v = view(dec_res, 2, s_dr);
    check(nw_model_set_autoencoder(m, NW_NODE_ATTENTION_AUTOENCODER_LATENT, 0, NW_AE_INPUT_RESIDUAL, &v, NW_BORROW), "ae");

    printf("nodewrite %s bench: d_model %d, %d heads x %d, d_ff %d, %d latents; median per call\n\n",
           nw_version_string(), D, H, DH, FF, LATENTS);
    printf("ratio = baseline time / nodewrite time (x), or the baseline's share of nodewrite's time (%%); warm caches; 1 thread\n");
    printf("%-6s %-36s %13s %13s %10s\n", "T", "what", "nodewrite", "baseline", "ratio");
    const int Ts[] = {64, 256, 1024};
    for (int ti = 0; ti < 3; ti++) {
        int T = Ts[ti];
        float *post = randoms((size_t)T * FF, &seed), *probs = randoms((size_t)T * T * H, &seed);
        for (size_t i = 0; i < (size_t)T * T * H; i++) /* causal: nothing above the diagonal (a causal model refuses it) */
            if (i / H % (size_t)T > i / ((size_t)H * T)) probs[i] = 0.0f;
        float *val = randoms((size_t)T * H * DH, &seed), *lat = randoms((size_t)T * LATENTS, &seed);
        int64_t s_post[2] = {T, FF}, s_probs[3] = {T, T, H}, s_v[3] = {T, H, DH}, s_lat[2] = {T, LATENTS};
        nw_store *s;
        check(nw_store_create(&s), "store");
        v = view(post, 2, s_post); check(nw_store_put(s, NW_ACT_MLP_POST_ACT, 0, &v), "put");
        v = view(probs, 3, s_probs); check(nw_store_put(s, NW_ACT_ATTN_QK_PROBS, 0, &v), "put");
        v = view(val, 3, s_v); check(nw_store_put(s, NW_ACT_ATTN_VALUE, 0, &v), "put");
        v = view(lat, 2, s_lat);
        check(nw_store_put(s, NW_ACT_ONLINE_MLP_AUTOENCODER_LATENT, 0, &v), "put");
        check(nw_store_put(s, NW_ACT_ONLINE_ATTENTION_AUTOENCODER_LATENT, 0, &v), "put");
        float *out = calloc((size_t)T * D, sizeof *out), vec[D];
        int q = T - 1, k = T / 2, h = 5;
        nw_node_index nodes[4] = {
            {NW_NODE_MLP_NEURON, 0, 2, 0, {q, 1234, 0, 0}},
            {NW_NODE_ATTENTION_HEAD, 0, 3, 0, {q, k, h, 0}},
            {NW_NODE_MLP_AUTOENCODER_LATENT, 0, 2, 0, {q, 77, 0, 0}},
            {NW_NODE_ATTENTION_AUTOENCODER_LATENT, 0, 2, 0, {q, 77, 0, 0}}};
        const char *labels[4] = {"mlp_neuron (T, d_model)", "attention_head (T, d_model)",
                                 "mlp_autoencoder_latent (T, d_model)", "attention_autoencoder_latent (T, d_model)"};
        int reps = quick ? 5 : 21, inner = quick ? 20 : 200;
        double fill, t, base;
        char b1[32], b2[32];
        MEDIAN(fill, reps, inner, memset(out, 0, (size_t)T * D * sizeof *out); sink = out[i_ % (T * D)]);
        for (int n = 0; n < 4; n++) {
            nw_deriver *d;
            check(nw_node_write_deriver_create(m, &nodes[n], &d), "deriver");
            int lat_inner = n == 2 ? inner / 10 + 1 : inner;
            MEDIAN(t, reps, lat_inner, check(nw_deriver_derive_vector(d, s, vec, D, NULL), "vector"); sink = vec[0]);
            /* C-loop baseline of the same single product */
            if (n == 1) {
                MEDIAN(base, reps, inner, {
                    float wv[DH];
                    float p = probs[((size_t)q * T + k) * H + h];
                    for (int c = 0; c < DH; c++) wv[c] = p * val[((size_t)k * H + h) * DH + c];
                    memset(vec, 0, sizeof vec);
                    for (int c = 0; c < DH; c++)
                        for (int j = 0; j < D; j++) vec[j] += wv[c] * w_o[((size_t)h * DH + c) * D + j];
                    sink = vec[0];
                });
                printf("%-6d %-36s %s %s %9.2fx  (vs C loop)\n", T, "attention_head vector", us(t, b1), us(base, b2), base / t);
            } else {
                printf("%-6d %-36s %s\n", T, n == 0 ? "mlp_neuron vector" : n == 2 ? "mlp_autoencoder_latent vector" : "attention_autoencoder_latent vector", us(t, b1));
            }
            MEDIAN(t, reps, lat_inner, check(nw_deriver_derive(d, s, out, (size_t)T * D), "derive"); sink = out[0]);
            printf("%-6d %-36s %s %s %9.0f%%  (zero-filling the output alone takes this share of the call)\n", T, labels[n], us(t, b1), us(fill, b2), 100 * fill / t);
            nw_deriver_destroy(d);
        }
        {   /* The same attention node with W_O as TDB's ModelContext.get_weight returns it: a
               permuted view of the checkpoint's (d_model, heads*d_head) matrix, borrowed. */
            nw_model *mp;
            nw_deriver *d;
            int64_t st_p[3] = {DH, 1, H * DH};
            nw_tensor_view wp = {w_o_checkpoint, NW_DTYPE_F32, 3, s_o, st_p};
            check(nw_model_create(&dims, &mp), "model");
            check(nw_model_set_weight(mp, NW_WEIGHT_ATTN_TO_RESIDUAL, 0, &wp, NW_BORROW), "permuted w_o");
            check(nw_node_write_deriver_create(mp, &nodes[1], &d), "deriver");
            MEDIAN(t, reps, inner, check(nw_deriver_derive_vector(d, s, vec, D, NULL), "vector"); sink = vec[0]);
            printf("%-6d %-36s %s\n", T, "attention_head vector, permuted W_O", us(t, b1));
            nw_deriver_destroy(d);
            nw_model_destroy(mp);
        }
        /* The original's formulation for the attention node, in C: the whole weighted-value
           tensor (T, T, heads, d_head), one slice, the head's product into a zeroed output. */
        int orig_reps = T >= 1024 ? (quick ? 1 : 3) : (quick ? 3 : 7);
        size_t wv_n = (size_t)T * T * H * DH;
        float *wv = malloc(wv_n * sizeof *wv);
        if (wv) {
            MEDIAN(base, orig_reps, 1, {
                for (int qq = 0; qq < T; qq++)
                    for (int kk = 0; kk < T; kk++)
                        for (int hh = 0; hh < H; hh++) {
                            float p = probs[((size_t)qq * T + kk) * H + hh];
                            float *dst = wv + (((size_t)qq * T + kk) * H + hh) * DH;
                            const float *src = val + ((size_t)kk * H + hh) * DH;
                            for (int c = 0; c < DH; c++) dst[c] = p * src[c];
                        }
                const float *slice = wv + (((size_t)q * T + k) * H + h) * DH;
                memset(out, 0, (size_t)T * D * sizeof *out);
                for (int c = 0; c < DH; c++)
                    for (int j = 0; j < D; j++) out[(size_t)q * D + j] += slice[c] * w_o[((size_t)h * DH + c) * D + j];
                sink = out[0];
            });
            nw_deriver *d;
            check(nw_node_write_deriver_create(m, &nodes[1], &d), "deriver");
            MEDIAN(t, reps, inner, check(nw_deriver_derive(d, s, out, (size_t)T * D), "derive"));
            nw_deriver_destroy(d);
            printf("%-6d %-36s %s %s %9.0fx  (vs the original's formulation in C, %.1f GB)\n", T, "attention_head (T, d_model)",
                   us(t, b1), us(base, b2), base / t, (double)wv_n * 4 / 1e9);
            free(wv);
        }
        printf("\n");
        free(post); free(probs); free(val); free(lat); free(out);
        nw_store_destroy(s);
    }
    nw_model_destroy(m);
    free(w_out); free(w_o); free(w_o_checkpoint); free(dec_mlp); free(dec_res);
    return 0;
}
