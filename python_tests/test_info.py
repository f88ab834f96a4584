"""nodewrite.info: the library's tables, read once at import, agree with the header and with what
the library does (each derived scalar's shape rule against derive's output, each node type's
activations against what a deriver reads)."""

import re
from pathlib import Path

import numpy as np
import pytest

import nodewrite as nw
from edge_inputs import EDGE_DSTS, WRITE_FAMILY, edge_args, edge_model_and_store, shape_of

HEADER = (Path(__file__).resolve().parent.parent / "include" / "nodewrite.h").read_text()


def enum_names(enum):
    body = re.search(r"enum %s \{(.*?)\};" % enum, HEADER, re.S).group(1)
    return [int(v) for v in re.findall(r"= (\d+)", body)]


def test_tables_are_in_enum_order_and_complete():
    assert len(nw.NODE_TYPES) == len(enum_names("nw_node_type"))
    assert len(nw.DSTS) == len(enum_names("nw_dst"))
    assert len(nw.ACTIVATIONS) == len(enum_names("nw_activation"))
    assert len(nw.WEIGHTS) == len(enum_names("nw_weight"))
    assert len(nw.DTYPES) == len(enum_names("nw_dtype"))
    assert nw.AUTOENCODER_INPUTS == ("mlp_post_act", "residual", "attn_z")
    for name in nw.NODE_TYPES:
        info = nw.node_type_info(name)
        assert isinstance(info, nw.NodeTypeInfo) and info.name == name
        assert len(info.index_names) == info.n_indices == nw._core.node_type_index_count(name)
        assert all(a in nw.ACTIVATIONS for a in info.activations)
    assert nw.dtype_info("float16").item_size == 2 and nw.dtype_info("float64").item_size == 8
    assert nw.weight_info("unembedding").has_layer is False
    assert nw.weight_info("attn.to_residual").dims == ("heads", "d_head", "d_model")
    assert nw.activation_info("online_mlp_autoencoder_latent").latent_node_type == "mlp_autoencoder_latent"
    assert nw.autoencoder_input_info("attn_z") == nw.AutoencoderInputInfo("attn_z", "head_channels", "attn.to_residual")


@pytest.mark.parametrize("bad", ["mlp", "", None, 3])
def test_unknown_names_are_value_errors(bad):
    for fn in (nw.node_type_info, nw.dst_info, nw.activation_info, nw.weight_info, nw.dtype_info,
               nw.autoencoder_input_info, nw.saelens_hook):
        with pytest.raises(nw.NodeWriteValueError):
            fn(bad)


def test_saelens_hooks():
    h = nw.saelens_hook("blocks.3.attn.hook_z")
    assert h == nw.SAELensHook("attn.hook_z", "attention_autoencoder_latent", "attn_z", "attn_weighted_sum_of_values", 3)
    assert nw.saelens_hook("blocks.0.hook_resid_pre").tdb_input == "resid_post_embedding"
    assert nw.saelens_hook("blocks.2.hook_resid_pre").tdb_input == "resid_post_mlp"
    assert nw.saelens_hook("blocks.1.mlp.hook_post").input == "mlp_post_act"
    assert set(nw.SAELENS_HOOKS) >= {"hook_mlp_out", "mlp.hook_post", "attn.hook_z", "hook_resid_pre"}
    with pytest.raises(nw.NodeWriteValueError):
        nw.saelens_hook("blocks.1.hook_q")


def test_every_dst_shape_rule_is_what_derive_returns():
    T, L, D, H, DH, F, NL = 5, 1, 8, 2, 4, 6, 7
    rng = np.random.default_rng(0)
    m = nw.Model(L, D, H, DH, F)
    s = nw.ActivationStore()
    m.set_weight("mlp.to_residual", 0, rng.standard_normal((F, D)).astype(np.float32))
    m.set_weight("attn.to_residual", 0, rng.standard_normal((H, DH, D)).astype(np.float32))
    sizes = {"one": 1, "tokens": T, "token_pairs": T * (T + 1) // 2, "heads": H, "d_head": DH,
             "d_model": D, "d_ff": F, "latents": NL}
    for name in nw.ACTIVATIONS:
        a = nw.activation_info(name)
        shape = tuple(sizes[d] for d in a.dims)
        x = rng.random(shape, dtype=np.float32)
        if name == "attn.qk_probs":
            x = np.tril(x.transpose(2, 0, 1)).transpose(1, 2, 0).copy()
        s.put(name, 0 if a.has_layer else None, x)
        if a.latent_node_type:
            m.set_autoencoder(a.latent_node_type, 0, rng.standard_normal((NL, D)).astype(np.float32), input="resid_delta_mlp")
    g = rng.standard_normal((T, D)).astype(np.float32)
    for dst in WRITE_FAMILY:
        info = nw.dst_info(dst)
        out = nw.derive(m, s, dst, 0, **({"direction": g} if info.needs_direction else {}))
        assert out.shape == tuple(sizes[d] for d in info.dims), dst
        assert (info.quantity == "projection") == info.needs_direction
        assert info.layout in ("nodes", "unflattened", "flattened", "per_sequence_token", "layer")
        if info.node_type is not None:
            assert set(info.activations) == set(nw.node_type_info(info.node_type).activations)
    for nt in nw.NODE_TYPES:
        info = nw.node_type_info(nt)
        node = nw.NodeIndex(nt, 0, (1,) * info.n_indices)
        assert nw.NodeWriteDeriver(m, node).requirements == tuple((a, 0) for a in info.activations)


def test_every_edge_dst_shape_rule_is_what_derive_returns():
    """The edge and attribution DSTs (through derive's node path): their table rows and shapes."""
    T, NL = 5, 7
    m, s, _ = edge_model_and_store(T=T, n_latents=NL)
    for dst in EDGE_DSTS:
        info = nw.dst_info(dst)
        assert info.quantity in ("in_edge", "out_edge", "gradient", "act_times_grad", "to_latent"), dst
        assert info.layout in ("nodes", "unflattened", "flattened", "per_sequence_token", "residual", "tokens"), dst
        assert not info.needs_direction
        assert info.has_layer == (info.layout != "tokens"), dst
        layer, kw = edge_args(dst)
        out = nw.derive(m, s, dst, layer, **kw)
        assert out.shape == shape_of(m, dst, T, NL), dst
        assert np.isfinite(out).all(), dst
