"""Analytic, contraction-first edge attribution in torch: the TDB drop-in's torch path for the
edge DSTs (:mod:`nodewrite.tdb.edges`; CUDA tensors, or forced), the test oracle for TDB's
in-edges, out-edges, act-times-grad and attention-to-latent derived scalars (parity README,
section "Edge-attribution fixtures"), and the baseline the native kernels are benchmarked against.

No autodiff: every derivative is one rule per primitive, composed by hand (JAX's defjvp idea):

    layer_norm_jvp / layer_norm_vjp   LayerNorm, with or without its scale detached
    gelu_prime                        the tanh GELU's derivative (exact 0 where tanh saturates)
    softmax rows under the causal mask (inline: p * (d - sum(p * d)))

and the structure of the tangent is used: an upstream node writes one residual row u, so the
query tangent is one row, the key tangent touches rows q >= u, and the value tangent one key
column. Nothing of size (T, T, heads, d_head) or larger is formed. Works in the dtype of its
inputs (float32 for parity with TDB, float64 for finite-difference checks).

Layer as TDB computes it: A = ln_1(x); q, k, v = A W + b per head; logits = q.k / sqrt(d_head)
under the causal mask; p = softmax over keys; MLP pre = ln_2(x) W_in + b_in, a = gelu_tanh(pre);
autoencoder latents z = relu((input - pre_bias) @ encoder.T + latent_bias).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

LN_EPS = 1e-5
_GELU_C = math.sqrt(2.0 / math.pi)


# ----------------------------------------------------------------------- rules per primitive


def layer_norm_stats(x: torch.Tensor, eps: float = LN_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """(xhat, s) of each row: xhat = (x - mean) / s, s = sqrt(mean((x - mean)^2) + eps)."""
    xc = x - x.mean(-1, keepdim=True)
    s = torch.sqrt((xc * xc).mean(-1, keepdim=True) + eps)
    return xc / s, s


def layer_norm_jvp(dx, xhat, s, gain, detach: bool):
    """Tangent of gain * xhat + bias along dx (rows). detach: the scale s is a constant."""
    dxc = dx - dx.mean(-1, keepdim=True)
    if not detach:
        dxc = dxc - xhat * (xhat * dxc).mean(-1, keepdim=True)
    return gain * dxc / s


def layer_norm_vjp(ybar, xhat, s, gain, detach: bool):
    """The adjoint of layer_norm_jvp: the gradient at x of <ybar, LayerNorm(x)>."""
    a = gain * ybar / s
    if not detach:
        a = a - xhat * (xhat * a).mean(-1, keepdim=True)
    return a - a.mean(-1, keepdim=True)


def gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(_GELU_C * (x + 0.044715 * x * x * x)))


def gelu_prime(x):
    """d gelu_tanh / dx. Where tanh rounds to -1 (x below about -5.8 in float32) both terms
    are exactly 0, as in TDB's float32 autodiff."""
    t = torch.tanh(_GELU_C * (x + 0.044715 * x * x * x))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * x * x)


# ------------------------------------------------------------------------------ the model


@dataclass
class LayerWeights:
    ln1_gain: torch.Tensor  # (D,)
    ln1_bias: torch.Tensor
    w_q: torch.Tensor  # (H, D, dh)
    w_k: torch.Tensor
    w_v: torch.Tensor
    b_q: torch.Tensor  # (H, dh)
    b_k: torch.Tensor
    b_v: torch.Tensor
    w_o: torch.Tensor  # (H, dh, D)
    ln2_gain: torch.Tensor
    ln2_bias: torch.Tensor
    w_in: torch.Tensor  # (D, F)
    b_in: torch.Tensor  # (F,)
    w_out: torch.Tensor  # (F, D)


@dataclass
class Autoencoder:
    input: str  # "mlp_post_act" or "resid_delta_attn" / "resid_delta_mlp"
    encoder: torch.Tensor  # (n_latents, n_inputs)
    decoder: torch.Tensor  # (n_latents, n_inputs)  (TDB's decoder.weight.T)
    side: str  # "mlp" or "attn": which block's output it follows

    def write(self, w: LayerWeights) -> torch.Tensor:
        """(n_latents, D): what latent j writes per unit of activation."""
        return self.decoder @ w.w_out if self.input == "mlp_post_act" else self.decoder


