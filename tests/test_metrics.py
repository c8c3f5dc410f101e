"""The metric buffer: what log_scalar keeps and what a drain hands to the observers."""
import datetime
import threading

import pytest

from labbook.errors import MetricNameError, MetricValueError
from labbook.metrics import MetricBuffer


def test_steps_not_given_count_per_metric_across_drains():
    buf = MetricBuffer()
    buf.add("a", 1.0)
    buf.add("a", 2.0, 10)  # a given step does not move the counter
    buf.add("b", 5)
    buf.add("a", 3.0)
    first = buf.drain()
    assert first["a"]["steps"] == [0, 10, 1] and first["a"]["values"] == [1.0, 2.0, 3.0]
    assert first["b"] == {"steps": [0], "values": [5], "timestamps": first["b"]["timestamps"],
                          "name": "b"}
    assert isinstance(first["b"]["values"][0], int)  # ints stay ints
    assert all(isinstance(t, datetime.datetime) for t in first["a"]["timestamps"])
    buf.add("a", 4.0)
    buf.add("a", 5.0)
    assert buf.drain()["a"]["steps"] == [2, 3]
    assert buf.drain() == {}
    assert buf.latest() == {"a": 5.0, "b": 5}


def test_bad_points_are_refused_at_the_call_and_leave_nothing_behind():
    buf = MetricBuffer()
    with pytest.raises(MetricNameError):
        buf.add("", 1.0)
    with pytest.raises(MetricValueError, match="must be a real number"):
        buf.add("x", "high")
    with pytest.raises(MetricValueError, match="step of metric 'x' must be an integer"):
        buf.add("x", 1.0, 1.5)
    with pytest.raises(MetricValueError, match="64-bit steps"):
        buf.add("x", 1.0, 2 ** 63)
    with pytest.raises(MetricValueError, match="beyond 2\\*\\*53"):
        buf.add("x", 2 ** 53 + 1)
    assert buf.size() == 0 and buf.drain() == {}


def test_points_logged_while_another_thread_drains_are_all_delivered_once():
    buf = MetricBuffer()
    n = 200_000
    done = threading.Event()

    def log():
        for i in range(n):
            buf.add("loss", float(i))
            buf.add("acc", i, i)
        done.set()

    seen = {"loss": [], "acc": []}
    thread = threading.Thread(target=log)
    thread.start()
    while not done.is_set():
        for name, series in buf.drain().items():
            seen[name] += series["steps"]
    thread.join()
    for name, series in buf.drain().items():
        seen[name] += series["steps"]
    assert seen["loss"] == list(range(n)) and seen["acc"] == list(range(n))
    assert buf.size() == 0


def test_a_drain_with_a_limit_takes_the_oldest_points_of_each_metric_first():
    buf = MetricBuffer()
    for i in range(5):
        buf.add("a", float(i))
    for i in range(3):
        buf.add("b", i, 10 + i)
    buf.log({"c": 1}, commit=False)
    buf.commit()
    assert buf.size() == 9
    first = buf.drain(4)
    assert {k: v["steps"] for k, v in first.items()} == {"a": [0, 1, 2, 3]}
    second = buf.drain(3)
    assert {k: v["steps"] for k, v in second.items()} == {"a": [4], "b": [10, 11]}
    rest = buf.drain()
    assert {k: v["steps"] for k, v in rest.items()} == {"b": [12], "c": [0]}
    assert buf.size() == 0


def test_threads_logging_new_metrics_at_once_lose_no_point():
    for _ in range(20):
        buf = MetricBuffer()
        start = threading.Barrier(4)

        def log(k):
            start.wait()
            for i in range(200):
                buf.add(f"m{i % 50}", float(k), k * 1000 + i)

        threads = [threading.Thread(target=log, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        drained = buf.drain()
        assert sum(len(s["steps"]) for s in drained.values()) == 800
