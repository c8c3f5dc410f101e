"""A MongoDB server for the store tests: mongoeco behind the real wire protocol, or a real one.

``LABBOOK_TEST_MONGO_URL`` (e.g. ``mongodb://localhost:27017``) points the tests at a real
MongoDB. Otherwise the session starts mongoeco's wire-protocol server (in-memory engine) from
the side venv ``.venv-mongoeco`` (Python >= 3.13), which ``setup_mongoeco.sh`` creates when it
is missing. Clients use the real pymongo driver over TCP. Each test gets its own database,
dropped afterwards. When no server can be had the tests skip and say why.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Iterator

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SETUP = os.path.join(HERE, "setup_mongoeco.sh")
VENV = os.environ.get("LABBOOK_MONGOECO_VENV") or os.path.join(ROOT, ".venv-mongoeco")

# Runs inside the side venv: serve until stdin closes (so the server never outlives pytest).
SERVER_SCRIPT = r"""
import asyncio, sys
from mongoeco.engines.memory import MemoryEngine
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer

async def main():
    server = AsyncMongoEcoProxyServer(engine=MemoryEngine(), host="127.0.0.1",
                                      port=int(sys.argv[1]))
    address = await server.start()
    print(address.port, flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await server.close()

asyncio.run(main())
"""


@dataclass
class MongoServer:
    """Where the server listens; ``url(db)`` is a URL for one database."""

    base_url: str
    process: subprocess.Popen | None = None
    start_seconds: float = 0.0
    setup_seconds: float = 0.0

    def url(self, db: str) -> str:
        base, _, query = self.base_url.partition("?")
        return f"{base.rstrip('/')}/{db}" + (f"?{query}" if query else "")

    def client(self):
        import pymongo

        return pymongo.MongoClient(self.base_url, serverSelectionTimeoutMS=5000)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except Exception:
            self.process.kill()
            self.process.wait()
        self.process = None


def _venv_python() -> str:
    return os.path.join(VENV, "bin", "python")


def ensure_venv() -> tuple[bool, str, float]:
    """(ready, reason when not, seconds spent) — creates the side venv when needed."""
    started = time.perf_counter()
    try:
        proc = subprocess.run(["bash", SETUP], capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, LABBOOK_MONGOECO_VENV=VENV))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"cannot run {SETUP}: {exc}", time.perf_counter() - started
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no reason given"])[-1]
        return False, reason, elapsed
    return True, "", elapsed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_mongoeco(timeout: float = 30.0) -> MongoServer:
    """Start the wire-protocol server; raises RuntimeError with the reason when it cannot."""
    ready, reason, setup_seconds = ensure_venv()
    if not ready:
        raise RuntimeError(f"the mongoeco side venv is not available: {reason}")
    started = time.perf_counter()
    proc = subprocess.Popen([_venv_python(), "-c", SERVER_SCRIPT, str(_free_port())],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        err = proc.stderr.read()[-2000:]
        raise RuntimeError(f"the mongoeco server did not start: {err or line or 'no output'}")
    server = MongoServer(f"mongodb://127.0.0.1:{line}/?directConnection=true", proc,
                         setup_seconds=setup_seconds)
    client = server.client()
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.admin.command("ping")
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    server.stop()
                    raise RuntimeError(f"the mongoeco server does not answer: {exc}") from exc
                time.sleep(0.05)
    finally:
        client.close()
    server.start_seconds = time.perf_counter() - started
    return server


def _skip(reason: str) -> None:
    print(f"\nMongoDB store tests skipped: {reason}", file=sys.stderr)
    if os.environ.get("LABBOOK_TEST_REQUIRE_SERVERS"):  # CI: the server must be there
        pytest.fail(f"MongoDB is required (LABBOOK_TEST_REQUIRE_SERVERS): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[MongoServer]:
    pytest.importorskip("pymongo", reason="pymongo is not installed (pip install pymongo)")
    external = os.environ.get("LABBOOK_TEST_MONGO_URL")
    if external:
        yield MongoServer(external)
        return
    try:
        server = start_mongoeco()
    except RuntimeError as exc:
        _skip(str(exc))
    print(f"\nmongoeco: side venv ready in {server.setup_seconds:.2f} s, server answering "
          f"{server.start_seconds:.2f} s after its start", file=sys.stderr)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mongo_db(mongo_server: MongoServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database name for this test (dropped afterwards)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:40] + "_" + uuid.uuid4().hex[:8]
    yield name
    client = mongo_server.client()
    try:
        client.drop_database(name)
    except Exception:
        pass
    finally:
        client.close()


@pytest.fixture
def mongo_url(mongo_server: MongoServer, mongo_db: str) -> str:
    """A URL naming this test's own database."""
    return mongo_server.url(mongo_db)
