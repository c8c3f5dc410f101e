"""File stores on object storage: ``memory://``, ``s3://`` against a real S3-compatible
server (moto's server mode, ``ThreadedMotoServer``, started on a free port in this process) and
``gs://`` against a GCS emulator (gcp-storage-emulator, likewise).

The same runs (tests/api/conftest.py's standard runs) are recorded into a local file store and
into each remote store; everything the read API returns must be the same. Each test makes its
own bucket or memory name, so tests share nothing.
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import sys

import pytest

import labbook
from labbook import Api, Experiment
from labbook.errors import (MissingExtraError, NoStoreError, RemoteStoreError, RunExistsError,
                            StoreUnusableError, StoreURLError)
from labbook.stores import open_store
from tests.api.conftest import OPTS, record_standard_runs

SECRET = "test-secret-" + secrets.token_hex(4)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _no_server(reason: str) -> None:
    print(f"\n[labbook tests] {reason}", file=sys.stderr)
    if os.environ.get("LABBOOK_TEST_REQUIRE_SERVERS"):
        pytest.fail(reason)
    pytest.skip(reason)


try:
    import fsspec  # noqa: F401
except ImportError:
    _REASON = "remote stores need fsspec: pip install -e '.[test]'"
    print(f"\n[labbook tests] {_REASON}", file=sys.stderr)
    if os.environ.get("LABBOOK_TEST_REQUIRE_SERVERS"):
        raise
    pytest.skip(_REASON, allow_module_level=True)


class S3Server:
    """moto's S3 server on a port of its own; ``url(prefix)`` makes a fresh bucket."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._cls = ThreadedMotoServer
        self.server = None
        self.start()

    def start(self) -> None:
        self.server = self._cls(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def bucket(self) -> str:
        import boto3

        name = f"labbook-{secrets.token_hex(6)}"
        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1").create_bucket(
            Bucket=name)
        return name

    def url(self, prefix: str = "runs", bucket: str | None = None) -> str:
        return f"s3://{bucket or self.bucket()}/{prefix}?endpoint_url={self.endpoint}"


@pytest.fixture(scope="session")
def aws_environment():
    """Credentials for the test server (any will do), restored afterwards."""
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY=SECRET,
                      AWS_DEFAULT_REGION="us-east-1")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def s3_server(aws_environment):
    try:
        import boto3  # noqa: F401
        import s3fs  # noqa: F401
        from moto.server import ThreadedMotoServer  # noqa: F401
    except ImportError as exc:
        _no_server(f"no S3 test server: {exc.name} is not installed (pip install -e '.[test]')")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request else
    server = S3Server()
    yield server
    with contextlib.suppress(Exception):
        server.stop()


@pytest.fixture(scope="session")
def gcs_server():
    """gcp-storage-emulator's GCS JSON API on a port of its own, buckets in memory."""
    try:
        import gcsfs  # noqa: F401
        from gcp_storage_emulator.server import create_server
    except ImportError as exc:
        _no_server(f"no GCS test server: {exc.name} is not installed (pip install -e '.[test]')")
    logging.getLogger("gcp_storage_emulator").setLevel(logging.CRITICAL)  # logs each 404
    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    yield f"http://127.0.0.1:{port}"
    with contextlib.suppress(Exception):
        server.stop()


@pytest.fixture
def memory_url() -> str:
    return f"memory://labbook-test-{secrets.token_hex(6)}/runs"


@pytest.fixture(params=["memory", "s3"])
def remote_url(request) -> str:
    if request.param == "memory":
        return request.getfixturevalue("memory_url")
    return request.getfixturevalue("s3_server").url()


def _experiment(body=None, name: str = "remote") -> Experiment:
    ex = Experiment(name)
    ex.add_config({"lr": 0.1, "n": 3})

    @ex.main
    def main(_run, lr, n):
        for i in range(n):
            _run.log_scalar("loss", 1.0 / (i + 1), i)
        print("trained")
        if body is not None:
            body(_run)
        return lr * 2

    return ex


# -- the same runs, the same answers -----------------------------------------------------------

