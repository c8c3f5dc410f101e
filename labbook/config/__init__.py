"""Configuration: config scopes and dicts (``scope``), dotted paths (``paths``), read-only
containers (``containers``), config files (``files``), resolution of a run's config
(``resolve``), what updates changed (``summary``) and the config as text (``text``).

The names below load on first use, so ``import labbook.config`` stays cheap.
"""
from __future__ import annotations

from typing import Any

__all__ = ["ConfigScope", "ConfigDict", "load_config_file", "save_config_file"]

_LAZY = {
    "ConfigScope": "labbook.config.scope",
    "ConfigDict": "labbook.config.scope",
    "load_config_file": "labbook.config.files",
    "save_config_file": "labbook.config.files",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'labbook.config' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
