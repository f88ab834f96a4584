"""Offline TransformerLens / SAELens models for the ecosystem tests (python_tests/test_eco_*.py).

Nothing is downloaded: models are built from a ``HookedTransformerConfig`` with seeded random
weights (every LayerNorm weight and bias and every bias made non-trivial, so that which LN weight
enters where is visible), SAEs from their configs with seeded random weights.
"""

from __future__ import annotations

import copy

import numpy as np

try:
    import torch
    import transformer_lens  # noqa: F401
except Exception:  # pragma: no cover - the tests skip
    torch = None

try:
    import sae_lens  # noqa: F401
except Exception:  # pragma: no cover
    sae_lens = None

CFG = dict(n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=256, d_vocab=100, n_ctx=32, act_fn="gelu", normalization_type="LN")


def tl_config(**overrides):
    from transformer_lens import HookedTransformerConfig

    kw = dict(CFG, seed=0)
    kw.update(overrides)
    return HookedTransformerConfig(**kw)


def randomize_(model, seed: int = 0) -> None:
    """LayerNorm weights ~ 1 + 0.3 N(0,1), LayerNorm and other biases ~ 0.1 N(0,1): the default
    init leaves them 1 and 0, which would hide which of them a formula uses."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and name.split(".")[-1] == "w":
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
            elif name.split(".")[-1].startswith("b"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def tl_model(folded: bool = False, cls=None, seed: int = 0, **overrides):
    """A GPT-2-like HookedTransformer with seeded random weights; folded=True: then processed by
    TL's own ``process_weights_(fold_ln=True, center_writing_weights=True, center_unembed=True)``."""
    from transformer_lens import HookedTransformer

    cls = cls or HookedTransformer
    torch.manual_seed(seed)
    model = cls(tl_config(seed=seed, **overrides))
    randomize_(model, seed)
    model.eval()
    if folded:
        model.process_weights_(fold_ln=True, center_writing_weights=True, center_unembed=True)
    return model


def folded_copy(model):
    """The same model folded by TL (same function, LN weights moved into the next matrices)."""
    m = copy.deepcopy(model)
    m.process_weights_(fold_ln=True, center_writing_weights=True, center_unembed=True)
    return m


def tokens(batch: int = 3, T: int = 12, d_vocab: int = 100, seed: int = 0):
    return torch.randint(0, d_vocab, (batch, T), generator=torch.Generator().manual_seed(seed))


def rel_err(got, want) -> float:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want.detach().cpu().double() if hasattr(want, "detach") else want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


TOL = 1e-5  # the tolerance, relative to the largest magnitude of the reference
