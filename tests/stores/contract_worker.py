"""Many runs at once into one store, for the parallel test of the store contract.

    python contract_worker.py URL COUNT POINTS WORKDIR

The parent imports labbook and the store's module once, then forks COUNT children. Every child
waits on a pipe until all of them exist, so they start together; then each one runs a small
experiment into URL (its own config value ``worker``, POINTS metric points sent over several
heartbeats, one artifact whose bytes depend on its number) and writes
``WORKDIR/result-<n>.json`` with the run's id and status. The parent exits with 0 when every
child exited with 0. Forking after the imports keeps 32 processes affordable on a small
machine; nothing is connected before the fork, so every child opens its own store.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback

import labbook
from labbook.stores import store_class

EXPERIMENT = "contract_parallel"


def payload(worker: int) -> bytes:
    """The artifact of child ``worker`` (different for every child)."""
    return hashlib.sha256(f"worker {worker}".encode()).digest() * 512 + bytes([worker % 256])


def value(worker: int, step: int) -> float:
    return worker * 1000.0 + step / 4


def run_one(url: str, worker: int, points: int, workdir: str) -> None:
    ex = labbook.Experiment(EXPERIMENT)
    ex.add_config(worker=worker, label=f"wörker {worker}")

    @ex.main
    def main(_run, worker):
        half = points // 2
        for step in range(half):
            _run.log_scalar("value", value(worker, step))
        time.sleep(0.1)  # lets a heartbeat send the first half while the others write too
        for step in range(half, points):
            _run.log_scalar("value", value(worker, step))
        path = os.path.join(workdir, f"payload-{worker}.bin")
        with open(path, "wb") as fh:
            fh.write(payload(worker))
        _run.add_artifact(path, name="payload.bin")
        return worker

    run = ex.run(options={"--store": url, "--beat_interval": 0.03, "--capture": "no",
                          "--no_system_metrics": True, "--loglevel": "WARNING"})
    result = {"worker": worker, "id": run._id, "status": run.status}
    with open(os.path.join(workdir, f"result-{worker}.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh)


def main(argv: list[str]) -> int:
    url, count, points, workdir = argv[0], int(argv[1]), int(argv[2]), argv[3]
    store_class(url)  # import the store's module (and its driver) before forking
    from labbook.host_info import get_host_info

    get_host_info()
    gate_read, gate_write = os.pipe()
    children = []
    for worker in range(count):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(gate_write)
                os.read(gate_read, 1)  # end of file once the parent has forked everyone
                run_one(url, worker, points, workdir)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    os.close(gate_read)
    os.close(gate_write)  # opens the gate
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            failed += 1
    print(json.dumps({"children": count, "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
