"""A human filter language, parsed into the Mongo-style filter dicts of :mod:`query`.

>>> parse_text("config.lr > 0.01 and (status = 'COMPLETED' or tags contains 'best')")
... # doctest: +NORMALIZE_WHITESPACE
{'$and': [{'config.lr': {'$gt': 0.01}},
          {'$or': [{'status': 'COMPLETED'}, {'tags': 'best'}]}]}

Grammar (keywords are case-insensitive)::

    expr       := term ("or" term)*
    term       := factor ("and" factor)*
    factor     := "not" factor | "(" expr ")" | condition
    condition  := field ("=" | "==" | "!=" | ">" | ">=" | "<" | "<=") value
                | field ["not"] "in" "[" [value ("," value)*] "]"
                | field ["not"] "contains" value
                | field ["not"] "contains" "all" list
                | field ["not"] "size" INTEGER
                | field ["not"] "matches" STRING
                | field ["not"] "exists"
    field      := name ("." name)*       name: letters, digits, _ and -, or quoted with
                                         `backticks` or "double quotes" (for spaces)
    value      := NUMBER | 'single' or "double" quoted string | true | false | null | list

``contains`` is MongoDB's element match: a list field holding the value, or a scalar equal to
it; ``contains all [...]`` is ``$all`` (a list holding every value) and ``size 2`` is ``$size``
(a list of that length). ``matches`` is a regular-expression search (``$regex``; ``(?i)`` at
the start of the pattern ignores case). On ``start_time``, ``stop_time``, ``heartbeat`` and
``queue_time`` a quoted ISO time compares as a time: ``start_time >= '2024-03-01 09:30'``.
``id`` is short for ``_id`` and ``experiment`` for ``experiment.name``. ``tags``, ``name``,
``notes``, ``summary.*`` and the DIED status are derived fields of the query model
(:mod:`labbook.stores.query`), answered by every store like document fields.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from labbook.stores.query import QueryError

__all__ = ["parse_text", "ALIASES"]

#: short names for document paths (a dotted path starting with one is left alone)
ALIASES = {"id": "_id", "experiment": "experiment.name"}

_COMPARE = {"=": None, "==": None, "!=": "$ne", ">": "$gt", ">=": "$gte", "<": "$lt",
            "<=": "$lte"}
_KEYWORDS = {"and", "or", "not", "in", "contains", "matches", "exists", "true", "false",
             "null"}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>[-+]?(?:\d+\.\d*|\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<op>==|!=|>=|<=|=|>|<)
  | (?P<punct>[()\[\],.])
  | (?P<sq>'(?:[^'\\]|\\.)*')
  | (?P<dq>"(?:[^"\\]|\\.)*")
  | (?P<bq>`[^`]*`)
  | (?P<word>[A-Za-z_][\w-]*|\d[\w-]*)
""", re.VERBOSE)


@dataclass
class _Tok:
    kind: str  # number, op, punct, sq, dq, bq, word, end
    text: str
    pos: int


def _error(text: str, pos: int, message: str) -> QueryError:
    """A QueryError naming the 1-based column, with the text and a caret under it."""
    exc = QueryError(f"{message} at column {pos + 1}:\n  {text}\n  {' ' * pos}^")
    exc.position = pos  # type: ignore[attr-defined]
    return exc


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos] in "'\"`":
                raise _error(text, pos, "Unterminated quoted text")
            raise _error(text, pos, f"Unexpected character {text[pos]!r}")
        if m.lastgroup != "ws":
            tokens.append(_Tok(m.lastgroup or "", m.group(), pos))
        pos = m.end()
    tokens.append(_Tok("end", "", len(text)))
    return tokens


