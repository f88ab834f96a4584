#!/usr/bin/env python3
"""Every edge and attribution DST (the 25 of the tdb_edges fixture) through
``nodewrite.derive(..., node=...)`` against a contraction-first torch formulation written by hand,
on the same tensors in the same process, at GPT-2-small shape (d_model 768, 12 heads x 64,
d_ff 3072), two layers, an attention autoencoder on resid_delta_attn (the model's single
autoencoder; a second model with an MLP autoencoder on mlp_post_act for the MLP-side rows).

The store holds a consistent forward pass of both layers (random weights; p, v, v_out, the
residuals and the latents computed from them) and random loss gradients (causal where attention's
are). Both sides read the same stored tensors and write into a preallocated output (nodewrite:
``out=``; torch: ``out.zero_()`` and slices, or ``out=``), so both pay for the full dense output.
The torch side is the analytic formulation of ``nodewrite.tdb.torch_edges`` (the drop-in's torch
path: LayerNorm jvp/vjp rules, the softmax derivative, the one-row write), reading the stored
p, v and v_out instead of recomputing the attention, and projecting an out-edge's gradient only
at its non-zero rows.

Each row: median ms per call of each side, the two alternated round by round (``_timing``);
ratio = torch / nodewrite (> 1: nodewrite is faster); agreement max|diff| / max(1, max|torch|).
Peak extra memory per DST: ``build/bench_edges`` (``make bench-edges``) measures it on a first
call in a fresh child process; here, after warm calls, freed scratch pages are reused and would
not show. Issue 20's target: every ratio >= 2. Prints a table; never asserts.

With ``--alloc`` each side allocates its output per call instead, as a user's call does:
nodewrite with ``out=None`` (the binding hands the library fresh zero pages and it writes only the
rows that can be non-zero) against torch allocating with ``torch.empty`` and running the same
formulation (which zeroes what it does not write: ``torch.zeros`` and the writes, zeroing once).

Usage: bench_edges.py [--tokens 1024 4096] [--latents 256] [--threads 2] [--rounds 5]
                      [--batched-latents-4096 32] [--alloc] [--only DST ...]
  The flattened batched output is T(T+1)/2 x n_latents floats (8.6 GB at T = 4096 and 256
  latents, twice over with torch's): at T > 2048 that row uses --batched-latents-4096 latents.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import per_call_medians  # noqa: E402

import nodewrite as nw  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover
    print("bench_edges: torch is not installed in this environment (make .venv TORCH_WHEEL=...)")
    sys.exit(0)

from nodewrite.tdb.torch_edges import gelu, gelu_prime, layer_norm_jvp, layer_norm_stats, layer_norm_vjp  # noqa: E402

D, H, DH, F = 768, 12, 64, 3072
LAYERS = 2


# ------------------------------------------------------------------------ model and store


class Setup:
    """Weights, a consistent forward pass, random gradients; the nodewrite Model and store."""

    def __init__(self, T: int, n_latents: int, ae_input: str, seed: int = 0):
        g = torch.Generator().manual_seed(seed)

        def rnd(*shape, scale=0.05, offset=0.0):
            return torch.randn(*shape, generator=g) * scale + offset

        self.T, self.nL, self.ae_input = T, n_latents, ae_input
        self.w = []
        for _ in range(LAYERS):
            self.w.append(dict(
                ln1_g=rnd(D, scale=0.1, offset=1.0), ln1_b=rnd(D, scale=0.1),
                wq=rnd(H, D, DH, scale=0.06), wk=rnd(H, D, DH, scale=0.06), wv=rnd(H, D, DH),
                bq=rnd(H, DH), bk=rnd(H, DH), bv=rnd(H, DH), wo=rnd(H, DH, D), bo=rnd(D),
                ln2_g=rnd(D, scale=0.1, offset=1.0), ln2_b=rnd(D, scale=0.1),
                win=rnd(D, F), bin=rnd(F, scale=0.5), wout=rnd(F, D, scale=0.02), bout=rnd(D),
            ))
        n_in = F if ae_input == "mlp_post_act" else D
        self.enc = [rnd(n_latents, n_in, scale=0.05) for _ in range(LAYERS)]
        self.dec = [rnd(n_latents, n_in, scale=0.05) for _ in range(LAYERS)]
        self.lb = [rnd(n_latents, scale=0.05) for _ in range(LAYERS)]
        self.pb = [rnd(n_in, scale=0.05) for _ in range(LAYERS)]

        fwd, bwd = {}, {}
        x = rnd(T, D, scale=1.0)
        fwd[("resid.post_emb", None)] = x
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        for L in range(LAYERS):
            w = self.w[L]
            xhat, s = layer_norm_stats(x)
            a = xhat * w["ln1_g"] + w["ln1_b"]
            q = torch.einsum("td,hde->the", a, w["wq"]) + w["bq"]
            k = torch.einsum("td,hde->the", a, w["wk"]) + w["bk"]
            v = torch.einsum("td,hde->the", a, w["wv"]) + w["bv"]
            p = torch.empty(T, T, H)
            for h in range(H):  # one head at a time: no (T, T, H) temporaries beyond p
                lg = (q[:, h] @ k[:, h].T) / math.sqrt(DH)
                p[:, :, h] = torch.softmax(lg.masked_fill(~mask, float("-inf")), dim=1)
            v_out = torch.einsum("qkh,khe->qhe", p, v) if T <= 1024 else torch.stack(
                [p[:, :, h] @ v[:, h] for h in range(H)], dim=1)
            delta_attn = torch.einsum("qhe,hed->qd", v_out, w["wo"]) + w["bo"]
            x = x + delta_attn
            fwd[("resid.post_attn", L)] = x
            xhat2, _ = layer_norm_stats(x)
            post = gelu((xhat2 * w["ln2_g"] + w["ln2_b"]) @ w["win"] + w["bin"])
            delta_mlp = post @ w["wout"] + w["bout"]
            ae_in = post if ae_input == "mlp_post_act" else delta_attn
            z = torch.relu((ae_in - self.pb[L]) @ self.enc[L].T + self.lb[L])
            x = x + delta_mlp
            fwd.update({("attn.qk_probs", L): p, ("attn.v", L): v, ("attn.v_out", L): v_out,
                        ("resid.delta_attn", L): delta_attn, ("mlp.post_act", L): post,
                        ("resid.delta_mlp", L): delta_mlp, ("resid.post_mlp", L): x,
                        ("online_autoencoder_latent", L): z, (self.latent_location, L): z})
            gp = rnd(T, T, H, scale=0.01)
            gp.mul_(mask[:, :, None])
            bwd.update({("attn.qk_probs", L): gp, ("attn.v", L): rnd(T, H, DH, scale=0.01),
                        ("attn.v_out", L): rnd(T, H, DH, scale=0.01), ("mlp.post_act", L): rnd(T, F, scale=0.01),
                        ("resid.post_attn", L): rnd(T, D, scale=0.01), ("resid.post_mlp", L): rnd(T, D, scale=0.01),
                        ("resid.delta_attn", L): rnd(T, D, scale=0.01), ("resid.delta_mlp", L): rnd(T, D, scale=0.01),
                        ("online_autoencoder_latent", L): rnd(T, n_latents, scale=0.01)})
            bwd[(self.latent_location, L)] = bwd[("online_autoencoder_latent", L)]
        bwd[("resid.post_emb", None)] = rnd(T, D, scale=0.01)
        self.fwd, self.bwd = fwd, bwd

        m = nw.Model(LAYERS, D, H, DH, F)
        names = {"ln1_g": "layer_norm_gain.pre_attn", "ln1_b": "layer_norm_bias.pre_attn", "wq": "attn.to_query",
                 "wk": "attn.to_key", "wv": "attn.to_value", "bq": "attn.query_bias", "bk": "attn.key_bias",
                 "bv": "attn.value_bias", "wo": "attn.to_residual", "bo": "attn.out_bias",
                 "ln2_g": "layer_norm_gain.pre_mlp", "ln2_b": "layer_norm_bias.pre_mlp", "win": "mlp.to_hidden",
                 "bin": "mlp.in_bias", "wout": "mlp.to_residual", "bout": "mlp.out_bias"}
        for L in range(LAYERS):
            for key, name in names.items():
                m.set_weight(name, L, self.w[L][key])
            m.set_autoencoder(self.latent_type, L, self.dec[L], ae_input, encoder=self.enc[L],
                              latent_bias=self.lb[L], pre_bias=self.pb[L])
        st = nw.ActivationStore()
        for (loc, L), t in fwd.items():
            st.put(loc, L, t)
        for (loc, L), t in bwd.items():
            st.put(loc, L, t, pass_type="backward")
        self.model, self.store = m, st

    @property
    def latent_type(self) -> str:
        return "mlp_autoencoder_latent" if self.ae_input == "mlp_post_act" else "attention_autoencoder_latent"

    @property
    def latent_location(self) -> str:
        return "online_mlp_autoencoder_latent" if self.ae_input == "mlp_post_act" else "online_attention_autoencoder_latent"

    def ln(self, L: int, which: str, rows):
        """(xhat, s, A) of the residual rows the block `which` of layer L reads."""
        x = self.residual(L, which)[rows]
        xhat, s = layer_norm_stats(x)
        w = self.w[L]
        a = xhat * w["ln1_g"] + w["ln1_b"] if which == "attn" else xhat * w["ln2_g"] + w["ln2_b"]
        return xhat, s, a

    def residual(self, L: int, which: str):
        if which == "mlp":
            return self.fwd[("resid.post_attn", L)]
        return self.fwd[("resid.post_emb", None)] if L == 0 else self.fwd[("resid.post_mlp", L - 1)]


# --------------------------------------------------------------------- torch, by hand


class TorchEdges:
    """The contraction-first torch formulation of every DST, on the setup's tensors. Every method
    writes into `out` (preallocated, any previous contents)."""

    def __init__(self, S: Setup, u: int):
        self.S, self.u = S, u
        self.scale = 1.0 / math.sqrt(DH)
        # the upstream node: MLP neuron (u, 17) of layer 0; its write row
        self.write = S.fwd[("mlp.post_act", 0)][u, 17] * S.w[0]["wout"][17]

    # ---- in-edges at layer 1
    def _attn_tangent(self, L: int, which: str):
        S, u = self.S, self.u
        xhat, s, _ = S.ln(L, "attn", slice(u, u + 1))
        da = layer_norm_jvp(self.write, xhat[0], s[0], S.w[L]["ln1_g"], False)
        return torch.einsum("d,hde->he", da, S.w[L][which])

    def in_query(self, out, L=1):
        S, u, w = self.S, self.u, self.S.w[L]
        dq = self._attn_tangent(L, "wq")
        _, _, a = S.ln(L, "attn", slice(0, u + 1))
        r = torch.einsum("hde,he->dh", w["wk"], dq)
        dlog = (a @ r + (w["bk"] * dq).sum(-1)) * self.scale
        pu = S.fwd[("attn.qk_probs", L)][u, : u + 1]
        out.zero_()
        out[u, : u + 1] = pu * (dlog - (pu * dlog).sum(0, keepdim=True)) * S.bwd[("attn.qk_probs", L)][u, : u + 1]

    def in_key(self, out, L=1):
        S, u, w = self.S, self.u, self.S.w[L]
        dk = self._attn_tangent(L, "wk")
        _, _, a = S.ln(L, "attn", slice(u, None))
        r = torch.einsum("hde,he->dh", w["wq"], dk)
        dlog = (a @ r + (w["bq"] * dk).sum(-1)) * self.scale  # (T-u, H)
        pq = S.fwd[("attn.qk_probs", L)][u:]
        c = pq[:, u, :] * dlog
        out[:u].zero_()
        o = out[u:]
        torch.mul(pq, (-c)[:, None, :], out=o)
        o[:, u, :] += c
        o.mul_(S.bwd[("attn.qk_probs", L)][u:])

    def in_value(self, out, L=1):
        S, u = self.S, self.u
        dv = self._attn_tangent(L, "wv")
        out.zero_()
        out[u:, u] = S.fwd[("attn.qk_probs", L)][u:, u] * torch.einsum("qhe,he->qh", S.bwd[("attn.v_out", L)][u:], dv)

    def _mlp_tangent(self, L: int):
        S, u, w = self.S, self.u, self.S.w[L]
        xhat, s, a = S.ln(L, "mlp", slice(u, u + 1))
        da = layer_norm_jvp(self.write, xhat[0], s[0], w["ln2_g"], False)
        return gelu_prime(a[0] @ w["win"] + w["bin"]) * (da @ w["win"])

    def in_mlp(self, out, L=1):
        S, u = self.S, self.u
        d = self._mlp_tangent(L)
        out.zero_()
        torch.mul(d, S.bwd[("mlp.post_act", L)][u], out=out[u])

    def in_autoencoder(self, out, L=1):
        S, u, w = self.S, self.u, self.S.w[L]
        z, gz = S.fwd[("online_autoencoder_latent", L)], S.bwd[("online_autoencoder_latent", L)]
        out.zero_()
        if S.ae_input == "mlp_post_act":
            out[u] = (z[u] > 0) * (S.enc[L] @ self._mlp_tangent(L)) * gz[u]
            return
        xhat, s, _ = S.ln(L, "attn", slice(u, u + 1))
        da = layer_norm_jvp(self.write, xhat[0], s[0], w["ln1_g"], False)
        dq, dk, dv = (torch.einsum("d,hde->he", da, w[k]) for k in ("wq", "wk", "wv"))
        _, _, a = S.ln(L, "attn", slice(0, None))
        p, v, v_out = S.fwd[("attn.qk_probs", L)], S.fwd[("attn.v", L)], S.fwd[("attn.v_out", L)]
        dlogK = (a[u:] @ torch.einsum("hde,he->dh", w["wq"], dk) + (w["bq"] * dk).sum(-1)) * self.scale
        c = p[u:, u] * dlogK  # (n, H)
        dz = c[:, :, None] * (v[u][None] - v_out[u:]) + p[u:, u, :, None] * dv[None]
        dlogQ = (a[: u + 1] @ torch.einsum("hde,he->dh", w["wk"], dq) + (w["bk"] * dq).sum(-1)) * self.scale
        pu = p[u, : u + 1]
        dpq = pu * (dlogQ - (pu * dlogQ).sum(0, keepdim=True))
        dz[0] += torch.einsum("kh,khe->he", dpq, v[: u + 1])
        dlat = (dz.reshape(-1, H * DH) @ w["wo"].reshape(H * DH, D)) @ S.enc[L].T
        out[u:] = (z[u:] > 0) * dlat * gz[u:]

    # ---- gradients of one subnode (layer 1) and out-edges (layer 0)
    def grad_v(self, G, index, L=1):
        S, w = self.S, self.S.w[L]
        q0, k0, h0 = index
        xhat, s, _ = S.ln(L, "attn", slice(k0, k0 + 1))
        vbar = S.fwd[("attn.qk_probs", L)][q0, k0, h0] * S.bwd[("attn.v_out", L)][q0, h0]
        G.zero_()
        G[k0] = layer_norm_vjp(w["wv"][h0] @ vbar, xhat[0], s[0], w["ln1_g"], False)

    def grad_k(self, G, index, L=1):
        S, w = self.S, self.S.w[L]
        q0, k0, h0 = index
        p = S.fwd[("attn.qk_probs", L)][q0, : q0 + 1, h0]
        c = S.fwd[("attn.qk_probs", L)][q0, k0, h0] * S.bwd[("attn.qk_probs", L)][q0, k0, h0] * self.scale
        xhat, s, a = S.ln(L, "attn", slice(0, q0 + 1))
        qv = a[q0] @ w["wq"][h0] + w["bq"][h0]
        coef = -p.clone()
        coef[k0] += 1.0
        abar = (c * coef)[:, None] * (w["wk"][h0] @ qv)[None]
        G.zero_()
        G[: q0 + 1] = layer_norm_vjp(abar, xhat, s, w["ln1_g"], False)

    def grad_latent(self, G, index, L=1):
        S, w = self.S, self.S.w[L]
        t0, j = index
        z, gz = S.fwd[("online_autoencoder_latent", L)], S.bwd[("online_autoencoder_latent", L)]
        c = (z[t0, j] > 0).float() * gz[t0, j]
        xhat, s, a = S.ln(L, "attn", slice(0, t0 + 1))
        p, v = S.fwd[("attn.qk_probs", L)], S.fwd[("attn.v", L)]
        zbar = torch.einsum("hed,d->he", w["wo"], S.enc[L][j] * c)
        p0 = p[t0, : t0 + 1]
        pbar = torch.einsum("he,khe->kh", zbar, v[: t0 + 1])
        lbar = p0 * (pbar - (p0 * pbar).sum(0, keepdim=True))
        q = torch.einsum("d,hde->he", a[t0], w["wq"]) + w["bq"]
        rk = torch.einsum("hde,he->hd", w["wk"], q) * self.scale  # (H, D)
        rv = torch.einsum("hde,he->hd", w["wv"], zbar)
        abar = lbar @ rk + p0 @ rv  # (rows, D)
        m = lbar.T @ a  # (H, D)
        qbar = (torch.einsum("hd,hde->he", m, w["wk"]) + w["bk"] * lbar.sum(0)[:, None]) * self.scale
        abar[t0] += torch.einsum("he,hde->d", qbar, w["wq"])
        G.zero_()
        G[: t0 + 1] = layer_norm_vjp(abar, xhat, s, w["ln1_g"], False)

    def out_attn(self, G, out, L=0):
        S, w = self.S, self.S.w[L]
        rows = G.abs().sum(1).nonzero()[:, 0]
        gh = torch.einsum("hed,qd->qhe", w["wo"], G[rows])
        out.zero_()
        out[rows] = S.fwd[("attn.qk_probs", L)][rows] * torch.einsum("khe,qhe->qkh", S.fwd[("attn.v", L)], gh)

    def out_mlp(self, G, out, L=0):
        S = self.S
        rows = G.abs().sum(1).nonzero()[:, 0]
        out.zero_()
        out[rows] = S.fwd[("mlp.post_act", L)][rows] * (G[rows] @ S.w[L]["wout"].T)

    def out_autoencoder(self, G, out, L=0):
        S = self.S
        rows = G.abs().sum(1).nonzero()[:, 0]
        write = S.dec[L] @ S.w[L]["wout"] if S.ae_input == "mlp_post_act" else S.dec[L]
        out.zero_()
        out[rows] = S.fwd[("online_autoencoder_latent", L)][rows] * (G[rows] @ write.T)

    def out_token(self, G, out):
        torch.sum(self.S.fwd[("resid.post_emb", None)] * G, dim=-1, keepdim=True, out=out)

    # ---- act-times-grad (layer 1)
    def atg(self, loc, out, L=1):
        torch.mul(self.S.fwd[(loc, L)], self.S.bwd[(loc, L)], out=out)

    def atg_flattened(self, out, L=1):
        p, g = self.S.fwd[("attn.qk_probs", L)], self.S.bwd[("attn.qk_probs", L)]
        r = 0
        for q in range(self.S.T):  # row q's keys 0..q: contiguous in both
            torch.mul(p[q, : q + 1], g[q, : q + 1], out=out[r : r + q + 1])
            r += q + 1

    def atg_per_token(self, out, L=1):
        p, g = self.S.fwd[("attn.qk_probs", L)], self.S.bwd[("attn.qk_probs", L)]
        for q0 in range(0, self.S.T, 256):  # in blocks of queries: no (T, T, H) temporary
            torch.sum(p[q0 : q0 + 256] * g[q0 : q0 + 256], 1, out=out[q0 : q0 + 256])

    def token_attribution(self, out):
        torch.sum(self.S.fwd[("resid.post_emb", None)] * self.S.bwd[("resid.post_emb", None)], -1, keepdim=True, out=out)

    # ---- attention to latent j (layer 1)
    def _live(self, L):
        return (self.S.fwd[("online_autoencoder_latent", L)] > 0).float()

    def latent_grad(self, j, out, L=1):
        torch.mul(self._live(L)[:, j, None], self.S.enc[L][j][None], out=out)

    def _vo(self, j, L):
        return torch.einsum("hed,d->he", self.S.w[L]["wo"], self.S.enc[L][j])  # (H, dh)

    def write_to_latent(self, j, out, L=1):
        S = self.S
        vk = torch.einsum("khe,he->kh", S.fwd[("attn.v", L)], self._vo(j, L))
        torch.mul(S.fwd[("attn.qk_probs", L)], vk[None], out=out)
        out.mul_(self._live(L)[:, j, None, None])

    def write_to_latent_summed(self, j, out, L=1):
        S = self.S
        vk = torch.einsum("khe,he->kh", S.fwd[("attn.v", L)], self._vo(j, L))
        p = S.fwd[("attn.qk_probs", L)]
        for q0 in range(0, S.T, 256):  # in blocks of queries: no (T, T, H) temporary
            torch.sum(p[q0 : q0 + 256] * vk[None], -1, keepdim=True, out=out[q0 : q0 + 256])
        out.mul_(self._live(L)[:, j, None, None])

    def write_to_latent_flattened(self, j, out, L=1):
        S = self.S
        vk = torch.einsum("khe,he->kh", S.fwd[("attn.v", L)], self._vo(j, L))
        p, live = S.fwd[("attn.qk_probs", L)], self._live(L)[:, j]
        r = 0
        for q in range(S.T):
            torch.sum(p[q, : q + 1] * vk[: q + 1], 1, keepdim=True, out=out[r : r + q + 1])
            if live[q] == 0:
                out[r : r + q + 1] = 0
            r += q + 1

    def write_to_latent_per_token(self, j, out, L=1):
        out.copy_(torch.einsum("qhe,he->qh", self.S.fwd[("attn.v_out", L)], self._vo(j, L)))
        out.mul_(self._live(L)[:, j, None])

    def _m(self, x, L):
        S = self.S
        w2 = torch.einsum("hed,jd->hej", S.w[L]["wo"], S.enc[L])  # (H, dh, nL)
        return torch.einsum("khe,hej->khj", x, w2)

    def batched_per_token(self, out, L=1):
        S = self.S
        torch.mul(self._m(S.fwd[("attn.v_out", L)], L), self._live(L)[:, None, :], out=out)

    def batched_flattened(self, out, L=1):
        S = self.S
        m = self._m(S.fwd[("attn.v", L)], L)  # (T, H, nL)
        p, live = S.fwd[("attn.qk_probs", L)], self._live(L)
        r = 0
        for q in range(S.T):  # (q+1, 1, H) @ (q+1, H, nL) -> (q+1, 1, nL), into the output rows
            torch.bmm(p[q, : q + 1, None, :], m[: q + 1], out=out[r : r + q + 1, None, :])
            out[r : r + q + 1].mul_(live[q])
            r += q + 1


# --------------------------------------------------------------------------------- rows


def rows_for(S: Setup, only=None):
    """(label, dst, layer, node, torch fn(out)) of every DST."""
    T, u = S.T, S.T // 2
    tr = TorchEdges(S, u)
    up = nw.NodeIndex("mlp_neuron", 0, (u, 17))
    vsub = nw.NodeIndex("attention_head", 1, (T - 1, u, 3), q_k_or_v="attn.v")
    ksub = nw.NodeIndex("attention_head", 1, (T - 1, u, 3), q_k_or_v="attn.k")
    lat = nw.NodeIndex(S.latent_type, 1, (T - 1, 5))
    trace = nw.NodeIndex(S.latent_type, 1, (None, 5))
    Gv = torch.empty(T, D)

    def with_gv(f):
        def run(out):
            tr.grad_v(Gv, (T - 1, u, 3))
            f(Gv, out)
        return run

    rows = [
        ("Q in-edge", "attn_query_in_edge_attribution", 1, up, tr.in_query),
        ("K in-edge", "attn_key_in_edge_attribution", 1, up, tr.in_key),
        ("V in-edge", "attn_value_in_edge_attribution", 1, up, tr.in_value),
        ("MLP in-edge", "mlp_in_edge_attribution", 1, up, tr.in_mlp),
        ("latent in-edge", "online_autoencoder_in_edge_attribution", 1, up, tr.in_autoencoder),
        ("grad V subnode", "grad_of_single_subnode_attribution", 1, vsub, lambda o: tr.grad_v(o, (T - 1, u, 3))),
        ("grad K subnode", "grad_of_single_subnode_attribution", 1, ksub, lambda o: tr.grad_k(o, (T - 1, u, 3))),
        ("grad latent", "grad_of_single_subnode_attribution", 1, lat, lambda o: tr.grad_latent(o, (T - 1, 5))),
        ("attn out-edge (V)", "attn_out_edge_attribution", 0, vsub, with_gv(tr.out_attn)),
        ("mlp out-edge (V)", "mlp_out_edge_attribution", 0, vsub, with_gv(tr.out_mlp)),
        ("latent out-edge (V)", "online_autoencoder_out_edge_attribution", 0, vsub, with_gv(tr.out_autoencoder)),
        ("token out-edge (V)", "token_out_edge_attribution", None, vsub, with_gv(tr.out_token)),
        ("", "mlp_act_times_grad", 1, None, lambda o: tr.atg("mlp.post_act", o)),
        ("", "unflattened_attn_act_times_grad", 1, None, lambda o: tr.atg("attn.qk_probs", o)),
        ("", "attn_act_times_grad", 1, None, tr.atg_flattened),
        ("", "attn_act_times_grad_per_sequence_token", 1, None, tr.atg_per_token),
        ("", "token_attribution", None, None, tr.token_attribution),
        ("", "online_autoencoder_act_times_grad", 1, None, lambda o: tr.atg("online_autoencoder_latent", o)),
        ("", "online_attention_autoencoder_act_times_grad" if S.ae_input != "mlp_post_act"
         else "online_mlp_autoencoder_act_times_grad", 1, None, lambda o: tr.atg(S.latent_location, o)),
        ("", "autoencoder_latent_grad_wrt_residual_input", 1, trace, lambda o: tr.latent_grad(5, o)),
        ("", "attn_write_to_latent", 1, trace, lambda o: tr.write_to_latent(5, o)),
        ("", "attn_write_to_latent_summed_over_heads", 1, trace, lambda o: tr.write_to_latent_summed(5, o)),
        ("", "flattened_attn_write_to_latent_summed_over_heads", 1, trace, lambda o: tr.write_to_latent_flattened(5, o)),
        ("", "attn_write_to_latent_per_sequence_token", 1, trace, lambda o: tr.write_to_latent_per_token(5, o)),
        ("", "attn_write_to_latent_per_sequence_token_batched", 1, None, tr.batched_per_token),
        ("", "flattened_attn_write_to_latent_summed_over_heads_batched", 1, None, tr.batched_flattened),
    ]
    if S.ae_input == "mlp_post_act":  # the MLP-side rows of the second model
        rows = [r for r in rows if r[1] in ("online_autoencoder_in_edge_attribution", "online_mlp_autoencoder_act_times_grad")
                or (r[1] == "grad_of_single_subnode_attribution" and r[0] == "grad latent")]
        rows = [(r[0] + " (MLP AE)" if r[0] else "(MLP AE)",) + r[1:] for r in rows]
        rows = [r if r[1] != "grad_of_single_subnode_attribution" else
                (r[0], r[1], r[2], lat, lambda o: mlp_latent_grad(S, tr, o, (T - 1, 5))) for r in rows]
    if only is not None:
        rows = [r for r in rows if r[1] in only]
    return rows


def mlp_latent_grad(S: Setup, tr: TorchEdges, G, index, L=1):
    t0, j = index
    w = S.w[L]
    z, gz = S.fwd[("online_autoencoder_latent", L)], S.bwd[("online_autoencoder_latent", L)]
    c = (z[t0, j] > 0).float() * gz[t0, j]
    xhat, s, a = S.ln(L, "mlp", slice(t0, t0 + 1))
    pre_bar = gelu_prime(a[0] @ w["win"] + w["bin"]) * S.enc[L][j] * c
    G.zero_()
    G[t0] = layer_norm_vjp(w["win"] @ pre_bar, xhat[0], s[0], w["ln2_g"], False)


def measure(S: Setup, rows, rounds: int, alloc: bool = False):
    """Median seconds per call of both sides, alternated; into preallocated outputs, or (alloc)
    each call allocating its own (the last kept for the agreement)."""
    results = []
    for label, dst, layer, node, fn in rows:
        first = nw.derive(S.model, S.store, dst, layer, node=node)
        shape = tuple(first.shape)
        del first
        gc.collect()
        if not alloc:
            out_nw = torch.empty(shape)
            out_nw.fill_(1.0)
            out_t = torch.empty(shape)
            out_t.fill_(1.0)
        if alloc:
            last = {}

            def nw_alloc():
                last["nodewrite"] = None  # the previous output freed before the next is allocated
                last["nodewrite"] = nw.derive(S.model, S.store, dst, layer, node=node)

            def torch_alloc():
                last["torch"] = None
                o = torch.empty(shape)
                fn(o)
                last["torch"] = o

            fns = {"nodewrite": nw_alloc, "torch": torch_alloc}
        else:
            fns = {"nodewrite": lambda: nw.derive(S.model, S.store, dst, layer, node=node, out=out_nw),
                   "torch": lambda: fn(out_t)}
        med = per_call_medians(fns, batches=1, calls=1, warmup=1, rounds=rounds)
        if alloc:
            out_nw, out_t = torch.as_tensor(last.pop("nodewrite")), last.pop("torch")
        err = float((out_nw.double() - out_t.double()).abs().max()) / max(1.0, float(out_t.abs().max()))
        mb = out_nw.numel() * 4 / 2**20
        results.append((label, dst, med["nodewrite"], med["torch"], mb, err))
        print(f"  {dst:<58} {label:<24} {1e3 * med['nodewrite']:9.2f} {1e3 * med['torch']:9.2f} "
              f"{med['torch'] / med['nodewrite']:7.1f}x {mb:9.1f}  {err:.1e}", flush=True)
        del out_nw, out_t
        gc.collect()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--latents", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batched-latents-4096", type=int, default=32)
    ap.add_argument("--only", nargs="*", default=None, help="these DSTs only")
    ap.add_argument("--alloc", action="store_true",
                    help="each call allocates its output (nodewrite: out=None; torch: torch.empty + the formulation)")
    args = ap.parse_args()
    nw.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    print(f"bench_edges: d_model {D}, {H} heads x {DH}, d_ff {F}, {args.threads} threads (nodewrite and torch "
          f"{torch.__version__}), median of {args.rounds} alternated rounds, "
          f"{'each call allocating its output' if args.alloc else 'into preallocated outputs'}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    big = "flattened_attn_write_to_latent_summed_over_heads_batched"
    for T in args.tokens:
        print(f"T = {T}, {args.latents} latents (attention autoencoder on resid_delta_attn unless marked)")
        print(f"  {'dst':<58} {'node':<24} {'nw ms':>9} {'torch ms':>9} {'ratio':>8} {'out MB':>9}  agree")
        only = set(args.only) if args.only else None
        S = Setup(T, args.latents, "resid_delta_attn")
        main_only = (only or set(nw.DSTS)) - ({big} if T > 2048 else set())
        measure(S, rows_for(S, main_only), args.rounds, args.alloc)
        del S
        gc.collect()
        if T > 2048 and (only is None or big in only):
            nl = args.batched_latents_4096
            print(f"  ({big} at T = {T} with {nl} latents: its output at {args.latents} latents is "
                  f"{T * (T + 1) // 2 * args.latents * 4 / 2**30:.1f} GB, twice over with torch's)")
            S = Setup(T, nl, "resid_delta_attn")
            measure(S, rows_for(S, {big}), max(3, args.rounds // 2), args.alloc)
            del S
            gc.collect()
        S = Setup(T, args.latents, "mlp_post_act", seed=1)
        measure(S, rows_for(S, only), args.rounds, args.alloc)
        del S
        gc.collect()
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
