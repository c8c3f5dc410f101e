"""Config scopes: a function body whose local variables become config entries.

``@ex.config`` wraps a function in a :class:`ConfigScope`. Nothing is read or run at that
point; the first call reads the function's source, compiles its *body* (keeping the user's file
name and line numbers, so errors point at the user's code) and caches the code object.

The body runs in a namespace that enforces *fixed* values (config updates, named configs):
assignments to a fixed key are ignored, so every later line sees the fixed value. Nested dicts
assigned to a fixed key are merged with the fixed sub-keys and guarded the same way. After the
body ran, the fixed values are laid over the result once more, so in-place mutation cannot defeat
them. Comments next to assignments become the entries' documentation.

:class:`ConfigDict` offers the same call interface for plain dicts (``ex.add_config``), and
:func:`normalize_value` turns any config value into something that can be stored.
"""
from __future__ import annotations

import __future__
import ast
import builtins
import inspect
import io
import tokenize
import types
import weakref
from collections import Counter
from typing import Any, Callable, Iterable, Mapping

from labbook.config.paths import dict_merge, has_path, join_path
from labbook.errors import (ConfigError, ConfigScopeArgumentError, InvalidConfigKeyError,
                            UnserializableConfigError)
from labbook.records import Fields
from labbook.serialize import copy_plain, unencodable

__all__ = ["ScopeResult", "normalize_value", "Recorder", "ConfigScope", "ConfigDict", "dogmatize",
           "undogmatize", "chain_evaluate_config_scopes"]

_MISSING = object()

# The body is compiled with the __future__ features of the user's module (not of this one).
_FUTURE_FLAGS = 0
for _feature in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _feature).compiler_flag

_PLAIN_TYPES = (str, int, float, bool, type(None))

# Tool directives are not documentation ("x = 1  # noqa").
_PRAGMAS = ("noqa", "type:", "pragma", "pylint:", "fmt:", "isort:", "nosec")


class ScopeResult(Fields):
    """What running a config scope (or a :class:`ConfigDict`) produced: ``values``, the
    resulting config entries (plain nested dicts/lists), fixed values included; ``docs``, doc
    comments by (dotted) key, for entries present in ``values``; ``overridden``, dotted path
    -> the value the scope assigned but a fixed value overrode; ``assigned``, the top-level
    names the scope itself assigned, and ``order``, the same names in the order the scope
    assigned them first."""

    __slots__ = ("values", "docs", "overridden", "assigned", "order")

    def __init__(self, values: dict | None = None, docs: dict[str, str] | None = None,
                 overridden: dict[str, Any] | None = None, assigned: set[str] | None = None,
                 order: list[str] | None = None) -> None:
        self.values = {} if values is None else values
        self.docs = {} if docs is None else docs
        self.overridden = {} if overridden is None else overridden
        self.assigned = set() if assigned is None else assigned
        self.order = [] if order is None else order

    # Read like Sacred's ConfigSummary (a dict of the entries): ``dict(result)``,
    # ``result["lr"]``, ``result.keys()``, ``result.items()``, ``result.get("lr")``.
    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def keys(self) -> Any:
        return self.values.keys()

    def items(self) -> Any:
        return self.values.items()

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


# --- value normalisation ----------------------------------------------------------------------

def normalize_value(value: Any, key: str) -> Any:
    """Return ``value`` as a storable config value; ``key`` is its dotted path (for errors).

    Dicts and lists are copied (tuples become lists) and checked recursively; numpy scalars and
    arrays become Python numbers and nested lists. Other objects are kept if jsonpickle can
    encode and restore them (and they can be copied). Raises
    :class:`~labbook.errors.InvalidConfigKeyError` for a bad dict key and
    :class:`~labbook.errors.UnserializableConfigError` for a value that cannot be stored.
    """
    return _normalize(value, key, set())