def _everything(api: Api) -> dict:
    """What the read API says about the standard runs, with nothing store-specific in it."""
    out: dict = {}
    runs = list(api.runs(order="start_time"))
    out["runs"] = [(r.id, r.name, r.status, {k: v for k, v in r.config.items() if k != "seed"},
                    r.tags, r.notes, r.result,
                    r.summary, r.experiment.get("name")) for r in runs]
    out["filtered"] = [r.id for r in api.runs(filters={"config.lr": {"$gte": 0.01},
                                                       "status": "COMPLETED"})]
    out["text"] = [r.id for r in api.runs(filters="summary.acc > 0.65 and tags = 'tuned'")]
    out["other"] = [r.id for r in api.runs(experiment="other")]
    out["history"] = {r.id: [{k: v for k, v in row.items() if k.startswith(("_step", "acc",
                                                                           "loss"))}
                             for row in r.history(samples=None, pandas=False)] for r in runs}
    first = api.run(1)
    out["artifacts"] = {f.name: f.read_bytes() for f in first.files()}
    out["sources"] = sorted((s.name, s.read_text()) for s in first.sources)
    out["output"] = [r.captured_out for r in runs]
    return out


def test_remote_store_reads_exactly_like_the_local_file_store(remote_url, tmp_path):
    local_url = f"file://{tmp_path / 'local'}"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    record_standard_runs(local_url, tmp_path / "a")
    record_standard_runs(remote_url, tmp_path / "b")
    local, remote = Api(local_url), Api(remote_url)
    expected, got = _everything(local), _everything(remote)
    assert got["runs"] == expected["runs"]
    assert [r[0] for r in got["runs"]] == [1, 2, 3, 4, 5]
    for key in ("filtered", "text", "other", "history", "artifacts", "sources", "output"):
        assert got[key] == expected[key], key
    assert got["artifacts"]["notes.txt"] == b"artifact text\n"
    assert got["sources"] and got["sources"][0][1].startswith('"""')


def test_the_layout_is_the_file_stores(memory_url):
    import fsspec

    ex = _experiment(lambda _run: _run.add_artifact(__file__, "copy.py"))
    run = ex.run(options={**OPTS, "--store": memory_url})
    root = memory_url[len("memory:/"):]
    names = sorted(p[len(root) + 1:] for p in fsspec.filesystem("memory").find(root))
    assert [n for n in names if n.startswith("1/")] == [
        "1/.labbook-claim", "1/config.json", "1/copy.py", "1/cout.txt", "1/metrics.json",
        "1/metrics.jsonl", "1/run.json"]
    assert [n for n in names if n.startswith("_sources/")][0].endswith(".py")
    store = open_store(memory_url, must_exist=True)
    doc = store.get(run._id)
    assert doc["status"] == "COMPLETED" and doc["result"] == 0.2
    assert doc["captured_out"] == "trained\n" and doc["artifacts"] == ["copy.py"]
    assert store.history(run._id)["loss"]["values"] == [1.0, 0.5, 1 / 3]
    with open(__file__, "rb") as fh:
        assert store.open_artifact(run._id, "copy.py").read() == fh.read()
    writer = open_store(memory_url)  # a writer holds a run's metrics only while it runs
    run_id = writer.create_run({"status": "RUNNING", "config": {}})
    writer.append_metrics(run_id, {"x": {"steps": [0], "values": [1], "timestamps": [None]}})
    assert list(writer.fs._appended) == [f"{writer.basedir}/{run_id}/metrics.jsonl"]
    writer.update_run(run_id, {"status": "COMPLETED"})
    assert writer.fs._appended == {}
    assert writer.history(run_id, raw=True)["x"]["values"] == [1]


def test_listing_many_runs_fetches_their_files_in_batches(memory_url, monkeypatch):
    import collections

    from labbook.stores.filesystem import RemoteFS

    store = open_store(memory_url)
    for i in range(30):
        run_id = store.create_run({"status": "RUNNING", "config": {"i": i}})
        store.append_metrics(run_id, {"x": {"steps": [0], "values": [i], "timestamps": [None]}})
        store.update_run(run_id, {"status": "COMPLETED"})
    calls: collections.Counter = collections.Counter()
    real = RemoteFS._call

    def counted(self, what, method, *args, **kwargs):
        calls[method] += 1
        return real(self, what, method, *args, **kwargs)

    monkeypatch.setattr(RemoteFS, "_call", counted)
    runs = Api(memory_url).runs(order="_id")
    assert [run.summary["x"] for run in runs] == list(range(30))
    # one listing, one batch of documents, one batch of metric files: not a request per file
    assert calls["cat"] == 2 and calls["cat_file"] == 0 and calls["exists"] <= 1