class Attention:
    """One attention layer recomputed from the residual x before ln_1 (causal)."""

    def __init__(self, x: torch.Tensor, w: LayerWeights, detach: bool):
        self.w, self.detach = w, detach
        self.xhat, self.s = layer_norm_stats(x)
        a = self.xhat * w.ln1_gain + w.ln1_bias
        self.q = torch.einsum("td,hde->the", a, w.w_q) + w.b_q
        self.k = torch.einsum("td,hde->the", a, w.w_k) + w.b_k
        self.v = torch.einsum("td,hde->the", a, w.w_v) + w.b_v
        self.scale = 1.0 / math.sqrt(w.w_q.shape[-1])
        T = x.shape[0]
        logits = torch.einsum("qhe,khe->qkh", self.q, self.k) * self.scale
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        logits = logits.masked_fill(~mask[:, :, None], float("-inf"))
        self.p = torch.softmax(logits, dim=1)

    def tangents(self, u: int, w_row: torch.Tensor):
        """(dq, dk, dv) at row u, each (H, dh), for the residual tangent w_row at row u."""
        da = layer_norm_jvp(w_row, self.xhat[u], self.s[u], self.w.ln1_gain, self.detach)
        return tuple(torch.einsum("d,hde->he", da, m) for m in (self.w.w_q, self.w.w_k, self.w.w_v))

    def dp_query(self, u: int, dq: torch.Tensor) -> torch.Tensor:
        """dp[u, k, h] (k <= u) with only Q live: (u+1, H)."""
        pu = self.p[u, : u + 1]
        dlog = torch.einsum("he,khe->kh", dq, self.k[: u + 1]) * self.scale
        return pu * (dlog - (pu * dlog).sum(0, keepdim=True))

    def dp_key(self, u: int, dk: torch.Tensor) -> torch.Tensor:
        """dp[q, k, h] for q >= u with only K live: (T-u, T, H) (zero above the diagonal)."""
        pq = self.p[u:]
        dlog = torch.einsum("qhe,he->qh", self.q[u:], dk) * self.scale  # d logit[q, u, h]
        dp = -pq * (pq[:, u, :] * dlog)[:, None, :]
        dp[:, u, :] += pq[:, u, :] * dlog
        return dp

    def backward_rows(self, rows_bar: torch.Tensor, t0: int) -> torch.Tensor:
        """Gradient at x (rows <= t0) of <ob, out[t0]>, out the layer's output before its bias,
        Q, K and V live; rows_bar = ob (D,). Returns (T, D)."""
        w = self.w
        zbar = torch.einsum("hed,d->he", w.w_o, rows_bar)  # (H, dh) gradient at v_out[t0]
        p0 = self.p[t0, : t0 + 1]  # (k, H)
        pbar = torch.einsum("he,khe->kh", zbar, self.v[: t0 + 1])
        vbar = p0[:, :, None] * zbar[None]  # (k, H, dh)
        lbar = p0 * (pbar - (p0 * pbar).sum(0, keepdim=True))  # (k, H)
        qbar = torch.einsum("kh,khe->he", lbar, self.k[: t0 + 1]) * self.scale
        kbar = lbar[:, :, None] * self.q[t0][None] * self.scale  # (k, H, dh)
        abar = torch.zeros_like(self.xhat)
        abar[: t0 + 1] += torch.einsum("khe,hde->kd", kbar, w.w_k) + torch.einsum("khe,hde->kd", vbar, w.w_v)
        abar[t0] += torch.einsum("he,hde->d", qbar, w.w_q)
        return self._ln_back(abar, t0 + 1)

    def _ln_back(self, abar: torch.Tensor, n_rows: int) -> torch.Tensor:
        g = torch.zeros_like(abar)
        g[:n_rows] = layer_norm_vjp(abar[:n_rows], self.xhat[:n_rows], self.s[:n_rows], self.w.ln1_gain, self.detach)
        return g


class MLP:
    """One MLP layer recomputed from the residual x before ln_2."""

    def __init__(self, x: torch.Tensor, w: LayerWeights, detach: bool):
        self.w, self.detach = w, detach
        self.xhat, self.s = layer_norm_stats(x)
        self.pre = (self.xhat * w.ln2_gain + w.ln2_bias) @ w.w_in + w.b_in
        self.gp = gelu_prime(self.pre)

    def dpre(self, u: int, w_row: torch.Tensor) -> torch.Tensor:
        da = layer_norm_jvp(w_row, self.xhat[u], self.s[u], self.w.ln2_gain, self.detach)
        return da @ self.w.w_in

    def grad_from_pre(self, t0: int, pre_bar: torch.Tensor, T: int) -> torch.Tensor:
        g = torch.zeros(T, self.w.w_in.shape[0], dtype=pre_bar.dtype, device=pre_bar.device)
        g[t0] = layer_norm_vjp(self.w.w_in @ pre_bar, self.xhat[t0], self.s[t0], self.w.ln2_gain, self.detach)
        return g


# ------------------------------------------------------------ where writes and reads sit


def write_position(kind: str, layer: int) -> int:
    """Order of the residual writes: tokens 0, attention of layer l 2l+1, MLP of layer l 2l+2."""
    return {"tokens": 0, "attn": 2 * layer + 1, "mlp": 2 * layer + 2}[kind]


