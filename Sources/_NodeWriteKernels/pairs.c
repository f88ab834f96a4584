/* Attention pair products: for query q, key k <= q (every key k < tokens with all_keys) and head h, f = U[q, h] . V[k, h] (the d_head
   FMA chain of the contract) times p[q, k, h], written in TDB's (key, head)-interleaved rows, or
   summed over keys. Blocked like a GEMM: V is packed once into micro-panels per head, each block
   of queries packs its rows of U, and per key chunk every head's tile stays in L2 until the
   row-wise epilogue interleaves heads and multiplies by p. See include/nw_kernels.h. */
#include "nw_kernels.h"
#include "nwk_internal.h"

#include <stdlib.h>
#include <string.h>

/* Queries per task (a multiple of every mr: 8, 6, 4) and keys per chunk (of every nr: 48, 16). */
#define QB 24
#define KB 192

typedef struct {
    const nwk_attention_pairs_args *a;
    const nwk_impl *im;
    float *vp;        /* packed V: [head][key panel][d][nr] */
    int64_t panels;   /* key panels per head */
    float *scratch;   /* this part's U panels, tiles and sums */
    int part, parts;
    int64_t *next;    /* the next block of queries, shared: blocks go to whichever part asks */
} pairs_part;

static int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }

/* The keys query q reads: 0 ... q (causal), or every key. */
static int64_t row_keys(const nwk_attention_pairs_args *a, int64_t q) { return a->all_keys ? a->tokens : q + 1; }

/* Zeros of row q: the pair elements k < keys (k*heads + h) at its offset, unless zeroed. */
static void zero_keys(const nwk_attention_pairs_args *a, int64_t q, int64_t from, int64_t keys) {
    if (keys > from && !a->zeroed)
        memset(a->out + a->off[q] + from * a->heads, 0, (size_t)((keys - from) * a->heads) * sizeof(float));
}

static void *pack_values(void *arg) {
    const pairs_part *pp = arg;
    const nwk_attention_pairs_args *a = pp->a;
    const int nr = pp->im->nr;
    for (int h = pp->part; h < a->heads; h += pp->parts)
        for (int64_t kp = 0; kp < pp->panels; kp++)
            nwk_pack_b(pp->im, a->d_head, (int)min64(nr, a->tokens - kp * nr), nr,
                       a->v + h * a->v_s1 + kp * nr * a->v_s0, a->v_s2, a->v_s0,
                       pp->vp + (h * pp->panels + kp) * a->d_head * nr);
    return NULL;
}

