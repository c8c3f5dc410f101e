"""N points logged in one run, all reaching an observer's ``log_metrics``.

User-level code, the same for labbook and Sacred::

    python metric_points.py labbook|sacred N1,N2,... REPS

A custom observer counts the points of the metric ``loss`` it is handed (both packages call
``log_metrics(metrics_by_name, info)`` with ``{"loss": {"steps", "values", "timestamps"}}``).
For each N, ``ex.run()`` is timed with a loop of ``log_scalar`` calls and with the same loop
bare; the difference is the end-to-end cost of the points. Prints one ``@@RESULT`` JSON line.
"""
import importlib
import json
import sys
import time

pkg = sys.argv[1]
sizes = [int(float(x)) for x in sys.argv[2].split(",")]
reps = int(sys.argv[3])
Experiment = importlib.import_module(pkg).Experiment
RunObserver = importlib.import_module(pkg + ".observers").RunObserver


class CountingObserver(RunObserver):
    def __init__(self):
        self.points = 0
        self.calls = 0

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        self.points = 0
        self.calls = 0
        return _id if _id is not None else 1

    def log_metrics(self, metrics_by_name, info):
        self.calls += 1
        series = metrics_by_name.get("loss")
        if series is not None:
            self.points += len(series["values"])


counter = CountingObserver()
ex = Experiment("bench_metric_points")
ex.observers.append(counter)
state = {"n": 0, "log": True}


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
    state["n"] = n
    state["log"] = log
    t0 = time.perf_counter()
    ex.run()
    return time.perf_counter() - t0


result = {"reps": reps, "sizes": {}}
timed_run(1000, True)  # warm-up: first-run imports and caches are not part of the figure
for n in sizes:
    entry = {"bare": [], "logged": [], "received": [], "log_metrics_calls": []}
    for _ in range(reps):
        entry["bare"].append(timed_run(n, False))
        entry["logged"].append(timed_run(n, True))
        entry["received"].append(counter.points)
        entry["log_metrics_calls"].append(counter.calls)
    result["sizes"][str(n)] = entry
print("@@RESULT " + json.dumps(result))
