"""nodewrite inside transformer-debugger (TDB): a drop-in for TDB's node-write and
residual-write derivers, computed by the native library.

Usage::

    import nodewrite.tdb
    nodewrite.tdb.install()     # existing TDB code now uses the drop-in
    nodewrite.tdb.uninstall()   # the originals back

:func:`install` replaces, wherever TDB holds them by name (its modules' names and the DST
registry ``make_scalar_derivers._DERIVED_SCALAR_TYPE_REGISTRY``):

- ``node_write.make_node_write_scalar_deriver`` / ``make_node_write_scalar_source`` and the
  ``single_node_write`` registry entry (:mod:`nodewrite.tdb.node_write`);
- the registry factories of the write family (the values of :data:`nodewrite.DSTS` with a
  ``quantity``, norm or projection), and of
  ``single_node_write_to_final_residual_grad`` (:mod:`nodewrite.tdb.write_family`);
- ``postprocessing.TokenWriteConverter`` (:mod:`nodewrite.tdb.token_writes`);
- the registry factories of the edge DSTs: in-edges, ``grad_of_single_subnode_attribution``
  and out-edges, analytic instead of ``torch.func.jvp`` / backward (:mod:`nodewrite.tdb.edges`).

Without patching, call :func:`make_node_write_scalar_deriver` / :func:`make_node_write_scalar_source`
directly (TDB's signatures). ``import nodewrite.tdb`` imports neither TDB nor torch; they are
imported on first use (:mod:`nodewrite.tdb.namespace`). The library serves float32 CPU calls;
other devices and dtypes, and inputs the library refuses, run TDB's formula in torch, and every
other error propagates (:mod:`nodewrite.tdb.torch_fallback`). :data:`stats` says which path
served each call. ``python -m nodewrite.tdb ARGS`` runs TDB's activation server with the
drop-in (:func:`serve`); ``python -m nodewrite.tdb.local`` runs it offline on a local model
(:mod:`nodewrite.tdb.local`, docs/tdb.md).
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

from . import patcher
from .counters import stats
from .models import clear_cache
from .namespace import NODE_WRITE_FUNCTIONS, tdb
from .node_write import make_node_write_scalar_deriver, make_node_write_scalar_source

__all__ = [
    "make_node_write_scalar_deriver",
    "make_node_write_scalar_source",
    "install",
    "uninstall",
    "is_installed",
    "clear_cache",
    "stats",
    "serve",
]

# TDB modules that import the node-write factories by name (`grep -rn make_node_write` in
# TDB): imported before patching, so that what they build at import holds the originals
_IMPORTERS = (
    "neuron_explainer.activations.derived_scalars.edge_attribution",
    "neuron_explainer.activations.derived_scalars.edge_activation",
    "neuron_explainer.activations.derived_scalars.make_scalar_derivers",
)
_DROPINS = {
    "make_node_write_scalar_deriver": make_node_write_scalar_deriver,
    "make_node_write_scalar_source": make_node_write_scalar_source,
}


def is_installed() -> bool:
    """True between :func:`install` and :func:`uninstall`."""
    return patcher.installed()


def install() -> None:
    """Makes existing TDB code use the drop-in (see the module docstring). Idempotent;
    :func:`uninstall` restores the originals."""
    import nodewrite as nw

    from . import edges, token_writes, write_family

    t = tdb()
    with patcher.lock:
        if patcher.installed():
            return
        for name in _IMPORTERS:
            try:
                importlib.import_module(name)
            except ImportError:  # a TDB module that cannot load here: nothing of it to patch
                pass
        registry = t.msd._DERIVED_SCALAR_TYPE_REGISTRY
        for name in NODE_WRITE_FUNCTIONS:
            patcher.replace(t.original[name], _DROPINS[name], mappings=(registry,))
        for value in nw.DSTS:
            if nw.dst_info(value).quantity not in write_family.QUANTITIES:
                continue  # an edge DST (below), not the write family
            key = t.DerivedScalarType(value)
            if key in registry:
                patcher.set_item(registry, key, write_family.make_factory(value, registry[key]))
        for value in edges.FACTORIES:
            key = t.DerivedScalarType(value)
            if key in registry:
                patcher.set_item(registry, key, edges.make_factory(value, registry[key]))
        key = t.DerivedScalarType(write_family.NODE_WRITE_TO_DIRECTION)
        if key in registry:
            original = registry[key]
            replacement = write_family.make_node_write_to_direction_factory(original)
            patcher.set_item(registry, key, replacement)
            patcher.replace(original, replacement)
        patcher.replace(t.postprocessing.TokenWriteConverter, token_writes.converter_class())


def uninstall() -> None:
    """Restores everything :func:`install` replaced, and the names that TDB modules imported
    while it was installed took from it."""
    patcher.restore_all()


def serve(argv: Optional[Sequence[str]] = None) -> None:
    """Installs the drop-in, then runs TDB's activation server
    (``neuron_explainer/activation_server/main.py``) in this process with ``argv`` (default
    ``sys.argv[1:]``): ``python -m nodewrite.tdb --model_name gpt2-small --port 8000`` takes
    the arguments of ``python neuron_explainer/activation_server/main.py``. That route needs
    what TDB's server needs (its packages, ``OPENAI_API_KEY``, the model download); the offline
    route on a local model is ``python -m nodewrite.tdb.local`` (docs/tdb.md)."""
    install()
    import fire
    from neuron_explainer.activation_server import main as server

    args = sys.argv[1:] if argv is None else list(argv)
    sys.argv = [server.__file__, *args]
    fire.Fire(server.main)
