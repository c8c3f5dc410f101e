"""MongoDB URLs: taking them apart for the driver, composing one that reopens a store, and
Sacred's ``-m [host:port:]db[.prefix]`` option."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from labbook.errors import ObserverError

__all__ = ["DEFAULT_DB", "DEFAULT_URL", "SERVER_SELECTION_TIMEOUT_MS", "CONNECT_TIMEOUT_MS",
           "SOCKET_TIMEOUT_MS", "MongoURL", "split_url",
           "parse_mongo_db_arg"]

DEFAULT_DB = "sacred"
DEFAULT_URL = "mongodb://localhost:27017"
#: the default wait for a server, so an unreachable one is reported quickly
SERVER_SELECTION_TIMEOUT_MS = 2000
#: the default wait for a new connection, and for an answer on one (a frozen server)
CONNECT_TIMEOUT_MS = 10000
SOCKET_TIMEOUT_MS = 30000


@dataclass(frozen=True)
class MongoURL:
    """A MongoDB URL taken apart: what the client gets, the database and the collection prefix."""

    client_url: str
    database: str | None
    collection_prefix: str


def split_url(url: str) -> MongoURL:
    """Take ``mongodb://[user:pw@]hosts[/db][?options&collection_prefix=P]`` apart.

    ``collection_prefix`` is labbook's own option and is removed before the URL reaches the
    driver; ``host:port`` without a scheme is accepted as Sacred accepts it.
    """
    if "://" not in url:
        return MongoURL(url, None, "")
    scheme, rest = url.split("://", 1)
    rest, _, query = rest.partition("?")
    creds, at, hosts_path = rest.rpartition("@")
    hosts, slash, path = hosts_path.partition("/")
    prefix = ""
    kept = []
    for item in query.split("&") if query else []:
        name, _, value = item.partition("=")
        if name.lower() == "collection_prefix":
            prefix = unquote(value)
        else:
            kept.append(item)
    client_url = f"{scheme}://{creds}{at}{hosts}{slash}{path}"
    if kept:
        client_url += ("" if slash else "/") + "?" + "&".join(kept)
    return MongoURL(client_url, unquote(path) or None, prefix)


def _compose_url(client_url: str, database: str, prefix: str) -> str:
    """A URL that reopens the same database and collections (for worker processes)."""
    parts = split_url(client_url if "://" in client_url else "mongodb://" + client_url)
    scheme, rest = parts.client_url.split("://", 1)
    rest, _, query = rest.partition("?")
    creds, at, hosts_path = rest.rpartition("@")
    hosts, _, path = hosts_path.partition("/")
    options = [q for q in query.split("&") if q]
    if at and unquote(path) != database and not any(
            q.lower().startswith("authsource=") for q in options):
        # the URL's path was also the database to log in to; keep logging in there
        options.append("authSource=" + quote(unquote(path) or "admin", safe=""))
    if prefix:
        options.append("collection_prefix=" + quote(prefix, safe=""))
    url = f"{scheme}://{creds}{at}{hosts}/{quote(database, safe='')}"
    return url + ("?" + "&".join(options) if options else "")


def parse_mongo_db_arg(arg: str) -> dict:
    """Sacred's ``-m`` value -> MongoObserver keyword arguments.

    ``db``, ``db.prefix``, ``host:port:db``, ``host:port:db.prefix``, ``host:port`` or a full
    ``mongodb://`` URL (whose path names the database).
    """
    if "://" in arg:
        return {"url": arg}
    parts = arg.split(":")
    if len(parts) == 1:
        host_port, rest = None, parts[0]
    elif len(parts) in (2, 3) and parts[1].isdigit() and parts[0]:
        host_port, rest = f"{parts[0]}:{parts[1]}", (parts[2] if len(parts) == 3 else "")
    else:
        raise ObserverError(
            f"Cannot understand the MongoDB option '{arg}'. Write [host:port:]db_name[.prefix] "
            "(e.g. localhost:27017:sacred) or a URL like mongodb://host:27017/sacred.")
    db_name, _, prefix = rest.partition(".")
    kwargs: dict[str, Any] = {"db_name": db_name or DEFAULT_DB}
    if host_port:
        kwargs["url"] = host_port
    if prefix:
        kwargs["collection_prefix"] = prefix
    return kwargs