static void run_block(const pairs_part *pp, int64_t q0, int64_t q1) {
    const nwk_attention_pairs_args *a = pp->a;
    const nwk_impl *im = pp->im;
    const int mr = im->mr, nr = im->nr, heads = a->heads;
    const int64_t dh = a->d_head, rows = q1 - q0, rpanels = (rows + mr - 1) / mr;
    float *up = pp->scratch;                        /* [head][row panel][d][mr] */
    float *tiles = up + (int64_t)heads * QB * dh;   /* [head][row][KB] */
    float *sums = tiles + (int64_t)heads * QB * KB; /* [row][head] */
    float *prow = sums + (int64_t)heads * QB;       /* a chunk of p's row q, when p is not in place */
    int any = 0;
    for (int64_t q = q0; q < q1; q++) any |= a->row[q] >= 0;
    if (!any) {
        for (int64_t q = q0; q < q1; q++)
            zero_keys(a, q, 0, a->mode == NWK_PAIR_SUMS ? 1 : row_keys(a, q) > a->tail_keys ? row_keys(a, q) : a->tail_keys);
        return;
    }
    /* Keys this block reads: up to its last query (causal), or all of them. */
    const int64_t key_end = a->all_keys ? a->tokens : q1;
    for (int h = 0; h < heads; h++)
        for (int64_t r = 0; r < QB; r++) {
            float *dst = up + ((int64_t)h * QB / mr * dh + (r / mr) * dh) * mr + r % mr;
            const int64_t row = r < rows ? a->row[q0 + r] : -1;
            const float *src = row >= 0 ? a->u + row * a->u_rs + h * dh : NULL;
            for (int64_t d = 0; d < dh; d++) dst[d * mr] = src ? src[d] : 0.0f;
        }
    if (a->mode == NWK_PAIR_SUMS) memset(sums, 0, sizeof(float) * (size_t)(QB * heads));
    for (int64_t c0 = 0; c0 < key_end; c0 += KB) {
        const int64_t c1 = min64(c0 + KB, key_end);
        for (int h = 0; h < heads; h++)
            for (int64_t rp = 0; rp < rpanels; rp++) {
                const int mrv = (int)min64(mr, rows - rp * mr);
                /* keys past the panel's last query are not needed (causal) */
                const int64_t last_key = a->all_keys ? c1 - 1 : q0 + rp * mr + mrv - 1;
                for (int64_t k0 = c0; k0 < c1 && k0 <= last_key; k0 += nr)
                    im->micro(dh, up + ((int64_t)h * QB / mr + rp) * dh * mr,
                              pp->vp + ((int64_t)h * pp->panels + k0 / nr) * dh * nr,
                              tiles + ((int64_t)h * QB + rp * mr) * KB + (k0 - c0), KB, mrv,
                              (int)min64(nr, c1 - k0), NWK_ZERO);
            }
        for (int64_t q = q0; q < q1; q++) {
            if (a->row[q] < 0 || c0 >= row_keys(a, q)) continue;
            const int64_t nk = min64(c1, row_keys(a, q)) - c0, r = q - q0;
            const float *p = a->p ? a->p + q * a->p_rs + c0 * heads : prow, *t = tiles + r * KB;
            if (!a->p) a->p_rows(a->p_ctx, q, c0, nk, prow);
            if (a->mode == NWK_PAIR_SUMS) im->pair_sums(nk, heads, p, t, (int64_t)QB * KB, sums + r * heads);
            else im->pairs(nk, heads, p, t, (int64_t)QB * KB, a->out + a->off[q] + c0 * heads);
        }
    }
    for (int64_t q = q0; q < q1; q++) {
        if (a->mode == NWK_PAIR_SUMS) {
            if (a->row[q] >= 0) memcpy(a->out + a->off[q], sums + (q - q0) * heads, sizeof(float) * (size_t)heads);
            else zero_keys(a, q, 0, 1);
        } else {
            const int64_t keys = row_keys(a, q);
            zero_keys(a, q, a->row[q] >= 0 ? keys : 0, keys > a->tail_keys ? keys : a->tail_keys);
        }
    }
}

static void *run_blocks(void *arg) {
    const pairs_part *pp = arg;
    const int64_t tasks = (pp->a->tokens + QB - 1) / QB;
    for (int64_t b; (b = nwk_next_task(pp->next)) < tasks;)
        run_block(pp, b * QB, min64(pp->a->tokens, (b + 1) * QB));
    return NULL;
}

int nwk_attention_pairs(const nwk_attention_pairs_args *a, int n_threads) {
    if (a->tokens <= 0 || a->heads <= 0) return 0;
    const nwk_impl *im = nwk_current();
    const int64_t tasks = (a->tokens + QB - 1) / QB;
    int nt = n_threads < 1 ? 1 : n_threads > NWK_MAX_THREADS ? NWK_MAX_THREADS : n_threads;
    if (nt > tasks) nt = (int)tasks;
    const int64_t panels = (a->tokens + im->nr - 1) / im->nr, dh = a->d_head > 0 ? a->d_head : 1;
    const size_t packed = (size_t)(a->heads * panels * dh * im->nr);
    /* Per part: U panels, tiles, sums and one chunk of p rows. */
    const size_t per = ((size_t)(a->heads * (QB * (dh + KB + 1) + KB)) + 15) & ~(size_t)15;
    float *scratch = NULL;
    if (nwk_scratch_alloc((void **)&scratch, sizeof(float) * (packed + per * (size_t)nt)) != 0) return -1;
    pairs_part parts[NWK_MAX_THREADS];
    int64_t next = 0;
    for (int t = 0; t < nt; t++)
        parts[t] = (pairs_part){a, im, scratch, panels, scratch + packed + per * (size_t)t, t, nt, &next};
    if (a->d_head > 0) nwk_run_parts(pack_values, parts, sizeof parts[0], nt < a->heads ? nt : a->heads);
    else memset(scratch, 0, sizeof(float) * packed);
    nwk_run_parts(run_blocks, parts, sizeof parts[0], nt);
    nwk_scratch_free(scratch);
    return 0;
}