def _normalize(value: Any, path: str, active: set[int]) -> Any:
    kind = type(value)
    if kind in _PLAIN_TYPES:
        if kind is str and not value.isascii():
            _check_text(value, path)
        elif kind is int and value.bit_length() > _BIG_INT_BITS:
            _check_int(value, path)
        return value
    if isinstance(value, Mapping):
        with _Visiting(value, path, active):
            out = {}
            for key, item in value.items():
                _check_key(key, path)
                # a plain leaf needs no path (the path is for error messages)
                out[key] = item if _plain_leaf(item) else \
                    _normalize(item, join_path(path, key), active)
            return out
    if isinstance(value, list | tuple):
        with _Visiting(value, path, active):
            return [item if _plain_leaf(item) else _normalize(item, f"{path}[{i}]", active)
                    for i, item in enumerate(value)]
    # numpy is recognised by its module so that labbook never has to import it.
    if kind.__module__ == "numpy" and hasattr(value, "tolist"):
        return _normalize(value.tolist(), path, active)
    return _check_storable(value, path)


def _plain_leaf(value: Any) -> bool:
    """A value :func:`_normalize` returns as it is without any check to make."""
    kind = type(value)
    if kind is str:
        return value.isascii()
    if kind is int:
        return value.bit_length() <= _BIG_INT_BITS
    return kind is float or kind is bool or value is None


class _Visiting:
    """Context manager that detects a container which (indirectly) contains itself."""

    def __init__(self, value: Any, path: str, active: set[int]):
        self.ident, self.value, self.path, self.active = id(value), value, path, active

    def __enter__(self) -> None:
        if self.ident in self.active:
            raise UnserializableConfigError(self.path or "(config)", self.value,
                                            "it contains itself")
        self.active.add(self.ident)

    def __exit__(self, *exc: object) -> None:
        self.active.discard(self.ident)


#: integers beyond this many bits may exceed Python's int-to-text limit (checked exactly then)
_BIG_INT_BITS = 4000


def _check_text(value: str, path: str) -> None:
    bad = unencodable(value)
    if bad is not None:
        raise UnserializableConfigError(
            path or "(config)", value, f"character {bad} of the text is a lone surrogate "
            "(Python decodes bytes that are not UTF-8 so), which no store can write as UTF-8; "
            "decode the bytes yourself, e.g. with errors='backslashreplace'")


def _check_int(value: int, path: str) -> None:
    try:
        str(value)
    except ValueError:
        raise UnserializableConfigError(
            path or "(config)", value, f"an integer of {value.bit_length()} bits is beyond "
            "Python's limit for integers as text (sys.get_int_max_str_digits()), so it can be "
            "neither printed nor stored") from None


def _check_key(key: Any, parent: str) -> None:
    if not isinstance(key, str):
        where = f"'{parent}'" if parent else "the config"
        raise InvalidConfigKeyError(
            f"Invalid config key {key!r} in {where}: keys must be strings, got "
            f"{type(key).__name__}.", key=join_path(parent, str(key)))
    full = join_path(parent, key)
    bad = unencodable(key)
    if bad is not None:
        raise InvalidConfigKeyError(
            f"Invalid config key {full!r}: character {bad} is a lone surrogate (from bytes that "
            "are not UTF-8), which no store can write.", key=full)
    if "." in key:
        raise InvalidConfigKeyError(
            f"Invalid config key '{full}': keys must not contain '.' (use a nested dict "
            "instead).", key=full)
    if key.startswith("$"):
        raise InvalidConfigKeyError(
            f"Invalid config key '{full}': keys must not start with '$' (reserved by the "
            "database stores).", key=full)


def _check_storable(value: Any, path: str) -> Any:
    """Keep ``value`` if it survives a jsonpickle round trip and can be copied."""
    import copy
    import json

    from labbook import serialize

    key = path or "(config)"
    typename = type(value).__name__
    try:
        encoded = json.dumps(serialize.flatten(value, exact=True))
    except Exception as exc:
        raise UnserializableConfigError(
            key, value, f"jsonpickle cannot encode it ({type(exc).__name__}: {exc})") from exc
    try:
        decoded = serialize.restore(json.loads(encoded))
    except Exception as exc:
        raise UnserializableConfigError(
            key, value, f"jsonpickle cannot restore it ({type(exc).__name__}: {exc})") from exc
    if type(decoded) is not type(value):
        raise UnserializableConfigError(
            key, value, f"jsonpickle restores it as {type(decoded).__name__}, not {typename}")
    # Configs are copied on their way to runs and named configs; jsonpickle happily "restores"
    # things like locks as brand-new objects, but they refuse to be copied.
    try:
        copy.deepcopy(value)
    except Exception as exc:
        raise UnserializableConfigError(
            key, value, f"it cannot be copied ({type(exc).__name__}: {exc})") from exc
    return value


