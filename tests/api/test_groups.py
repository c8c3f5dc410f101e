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
