"""A lost, missing or refusing server reported as :class:`MongoConnectionError`, naming the
URL (password hidden) and what to check."""
from __future__ import annotations

import functools
from typing import Any, Callable

from pymongo.errors import ConnectionFailure, OperationFailure, ServerSelectionTimeoutError

from labbook.errors import MongoConnectionError
from labbook.stores import redact_url

__all__ = ["connection_error", "translated"]

#: Unauthorized, AuthenticationFailed
_AUTH_ERRORS = (13, 18)


def connection_error(url: str, timeout_s: float, exc: BaseException) -> MongoConnectionError:
    """The labbook error for a pymongo connection failure at ``url``."""
    url = redact_url(url)
    reason = str(exc).split(", Timeout:")[0].split("\n")[0][:300]
    if isinstance(exc, ServerSelectionTimeoutError):
        head = f"Cannot reach MongoDB at {url} within {timeout_s:g} s ({reason})."
    elif isinstance(exc, OperationFailure):
        head = f"MongoDB at {url} refused the login or the operation ({reason})."
    else:
        head = f"Lost the connection to MongoDB at {url} ({type(exc).__name__}: {reason})."
    return MongoConnectionError(
        head + " Check that the server is running and listening on that host and port, "
        "that no firewall or VPN blocks it, that the user name, password and authSource "
        "are right, and for a single member of a replica set add directConnection=true. "
        "Wait longer with ?serverSelectionTimeoutMS=10000 in the URL.", url)


def translated(method: Callable) -> Callable:
    """Report a lost or missing server as :class:`MongoConnectionError`."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except ConnectionFailure as exc:
            raise self.connection_error(exc) from exc
        except OperationFailure as exc:
            if exc.code not in _AUTH_ERRORS:
                raise
            raise self.connection_error(exc) from exc
    return wrapper
