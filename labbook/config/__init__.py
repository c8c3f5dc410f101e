"""Configuration: config scopes and dicts (``scope``), dotted paths (``paths``), read-only
containers (``containers``), config files (``files``), resolution of a run's config
(``resolve``), what updates changed (``summary``) and the config as text (``text``).

The names below load on first use, so ``import labbook.config`` stays cheap.
"""
from __future__ import annotations

from labbook._lazy import lazy_names

__all__ = ["ConfigScope", "ConfigDict", "load_config_file", "save_config_file",
           "create_captured_function", "chain_evaluate_config_scopes", "dogmatize",
           "undogmatize"]

__getattr__ = lazy_names(globals(), {
    "ConfigScope": "labbook.config.scope",
    "ConfigDict": "labbook.config.scope",
    "load_config_file": "labbook.config.files",
    "save_config_file": "labbook.config.files",
    "chain_evaluate_config_scopes": "labbook.config.scope",
    "dogmatize": "labbook.config.scope",
    "undogmatize": "labbook.config.scope",
    # Sacred's import path for captured functions; they live a layer up (labbook.captured),
    # so this name is resolved by name on first use and config/ itself never imports it
    "create_captured_function": "labbook.captured",
})