def test_a_failing_batch_read_is_an_error_not_a_missing_file(memory_url, monkeypatch):
    store = open_store(memory_url)
    store.create_run({"status": "COMPLETED", "config": {}})
    reader = open_store(memory_url, must_exist=True)

    def refused(paths, on_error="raise"):
        return {path: PermissionError("Access Denied") for path in paths}

    monkeypatch.setattr(reader.fs.fs, "cat", refused)
    with pytest.raises(RemoteStoreError, match="access denied"):
        reader.find()


# -- ids: never one run over another --------------------------------------------------------------

def test_two_writers_never_share_an_id(remote_url):
    first, second = open_store(remote_url), open_store(remote_url)
    ids = [store.create_run({"status": "QUEUED", "config": {"i": i}})
           for i, store in enumerate([first, second, first, second])]
    assert ids == [1, 2, 3, 4]
    # a writer whose listing is behind tries a taken id: the claim fails, it moves on
    second.fs.listdir = lambda path: []
    assert second.create_run({"status": "QUEUED", "config": {"i": 9}}) == 5
    assert [open_store(remote_url).get(i)["config"]["i"] for i in range(1, 6)] == [0, 1, 2, 3, 9]


WRITER = """
import sys
from labbook.stores import open_store
store = open_store(sys.argv[1])
for i in range(int(sys.argv[3])):
    run_id = store.create_run({"status": "RUNNING", "config": {"writer": sys.argv[2], "i": i}})
    store.update_run(run_id, {"status": "COMPLETED", "result": [sys.argv[2], i]})
"""


def test_parallel_processes_get_distinct_complete_runs(s3_server):
    import subprocess

    url = s3_server.url()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, url, f"w{n}", "4"], env=env,
                                stderr=subprocess.PIPE, text=True) for n in range(4)]
    for proc in writers:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    store = open_store(url, must_exist=True)
    assert store.run_ids() == list(range(1, 17))
    results = sorted(tuple(store.get(i)["result"]) for i in store.run_ids())
    assert results == sorted((f"w{n}", i) for n in range(4) for i in range(4))


def test_threads_sharing_the_in_memory_store_list_while_others_write(memory_url):
    # fsspec's memory filesystem lists by iterating its one dict, which a write in another
    # thread can change meanwhile; the store's calls to it take turns
    import threading

    from labbook.stores.filesystem import RemoteFS

    store = open_store(memory_url)
    fs = store.fs
    assert isinstance(fs, RemoteFS)
    errors, barrier = [], threading.Barrier(4)

    def work(worker):
        try:
            barrier.wait(30)
            for i in range(300):
                fs.put_bytes(fs.join(store.basedir, f"w{worker}", f"{i}.bin"), b"x")
                fs.files_under(store.basedir)
        except Exception as exc:  # pragma: no cover - what the test is about
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert len(fs.files_under(store.basedir)) == 4 * 300


def test_a_claim_is_an_exclusive_create(remote_url):
    store = open_store(remote_url)
    path = store.fs.join(store.basedir, "9", ".claimed")
    store.fs.mkdir_exclusive(path)
    with pytest.raises(FileExistsError):
        store.fs.mkdir_exclusive(path)
    marker = store.fs.join(store.basedir, "8", ".labbook-claim")
    store.fs.create_exclusive(marker)
    with pytest.raises(FileExistsError):
        store.fs.create_exclusive(marker)  # the server refused (S3: If-None-Match)
    assert store.fs.exclusive  # ...by its own conditional write, not a read-back


def test_a_taken_id_is_refused_and_a_queued_run_starts_under_its_id(remote_url):
    ex = _experiment()
    ex.run(options={**OPTS, "--store": remote_url, "--id": "7"})
    with pytest.raises(RunExistsError, match="already exists"):
        ex.run(options={**OPTS, "--store": remote_url, "--id": "7"})
    queued = ex.run(config_updates={"lr": 0.5}, options={**OPTS, "--store": remote_url,
                                                         "--queue": True})
    store = open_store(remote_url)
    assert store.get(queued._id)["status"] == "QUEUED"
    claimed = store.claim_queued("worker-1")
    assert claimed["_id"] == queued._id and claimed["meta"]["worker"] == "worker-1"
    assert store.claim_queued("worker-2") is None  # taken once only
    store.delete_run(7)
    assert store.get(7) is None and store.run_ids() == [queued._id]