def _try_normalize(value: Any, path: str) -> Any:
    try:
        return normalize_value(value, path)
    except ConfigError:
        return value


def _is_entry(name: str, value: Any) -> bool:
    """Whether a local variable of a scope body is a config entry."""
    if name.startswith("_"):
        return False
    if type(value) in _ENTRY_TYPES:
        return True
    return not (isinstance(value, types.ModuleType | type) or inspect.isroutine(value))


#: values that are always entries (the common case, answered without inspect)
_ENTRY_TYPES = frozenset({str, int, float, bool, type(None), list, dict, tuple})


# --- fixed values -----------------------------------------------------------------------------

Recorder = Callable[[str, Any], None]


def _record_conflicts(value: Mapping, fixed: Mapping, path: str, record: Recorder) -> None:
    """Report, for every fixed path that ``value`` also sets, what ``value`` wanted there."""
    for key, fixed_value in fixed.items():
        if key not in value:
            continue
        mine, sub = value[key], join_path(path, key)
        if isinstance(fixed_value, dict) and isinstance(mine, Mapping):
            _record_conflicts(mine, fixed_value, sub, record)
        else:
            record(sub, mine)


def _guard(merged: dict, fixed: dict, path: str, record: Recorder) -> _FixedDict:
    """Wrap an already merged dict so that later writes cannot change its fixed keys."""
    guarded = _FixedDict(fixed, path, record)
    for key, value in merged.items():
        sub_fixed = fixed.get(key)
        if isinstance(sub_fixed, dict) and isinstance(value, dict):
            value = _guard(value, sub_fixed, join_path(path, key), record)
        dict.__setitem__(guarded, key, value)
    return guarded


def _store(target: dict, key: Any, value: Any, fixed: Mapping, path: str,
           record: Recorder) -> None:
    """``target[key] = value`` unless fixed; a dict over a fixed dict is merged under it."""
    fixed_value = fixed.get(key, _MISSING) if isinstance(key, str) else _MISSING
    if fixed_value is _MISSING:
        dict.__setitem__(target, key, value)
        return
    sub = join_path(path, key)
    if isinstance(fixed_value, dict) and isinstance(value, Mapping):
        _record_conflicts(value, fixed_value, sub, record)
        dict.__setitem__(target, key,
                         _guard(dict_merge(value, fixed_value), fixed_value, sub, record))
    else:
        record(sub, value)


class _FixedDict(dict):
    """A dict assigned in a scope body below a fixed path: fixed keys ignore writes."""

    def __init__(self, fixed: dict | None = None, path: str = "",
                 record: Recorder | None = None):
        super().__init__()
        self._fixed = fixed or {}
        self._path = path
        self._record = record or (lambda path, value: None)

    def __setitem__(self, key: Any, value: Any) -> None:
        _store(self, key, value, self._fixed, self._path, self._record)

    def __delitem__(self, key: Any) -> None:
        if key not in self._fixed:
            dict.__delitem__(self, key)

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def __ior__(self, other: Any) -> _FixedDict:  # type: ignore[override]
        self.update(other)
        return self

    # Copies made in the body are plain dicts: the guard belongs to the scope's own value.
    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: dict) -> dict:
        import copy

        return copy.deepcopy(dict(self), memo)

    def __reduce__(self) -> tuple:
        return dict, (dict(self),)


class _ScopeNamespace(dict):
    """The mapping a scope body runs in, as both its globals and its locals.

    CPython stores and loads names through the mapping protocol when the namespace is not an
    exact dict, so ``__setitem__`` can refuse fixed keys and ``__missing__`` can supply readable
    values (the fallback, parameter defaults, the closure, the module globals). Using it as the
    globals too makes entries visible inside comprehensions and lambdas of the body, which see
    only globals.
    """

    def __init__(self, fixed: dict, lookups: Iterable[Mapping], record: Recorder):
        super().__init__()
        self._fixed = fixed
        self._lookups = list(lookups)
        self._record = record
        self.assigned: set[str] = set()
        #: names in the order the body first assigned them (fixed ones too)
        self.order: dict[str, None] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.assigned.add(key)
        self.order.setdefault(key, None)
        _store(self, key, value, self._fixed, "", self._record)

    def __delitem__(self, key: str) -> None:
        if key not in self._fixed:
            dict.__delitem__(self, key)

    def __missing__(self, key: str) -> Any:
        for mapping in self._lookups:
            if key in mapping:
                return mapping[key]
        raise KeyError(key)


