"""A TCP proxy in the test process, to take a database server away and bring it back.

``TcpProxy(host, port)`` listens on a free port of 127.0.0.1 (``proxy.port``) and forwards every
connection to ``host:port``. ``stop()`` closes the listener and every connection (clients get
"connection refused"); ``freeze()`` keeps accepting but forwards nothing either way, ever (a
server whose packets vanish: only a client-side bound ends a call); ``restart()`` drops the
frozen connections and forwards again, on the same port.
"""
from __future__ import annotations

import socket
import threading

__all__ = ["TcpProxy"]


class TcpProxy:
    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.mode = "up"
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.port = 0
        self._listen()

    # -- control -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Refuse: no listener, every connection closed."""
        with self._lock:
            self.mode = "down"
            listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            listener.close()
        self._drop_connections()

    def freeze(self) -> None:
        """Accept and read, but never forward or answer."""
        with self._lock:
            self.mode = "frozen"

    def restart(self) -> None:
        """Forward again (the frozen or closed connections are dropped)."""
        self._drop_connections()
        with self._lock:
            self.mode = "up"
            listening = self._listener is not None
        if not listening:
            self._listen()

    def close(self) -> None:
        self.stop()

    # -- plumbing ------------------------------------------------------------------------------
    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _drop_connections(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            with self._lock:
                mode = self.mode
            server = None
            if mode == "up":
                try:
                    server = socket.create_connection(self.target, timeout=5)
                    server.settimeout(None)
                except OSError:
                    client.close()
                    continue
            with self._lock:
                self._conns.extend(s for s in (client, server) if s is not None)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            if server is not None:
                threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket | None) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                with self._lock:
                    forward = self.mode == "up" and sink is not None
                if forward:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                if sock is None:
                    continue
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