# -- observers ---------------------------------------------------------------------------------

def test_s3_observer_creates_its_bucket_and_records(s3_server):
    from labbook.observers import S3Observer

    bucket = f"labbook-new-{secrets.token_hex(4)}"
    observer = S3Observer(bucket, "exp/runs", region="eu-west-1",
                          endpoint_url=s3_server.endpoint)
    assert observer.priority == 20 and observer.resource_dir == "exp/runs/_resources"
    ex = _experiment(lambda _run: _run.add_artifact(__file__, "code.py"))
    ex.observers.append(observer)
    run = ex.run(options=OPTS)
    assert observer.dir == f"exp/runs/{run._id}"
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint)
    assert client.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
    api = Api(f"s3://{bucket}/exp/runs?endpoint_url={s3_server.endpoint}")
    (stored,) = api.runs()
    assert stored.status == "COMPLETED" and stored.config["lr"] == 0.1
    assert [row["loss"] for row in stored.history(pandas=False)] == [1.0, 0.5, 1 / 3]
    assert stored.file("code.py").read_bytes().startswith(b'"""File stores')
    assert S3Observer(bucket, "exp/runs") == S3Observer(bucket, "exp/runs/")


def test_google_cloud_storage_observer_takes_sacreds_arguments():
    from labbook.observers import GoogleCloudStorageObserver

    # made without contacting the service: the bucket is first used when a run starts
    observer = GoogleCloudStorageObserver("lab-results", "exp/runs", source_dir="shared/src",
                                          endpoint_url="http://127.0.0.1:9")
    assert observer.priority == 20 and observer.dir is None
    assert observer.store.url == "gs://lab-results/exp/runs?endpoint_url=http://127.0.0.1:9"
    assert observer.store.basedir == "lab-results/exp/runs"
    assert observer.store.source_dir == "lab-results/shared/src"
    assert observer.resource_dir == "exp/runs/_resources"
    assert observer.store.resource_dir == "lab-results/exp/runs/_resources"
    assert observer == GoogleCloudStorageObserver("lab-results", "/exp/runs",
                                                  endpoint_url="http://127.0.0.1:9")
    assert open_store("gcs://lab-results/exp?endpoint_url=http://127.0.0.1:9").scheme == "gcs"


def test_google_cloud_storage_observer_records_into_a_gcs_server(gcs_server):
    import gcsfs.core

    from labbook.observers import GoogleCloudStorageObserver

    bucket = f"labbook-{secrets.token_hex(6)}"
    fs = gcsfs.core.GCSFileSystem(endpoint_url=gcs_server, token="anon")
    fs.mkdir(bucket)
    ex = _experiment(lambda run: run.add_artifact(__file__, "code.py"))
    ex.observers.append(GoogleCloudStorageObserver(bucket, "exp/runs", endpoint_url=gcs_server))
    run = ex.run(options=OPTS)
    # the file store's layout, in the bucket
    names = sorted(path.split("/", 1)[1] for path in fs.find(bucket))
    sources = [n for n in names if n.startswith("exp/runs/_sources/")]
    assert any(n.startswith("exp/runs/_sources/test_remote_store_") for n in sources)
    assert all(n.endswith(".py") for n in sources)
    assert [n for n in names if n.startswith(f"exp/runs/{run._id}/")
            and not n.endswith(".labbook-claim")] == [
        f"exp/runs/{run._id}/{name}" for name in (
            "code.py", "config.json", "cout.txt", "metrics.json", "metrics.jsonl", "run.json")]
    api = Api(f"gs://{bucket}/exp/runs?endpoint_url={gcs_server}")
    (stored,) = api.runs()
    assert stored.id == run._id and stored.status == "COMPLETED" and stored.result == 0.2
    assert [row["loss"] for row in stored.history(pandas=False)] == [1.0, 0.5, 1 / 3]
    assert stored.file("code.py").read_bytes().startswith(b'"""File stores')
    assert "trained" in stored.captured_out


def test_memory_store_through_create_and_the_generic_observer(memory_url):
    from labbook.observers import create

    ex = _experiment()
    ex.observers.append(create(memory_url))
    run = ex.run(options=OPTS)
    assert Api(memory_url).run(run._id).result == 0.2