def _unquote(token: _Tok) -> str:
    body = token.text[1:-1]
    if token.kind == "bq":
        return body
    # backslash escapes the quote character and itself; others are kept as written
    return re.sub(r"\\(.)", lambda m: m.group(1) if m.group(1) in "'\"\\" else m.group(0), body)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    # -- token helpers --------------------------------------------------------------------------
    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def _is_kw(self, word: str, offset: int = 0) -> bool:
        tok = self.tokens[min(self.i + offset, len(self.tokens) - 1)]
        return tok.kind == "word" and tok.text.lower() == word

    def _take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _expect(self, kind: str, text: str, what: str) -> _Tok:
        if self.tok.kind != kind or self.tok.text != text:
            raise self._fail(f"Expected {what}")
        return self._take()

    def _fail(self, message: str) -> QueryError:
        tok = self.tok
        found = "the end of the filter" if tok.kind == "end" else repr(tok.text)
        return _error(self.text, tok.pos, f"{message}, found {found}")

    # -- grammar --------------------------------------------------------------------------------
    def parse(self) -> dict:
        if self.tok.kind == "end":
            return {}
        result = self.expr()
        if self.tok.kind != "end":
            raise self._fail("Expected 'and', 'or' or the end of the filter")
        return result

    def expr(self) -> dict:
        parts = [self.term()]
        while self._is_kw("or"):
            self._take()
            parts.append(self.term())
        return _combine("$or", parts)

    def term(self) -> dict:
        parts = [self.factor()]
        while self._is_kw("and"):
            self._take()
            parts.append(self.factor())
        return _combine("$and", parts)

    def factor(self) -> dict:
        if self._is_kw("not"):
            self._take()
            # MongoDB has no top-level $not; $nor of one filter is its negation
            return {"$nor": [self.factor()]}
        if self.tok.kind == "punct" and self.tok.text == "(":
            self._take()
            inner = self.expr()
            self._expect("punct", ")", "')'")
            return inner
        return self.condition()

    def field(self) -> str:
        parts = [self._name()]
        while self.tok.kind == "punct" and self.tok.text == ".":
            self._take()
            parts.append(self._name())
        path = ".".join(parts)
        return ALIASES.get(path, path)

    def _name(self) -> str:
        tok = self.tok
        if tok.kind in ("bq", "dq"):
            self._take()
            name = _unquote(tok)
            if not name:
                raise _error(self.text, tok.pos, "Empty field name")
            return name
        if tok.kind == "word" and tok.text.lower() not in _KEYWORDS:
            return self._take().text
        if tok.kind == "number" and tok.text.isdigit():
            return self._take().text  # a list index inside a path: meta.tags.0
        raise self._fail("Expected a field name")

    def condition(self) -> dict:
        path = self.field()
        tok = self.tok
        if tok.kind == "op":
            self._take()
            value = self.value()
            op = _COMPARE[tok.text]
            return {path: value if op is None else {op: value}}
        negate = False
        if self._is_kw("not"):
            self._take()
            negate = True
        if self._is_kw("in"):
            self._take()
            values = self.value()
            if not isinstance(values, list):
                raise _error(self.text, self.tokens[self.i - 1].pos,
                             "'in' takes a list like [1, 2]")
            return {path: {"$nin" if negate else "$in": values}}
        if self._is_kw("contains"):
            self._take()
            cond: dict
            if self._is_kw("all") and self.tokens[self.i + 1].text == "[":
                self._take()
                cond = {path: {"$all": self.value()}}
            else:
                cond = {path: self.value()}
            return {"$nor": [cond]} if negate else cond
        if self._is_kw("size"):
            self._take()
            size_tok = self.tok
            size = self.value()
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise _error(self.text, size_tok.pos, "'size' takes a whole number like 2")
            cond = {path: {"$size": size}}
            return {"$nor": [cond]} if negate else cond
        if self._is_kw("matches"):
            self._take()
            pattern_tok = self.tok
            pattern = self.value()
            if not isinstance(pattern, str):
                raise _error(self.text, pattern_tok.pos, "'matches' takes a quoted pattern")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _error(self.text, pattern_tok.pos, f"Invalid pattern ({exc})") from None
            cond = {path: {"$regex": pattern}}
            return {path: {"$not": {"$regex": pattern}}} if negate else cond
        if self._is_kw("exists"):
            self._take()
            return {path: {"$exists": not negate}}
        if negate:
            raise self._fail("Expected 'in', 'contains', 'matches', 'size' or 'exists' after "
                             "'not'")
        raise self._fail("Expected an operator (= != > >= < <= in contains matches size "
                         "exists)")

    def value(self) -> Any:
        tok = self.tok
        if tok.kind == "number":
            self._take()
            text = tok.text
            if re.fullmatch(r"[-+]?\d+", text):
                return int(text)
            return float(text)
        if tok.kind in ("sq", "dq"):
            self._take()
            return _unquote(tok)
        if tok.kind == "word" and tok.text.lower() in ("true", "false", "null"):
            self._take()
            return {"true": True, "false": False, "null": None}[tok.text.lower()]
        if tok.kind == "punct" and tok.text == "[":
            self._take()
            items: list = []
            if not (self.tok.kind == "punct" and self.tok.text == "]"):
                items.append(self.value())
                while self.tok.kind == "punct" and self.tok.text == ",":
                    self._take()
                    items.append(self.value())
            self._expect("punct", "]", "',' or ']'")
            return items
        if tok.kind == "word":
            raise self._fail("Expected a value (strings need quotes: 'text')")
        raise self._fail("Expected a value")


def _combine(op: str, parts: list[dict]) -> dict:
    if len(parts) == 1:
        return parts[0]
    flat: list[dict] = []
    for part in parts:
        # (a and b) and c -> one $and of three: the same filter, shallower
        if list(part) == [op]:
            flat.extend(part[op])
        else:
            flat.append(part)
    return {op: flat}


def parse_text(text: str) -> dict:
    """The Mongo-style filter dict for a human filter string (``{}`` for a blank one)."""
    if not isinstance(text, str):
        raise QueryError(f"A text filter must be a string, got {type(text).__name__}.")
    return _Parser(text).parse()
