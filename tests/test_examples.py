"""Every example in examples/ runs as a script, as a user would run it."""
import json
import os
import re
import subprocess
import sys

import pytest

from labbook import Api
from labbook.stores import open_store
from tests.stores.mongo_server import mongo_db, mongo_server, mongo_url  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def run_example(name, *args, cwd=ROOT, **env_vars):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("LABBOOK_STORE", None)
    env.update(env_vars)
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    return proc


def test_every_example_is_covered():
    covered = {name for name, *_ in CASES} | OWN_TESTS
    scripts = {n for n in os.listdir(EXAMPLES) if n.endswith(".py")}
    assert scripts <= covered, f"examples without a test: {sorted(scripts - covered)}"


def test_every_example_is_listed_in_docs():
    with open(os.path.join(ROOT, "docs", "examples.md"), encoding="utf-8") as fh:
        page = fh.read()
    scripts = sorted(n for n in os.listdir(EXAMPLES) if n.endswith(".py"))
    missing = [n for n in scripts if f"python examples/{n}" not in page]
    assert not missing, f"examples not listed (with their command) in docs/examples.md: {missing}"


CASES = [
    ("hello_world.py", (), "Hello world!"),
    ("hello_config_dict.py", (), "Hello world!"),
    ("hello_config_dict.py", ("with", "message='Hi there!'"), "Hi there!"),
    ("hello_config_scope.py", (), "Hello world!"),
    ("hello_config_scope.py", ("with", "recipient=Bob"), "Hello Bob!"),
    ("captured_functions.py", ("with", "optimizer.lr=0.5"), "lr=0.5 momentum=0.9"),
    ("commands.py", ("scream",), "HELLO!"),
    ("commands.py", ("whisper", "with", "message='PSST'"), "psst..."),
    ("named_configs.py", ("with", "large"), "12 layers x 512 units = 6144"),
    ("named_configs.py", ("with", "large", "layers=2"), "2 layers x 512 units = 1024"),
    ("named_configs.py", ("with", "tiny"), "1 layers x 8 units = 8"),
    ("ingredients.py", (), "loading data.csv"),
    ("ingredients.py", ("with", "dataset.small"), "loading small.csv"),
    ("randomness.py", ("with", "seed=123"), "seed: 123"),
    ("metrics_and_artifacts.py", ("with", "epochs=3"), "final loss 0.7290"),
    ("custom_observer.py", (), "[observer] loss: [0.5, 0.25, 0.16666666666666666]"),
    ("analysis.py", (), "runs with accuracy > 0.9: [4, 3]"),
    ("remote_store.py", (), "best run: 2 lr=0.3 final loss 0.3430, artifact says lr=0.3"),
    ("artifact_versions.py", (), "model:v0 logged by run [1], used by run [2]"),
    ("start_run.py", (), "stored: COMPLETED, tags ['demo', 'baseline'], group examples, "
                         "artifacts ['final.json', 'gradient.png', 'summary.txt']"),
    ("resume_run.py", (), "after: COMPLETED, lr=0.1, loss steps [0, 1, 2, 3, 4], resumed "
                          "from DIED"),
    ("run_files.py", (), "restored: epoch 9\nrun 2 pushed: ['search/trials.csv']\n"
                         "lr,loss | 0.1,0.5 | 0.01,0.4"),
    ("worker_queue.py", (), "3 queued runs COMPLETED by workers"),
    ("submit_jobs.py", (), "run 1: learning_rate=0.1 COMPLETED loss 0.6561\n"
                           "run 2: learning_rate=0.3 COMPLETED loss 0.2401\n"
                           "run 3: learning_rate=0.5 COMPLETED loss 0.0625"),
    ("sweep.py", (), "grid: 6 runs, best lr=0.3 batch=16 loss 0.2280\n"
                     "tpe: 12 runs (COMPLETED, PRUNED), 12 trials in its study"),
    ("ui_demo.py", (), "runs table: 5 runs, 1 failed\n"
                       "run 4 grad_norm: 1998 of 200000 points sent, the spike kept: True"),
]


@pytest.mark.parametrize("name, args, expected", CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1])}" for c in CASES])
def test_example_runs(name, args, expected):
    proc = run_example(name, *args)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
    assert "INFO - " in proc.stderr and "Completed after 0:00:0" in proc.stderr