def test_bucket_names_are_checked_before_anything_is_written(s3_server):
    from labbook.observers import GoogleCloudStorageObserver, S3Observer

    with pytest.raises(StoreURLError, match="'Bad_Bucket' is not a valid bucket name"):
        S3Observer("Bad_Bucket", "runs")
    with pytest.raises(StoreURLError, match="not a valid bucket name"):
        GoogleCloudStorageObserver("gs://bucket", "runs")
    ex = _experiment()
    with pytest.raises(StoreURLError, match=r"^s3://x/runs: 'x' is not a valid bucket name"):
        ex.run(options={**OPTS, "--store": "s3://x/runs"})
    with pytest.raises(StoreURLError, match="names no bucket"):
        open_store("s3://")
    with pytest.raises(StoreURLError, match="unknown option colour"):
        open_store("s3://good-bucket/runs?colour=red")


def test_a_missing_bucket_is_one_line_and_nothing_runs(s3_server):
    ran = []
    ex = _experiment(lambda _run: ran.append(1))
    url = f"s3://labbook-missing-{secrets.token_hex(4)}/runs?endpoint_url={s3_server.endpoint}"
    with pytest.raises(StoreUnusableError) as info:
        ex.run(options={**OPTS, "--store": url})
    assert "does not exist" in str(info.value) and "\n" not in str(info.value)
    assert ran == []
    with pytest.raises(NoStoreError, match="No store at"):
        Api(url)


def test_an_unreachable_endpoint_is_one_line_without_secrets(aws_environment):
    url = f"s3://labbook-away/runs?endpoint_url=http://127.0.0.1:{_free_port()}"
    ran = []
    ex = _experiment(lambda _run: ran.append(1))
    with pytest.raises(StoreUnusableError) as info:
        ex.run(options={**OPTS, "--store": url})
    message = str(info.value)
    assert message.startswith("Cannot record runs in s3://labbook-away/runs")
    assert "cannot reach the server" in message and "\n" not in message
    assert SECRET not in message and ran == []
    with pytest.raises(RemoteStoreError, match="Cannot read the store s3://labbook-away"):
        Api(url)
    # a password in the endpoint's URL is masked wherever the store's URL is shown
    store = open_store(f"s3://labbook-away/runs?endpoint_url=http://minio:{SECRET}@127.0.0.1:"
                       f"{_free_port()}")
    assert store.shown.startswith("s3://labbook-away/runs?endpoint_url=http://minio:****@")
    with pytest.raises(StoreURLError) as info:
        open_store(f"s3://labbook-away/runs?endpoint_url=http://minio:{SECRET}@host&colour=red")
    assert SECRET not in str(info.value) and "minio:****@" in str(info.value)


def _delivery_settled(limit: float = 120.0) -> None:
    """Wait until no durable observer of this process is inside a call to its store."""
    import time

    from labbook.observers.durable import _WRAPPERS

    deadline = time.monotonic() + limit
    while any(w._calling for w in list(_WRAPPERS.values())) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_an_outage_during_the_run_is_journaled_and_synced(s3_server, tmp_path, monkeypatch,
                                                          caplog):
    import time

    from labbook.observers.queued import replay

    url = s3_server.url()

    def body(_run):
        time.sleep(0.3)  # beats: the first points are stored
        s3_server.stop()  # the server goes away in the middle of the run
        for i in range(3, 6):
            _run.log_scalar("loss", 1.0 / (i + 1), i)
        time.sleep(0.3)

    failure_dir = tmp_path / "failed"
    monkeypatch.setenv("LABBOOK_FAILURE_DIR", str(failure_dir))
    # the stopped server refuses at once: a long SYNC_WAIT costs nothing and keeps the start
    # (which must get its id) from timing out on a loaded machine
    for key, value in (("SYNC_WAIT", 10.0), ("MAX_WAIT", 0.3), ("BACKOFF", 0.01)):
        monkeypatch.setitem(labbook.SETTINGS["DELIVERY"], key, value)
    ex = _experiment(body)
    try:
        with caplog.at_level(logging.WARNING):
            run = ex.run(options={**OPTS, "--store": url, "--beat-interval": 0.1})
    finally:
        # the call that was under way when the run ended fails first (a process that ends
        # simply drops it); then the server comes back, holding the same buckets
        _delivery_settled()
        s3_server.start()
    assert run.status == "COMPLETED" and run.result == 0.2
    assert str(failure_dir / f"run_{run._id}") in caplog.text
    assert SECRET not in caplog.text
    (journal,) = replay(failure_dir, url)  # how many events wait depends on the timing
    assert journal[:2] == (f"run_{run._id}", run._id) and journal[2] >= 1
    store = open_store(url, must_exist=True)
    doc = store.get(run._id)
    assert doc["status"] == "COMPLETED" and doc["result"] == 0.2
    assert store.history(run._id, ["loss"])["loss"]["steps"] == list(range(6))


