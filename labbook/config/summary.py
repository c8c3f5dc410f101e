"""What the updates did to the defaults: added, modified and type-changed entries."""
from __future__ import annotations

from typing import Any

__all__ = ["ConfigSummary"]


class ConfigSummary(dict):
    """The resolved config plus what changed, by dotted path.

    ``added``: keys set by updates that no config scope defines. ``modified``: keys whose default
    was changed. ``typechanged``: ``{path: (old_type, new_type)}``. ``docs``: doc comments by
    path. Like Sacred's, it is also a dict of the resolved config.
    """

    def __init__(self, config: dict | None = None, added=(), modified=(), typechanged=None,
                 docs=None, ignored_fallbacks=()):
        super().__init__(config or {})
        self.added: set[str] = set(added)
        self.modified: set[str] = set(modified)
        self.typechanged: dict[str, tuple[type, type]] = dict(typechanged or {})
        # docs may be a function producing them: collecting doc comments means tokenizing
        # every scope's source, which only print_config needs.
        self._docs_factory = docs if callable(docs) else None
        self._docs: dict[str, str] | None = None if callable(docs) else dict(docs or {})
        self.ignored_fallbacks: set[str] = set(ignored_fallbacks)

    @property
    def docs(self) -> dict[str, str]:
        if self._docs is None:
            self._docs = dict(self._docs_factory()) if self._docs_factory else {}
        return self._docs

    @docs.setter
    def docs(self, value: dict[str, str]) -> None:
        self._docs = dict(value)

    def status_of(self, path: str) -> str | None:
        """``"added"``, ``"typechanged"``, ``"modified"`` or None for an unchanged entry."""
        if path in self.added:
            return "added"
        if path in self.typechanged:
            return "typechanged"
        if path in self.modified:
            return "modified"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "added": sorted(self.added),
            "modified": sorted(self.modified),
            "typechanged": {k: [a.__name__, b.__name__] for k, (a, b) in
                            sorted(self.typechanged.items())},
        }

    def __repr__(self):
        return (f"ConfigSummary(added={sorted(self.added)}, modified={sorted(self.modified)}, "
                f"typechanged={sorted(self.typechanged)})")