def _apply_fixed(values: dict, fixed: Mapping, path: str, record: Recorder) -> dict:
    """Lay ``fixed`` over ``values`` (in place); report leaves that held something else."""
    for key, fixed_value in fixed.items():
        current = values.get(key, _MISSING)
        sub = join_path(path, key)
        if isinstance(current, dict) and isinstance(fixed_value, dict):
            _apply_fixed(current, fixed_value, sub, record)
            continue
        if current is not _MISSING and not _equal(current, fixed_value):
            record(sub, current)
        values[key] = copy_plain(fixed_value)
    return values


def _fill_in(values: dict, preset: Mapping) -> None:
    """Like Sacred, a dict a later scope assigns over an earlier scope's dict updates it: the
    earlier keys it does not set are kept (recursively, in the earlier order)."""
    for key, old in preset.items():
        new = values.get(key, _MISSING)
        if isinstance(old, dict) and isinstance(new, dict):
            values[key] = dict_merge(old, new)


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # a user's __eq__ may raise or return an array
        return False


# --- source and doc comments ------------------------------------------------------------------

def _comment_text(comment: str) -> str:
    text = comment.lstrip("#").strip()
    if text.lower().startswith(_PRAGMAS):
        return ""
    return text


class _DocCollector:
    """Find the doc comment of every assignment in a scope body, from the tokenized source."""

    def __init__(self, text: str):
        self.trailing: dict[int, str] = {}
        self.standalone: dict[int, str] = {}
        self.docs: dict[str, str] = {}
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        except (tokenize.TokenError, SyntaxError):
            return
        for tok in tokens:
            if tok.type != tokenize.COMMENT:
                continue
            row, col = tok.start
            if tok.line[:col].strip():
                doc = _comment_text(tok.string)
                if doc:
                    self.trailing[row] = doc
            else:
                # kept even when empty: a pragma line still belongs to the comment block
                self.standalone[row] = _comment_text(tok.string)

    def above(self, line: int) -> str:
        """The comment block directly above ``line`` (a blank line ends it), joined."""
        parts = []
        row = line - 1
        while row in self.standalone:
            parts.append(self.standalone[row])
            row -= 1
        return " ".join(p for p in reversed(parts) if p)

    def visit(self, statements: list[ast.stmt]) -> None:
        for stmt in statements:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue  # their assignments are not config entries
            targets: list[ast.expr] = []
            value = None
            if isinstance(stmt, ast.Assign):
                targets, value = stmt.targets, stmt.value
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                targets, value = [stmt.target], stmt.value
            # underscore names are not config entries, so they have no doc either
            names = [n for t in targets for n in _target_names(t) if not n.startswith("_")]
            if names:
                self._document(stmt, names, value)
            for _, child in ast.iter_fields(stmt):
                if not isinstance(child, list):
                    continue
                self.visit([c for c in child if isinstance(c, ast.stmt)])
                for item in child:
                    if isinstance(item, ast.excepthandler | ast.match_case):
                        self.visit(item.body)

    def _document(self, stmt: ast.stmt, names: list[str], value: ast.expr | None) -> None:
        # A trailing comment documents the entry; otherwise the comment block above does.
        doc = self.trailing.get(stmt.lineno, "")
        is_dict = isinstance(value, ast.Dict)
        end = stmt.end_lineno or stmt.lineno
        if not doc and end != stmt.lineno and not is_dict:
            doc = self.trailing.get(end, "")
        doc = doc or self.above(stmt.lineno)
        for name in names:
            if doc:
                self.docs.setdefault(name, doc)
        if len(names) == 1 and is_dict:
            self._document_dict(value, names[0], stmt.lineno)  # type: ignore[arg-type]

    def _document_dict(self, node: ast.Dict, prefix: str, opening_line: int) -> None:
        """Comments next to the keys of a dict literal document ``prefix.key``."""
        per_line = Counter(k.lineno for k in node.keys if k is not None)
        for key, value in zip(node.keys, node.values):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                continue
            path = f"{prefix}.{key.value}"
            # The opening line's comment belongs to the whole dict; a line holding several
            # keys is ambiguous.
            if key.lineno != opening_line and per_line[key.lineno] == 1:
                doc = self.trailing.get(key.lineno) or self.above(key.lineno)
                if doc:
                    self.docs.setdefault(path, doc)
            if isinstance(value, ast.Dict):
                self._document_dict(value, path, key.lineno)


