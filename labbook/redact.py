"""Secrets kept out of stores, journals and messages: one set of rules, used everywhere.

What is masked (replaced by :data:`MASK`):

- the password of every URL-looking string: ``scheme://user:secret@host`` ->
  ``scheme://user:****@host``, wherever it appears in a string (a command line, a message);
- the value of a secret-looking parameter inside a string: ``?password=x``, ``&token=x``,
  ``--password=x``, ``db_password=x`` (``name=value`` with a secret-looking name);
- in dicts (config, ``meta.options``, host info), the whole value of a secret-looking key.

A name looks secret when one of its parts (split at ``_``, ``-``, ``.``, spaces and
camelCase, case-insensitive) is one of :data:`SECRET_PARTS` (password, passwd, pwd, secret,
token, auth, credential(s), passphrase, apikey, ...), or two neighbouring parts make one of
:data:`SECRET_PAIRS` (api key, access key, private key, secret key, ...): ``db_password``,
``apiKey``, ``AWS_SECRET_ACCESS_KEY`` and ``--auth-token`` are secret; ``author``,
``tokenizer``, ``max_tokens`` and ``keyboard`` are not. Tokenizer settings such as
``pad_token`` or ``eos_token`` are not secrets and are kept. More names: the setting
``labbook.SETTINGS.SECRET_NAMES`` (a list of name parts, read when a run is created) or the
``extra`` argument of the functions here.

Pure functions of the standard library: importing this module costs nothing.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Iterable

__all__ = ["MASK", "SECRET_PARTS", "SECRET_PAIRS", "name_parts", "is_secret_name",
           "redact_url", "redact_text", "redact_value", "redact_argv", "secret_paths"]

#: what replaces a secret
MASK = "****"

#: name parts that make a name secret wherever they appear in it
SECRET_PARTS = frozenset({
    "password", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "auth",
    "credential", "credentials", "apikey", "apikeys", "privatekey", "accesskey", "secretkey",
    "sessionkey",
})
#: neighbouring name parts that make a name secret together
SECRET_PAIRS = frozenset({
    ("api", "key"), ("api", "keys"), ("access", "key"), ("private", "key"), ("secret", "key"),
    ("session", "key"), ("client", "secret"), ("signing", "key"), ("encryption", "key"),
    ("ssh", "key"),
})
#: a word before ``token`` that makes it a tokenizer's special token, not a credential
_TOKENIZER_WORDS = frozenset({"pad", "eos", "bos", "unk", "sep", "cls", "mask", "start", "end",
                              "stop", "begin", "special", "decoder", "image", "audio"})

_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

# scheme://user:password@host -- up to the last "@" before the path, so a password holding an
# unescaped "@" is masked whole
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@?#]*):(?P<pw>[^\s/?#]*)@")
# name=value / name: value inside a string (query strings, --opt=value, with updates)
_NAME_VALUE = re.compile(
    r"(?P<name>(?<![A-Za-z0-9_.\-])-{0,2}[A-Za-z_][A-Za-z0-9_.\-]*)(?P<sep>=(?![=<>~])|:\s?)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s&;,\"']+)")


def name_parts(name: str) -> list[str]:
    """``"dbPassword"`` -> ``["db", "password"]``; ``"--api-key"`` -> ``["api", "key"]``."""
    return [p.lower() for p in _SPLIT.split(_CAMEL.sub("_", name)) if p]


def is_secret_name(name: Any, extra: Iterable[str] = ()) -> bool:
    """Whether a key or option named ``name`` holds a secret (see the module docstring)."""
    if not isinstance(name, str):
        return False
    if not extra:
        return _is_secret_name(name, ())
    return _is_secret_name(name, tuple(e.lower() for e in extra))


# a run asks for every key of its config, several times (the record of what is masked, the
# masking, each observer's copy): the answer depends on the name and the extra names only
@functools.lru_cache(maxsize=8192)
def _is_secret_name(name: str, extra: tuple[str, ...]) -> bool:
    parts = name_parts(name)
    for i, part in enumerate(parts):
        if part in extra:
            return True
        if part in SECRET_PARTS:
            if part == "token" and i > 0 and parts[i - 1] in _TOKENIZER_WORDS:
                continue
            return True
        if i and (parts[i - 1], part) in SECRET_PAIRS:
            return True
    return "".join(parts) in SECRET_PARTS


def redact_url(url: str) -> str:
    """``scheme://user:pw@host/db?password=x`` -> ``scheme://user:****@host/db?password=****``."""
    return redact_text(url)


def redact_text(text: str, extra: Iterable[str] = ()) -> str:
    """Mask URL passwords and ``secret_name=value`` pairs inside any string."""
    if not isinstance(text, str):
        return text
    if "://" in text and "@" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
    if "=" in text or ":" in text:
        extra = tuple(extra)

        def mask(m: re.Match) -> str:
            if not is_secret_name(m["name"], extra) or m["value"] == MASK:
                return m[0]
            return f"{m['name']}{m['sep']}{MASK}"

        text = _NAME_VALUE.sub(mask, text)
    return text


def _mask_all(value: Any) -> Any:
    """Every value inside ``value`` masked, its shape kept; flags and None say nothing secret
    and stay (``use_auth = True`` keeps its meaning)."""
    if isinstance(value, dict):
        return {key: _mask_all(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask_all(item) for item in value)
    if value is None or isinstance(value, bool):
        return value
    return MASK


def _masks_something(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_masks_something(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_masks_something(item) for item in value)
    return value is not None and not isinstance(value, bool)


def redact_value(value: Any, extra: Iterable[str] = ()) -> Any:
    """A copy of ``value`` with every secret masked: strings through :func:`redact_text`,
    everything under a secret-looking dict key masked (strings, numbers, and the leaves of
    nested dicts and lists; booleans and None are kept), lists and tuples item by item. Other
    values are returned as they are."""
    extra = tuple(extra)
    if isinstance(value, str):
        return redact_text(value, extra)
    if isinstance(value, dict):
        return {key: (_mask_all(value[key]) if is_secret_name(key, extra)
                      else redact_value(value[key], extra))
                for key in value}
    if isinstance(value, list | tuple):
        items = [redact_value(item, extra) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def redact_argv(argv: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """A command line with secrets masked, including ``--password VALUE`` given as two words."""
    extra = tuple(extra)
    out: list[str] = []
    hide_next = False
    for word in argv:
        if hide_next and not word.startswith("-"):
            out.append(MASK)
            hide_next = False
            continue
        hide_next = word.startswith("-") and "=" not in word and is_secret_name(word, extra)
        out.append(redact_text(word, extra))
    return out


def secret_paths(value: Any, extra: Iterable[str] = (), prefix: str = "") -> list[str]:
    """The dotted paths of the dict entries :func:`redact_value` masks whole (for the record
    of what was masked)."""
    extra = tuple(extra)
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}{key}"
            if is_secret_name(key, extra) and _masks_something(item):
                found.append(path)
            else:
                found.extend(secret_paths(item, extra, path + "."))
    return found
