/* no_alloc.c — checks that deriving node writes allocates nothing: the calls of a
 * warm loop make no malloc/calloc/realloc calls (counted by interposing them). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "nodewrite.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static unsigned long allocations;
void *malloc(size_t n) { allocations++; return __libc_malloc(n); }
void *calloc(size_t n, size_t m) { allocations++; return __libc_calloc(n, m); }
void *realloc(void *p, size_t n) { allocations++; return __libc_realloc(p, n); }

enum { T = 5, D = 8, H = 2, DH = 4, FF = 16, L = 6 };
static float w_o[H * DH * D], w_out[FF * D], dec[L * FF], probs[T * T * H], v[T * H * DH], post[T * FF], lat[T * L];
static float out[T * D], vec[4 * D];

int main(void) {
    for (int i = 0; i < FF * D; i++) w_out[i] = (float)i / 7;
    for (int i = 0; i < H * DH * D; i++) w_o[i] = (float)i / 5;
    for (int i = 0; i < L * FF; i++) dec[i] = (float)i / 3;
    for (int i = 0; i < T * T * H; i++) probs[i] = i / H % T <= i / (T * H) ? 0.5f : 0.0f; /* causal: k <= q */
    for (int i = 0; i < T * H * DH; i++) v[i] = (float)i;
    for (int i = 0; i < T * FF; i++) post[i] = 1.5f;
    for (int i = 0; i < T * L; i++) lat[i] = 2.0f;
    nw_model_dims dims = {1, D, H, DH, FF};
    nw_model *m;
    nw_store *s;
    int64_t s_o[3] = {H, DH, D}, s_out[2] = {FF, D}, s_dec[2] = {L, FF}, s_p[3] = {T, T, H}, s_v[3] = {T, H, DH};
    int64_t s_post[2] = {T, FF}, s_lat[2] = {T, L}, st_out[2] = {1, FF}; /* w_out read transposed */
    nw_tensor_view a = {w_o, NW_DTYPE_F32, 3, s_o, NULL}, b = {w_out, NW_DTYPE_F32, 2, s_out, st_out};
    nw_tensor_view c = {dec, NW_DTYPE_F32, 2, s_dec, NULL}, p = {probs, NW_DTYPE_F32, 3, s_p, NULL};
    nw_tensor_view vv = {v, NW_DTYPE_F32, 3, s_v, NULL}, pp = {post, NW_DTYPE_F32, 2, s_post, NULL};
    nw_tensor_view ll = {lat, NW_DTYPE_F32, 2, s_lat, NULL};
    if (nw_model_create(&dims, &m) || nw_store_create(&s) ||
        nw_model_set_weight(m, NW_WEIGHT_ATTN_TO_RESIDUAL, 0, &a, NW_BORROW) ||
        nw_model_set_weight(m, NW_WEIGHT_MLP_TO_RESIDUAL, 0, &b, NW_BORROW) ||
        nw_model_set_autoencoder(m, NW_NODE_MLP_AUTOENCODER_LATENT, 0, NW_AE_INPUT_MLP_POST_ACT, &c, NW_BORROW) ||
        nw_store_put(s, NW_ACT_ATTN_QK_PROBS, 0, &p) || nw_store_put(s, NW_ACT_ATTN_VALUE, 0, &vv) ||
        nw_store_put(s, NW_ACT_MLP_POST_ACT, 0, &pp) || nw_store_put(s, NW_ACT_ONLINE_MLP_AUTOENCODER_LATENT, 0, &ll)) {
        fprintf(stderr, "setup failed: %s\n", nw_last_error_message());
        return 2;
    }
    nw_node_index nodes[3] = {{NW_NODE_ATTENTION_HEAD, 0, 3, 0, {-1, 2, 1, 0}},
                              {NW_NODE_MLP_NEURON, 0, 2, 0, {3, -1, 0, 0}},
                              {NW_NODE_MLP_AUTOENCODER_LATENT, 0, 2, 0, {0, 5, 0, 0}}};
    nw_deriver *d;
    if (nw_node_write_deriver_create(m, &nodes[0], &d)) return 2;
    int failed = 0;
    for (int round = 0; round < 2; round++) { /* round 0 warms up lazily initialised state */
        unsigned long before = allocations;
        for (int i = 0; i < 100; i++) {
            int64_t row, shape[2];
            failed |= nw_deriver_derive(d, s, out, T * D) | nw_deriver_derive_vector(d, s, vec, D, &row);
            failed |= nw_deriver_output_shape(d, s, shape);
            for (int n = 0; n < 3; n++) failed |= nw_node_write(m, s, &nodes[n], out, T * D);
            failed |= nw_node_write_vectors(m, s, nodes, 3, vec, 4 * D, NULL);
        }
        if (round == 1) {
            unsigned long made = allocations - before;
            printf("no_alloc: %lu allocations in 700 warm derive calls\n", made);
            printf("%d passed, %d failed\n", !failed && made == 0, failed || made != 0);
            if (failed || made) return 1;
        }
    }
    nw_deriver_destroy(d);
    nw_store_destroy(s);
    nw_model_destroy(m);
    return 0;
}
