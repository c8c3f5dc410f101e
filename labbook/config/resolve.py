"""Resolve the configuration of a whole ingredient tree.

Fixed order: explicit updates are distributed to the ingredient that owns each key; named
configs run (later ones win, explicit updates win over all) and become fixed values; then every
ingredient's config scopes run, deepest ingredient first so a parent can read its ingredients'
config; each ingredient's config hooks run right after its scopes; finally the root gets its
``seed``. The result is a plain nested dict plus a :class:`ConfigSummary`.

Ingredient configs live at the ingredient's ``path`` from the root of the config (as in
Sacred): ``Ingredient("dataset")`` puts its entries under ``config["dataset"]`` wherever in the
tree it is used.
"""
from __future__ import annotations

import logging
import os
import random
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from labbook.config.paths import dict_merge, get_path, iter_paths, set_path
from labbook.config.summary import ConfigSummary
from labbook.errors import ConfigAddedError, ConfigError, NamedConfigNotFoundError
from labbook.records import Fields

if TYPE_CHECKING:
    from labbook.ingredient import Ingredient

__all__ = ["SEED_RANGE", "new_seed", "ResolvedConfig", "nest_updates", "resolve_config"]

SEED_RANGE = (1, 10**9)  # Sacred's: a seed labbook picks is one Sacred could have picked
_CONFIG_FILE_EXTENSIONS = (".json", ".yaml", ".yml", ".pickle", ".pkl")
_MISSING = object()


def new_seed() -> int:
    """A fresh random seed (from the OS's entropy, independent of the seeded ``random``)."""
    return random.SystemRandom().randint(*SEED_RANGE)


class ResolvedConfig(Fields):
    """A run's resolved config, its summary and seed; ``fixtures``: per ingredient path, its
    config plus the configs of the ingredients it uses."""

    __slots__ = ("config", "summary", "seed", "fixtures")

    def __init__(self, config: dict, summary: ConfigSummary, seed: int,
                 fixtures: dict[str, dict] | None = None) -> None:
        self.config = config
        self.summary = summary
        self.seed = seed
        self.fixtures = {} if fixtures is None else fixtures


def nest_updates(updates: dict | None) -> dict:
    """``{"a.b": 1, "c": {"d.e": 2}}`` -> ``{"a": {"b": 1}, "c": {"d": {"e": 2}}}``."""
    nested: dict = {}
    for key, value in (updates or {}).items():
        if not isinstance(key, str):
            raise ConfigError(f"Config update keys must be strings, got {key!r}.", key=str(key))
        if isinstance(value, dict):
            value = nest_updates(value)
        if "." in key:
            existing = get_path(nested, key, _MISSING)
            if isinstance(existing, dict) and isinstance(value, dict):
                value = dict_merge(existing, value)
            set_path(nested, key, value)
        elif isinstance(nested.get(key), dict) and isinstance(value, dict):
            nested[key] = dict_merge(nested[key], value)
        else:
            nested[key] = value
    return nested


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix and key else (prefix or key)


def _ingredients_in_order(root: Ingredient) -> list[Ingredient]:
    """Every ingredient once, deepest first (so children resolve before their users)."""
    depth: dict[int, int] = {}
    by_id: dict[int, Ingredient] = {}
    for ingredient, d in root.traverse_ingredients():
        by_id[id(ingredient)] = ingredient
        depth[id(ingredient)] = max(d, depth.get(id(ingredient), 0))
    order = sorted(by_id, key=lambda i: -depth[i])
    return [by_id[i] for i in order]


def _split_updates(updates: dict, paths: Sequence[str]) -> dict[str, dict]:
    """Give every ingredient path the part of the nested updates below it."""
    remaining = dict_merge({}, updates)
    out: dict[str, dict] = {}
    for path in sorted((p for p in paths if p), key=lambda p: -p.count(".")):
        sub = get_path(remaining, path, _MISSING)
        if sub is _MISSING:
            out[path] = {}
            continue
        if not isinstance(sub, dict):
            raise ConfigError(
                f"'{path}' is an ingredient; update its entries ('{path}.key=value') instead of "
                f"replacing it with {sub!r}.", key=path)
        out[path] = sub
        parent, _, leaf = path.rpartition(".")
        container = get_path(remaining, parent) if parent else remaining
        del container[leaf]
    out[""] = remaining
    return out


def _is_config_file(name: str) -> bool:
    return name.lower().endswith(_CONFIG_FILE_EXTENSIONS) and (
        os.sep in name or "/" in name or os.path.exists(name))


def _find_named_config(name: str, ingredients: Iterable[Ingredient], root: Ingredient):
    """Return ``(ingredient, config)`` for a (dotted) named config name or a config file."""
    if _is_config_file(name):
        from labbook.config.files import load_config_file
        from labbook.config.scope import ConfigDict

        return root, ConfigDict(load_config_file(name))
    for ingredient in sorted(ingredients, key=lambda i: -len(_path(i, root))):
        prefix = _path(ingredient, root) + "." if _path(ingredient, root) else ""
        if name.startswith(prefix) or not prefix:
            local = name[len(prefix):]
            if local in ingredient.named_configs:
                return ingredient, ingredient.named_configs[local]
    available = [n for n, _ in root.gather_named_configs()]
    raise NamedConfigNotFoundError(name, available)