def _indented_source(func: Callable) -> str | None:
    """The source of ``func`` as :func:`inspect.getsource` gives it, found by indentation: its
    decorators and ``def`` line, then every line up to the last code line indented deeper than
    the ``def`` (and the comments after it indented as deep as the body, which inspect keeps
    too). None when the lines do not look like that (a one-line or multi-line ``def``). A line
    that only continues a string or a bracket, indented no deeper than the ``def``, ends the
    block early, and the cut text does not parse: the caller then asks inspect, which
    tokenizes."""
    lines, start = inspect.findsource(inspect.unwrap(func))
    indent = _indent(lines[start])
    end = start
    while end < len(lines) and lines[end].lstrip().startswith("@"):
        end += 1  # decorators
    if end == len(lines) or not lines[end].lstrip().startswith(("def ", "async def ")) or \
            _indent(lines[end]) != indent or not lines[end].rstrip().endswith(":"):
        return None
    last = end
    body_indent = None
    for number in range(end + 1, len(lines)):
        stripped = lines[number].strip()
        if not stripped:
            continue
        depth = _indent(lines[number])
        if stripped.startswith("#"):
            if body_indent is not None and depth >= body_indent:
                last = number
            continue
        if depth <= indent:
            break
        if body_indent is None:
            body_indent = depth
        last = number
    if last == end:
        return None
    return "".join(lines[start:last + 1])


def _indent(line: str) -> int:
    expanded = line.expandtabs(8)
    return len(expanded) - len(expanded.lstrip(" \t\f"))


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for elt in target.elts for n in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


def _closure_values(func: Callable) -> dict[str, Any]:
    """Variables of enclosing functions that the scope reads (its closure), by name."""
    values = {}
    for name, cell in zip(func.__code__.co_freevars, func.__closure__ or ()):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # the enclosing function has not assigned it (yet)
            pass
    return values


# --- config scope -----------------------------------------------------------------------------

