"""Model(..., layer_norm_epsilon=, mlp_activation=): the edges' model facts through the binding."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nodewrite as nw

DIMS = (2, 8, 2, 4, 16)


def test_defaults_are_tdbs():
    m = nw.Model(*DIMS)
    assert m.layer_norm_epsilon == 1e-5
    assert m.mlp_activation == "gelu_tanh"


@pytest.mark.parametrize("act", ["gelu_tanh", "gelu_erf", "relu"])
def test_keywords_round_trip(act):
    m = nw.Model(*DIMS, layer_norm_epsilon=1e-12, mlp_activation=act)
    assert m.layer_norm_epsilon == 1e-12
    assert m.mlp_activation == act
    assert nw.Model(*DIMS, layer_norm_epsilon=np.float32(1e-6)).layer_norm_epsilon == float(np.float32(1e-6))
    assert nw.Model(*DIMS, layer_norm_epsilon=1).layer_norm_epsilon == 1.0


@pytest.mark.parametrize("bad", [0.0, -1e-5, math.nan, math.inf, 1e-50, 1e300])
def test_bad_epsilons_are_refused(bad):
    with pytest.raises(nw.NodeWriteValueError, match="layer_norm_epsilon"):
        nw.Model(*DIMS, layer_norm_epsilon=bad)


@pytest.mark.parametrize("bad", [True, "1e-5", None, 1j])
def test_epsilon_of_another_type_is_refused(bad):
    with pytest.raises(nw.NodeWriteValueError, match="layer_norm_epsilon"):
        nw.Model(*DIMS, layer_norm_epsilon=bad)


@pytest.mark.parametrize("bad", ["gelu", "gelu_new", "silu", "", 0])
def test_unknown_activations_are_refused_naming_the_choices(bad):
    with pytest.raises(nw.NodeWriteValueError, match="mlp_activation"):
        nw.Model(*DIMS, mlp_activation=bad)


def test_positional_use_is_refused():
    with pytest.raises(TypeError):
        nw.Model(*DIMS, True, 1e-5)