def _path(ingredient: Ingredient, root: Ingredient) -> str:
    return "" if ingredient is root else ingredient.config_path


def _same_kind(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return True
    if isinstance(old, bool) or isinstance(new, bool):
        return type(old) is type(new)
    numbers = (int, float)
    if isinstance(old, numbers) and isinstance(new, numbers):
        return True
    if isinstance(old, dict) and isinstance(new, dict):
        return True
    if isinstance(old, list | tuple) and isinstance(new, list | tuple):
        return True
    return type(old) is type(new)


def resolve_config(root: Ingredient, command_name: str | None = None,
                   config_updates: dict | None = None, named_configs: Sequence[str] = (),
                   force: bool = False, logger: logging.Logger | None = None,
                   scope_logger: logging.Logger | None = None) -> ResolvedConfig:
    """Resolve the config of ``root`` and its ingredients; see the module docstring.
    ``logger`` gets the warnings; config scopes' ``_log`` is ``scope_logger`` (default:
    ``logger``) for the experiment and its child named after the path for an ingredient."""
    from labbook.config.scope import normalize_value

    logger = logger or logging.getLogger("labbook")
    ingredients = _ingredients_in_order(root)
    paths = [ing.config_path if ing is not root else "" for ing in ingredients]
    path_of = {id(ing): p for ing, p in zip(ingredients, paths)}

    explicit = nest_updates(config_updates)
    for key, value in list(explicit.items()):
        explicit[key] = normalize_value(value, key)
    explicit_by_path = _split_updates(explicit, paths)

    # Named configs: evaluated with the explicit updates fixed; later ones win.
    # Like Sacred, a named config reads (as preset) what the named configs before it set for
    # its ingredient, and a config scope may take ``_log``, its ingredient's logger.
    def log_for(path: str) -> logging.Logger:
        base = scope_logger or logger
        return base.getChild(path) if path else base

    named_total: dict = {}
    doc_sources: list[tuple[str, Any, bool]] = []
    for name in named_configs:
        ingredient, ncfg = _find_named_config(name, ingredients, root)
        path = path_of.get(id(ingredient), "")
        preset = _split_updates(named_total, paths).get(path, {})
        result = ncfg(fixed=explicit_by_path.get(path, {}), preset=preset,
                      fallback={"_log": log_for(path)})
        values = result.values
        if path:
            values = {}
            set_path(values, path, result.values)
        named_total = dict_merge(named_total, values)
        doc_sources.append((path, result.docs, True))
    fixed_by_path = _split_updates(dict_merge(named_total, explicit), paths)

    configs: dict[str, dict] = {}
    overridden: dict[str, Any] = {}
    assigned_by_path: dict[str, bool] = {}
    hook_changes: dict[str, Any] = {}
    for ingredient, path in zip(ingredients, paths):
        fixed = fixed_by_path.get(path, {})
        fallback = _fixture({}, ingredient, path, configs, path_of)
        fallback["_log"] = log_for(path)
        values: dict = dict_merge({}, fixed)
        preset: dict = {}
        defined: dict[str, None] = {}
        for scope in ingredient.configurations:
            result = scope(fixed=fixed, preset=preset, fallback=fallback)
            preset = result.values
            values = result.values
            defined.update(dict.fromkeys(k for k in result.order if k in values))
            for key, old in result.overridden.items():
                overridden.setdefault(_join(path, key), old)
            doc_sources.append((path, result.docs, False))
        # An entry stays where its scope defines it; updates to keys no scope defines follow.
        values = {k: values[k] for k in {**defined, **dict.fromkeys(values)} if k in values}
        assigned_by_path[path] = bool(ingredient.configurations)
        configs[path] = values
        if ingredient.config_hooks:
            whole = _assemble(configs)
            for hook in ingredient.config_hooks:
                changes = hook(whole, command_name, logger)
                if changes is None:
                    continue
                if not isinstance(changes, dict):
                    raise ConfigError(
                        f"Config hook {getattr(hook, '__name__', hook)} must return a dict of "
                        f"updates, got {type(changes).__name__}.")
                changes = normalize_value(nest_updates(changes), "config hook result")
                for key, value in iter_paths(changes):
                    hook_changes[_join(path, key)] = value
                values = dict_merge(values, changes)
                configs[path] = values
                whole = _assemble(configs)

    config = _assemble(configs)
    seed = config.get("seed")
    if seed is None:
        seed = new_seed()
        config["seed"] = seed
    elif not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"The config entry 'seed' must be an integer, got {seed!r}.",
                          key="seed")

    def docs() -> dict[str, str]:
        collected: dict[str, str] = {}
        for path, scope_docs, named in doc_sources:
            for key, doc in scope_docs.items():
                if named:
                    collected[_join(path, key)] = doc
                else:
                    collected.setdefault(_join(path, key), doc)
        return collected

    summary = _summarize(config, fixed_by_path, overridden, docs, hook_changes)
    _check_changes(root, summary, config, force, _sacred_warner(paths, log_for))
    fixtures = {path: _fixture(configs[path], ing, path, configs, path_of)
                for ing, path in zip(ingredients, paths) if path}
    return ResolvedConfig(config=config, summary=summary, seed=seed, fixtures=fixtures)


