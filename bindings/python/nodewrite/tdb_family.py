"""Deprecated: the write-family drop-in is part of :mod:`nodewrite.tdb` (installed and removed
by ``nodewrite.tdb.install()`` / ``uninstall()``; code in ``nodewrite.tdb.write_family`` and
``nodewrite.tdb.token_writes``). This alias module is kept for one release."""

from __future__ import annotations

import warnings
from typing import Any

from .tdb import install, is_installed, stats, uninstall

warnings.warn(
    "nodewrite.tdb_family is deprecated: use nodewrite.tdb (install, uninstall, is_installed, stats)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["install", "uninstall", "is_installed", "TokenWriteConverter", "stats"]


def __getattr__(name: str) -> Any:
    if name == "TokenWriteConverter":
        from .tdb.token_writes import converter_class

        return converter_class()
    raise AttributeError(name)