def read_position(kind: str, layer: int) -> int:
    """A reader sees the writes before it: attention (and attention-side latents) of layer L
    read before 2L+1, the MLP (and MLP-side latents) before 2L+2."""
    return {"attn": 2 * layer + 1, "mlp": 2 * layer + 2}[kind]


def precedes(write_kind: str, write_layer: int, read_kind: str, read_layer: int) -> bool:
    return write_position(write_kind, write_layer) < read_position(read_kind, read_layer)


# --------------------------------------------------------------------------------- in-edges


def in_edge(dst: str, *, layer: int, u: int, write: torch.Tensor, x: torch.Tensor, w: LayerWeights,
            grad: torch.Tensor, detach: bool, ae: Optional[Autoencoder] = None,
            z: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One downstream layer's in-edge attribution from an upstream write (D,) on row u.
    x: the residual the downstream block reads (before ln_1 for attention and attention-side
    latents, before ln_2 for the MLP and MLP-side latents); grad: the loss gradient at the
    downstream activation (attn.qk_probs, attn.v_out, mlp.post_act or the latents)."""
    T = x.shape[0]
    if dst in ("attn_query_in_edge_attribution", "attn_key_in_edge_attribution", "attn_value_in_edge_attribution"):
        # causal: the query row u sees tokens <= u only, so its in-edge needs no later token
        att = Attention(x[: u + 1] if dst == "attn_query_in_edge_attribution" else x, w, detach)
        dq, dk, dv = att.tangents(u, write)
        out = torch.zeros(T, T, w.w_q.shape[0], dtype=x.dtype, device=x.device)
        if dst == "attn_query_in_edge_attribution":
            out[u, : u + 1] = att.dp_query(u, dq) * grad[u, : u + 1]
        elif dst == "attn_key_in_edge_attribution":
            out[u:] = att.dp_key(u, dk) * grad[u:]
        else:
            out[u:, u] = att.p[u:, u] * torch.einsum("qhe,he->qh", grad[u:], dv)
        return out
    if dst == "mlp_in_edge_attribution":
        mlp = MLP(x[u : u + 1], w, detach)  # the MLP acts per row: only row u moves
        out = torch.zeros(T, w.w_in.shape[1], dtype=x.dtype, device=x.device)
        out[u] = mlp.gp[0] * mlp.dpre(0, write) * grad[u]
        return out
    if dst == "online_autoencoder_in_edge_attribution":
        assert ae is not None and z is not None
        out = torch.zeros(T, ae.encoder.shape[0], dtype=x.dtype, device=x.device)
        live = (z > 0).to(x.dtype)
        if ae.input == "mlp_post_act":
            mlp = MLP(x[u : u + 1], w, detach)
            d_in = mlp.gp[0] * mlp.dpre(0, write)
            out[u] = live[u] * (ae.encoder @ d_in) * grad[u]
        elif ae.input == "resid_delta_attn":
            att = Attention(x, w, detach)
            dq, dk, dv = att.tangents(u, write)
            dp = att.dp_key(u, dk)  # rows q >= u
            dp[0, : u + 1] += att.dp_query(u, dq)
            dz = torch.einsum("qkh,khe->qhe", dp, att.v)  # (T-u, H, dh)
            dz += att.p[u:, u, :, None] * dv[None]
            dout = torch.einsum("qhe,hed->qd", dz, w.w_o)
            out[u:] = live[u:] * (dout @ ae.encoder.T) * grad[u:]
        else:
            raise NotImplementedError(ae.input)
        return out
    raise ValueError(dst)


# ------------------------------------------------------------------------------- out-edges


def subnode_gradient(*, kind: str, layer_x: torch.Tensor, w: LayerWeights, index: tuple, grad: torch.Tensor,
                     detach: bool, ae: Optional[Autoencoder] = None, z: Optional[torch.Tensor] = None) -> torch.Tensor:
    """G (T, D): the gradient at the residual before the downstream subnode of act[idx] * grad[idx].
    kind: "q", "k", "v" (index (q0, k0, h0)), "mlp" (t0, n0), "latent" (t0, j)."""
    T, D = layer_x.shape
    if kind in ("q", "k", "v"):
        q0, k0, h0 = index
        att = Attention(layer_x, w, detach)
        abar = torch.zeros(T, D, dtype=layer_x.dtype, device=layer_x.device)
        if kind == "v":
            # f = p[q0,k0,h0] * v[k0,h0] . g[q0,h0]
            vbar = att.p[q0, k0, h0] * grad[q0, h0]
            abar[k0] = w.w_v[h0] @ vbar
        else:
            c = att.p[q0, k0, h0] * grad[q0, k0, h0] * att.scale
            p = att.p[q0, : q0 + 1, h0]
            if kind == "q":
                kbar = att.k[k0, h0] - p @ att.k[: q0 + 1, h0]
                abar[q0] = w.w_q[h0] @ (c * kbar)
            else:
                coef = -p.clone()
                coef[k0] += 1.0
                abar[: q0 + 1] = (c * coef)[:, None] * (w.w_k[h0] @ att.q[q0, h0])[None]
        return att._ln_back(abar, T)
    if kind == "mlp":
        t0, n0 = index
        mlp = MLP(layer_x[t0 : t0 + 1], w, detach)  # per row: only row t0 matters
        pre_bar = torch.zeros(w.w_in.shape[1], dtype=layer_x.dtype, device=layer_x.device)
        pre_bar[n0] = mlp.gp[0, n0] * grad[t0, n0]
        G = torch.zeros(T, D, dtype=layer_x.dtype, device=layer_x.device)
        G[t0] = mlp.grad_from_pre(0, pre_bar, 1)[0]
        return G
    if kind == "latent":
        t0, j = index
        assert ae is not None and z is not None
        c = (z[t0, j] > 0).to(layer_x.dtype) * grad[t0, j]
        if ae.input == "mlp_post_act":
            mlp = MLP(layer_x[t0 : t0 + 1], w, detach)
            G = torch.zeros(T, D, dtype=layer_x.dtype, device=layer_x.device)
            G[t0] = mlp.grad_from_pre(0, mlp.gp[0] * ae.encoder[j] * c, 1)[0]
            return G
        if ae.input == "resid_delta_attn":
            att = Attention(layer_x, w, detach)
            return att.backward_rows(ae.encoder[j] * c, t0)
        raise NotImplementedError(ae.input)
    raise ValueError(kind)


def out_edge(dst: str, *, G: torch.Tensor, act: torch.Tensor, w: Optional[LayerWeights] = None,
             v: Optional[torch.Tensor] = None, ae_write: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Every upstream node of one layer projected onto G (the write family with direction G)."""
    if dst == "attn_out_edge_attribution":
        # p[q,k,h] * (v[k,h] @ W_O[h]) . G[q] = p[q,k,h] * v[k,h] . (W_O[h] @ G[q])
        gh = torch.einsum("hed,qd->qhe", w.w_o, G)  # (T, H, dh)
        return act * torch.einsum("khe,qhe->qkh", v, gh)
    if dst == "mlp_out_edge_attribution":
        return act * (G @ w.w_out.T)
    if dst == "online_autoencoder_out_edge_attribution":
        return act * (G @ ae_write.T)
    if dst == "token_out_edge_attribution":
        return (act * G).sum(-1, keepdim=True)
    raise ValueError(dst)


# ----------------------------------------------------------------------- attention to a latent


def latent_gradient_at_input(z: torch.Tensor, encoder: torch.Tensor, latent: int) -> torch.Tensor:
    """D (T, D): gradient of sum_t z[t, latent] at the autoencoder's input."""
    return (z[:, latent] > 0).to(encoder.dtype)[:, None] * encoder[latent][None, :]


def flatten_lower(x: torch.Tensor) -> torch.Tensor:
    T = x.shape[0]
    q, k = torch.tril_indices(T, T)
    return x[q, k]


def attn_write_to_latent(dst: str, *, p, v, v_out, w_o, z, encoder, latent: Optional[int]) -> torch.Tensor:
    if dst == "flattened_attn_write_to_latent_summed_over_heads_batched":
        m = torch.einsum("khe,hed,jd->khj", v, w_o, encoder)  # (T, H, n_latents)
        T = p.shape[0]
        q, k = torch.tril_indices(T, T)
        out = torch.einsum("nh,nhj->nj", p[q, k], m[k])
        return out * (z[q] > 0).to(out.dtype)
    if dst == "attn_write_to_latent_per_sequence_token_batched":
        m = torch.einsum("qhe,hed,jd->qhj", v_out, w_o, encoder)
        return m * (z > 0).to(m.dtype)[:, None, :]
    D = latent_gradient_at_input(z, encoder, latent)
    if dst == "autoencoder_latent_grad_wrt_residual_input":
        return D
    if dst == "attn_write_to_latent_per_sequence_token":
        return torch.einsum("qhe,hed,qd->qh", v_out, w_o, D)
    gh = torch.einsum("hed,qd->qhe", w_o, D)
    full = p * torch.einsum("khe,qhe->qkh", v, gh)
    if dst == "attn_write_to_latent":
        return full
    summed = full.sum(-1, keepdim=True)
    if dst == "attn_write_to_latent_summed_over_heads":
        return summed
    if dst == "flattened_attn_write_to_latent_summed_over_heads":
        return flatten_lower(summed)
    raise ValueError(dst)
