"""What the updates did to the defaults: added, modified and type-changed entries."""
from __future__ import annotations

from typing import Any


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
        self.docs: dict[str, str] = dict(docs or {})
        self.ignored_fallbacks: set[str] = set(ignored_fallbacks)

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
