"""Metric points into a real store: end to end, and the cost of one heartbeat as history grows.

User-level code, the same for labbook and Sacred::

    python store_points.py labbook|sacred file|sqlite N1,N2,... REPS BEATS PER_BEAT SCRATCH

``e2e``: for each N, ``ex.run()`` of a loop of N ``log_scalar`` calls into the store
(``FileStorageObserver(dir)``, or ``SqlObserver("sqlite:///...")``), minus the same run with
the loop bare. The run is read back afterwards and its points counted (for labbook, through
the store's read side), so a figure never counts points that were not stored.

``beats``: the observer is driven the way a run drives it, one heartbeat at a time: BEATS
heartbeats of PER_BEAT new points each (``log_metrics`` then ``heartbeat_event``), every one
timed. A store whose beat rewrites the whole history gets slower as the run goes on; one that
appends does not. Prints one ``@@RESULT`` JSON line.
"""
import datetime as dt
import importlib
import json
import os
import sys
import time

pkg, kind = sys.argv[1], sys.argv[2]
sizes = [int(float(x)) for x in sys.argv[3].split(",")]
reps, beats, per_beat = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
scratch = sys.argv[7]
Experiment = importlib.import_module(pkg).Experiment
observers = importlib.import_module(pkg + ".observers")


def new_observer(tag):
    where = os.path.join(scratch, f"{pkg}-{kind}-{tag}")
    if kind == "file":
        return observers.FileStorageObserver(where), where
    os.makedirs(where, exist_ok=True)
    url = f"sqlite:///{where}/runs.db"
    return observers.SqlObserver(url), url


def stored_points(where, run_id):
    """Points of ``loss`` the store holds for the run (read back, not taken on trust)."""
    if pkg == "labbook":
        from labbook.stores import open_store

        store = open_store(where)
        try:
            return len(store.history(run_id, ["loss"]).get("loss", {}).get("values", []))
        finally:
            store.close()
    try:
        fh = open(os.path.join(where, str(run_id), "metrics.json"), encoding="utf-8")
    except FileNotFoundError:  # seen with Sacred 0.8.7 at 10^6 points: the runner says so
        return "no metrics.json: the run's points were not stored"
    with fh:
        try:
            return len(json.load(fh)["loss"]["values"])
        except ValueError as exc:  # seen with Sacred 0.8.7 at 10^6 points: say so, go on
            return f"unreadable metrics.json: {exc}"


state = {"n": 0, "log": True}
observer, where = new_observer("e2e")
ex = Experiment("bench_store_points")
ex.observers.append(observer)


@ex.main
def main(_run):
    n = state["n"]
    if state["log"]:
        for i in range(n):
            _run.log_scalar("loss", i * 0.1, i)
    else:
        for i in range(n):
            i * 0.1


def timed_run(n, log):
    state["n"], state["log"] = n, log
    t0 = time.perf_counter()
    run = ex.run(options={"--loglevel": "ERROR"})
    return time.perf_counter() - t0, run._id


result = {"kind": kind, "reps": reps, "sizes": {}, "beats": {}}
timed_run(1000, True)  # warm-up: first-run imports and caches are not part of the figure
for n in sizes:
    entry = {"bare": [], "logged": [], "stored": []}
    for _ in range(reps):
        entry["bare"].append(timed_run(n, False)[0])
        seconds, run_id = timed_run(n, True)
        entry["logged"].append(seconds)
        entry["stored"].append(stored_points(where, run_id))
    result["sizes"][str(n)] = entry

# -- one heartbeat at a time ---------------------------------------------------------------------
beat_observer, _ = new_observer("beats")
start = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
run_id = beat_observer.started_event(
    ex_info={"name": "bench_beats", "base_dir": scratch, "sources": [], "dependencies": [],
             "repositories": [], "mainfile": None},
    command="main", host_info={"hostname": "bench"}, start_time=start,
    config={"seed": 1}, meta_info={"command": "main", "options": {}}, _id=None)
times = []
for beat in range(beats):
    steps = list(range(beat * per_beat, (beat + 1) * per_beat))
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    points = {"loss": {"steps": steps, "values": [s * 0.5 for s in steps],
                       "timestamps": [now] * per_beat}}
    t0 = time.perf_counter()
    beat_observer.log_metrics(points, {})
    beat_observer.heartbeat_event({}, "", now, None)
    times.append(time.perf_counter() - t0)
beat_observer.completed_event(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), None)
result["beats"] = {"per_beat": per_beat, "seconds": times}
print("@@RESULT " + json.dumps(result))
