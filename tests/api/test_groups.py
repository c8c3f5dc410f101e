"""Runs linked by group and parent (folds, trials, nested runs), found by filters on every
store kind."""
from __future__ import annotations

import labbook
from labbook import Api


def test_group_and_parent_are_query_fields(empty_url):
    """On every store kind: children found by ``parent``, folds by ``group``."""
    with labbook.start_run("cv", store=empty_url, system_metrics=False) as parent:
        pass
    for fold in range(3):
        with labbook.start_run("cv", config={"fold": fold}, group="cv-1", parent=parent._id,
                               store=empty_url, system_metrics=False):
            labbook.log_scalar("score", fold / 10)
    api = Api(empty_url)
    children = api.runs(filters={"parent": parent._id}, order="config.fold")
    assert [r.config["fold"] for r in children] == [0, 1, 2]
    assert [r.config["fold"] for r in api.runs("group = 'cv-1'", order="-config.fold")] \
        == [2, 1, 0]
    assert len(api.runs(filters={"meta.group": "cv-1"})) == 3
    frame = api.runs(filters={"group": "cv-1"}, order="config.fold").to_dataframe()
    assert list(frame["group"]) == ["cv-1"] * 3
    assert list(frame["parent"]) == [parent._id] * 3
    everything = api.runs(order="start_time").to_dataframe()
    assert list(everything.columns[:7]) == ["id", "name", "status", "start_time", "duration",
                                            "group", "parent"]
    assert everything["group"].isna().tolist() == [True, False, False, False]


def test_ls_shows_the_group_when_runs_have_one(tmp_path, capsys):
    from labbook.cli.main import main

    store = str(tmp_path / "runs")
    with labbook.start_run("cv", store=store, system_metrics=False):
        pass
    assert main(["ls", store]) == 0
    assert "GROUP" not in capsys.readouterr().out  # no run has a group: no column
    with labbook.start_run("cv", group="fold-3", variant="big", store=store,
                           system_metrics=False):
        pass
    assert main(["ls", store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["ID", "NAME", "GROUP", "STATUS"]
    assert lines[1].split()[:3] == ["2", "cv", "fold-3"]
    assert lines[2].split()[:3] == ["1", "cv", "-"]
    assert main(["ls", store, "--columns", "id,variant,parent"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["2", "big", "-"]


def test_runs_with_chosen_ids_are_listed_or_refused_before_the_start(empty_url, tmp_path,
                                                                     monkeypatch):
    """--id baseline / start_run(run_id="baseline"): the run is found, listed and sorted with
    the numbered ones (on the file store: a directory named after the id); the SQL stores
    number runs with integers and refuse it before anything runs, journaling nothing."""
    import pytest

    from labbook.errors import RunIdRefusedError

    monkeypatch.chdir(tmp_path)  # where a journal would go
    with labbook.start_run("ids", store=empty_url, system_metrics=False):
        pass
    api = Api(empty_url)
    if empty_url.split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql", "mysql"):
        refused = r"The SQL store numbers runs with integers; cannot use the run id 'baseline'\."
        with pytest.raises(RunIdRefusedError, match=refused):
            labbook.start_run("ids", store=empty_url, run_id="baseline", system_metrics=False)
        assert [r.id for r in api.runs()] == [1]
        assert not (tmp_path / "labbook_failed_runs").exists()
        return
    with labbook.start_run("ids", store=empty_url, run_id="baseline", system_metrics=False):
        labbook.log_scalar("x", 1)
    ids = sorted(str(r.id) for r in api.runs())
    assert ids[-1] == "baseline" and len(ids) == 2
    assert api.run("baseline").status == "COMPLETED"
    assert api.runs(filters={"_id": "baseline"})[0].summary == {"x": 1}
    frame = api.runs().to_dataframe()
    assert sorted(map(str, frame["id"])) == ids


def test_the_file_store_refuses_ids_that_name_its_own_directories(tmp_path):
    import pytest

    from labbook.errors import RunIdRefusedError

    with pytest.raises(RunIdRefusedError, match=r"'_sources' cannot be a run id in a file "
                                                r"store: it names the run's directory \(no "
                                                r"slashes, no leading '_' or '\.'\)\."):
        labbook.start_run(store=str(tmp_path / "runs"), run_id="_sources",
                          system_metrics=False)