# -- command line and missing packages ---------------------------------------------------------

def test_labbook_ls_reads_a_remote_store(s3_server, capsys):
    from labbook.cli.main import main

    url = s3_server.url()
    _experiment().run(options={**OPTS, "--store": url})
    assert main(["ls", "--store", url]) == 0
    out = capsys.readouterr().out
    assert "remote" in out and "COMPLETED" in out


def test_an_experiment_script_records_with_store_url_on_its_command_line(s3_server, tmp_path):
    import subprocess

    url = s3_server.url()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, os.path.join(root, "examples", "store_by_url.py"),
                           "with", "steps=4", "--store", url],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env=dict(os.environ, PYTHONPATH=root))
    assert proc.returncode == 0, proc.stderr
    assert f"recording into: {url}" in proc.stdout
    (run,) = Api(url).runs()
    assert run.config["steps"] == 4 and run.result == 4
    assert [row["value"] for row in run.history(pandas=False)] == [0, 10, 20, 30]


def test_missing_packages_name_the_extra(monkeypatch):
    import fsspec

    def missing(protocol):
        raise ImportError("Install s3fs to access S3", name="s3fs")

    monkeypatch.setattr(fsspec, "get_filesystem_class", missing)
    with pytest.raises(MissingExtraError, match=r"s3:// stores need fsspec and s3fs "
                                                r".*pip install 'labbook\[remote\]'"):
        open_store("s3://some-bucket/runs")


def test_sacreds_s3_flag_records_into_the_bucket(s3_server, monkeypatch):
    # python exp.py -S s3://bucket/path, as with Sacred: S3Observer, bucket made when missing
    # (the endpoint comes from the environment, as boto's AWS_ENDPOINT_URL)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    bucket = f"labbook-flag-{secrets.token_hex(4)}"
    ex = _experiment()
    run = ex.run_commandline(["exp", "-S", f"s3://{bucket}/exp", "-l", "WARNING",
                              "with", "lr=0.2"])
    assert run.status == "COMPLETED"
    (stored,) = Api(f"s3://{bucket}/exp?endpoint_url={s3_server.endpoint}").runs()
    assert stored.config["lr"] == 0.2 and stored.meta["options"]["--s3"] == f"s3://{bucket}/exp"


@pytest.mark.parametrize("flag, value, expected", [
    ("-S", "mybucket/exp", "-S/--s3 takes s3://BUCKET/PATH, got 'mybucket/exp'."),
    ("-S", "s3://mybucket", "-S/--s3 takes s3://BUCKET/PATH, got 's3://mybucket'."),
    ("-G", "s3://bucket/exp", "-G/--gcs takes gs://BUCKET/PATH, got 's3://bucket/exp'."),
])
def test_bucket_flags_refuse_a_value_without_bucket_and_path(flag, value, expected, capsys):
    ex = _experiment()
    with pytest.raises(SystemExit) as exit_:
        ex.run_commandline(["exp", flag, value])
    assert exit_.value.code == 2
    assert expected in capsys.readouterr().err


def test_start_run_records_into_a_bucket_and_resumes_there(remote_url):
    """A run without decorators on an object store: logged, versioned, resumed, read back."""
    import labbook

    with labbook.start_run("bucket-nb", config={"lr": 0.3}, store=remote_url, run_id=5,
                           system_metrics=False) as run:
        labbook.log({"loss": 0.5})
        labbook.log_text("kept in the bucket", "note")
    run.finish()
    with labbook.start_run("bucket-nb", store=remote_url, run_id=5, resume="must",
                           system_metrics=False):
        labbook.log({"loss": 0.25})
    stored = Api(remote_url).run(5)
    assert stored.status == "COMPLETED" and stored.config["lr"] == 0.3
    frame = stored.history("loss", samples=None)
    assert list(frame["_step"]) == [0, 1] and list(frame["loss"]) == [0.5, 0.25]
    assert stored.file("note.txt").read_bytes() == b"kept in the bucket"
    assert len(stored.meta["resumptions"]) == 1
