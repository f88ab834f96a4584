"""Which path served the drop-in's calls.

``stats`` (also ``nodewrite.tdb.stats``) counts, since import: derive calls served by the
library ("native"), by the torch fallback ("torch": another device or dtype, or an input the
library refused), by TDB's own deriver ("original": ``derive_gradients`` or ``trace_config``
set on a write-family value), and ``nodewrite.Model`` objects built ("models_built"). A plain
dict: set its values to 0 to reset.
"""

from __future__ import annotations

stats: dict[str, int] = {"native": 0, "torch": 0, "original": 0, "models_built": 0}
