"""Worker processes of a distributed job attach to the parent run."""
import json
import multiprocessing
import os

from labbook import Experiment
from labbook.observers import FileStorageObserver
from labbook.stores import open_store


def worker_main(rank):
    os.environ["RANK"] = str(rank)
    ex = Experiment("dist")

    @ex.main
    def main(_run):
        for step in range(3):
            _run.log_scalar("loss", rank * 10 + step)

    ex.run(options={"--no-system-metrics": True})


def test_spawned_ranks_log_into_the_parent_run(tmp_path, monkeypatch):
    monkeypatch.delenv("LABBOOK_RUN_ID", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    ex = Experiment("dist")
    ex.observers.append(FileStorageObserver(tmp_path))

    @ex.main
    def main(_run):
        assert os.environ["LABBOOK_RUN_ID"] == str(_run._id)
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=worker_main, args=(rank,)) for rank in (1, 2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        _run.log_scalar("loss", -1)

    ex.run(options={"--no-system-metrics": True})
    assert "LABBOOK_RUN_ID" not in os.environ  # the export ends with the run
    assert sorted(n for n in os.listdir(tmp_path) if n.isdigit()) == ["1"]  # no run per rank
    history = open_store(str(tmp_path)).history(1)
    assert history["rank1/loss"]["values"] == [10, 11, 12]
    assert history["rank2/loss"]["values"] == [20, 21, 22]
    assert history["loss"]["values"] == [-1]
    assert json.loads((tmp_path / "1" / "run.json").read_text())["status"] == "COMPLETED"


def test_worker_without_parent_records_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.delenv("LABBOOK_RUN_ID", raising=False)
    monkeypatch.delenv("LABBOOK_RUN_STORE", raising=False)
    monkeypatch.delenv("LABBOOK_STORE", raising=False)
    ex = Experiment("dist")
    ex.observers.append(FileStorageObserver(tmp_path))

    @ex.main
    def main():
        return 5

    import logging

    with caplog.at_level(logging.INFO):
        run = ex.run()
    assert run.result == 5 and os.listdir(tmp_path) == []
    assert "Worker process (rank3) without a parent run" in caplog.text