# The compiled body of each scope function, by the function's code object: a function
# defined again (an experiment built in a loop, a scope inside a factory) has the same code
# object, and its body is compiled once per process, not once per definition. Weak keys: a
# reloaded module's old code objects go.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class ConfigScope:
    """A function whose body defines config entries (``@ex.config``, ``@ex.named_config``).

    Construction only records the function; its source is read and compiled on first use.
    """

    def __init__(self, func: Callable):
        self.func = func
        self.__name__ = getattr(func, "__name__", "config_scope")
        self.__qualname__ = getattr(func, "__qualname__", self.__name__)
        self.__doc__ = getattr(func, "__doc__", None)
        self.arg_names: list[str] = []
        self._defaults: dict[str, Any] = {}
        for param in inspect.signature(func).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ConfigError(
                    f"Config scope '{self.__name__}' cannot take *args or **kwargs; name the "
                    "config entries it reads as parameters.")
            self.arg_names.append(param.name)
            if param.default is not param.empty:
                self._defaults[param.name] = param.default
        self._code: types.CodeType | None = None
        self._docs: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"<ConfigScope {self.__qualname__}>"

    @property
    def docs(self) -> dict[str, str]:
        """Doc comments of the entries by (dotted) name; reads the source on first use."""
        self._compile()
        if self._docs is None:
            text, body = self._doc_source
            collector = _DocCollector(text)
            collector.visit(body)
            self._docs = collector.docs
        return dict(self._docs)

    def _compile(self) -> types.CodeType:
        if self._code is not None:
            return self._code
        target = inspect.unwrap(self.func)
        code = target.__code__
        cached = _COMPILED.get(code)
        if cached is None:
            cached = _COMPILED[code] = self._compile_body(target, code)
        compiled, self._doc_source = cached
        # Tracebacks then name the scope instead of "<module>".
        self._code = compiled.replace(co_name=self.__name__)
        return self._code

    def _compile_body(self, target: Callable, code: types.CodeType
                      ) -> tuple[types.CodeType, tuple[str, list[ast.stmt]]]:
        tree: ast.Module | None = None
        text = ""
        # the block found by indentation first (tokenizing the function, as inspect.getsource
        # does, costs more than compiling it); inspect's own when that does not parse
        for finder in (_indented_source, inspect.getsource):
            try:
                source = finder(self.func)
            except (OSError, TypeError) as exc:
                raise ConfigError(
                    f"Cannot read the source code of config scope '{self.__name__}' ({exc}). It "
                    "was probably defined in an interactive session; use ex.add_config(dict) "
                    "instead.") from exc
            if source is None:
                continue
            # Parse in place instead of dedenting: an indented function is wrapped in an "if"
            # block, which keeps every column right and copes with unindented multi-line
            # strings.
            first = source.split("\n", 1)[0]
            shift = 1 if first[:1].isspace() else 0
            text = "if 1:\n" + source if shift else source
            # Blank lines in front give every node its line in the file without a pass of
            # ast.increment_lineno over the tree (and the doc collector sees the same lines).
            text = "\n" * (code.co_firstlineno - 1 - shift) + text
            try:
                tree = ast.parse(text)
                break
            except SyntaxError as exc:
                if finder is _indented_source:
                    continue  # cut inside a string or bracket: inspect finds the end
                raise ConfigError(f"Cannot parse the source code of config scope "
                                  f"'{self.__name__}': {exc}") from exc
        node = next((n for n in ast.walk(tree)
                     if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                     and n.name == target.__name__), None)
        if node is None:
            raise ConfigError(
                f"Config scope '{self.__name__}' must be a function defined with 'def'; use "
                "ex.add_config(dict) for other values.")
        body = list(node.body)
        if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            body = body[1:]  # the docstring

        # Doc comments are collected only when asked for (print_config): tokenizing is a
        # quarter of the cost of preparing a scope.
        doc_source = (text, body)

        module = ast.Module(body=body, type_ignores=[])
        try:
            compiled = compile(module, code.co_filename, "exec",
                               flags=code.co_flags & _FUTURE_FLAGS, dont_inherit=True)
        except SyntaxError as exc:
            raise ConfigError(
                f"Config scope '{self.__name__}' cannot run: {exc.msg} ({exc.filename}, line "
                f"{exc.lineno}). Its body runs like module code, so it cannot 'return' or "
                "'yield'.") from exc
        return compiled, doc_source

    def _check_parameters(self, fixed: Mapping, preset: Mapping, fallback: Mapping) -> None:
        for name in self.arg_names:
            if name in fixed or name in preset or name in fallback or name in self._defaults:
                continue
            raise ConfigScopeArgumentError(self.__name__, name,
                                           [*fixed, *preset, *fallback, *self._defaults])

    def __call__(self, fixed: dict | None = None, preset: dict | None = None,
                 fallback: dict | None = None) -> ScopeResult:
        """Run the body with ``fixed`` values enforced; return the entries it defines."""
        fixed = normalize_value(fixed, "") if fixed else {}
        preset = preset or {}
        fallback = fallback or {}
        self._check_parameters(fixed, preset, fallback)
        code = self._compile()

        overridden: dict[str, Any] = {}

        def record(path: str, value: Any) -> None:
            # The first value wins: later lines often derive from the fixed value itself.
            overridden.setdefault(path, value)

        target = inspect.unwrap(self.func)
        module_globals = target.__globals__
        lookups = [fallback, self._defaults, _closure_values(target), module_globals]
        namespace = _ScopeNamespace(fixed, lookups, record)
        dict.__setitem__(namespace, "__builtins__",
                         module_globals.get("__builtins__", builtins))
        dict.__setitem__(namespace, "__name__", module_globals.get("__name__"))
        # Without this, annotated assignments would land in the module's __annotations__.
        dict.__setitem__(namespace, "__annotations__", {})
        for key, value in preset.items():
            dict.__setitem__(namespace, key, copy_plain(value))
        for key, value in fixed.items():
            if isinstance(value, dict):
                base = dict.get(namespace, key)
                merged = dict_merge(base if isinstance(base, dict) else {}, value)
                dict.__setitem__(namespace, key, _guard(merged, value, key, record))
            else:
                dict.__setitem__(namespace, key, copy_plain(value))

        exec(code, namespace)

        # Entries keep their place: earlier scopes' first, then in the order the body assigns
        # them, whether or not an update fixed them (an update does not move its key first).
        values = {}
        order = {**dict.fromkeys(preset), **namespace.order, **dict.fromkeys(namespace)}
        for key in order:
            value = dict.get(namespace, key, _MISSING)
            if value is not _MISSING and _is_entry(key, value):
                values[key] = normalize_value(value, key)
        _fill_in(values, preset)
        # Fixed keys the body never saw assigned are entries too; this also undoes in-place
        # mutation of fixed values that bypassed the guards.
        _apply_fixed(values, fixed, "", record)
        return ScopeResult(
            values=values,
            docs=_LazyDocs(self, values),
            overridden={p: _try_normalize(v, p) for p, v in overridden.items()},
            assigned={k for k in namespace.assigned if k in values},
            order=[k for k in namespace.order if k in values],
        )


