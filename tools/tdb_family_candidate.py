"""Candidate for tools/bench_tdb_family.py: nodewrite's write-family drop-in (nodewrite.tdb's
write_family and token_writes) inside TDB's own pipeline.

    NODEWRITE_TDB_SRC=/path/to/transformer-debugger python tools/bench_tdb_family.py \
        --candidate tdb_family_candidate:candidate [--dense-grad]

For each case the deriver (or the converter class) is built with the drop-in installed, then
the drop-in is uninstalled before the bench builds TDB's original, so the two run side by side
in one process: ``make_scalar_deriver(dst, env.dst_config).derive_from_raw(env.raw_store,
PassType.FORWARD)`` exactly as the bench times TDB, and for ``token_write_converter`` the
creation of ``TokenWriteConverter(model_context, None)``.
"""

from __future__ import annotations

from typing import Any, Callable


def candidate(case: str, env: Any) -> Callable[[], Any] | None:
    import nodewrite.tdb as ntdb
    from neuron_explainer.activations.derived_scalars import postprocessing
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import DerivedScalarType
    from neuron_explainer.activations.derived_scalars.make_scalar_derivers import make_scalar_deriver
    from neuron_explainer.models.model_component_registry import PassType

    ntdb.install()
    try:
        if case == "token_write_converter":
            cls = postprocessing.TokenWriteConverter  # the drop-in class
            return lambda: cls(env.model_context, None)
        deriver = make_scalar_deriver(DerivedScalarType(case), env.dst_config)
    finally:
        ntdb.uninstall()

    def run():
        return deriver.derive_from_raw(env.raw_store, PassType.FORWARD).activations_by_layer_index[env.layer]

    return run