def _descendants(ingredient: Ingredient) -> list[Ingredient]:
    seen: dict[int, Ingredient] = {}
    stack = list(ingredient.ingredients)
    while stack:
        current = stack.pop()
        if id(current) not in seen:
            seen[id(current)] = current
            stack.extend(current.ingredients)
    return list(seen.values())


def _fixture(own: dict, ingredient: Ingredient, path: str, configs: dict[str, dict],
             path_of: dict[int, str]) -> dict:
    """``own`` plus the configs of the ingredients it uses (directly or not), each placed at
    its path relative to ``path`` when nested under it, else at its own path. This is what
    the ingredient's config scopes (as fallback) and captured functions can read."""
    fixture = dict_merge({}, own)
    subs = [(path_of[id(sub)], sub) for sub in _descendants(ingredient) if id(sub) in path_of]
    for sub_path, _ in sorted(subs, key=lambda item: item[0]):
        if sub_path not in configs or not sub_path:
            continue
        rel = sub_path[len(path) + 1:] if path and sub_path.startswith(path + ".") else sub_path
        existing = get_path(fixture, rel, _MISSING)
        value = configs[sub_path]
        if isinstance(existing, dict):
            value = dict_merge(existing, value)
        set_path(fixture, rel, value)
    return fixture


def _assemble(configs: dict[str, dict]) -> dict:
    whole = dict_merge({}, configs.get("", {}))
    for path in sorted(p for p in configs if p):
        existing = get_path(whole, path, _MISSING)
        value = configs[path]
        if isinstance(existing, dict):
            value = dict_merge(existing, value)
        set_path(whole, path, value)
    return whole


def _summarize(config: dict, fixed_by_path: dict[str, dict], overridden: dict[str, Any],
               docs: Any, hook_changes: dict[str, Any]) -> ConfigSummary:
    added: set[str] = set()
    modified: set[str] = set()
    typechanged: dict[str, tuple[type, type]] = {}
    for path, fixed in fixed_by_path.items():
        for key, new in iter_paths(fixed):
            full = _join(path, key)
            if full == "seed":
                modified.add(full)
                continue
            if full in overridden:
                old = overridden[full]
                if old != new:
                    modified.add(full)
                if not _same_kind(old, new):
                    typechanged[full] = (type(old), type(new))
                continue
            parent = next((p for p in _prefixes(full) if p in overridden), None)
            if parent is None:
                added.add(full)
                continue
            old = overridden[parent]
            modified.add(full)
            if not isinstance(old, dict):
                typechanged[parent] = (type(old), dict)
    for full in hook_changes:
        if full not in added:
            modified.add(full)
    return ConfigSummary(config, added=added, modified=modified, typechanged=typechanged,
                         docs=docs)


def _prefixes(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def _sacred_warner(paths: Sequence[str], log_for: Callable[[str], logging.Logger]
                   ) -> Callable[..., None]:
    """``warn(message, path, *args)``: as Sacred, on the logger of the ingredient the entry
    belongs to (the base logger for the experiment's), with the path inside that ingredient.
    ``warn.owners`` are the ingredient paths in the order their warnings come."""
    ingredient_paths = sorted((p for p in paths if p), key=len, reverse=True)

    def owner(path: str) -> str:
        return next((p for p in ingredient_paths if path.startswith(p + ".")), "")

    def warn(message: str, path: str, *args: Any) -> None:
        own = owner(path)
        log_for(own).warning(message, path[len(own) + 1:] if own else path, *args)
    warn.owner = owner  # type: ignore[attr-defined]
    warn.owners = list(dict.fromkeys(paths))  # type: ignore[attr-defined]
    return warn


def _check_changes(root: Ingredient, summary: ConfigSummary, config: dict, force: bool,
                   warn: Any) -> None:
    # As in Sacred: an added entry is used when it or one of its parents is a path a captured
    # function reads (its ingredient's path, its prefix and the argument name). Sacred's
    # order: ingredient by ingredient (the experiment last), used added entries, then
    # changed types.
    used = root.captured_arg_paths()
    unused = sorted(p for p in summary.added if not {p, *_prefixes(p)} & used)
    for own in warn.owners:
        for path in sorted(summary.added):
            if path not in unused and warn.owner(path) == own:
                warn('Added new config entry: "%s"', path)
        for path, (old, new) in sorted(summary.typechanged.items()):
            if warn.owner(path) == own:
                warn('Changed type of config entry "%s" from %s to %s', path, old.__name__,
                     new.__name__)
    if not unused:
        return
    if force:
        for path in unused:
            warn('Added new config entry "%s" that is not used anywhere', path)
        return
    known = set()
    for key, _ in iter_paths(config):
        known.add(key)
        known.update(_prefixes(key))
    known -= summary.added
    raise ConfigAddedError(unused, known, config)