class _LazyDocs(Mapping):
    """The docs of one scope call, collected on first access."""

    def __init__(self, scope: ConfigScope, values: dict):
        self._scope = scope
        self._values = values
        self._docs: dict[str, str] | None = None

    def _get(self) -> dict[str, str]:
        if self._docs is None:
            self._docs = {k: d for k, d in self._scope.docs.items() if has_path(self._values, k)}
        return self._docs

    def __getitem__(self, key: str) -> str:
        return self._get()[key]

    def __iter__(self):
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __eq__(self, other: object) -> bool:
        return dict(self._get()) == other

    def __repr__(self) -> str:
        return repr(self._get())


class ConfigDict:
    """Config entries from a dict (``ex.add_config``), with the interface of a scope."""

    def __init__(self, d: Mapping):
        if not isinstance(d, Mapping):
            raise ConfigError(f"A config dict must be a dict, got {type(d).__name__}.")
        self._conf: dict = normalize_value(d, "")
        self.docs: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<ConfigDict {sorted(self._conf)}>"

    def __call__(self, fixed: dict | None = None, preset: dict | None = None,
                 fallback: dict | None = None) -> ScopeResult:
        """Entries of the dict over ``preset``, with ``fixed`` values winning."""
        fixed = normalize_value(fixed, "") if fixed else {}
        overridden: dict[str, Any] = {}
        _record_conflicts(self._conf, fixed, "", lambda p, v: overridden.setdefault(p, v))
        # Like an assignment in a scope (and as in Sacred), a dict updates the preset's dict
        values = dict_merge(preset or {}, self._conf)
        values = dict_merge(values, fixed)
        return ScopeResult(values=values, docs={}, overridden=overridden,
                           assigned=set(self._conf), order=list(self._conf))


# --- Sacred's names for evaluating scopes by hand ---------------------------------------------

def dogmatize(value: Any, fixed: Mapping | None = None) -> Any:
    """A copy of ``value`` whose dicts keep ``fixed`` values: writes to a fixed key are ignored
    (Sacred's dogmatic containers). Lists and other values are copied as they are."""
    plain = copy_plain(value)
    if not isinstance(plain, dict):
        return plain
    fixed = copy_plain(dict(fixed or {}))
    return _guard(dict_merge(plain, fixed), fixed, "", lambda path, value: None)


def undogmatize(value: Any) -> Any:
    """Plain dicts and lists again (the inverse of :func:`dogmatize`)."""
    return copy_plain(value)


def chain_evaluate_config_scopes(config_scopes: Iterable[Callable[..., ScopeResult]],
                                 fixed: dict | None = None, preset: dict | None = None,
                                 fallback: dict | None = None) -> tuple[dict, list]:
    """Run ``config_scopes`` in order, each seeing the entries of the ones before it, with
    ``fixed`` values enforced; return ``(config, [each scope's ScopeResult])``."""
    fixed = fixed or {}
    config = copy_plain(dict(preset or {}))
    results = []
    for scope in config_scopes:
        result = scope(fixed=fixed, preset=config, fallback=fallback)
        results.append(result)
        config = dict_merge(config, result.values)
    return dict_merge(config, fixed), results
