"""Names a package exports without importing their modules until first use (PEP 562), so that
``import labbook`` stays cheap."""
from __future__ import annotations

import importlib
from typing import Any, Callable

__all__ = ["lazy_names"]


def lazy_names(namespace: dict[str, Any], targets: dict[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for the module whose ``globals()`` is ``namespace``:
    ``targets`` maps a name to ``"module"`` (the same name in that module) or
    ``"module:attribute"``. The value is imported on first access and kept in ``namespace``."""
    module_name = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        target = targets.get(name)
        if target is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        module, _, attribute = target.partition(":")
        value = getattr(importlib.import_module(module), attribute or name)
        namespace[name] = value
        return value
    return __getattr__
