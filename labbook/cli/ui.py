"""``labbook ui``: serve the web dashboard (:mod:`labbook.ui`) over a store with uvicorn."""
from __future__ import annotations

import ipaddress
import secrets
import socket
import sys

from labbook.errors import CommandError, MissingExtraError, UsageError

__all__ = ["cmd_ui", "is_loopback", "bind"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), or a one-line error."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port takes 0 to 65535, got {port}.")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host!r} names no interface here: {exc.strerror}.") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror} (another port: "
                           f"--port N, or --port 0 for a free one).") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def cmd_ui(url: str | None, host: str = "127.0.0.1", port: int = 5000,
           token: str | None = None, read_only: bool = False) -> int:
    """Serve the dashboard until interrupted; the exit status."""
    try:
        import jinja2  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise MissingExtraError(f"labbook ui needs {exc.name}: pip install 'labbook[ui]'."
                                ) from None
    from labbook.api import Api
    from labbook.cli.read import _open
    from labbook.stores import redact_url
    from labbook.ui.app import LOOPBACK_HOSTS, create_app

    loopback = is_loopback(host)
    if token is not None and not token.strip():
        raise UsageError("--token is empty.")
    if not loopback and token is None:
        token = secrets.token_urlsafe(24)  # another interface: never without a token
    store, location = _open(url)
    sock = bind(host, port)
    try:
        app = create_app(Api(store), read_only=read_only, token=token,
                         allowed_hosts=LOOPBACK_HOSTS if loopback else None)
        actual = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        address = f"http://{shown}:{actual}/" + (f"?token={token}" if token else "")
        print(f"labbook ui: {redact_url(location)} at {address}"
              + (" (read-only)" if read_only else ""), flush=True)
        if not loopback:
            print(f"labbook ui: listening on {host}, not only this machine: anyone with the "
                  "token can read the runs" + ("." if read_only else " and edit tags and notes."),
                  file=sys.stderr, flush=True)
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down; no traceback
            pass
        print("labbook ui: stopped.", file=sys.stderr, flush=True)
    finally:
        sock.close()
    return 0