def test_randomness_example_is_reproducible():
    first = run_example("randomness.py", "with", "seed=5").stdout
    second = run_example("randomness.py", "with", "seed=5").stdout
    third = run_example("randomness.py", "with", "seed=6").stdout
    assert first == second and first != third


def test_metrics_example_records_into_a_file_store(tmp_path):
    import json

    proc = run_example("metrics_and_artifacts.py", "-F", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert 'Started run with ID "1"' in proc.stderr
    run = json.loads((tmp_path / "1" / "run.json").read_text())
    assert run["status"] == "COMPLETED" and run["artifacts"] == ["model.json"]
    metrics = json.loads((tmp_path / "1" / "metrics.json").read_text())
    assert metrics["train.loss"]["steps"] == [0, 1, 2, 3, 4]
    assert metrics["val.acc"]["steps"] == [0, 1, 2, 3, 4]
    info = json.loads((tmp_path / "1" / "info.json").read_text())
    assert info["summary"] == {"best_acc": run["result"]}
    assert info["params"] == {"optimizer": "sgd", "batch_size": 32}
    assert json.loads((tmp_path / "1" / "model.json").read_text())["weights"][0] == 0.1


# -- examples that record into stores: run in a temporary directory, then read the store ----------

#: examples with a test of their own below (not in CASES: they write stores into the cwd)
OWN_TESTS = {"sql_store.py", "queued_observer.py", "store_sync.py", "store_outage.py",
             "all_jobs_metrics.py", "sweep_launcher.py",
             "mongo_store.py", "store_by_url.py", "labbook_command.py", "notify_and_tinydb.py"}


def toy_losses(lr, epochs):
    """The loss curve of the examples' toy training: (1 - lr) ** (epoch + 1)."""
    losses, loss = [], 1.0
    for _ in range(epochs):
        loss *= 1 - lr
        losses.append(loss)
    return losses


def working_dir(proc, tmp_path):
    """The temporary directory an example said it works in (made under TMPDIR=tmp_path)."""
    first = proc.stdout.splitlines()[0]
    assert first.startswith("working in "), proc.stdout
    workdir = first[len("working in "):]
    assert os.path.realpath(workdir).startswith(os.path.realpath(tmp_path))
    return workdir


def test_sql_store_example_records_into_sqlite_and_reads_back(tmp_path):
    first = run_example("sql_store.py", cwd=tmp_path)
    second = run_example("sql_store.py", "with", "lr=0.3", cwd=tmp_path)
    other = run_example("sql_store.py", "with", "lr=0.5", "-s", "sqlite:///other.db",
                        cwd=tmp_path)
    for proc in (first, second, other):
        assert proc.returncode == 0, proc.stderr
        assert "Completed after 0:00:0" in proc.stderr
    assert first.stdout == "run 1 recorded in sqlite:///labbook.db: accuracy 0.6513\n"
    assert second.stdout == "run 2 recorded in sqlite:///labbook.db: accuracy 0.9718\n"
    assert other.stdout == "run 1 recorded in sqlite:///other.db: accuracy 0.9990\n"
    assert 'Started run with ID "2"' in second.stderr

    listing = run_example("sql_store.py", "runs", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines() == [
        "2 run(s) in sqlite:///labbook.db",
        "  run 1: COMPLETED lr=0.1 accuracy=0.6513",
        "  run 2: COMPLETED lr=0.3 accuracy=0.9718",
        "best run 2, loss at steps [(0, 0.7), (3, 0.2401), (6, 0.0824), (9, 0.0282)]"]

    # the default URL is relative to the current directory; the `runs` command added no run
    with Api("sqlite:///" + str(tmp_path / "labbook.db")) as api:
        runs = list(api.runs(order="_id"))
        assert [(r.id, r.status, r.experiment["name"], r.config.lr, r.config.epochs, r.result)
                for r in runs] == [(1, "COMPLETED", "sql_store", 0.1, 10, 0.6513),
                                   (2, "COMPLETED", "sql_store", 0.3, 10, 0.9718)]
        assert runs[1].meta["options"]["--sql"] == "sqlite:///labbook.db"
        assert set(runs[1].metrics) >= {"loss", "accuracy"}
    store = open_store("sqlite:///" + str(tmp_path / "labbook.db"))
    try:
        series = store.history(2)
        assert series["loss"]["steps"] == list(range(10))
        assert series["loss"]["values"] == pytest.approx(toy_losses(0.3, 10))
        assert series["accuracy"]["values"] == pytest.approx([1 - v for v in toy_losses(0.3, 10)])
    finally:
        store.close()
    with Api("sqlite:///" + str(tmp_path / "other.db")) as api:
        assert [(r.id, r.config.lr, r.result) for r in api.runs()] == [(1, 0.5, 0.999)]


def test_queued_observer_example_journals_the_run_and_replays_it(tmp_path):
    proc = run_example("queued_observer.py", cwd=tmp_path, TMPDIR=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    workdir = working_dir(proc, tmp_path)
    lines = proc.stdout.splitlines()
    assert lines[1] == "the run finished anyway: COMPLETED, result 0.6723"
    match = re.fullmatch(r"journal failed_runs/(run_unknown_[0-9a-f]{12}): \[(.*)\]", lines[2])
    assert match, lines[2]
    journal = match.group(1)
    assert "'events.jsonl'" in match.group(2) and "'journal.json'" in match.group(2)
    journal_dir = os.path.join(workdir, "failed_runs", journal)
    with open(os.path.join(journal_dir, "events.jsonl"), encoding="utf-8") as fh:
        events = [json.loads(line)["event"] for line in fh]
    assert events[0] == "started_event" and events[-1] == "completed_event"
    assert "log_metrics" in events
    assert lines[3:] == [
        "$ labbook sync failed_runs --store sqlite:///recovered.db",
        f"{journal}: {len(events)} event(s) delivered to run 1 in sqlite:///recovered.db",
        "$ labbook sync failed_runs --store sqlite:///recovered.db",
        f"{journal}: 0 event(s) delivered to run 1 in sqlite:///recovered.db",
        "run 1 in sqlite:///recovered.db: COMPLETED, lr=0.2, "
        "loss [0.8, 0.64, 0.512, 0.4096, 0.3277]"]
    # the user is told what happened and how to recover
    assert "TeamDatabase could not record the start of the run" in proc.stderr
    assert (f"{len(events)} events of this run (no id yet) (5 metric points) could not reach "
            f"TeamDatabase; they wait in {journal_dir}.") in proc.stderr
    assert (f"Upload them with: labbook sync {os.path.join(workdir, 'failed_runs')} "
            "--store URL") in proc.stderr
    assert "Completed after 0:00:0" in proc.stderr

    store = open_store("sqlite:///" + os.path.join(workdir, "recovered.db"))
    try:
        [doc] = store.find()
        assert doc["_id"] == 1 and doc["status"] == "COMPLETED" and doc["result"] == 0.6723
        assert doc["experiment"]["name"] == "queued_observer"
        assert {k: doc["config"][k] for k in ("lr", "epochs")} == {"lr": 0.2, "epochs": 5}
        loss = store.history(1)["loss"]
        assert loss["steps"] == [0, 1, 2, 3, 4]
        assert loss["values"] == pytest.approx(toy_losses(0.2, 5))
    finally:
        store.close()


def test_store_sync_example_copies_a_file_store_into_sqlite(tmp_path):
    proc = run_example("store_sync.py", cwd=tmp_path, TMPDIR=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    workdir = working_dir(proc, tmp_path)
    lines = proc.stdout.splitlines()
    assert lines[1] == "$ labbook sync runs sqlite:///team.db"
    assert re.fullmatch(r"runs -> sqlite:///team\.db: copied 3 new run\(s\), updated 0, "
                        r"0 unchanged \(30 metric point\(s\), \d+ file\(s\)\)", lines[2])
    assert lines[3:7] == ["  new: run 1 -> 1", "  new: run 2 -> 2", "  new: run 3 -> 3",
                          "$ labbook sync runs sqlite:///team.db"]
    assert re.fullmatch(r"runs -> sqlite:///team\.db: copied 1 new run\(s\), updated 0, "
                        r"3 unchanged \(10 metric point\(s\), \d+ file\(s\)\)", lines[7])
    assert lines[8] == "  new: run 4 -> 4"
    source = "file://" + os.path.join(workdir, "runs")
    assert lines[9:] == [
        f"team.db run {i}: lr={lr} result={result} (10 loss points) copied from run {i} of "
        f"{source}"
        for i, lr, result in ((1, 0.05, 0.4013), (2, 0.1, 0.6513), (3, 0.2, 0.8926),
                              (4, 0.4, 0.994))]

    src = open_store(os.path.join(workdir, "runs"))
    dst = open_store("sqlite:///" + os.path.join(workdir, "team.db"))
    try:
        assert sorted(d["_id"] for d in src.find()) == [1, 2, 3, 4]
        copies = {d["_id"]: d for d in dst.find()}
        assert sorted(copies) == [1, 2, 3, 4]
        for doc in src.find():
            copy = copies[doc["_id"]]
            assert copy["meta"]["synced_from"]["store"] == source
            assert copy["meta"]["synced_from"]["id"] == doc["_id"]
            assert copy["config"] == doc["config"] and copy["result"] == doc["result"]
            assert copy["status"] == doc["status"] == "COMPLETED"
            assert dst.history(doc["_id"])["loss"]["values"] == \
                src.history(doc["_id"])["loss"]["values"] == \
                pytest.approx(toy_losses(doc["config"]["lr"], 10))
    finally:
        src.close()
        dst.close()


def test_store_outage_example_journals_the_missed_points_and_syncs_them(tmp_path):
    proc = run_example("store_outage.py", cwd=tmp_path, TMPDIR=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    workdir = working_dir(proc, tmp_path)
    assert proc.stdout.splitlines()[1:] == [
        "the database is locked from step 200",
        "the run ended: COMPLETED done",
        "$ labbook sync waiting --store sqlite:///lab.db",
        f"run_1: {proc.stdout.split('run_1: ')[1].split(' event')[0]} event(s) delivered to "
        "run 1 in sqlite:///lab.db",
        "stored run 1: COMPLETED, result 'done', 400 of 400 loss points"]
    loud = [line for line in proc.stderr.splitlines() if "could not reach" in line]
    assert len(loud) == 1, proc.stderr
    assert loud[0].endswith(f"Upload them with: labbook sync {workdir}/waiting --store "
                            f"sqlite:///{workdir}/lab.db?timeout=0.2")
    store = open_store("sqlite:///" + os.path.join(workdir, "lab.db"))
    try:
        assert store.history(1)["loss"]["steps"] == list(range(400))
        assert store.get(1)["status"] == "COMPLETED"
    finally:
        store.close()


def test_all_jobs_metrics_example_prints_one_row_per_run(tmp_path):
    proc = run_example("all_jobs_metrics.py", cwd=tmp_path, TMPDIR=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    match = re.fullmatch(r"4 jobs in (sqlite:///\S+/jobs\.db); columns: job_id, status, "
                         r"start_time, completed_time, accuracy, loss", lines[0])
    assert match, lines[0]
    url = match.group(1)
    assert os.path.realpath(url[len("sqlite:///"):]).startswith(os.path.realpath(tmp_path))
    assert [line.split() for line in lines[1:6]] == [
        ["job_id", "status", "loss", "accuracy"],
        ["1", "COMPLETED", "0.6977", "0.3023"], ["2", "COMPLETED", "0.4803", "0.5197"],
        ["3", "COMPLETED", "0.2177", "0.7823"], ["4", "COMPLETED", "0.0360", "0.9640"]]
    assert lines[6] == "best job 4: lr=0.2 batch_size=128 accuracy 0.9640"
    assert [line.split() for line in lines[7:]] == [
        ["job_id", "lr", "batch_size", "epochs", "accuracy"],
        ["1", "0.05", "32", "10", "0.3023"], ["2", "0.05", "128", "10", "0.5197"],
        ["3", "0.20", "32", "10", "0.7823"], ["4", "0.20", "128", "10", "0.9640"]]

    with Api(url) as api:
        runs = list(api.runs(order="_id"))
        assert [(r.id, r.config.lr, r.config.batch_size) for r in runs] == [
            (1, 0.05, 32), (2, 0.05, 128), (3, 0.2, 32), (4, 0.2, 128)]
        assert all(r.status == "COMPLETED" and r.experiment["name"] == "all_jobs" for r in runs)
        accuracies = [round(r.summary["accuracy"], 4) for r in runs]
        assert accuracies == [0.3023, 0.5197, 0.7823, 0.964]
        assert [len(r.history("loss", samples=None, pandas=False)) for r in runs] == [10] * 4


def test_mongo_store_example_records_into_mongodb(mongo_server, mongo_db, mongo_url, tmp_path):
    env = {"LABBOOK_EXAMPLE_MONGO_URL": mongo_url}
    first = run_example("mongo_store.py", cwd=tmp_path, **env)
    second = run_example("mongo_store.py", "with", "lr=0.3", cwd=tmp_path, **env)
    for proc in (first, second):
        assert proc.returncode == 0, proc.stderr
        assert "Completed after 0:00:0" in proc.stderr
    assert first.stdout == "run 1: accuracy 0.6513\n"
    assert second.stdout == "run 2: accuracy 0.9718\n"
    listing = run_example("mongo_store.py", "runs", cwd=tmp_path, **env)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines() == [
        "2 run(s) of mongo_store in MongoDB",
        "  run 1: COMPLETED lr=0.1 accuracy=0.6513 (10 steps)",
        "  run 2: COMPLETED lr=0.3 accuracy=0.9718 (10 steps)"]

    store = open_store(mongo_url)
    try:
        docs = {d["_id"]: d for d in store.find()}
        assert sorted(docs) == [1, 2]
        assert docs[2]["status"] == "COMPLETED" and docs[2]["result"] == 0.9718
        assert docs[2]["config"]["lr"] == 0.3 and docs[2]["format"] == "MongoObserver-0.7.0"
        assert store.history(2)["loss"]["values"] == pytest.approx(toy_losses(0.3, 10))
    finally:
        store.close()
    client = mongo_server.client()  # Sacred's documents, as Omniboard reads them
    try:
        assert client[mongo_db].runs.count_documents({}) == 2
        names = set(client[mongo_db].metrics.distinct("name", {"run_id": 1}))
        assert names == {"accuracy", "loss"}  # what Omniboard lists: the user's metrics
        system = client[mongo_db].system_metrics.distinct("name", {"run_id": 1})
        assert "system.cpu_percent" in system  # sampled, and kept apart
    finally:
        client.close()


def test_store_by_url_example_records_where_the_url_says(tmp_path):
    sqlite = run_example("store_by_url.py", "--store", "sqlite:///labbook.db", cwd=tmp_path)
    files = run_example("store_by_url.py", "--store", "runs", cwd=tmp_path)
    from_env = run_example("store_by_url.py", "with", "steps=5", cwd=tmp_path,
                           LABBOOK_STORE="sqlite:///labbook.db")
    nowhere = run_example("store_by_url.py", cwd=tmp_path)
    for proc in (sqlite, files, from_env, nowhere):
        assert proc.returncode == 0, proc.stderr
    assert sqlite.stdout == "recording into: sqlite:///labbook.db\n"
    assert files.stdout == f"recording into: file://{os.path.realpath(tmp_path / 'runs')}\n"
    assert from_env.stdout == "recording into: sqlite:///labbook.db\n"
    assert 'Started run with ID "2"' in from_env.stderr
    assert nowhere.stdout == "recording into: nothing\n"
    assert "WARNING - store_by_url - No observers have been added to this run" in nowhere.stderr
    assert sorted(os.listdir(tmp_path / "runs")) == [".labbook", "1", "_sources"]  # one run

    store = open_store("sqlite:///" + str(tmp_path / "labbook.db"))
    try:
        docs = sorted(store.find(), key=lambda d: d["_id"])
        assert [(d["_id"], d["config"]["steps"], d["result"]) for d in docs] == \
            [(1, 3, 3), (2, 5, 5)]
        assert store.history(2)["value"]["values"] == [0, 10, 20, 30, 40]
    finally:
        store.close()
    with Api(str(tmp_path / "runs")) as api:
        [run] = api.runs()
        assert (run.id, run.status, run.result) == (1, "COMPLETED", 3)
        assert run.meta["options"]["--store"] == "runs"


def test_labbook_command_example_uses_every_reading_command(tmp_path):
    proc = run_example("labbook_command.py", cwd=tmp_path, TMPDIR=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    workdir = working_dir(proc, tmp_path)
    out = proc.stdout
    commands = [line for line in out.splitlines() if line.startswith("$ labbook ")]
    assert [c.split()[2] for c in commands] == ["ls", "ls", "show", "compare", "export", "plot",
                                                "open", "rm", "ls"]
    assert "$ labbook ls runs --filter 'config.lr >= 0.1' --columns id,config.lr" in commands
    sections = out.split("$ labbook ")
    first_ls = [line.split() for line in sections[1].splitlines()[1:]]
    assert first_ls == [["ID", "STATUS", "config.lr", "summary.loss", "RESULT"],
                        ["3", "COMPLETED", "0.3", "0.0282475", "0.9718"],
                        ["2", "COMPLETED", "0.1", "0.348678", "0.6513"],
                        ["1", "COMPLETED", "0.05", "0.598737", "0.4013"]]
    assert [line.split() for line in sections[2].splitlines()[1:]] == [
        ["ID", "config.lr"], ["3", "0.3"], ["2", "0.1"]]
    assert "Run 3 of labbook_command (train): COMPLETED" in sections[3]
    assert "lr = 0.3" in sections[3] and "(10 points)" in sections[3]
    assert "Comparing runs 1, 3" in sections[4] and "Wrote compare.html" in sections[4]
    assert "Wrote 3 run(s) to runs.csv" in sections[5]
    assert "Wrote loss.png" in sections[6]
    assert os.path.join(workdir, "runs", "2") in sections[7]
    assert "Deleted run 1 (labbook_command, COMPLETED)." in sections[8]
    assert [line.split() for line in sections[9].splitlines()[1:-1]] == [
        ["ID", "config.lr"], ["3", "0.3"], ["2", "0.1"]]
    assert out.splitlines()[-1] == \
        "files written: ['compare.html', 'loss.png', 'runs', 'runs.csv']"

    # what the commands left: run 1 deleted from the store, the files they wrote
    with Api(os.path.join(workdir, "runs")) as api:
        assert [(r.id, r.config.lr) for r in api.runs(order="_id")] == [(2, 0.1), (3, 0.3)]
    with open(os.path.join(workdir, "runs.csv"), encoding="utf-8") as fh:
        rows = fh.read().splitlines()
    assert rows[0].startswith("id,name,status,") and len(rows) == 4
    with open(os.path.join(workdir, "loss.png"), "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(workdir, "compare.html"), encoding="utf-8") as fh:
        assert "<img src=\"data:image/png;base64," in fh.read()


def test_notify_and_tinydb_example_records_into_tinydb_and_posts_to_slack(tmp_path):
    from labbook.observers import TinyDbReader

    proc = run_example("notify_and_tinydb.py", cwd=tmp_path, TMPDIR=str(tmp_path),
                       LABBOOK_EXAMPLE_SLACK_URL="")
    assert proc.returncode == 0, proc.stderr
    workdir = working_dir(proc, tmp_path)
    lines = proc.stdout.splitlines()
    assert lines[1:6] == [
        "[slack] lab-bot: :white_check_mark: *notify_and_tinydb* completed after _less than a "
        "second_ with result=`0.4095`",
        "[slack] lab-bot: :x: *notify_and_tinydb* failed after _less than a second_ with "
        "`FloatingPointError: loss diverged at epoch 3`",
        "COMPLETED: lr=0.1 result=0.4095 loss=[0.9, 0.81, 0.729, 0.6561, 0.5905]",
        "FAILED: lr=0.1 result=None loss=[0.9, 0.81, 0.729]",
        "artifact weights.txt: lr=0.1 loss=0.5905"]
    assert "Experiment: notify_and_tinydb" in lines and "    0.4095" in lines
    assert "could not send" not in proc.stderr

    reader = TinyDbReader(os.path.join(workdir, "runs_db"))
    docs = reader.runs.all()
    assert [(d["status"], d["config"]["diverge_at"]) for d in docs] == [
        ("COMPLETED", None), ("FAILED", 3)]
    assert docs[1]["fail_trace"][-1] == "FloatingPointError: loss diverged at epoch 3\n"
    assert os.path.isfile(os.path.join(workdir, "runs_db", "metadata.json"))


def test_sweep_launcher_example_places_each_run_in_a_process_of_its_own():
    proc = run_example("sweep_launcher.py")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "grid: 6 runs through local:3 in 6 processes, best lr=0.3 batch=16" in out
    assert "sweep grid: 6/6 done, 0 failed, 0 pruned, 0 running, best loss 0.396879" in out
    assert "Done: queue sweep_launcher: 3 done, 0 failed, 0 pruned, 0 running" in out
    assert "run-queue: 3 queued runs COMPLETED, results [0.4245, 0.4704, 0.818]" in out
    store = out.rsplit("store: ", 1)[1].strip()
    api = Api(store)
    try:
        runs = api.runs()
        assert len(runs) == 9 and {r.status for r in runs} == {"COMPLETED"}
        assert all(r.meta["worker"].startswith("launcher:") for r in runs)
    finally:
        api.close()
