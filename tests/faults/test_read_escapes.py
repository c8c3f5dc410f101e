"""Terminal escape sequences stored in run names, tags, config values, notes or a fail trace
are shown visibly (``\\x1b``) by ``ls``, ``show`` and ``compare``, never emitted."""
from __future__ import annotations

import datetime as dt
import re

from labbook.cli.main import main
from labbook.cli.read import visible
from labbook.stores.file import FileStore

T0 = dt.datetime(2024, 5, 1, 12, 0, 0)
EVIL = "x\x1b[31mred\x1b]0;title\x07\x9b2J\u202e"
SHOWN = "x\\x1b[31mred\\x1b]0;title\\x07\\x9b2J\\u202e"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _store(path) -> str:
    store = FileStore(path)
    for n in range(2):
        run_id = store.create_run({
            "experiment": {"name": "exp"}, "command": "main", "host": {},
            "meta": {"name": EVIL if n == 0 else "plain", "tags": [EVIL], "notes": EVIL},
            "config": {"msg": EVIL, "lines": "one\ntwo"}, "status": "RUNNING",
            "start_time": T0, "resources": [], "artifacts": [], "captured_out": EVIL,
            "info": {}, "heartbeat": None, "result": EVIL})
        store.update_run(run_id, {"status": "FAILED", "stop_time": T0,
                                  "fail_trace": ["Traceback\n", f"ValueError: {EVIL}\n"]})
    return str(path)


def test_ls_show_compare_neutralise_escapes(tmp_path, capsys):
    store = _store(tmp_path / "runs")
    for argv in (["ls", store, "--order", "_id", "--columns", "id,name,tags,config.msg,result,"
                                                              "config.lines,meta.notes"],
                 ["show", "1", "--store", store],
                 ["compare", "1", "2", "--store", store]):
        assert main(argv) == 0
        out, err = capsys.readouterr()
        assert not RAW.search(out), (argv, out)
        assert SHOWN in out or SHOWN.replace("\\", "\\\\") in out, (argv, out)
    # the table keeps one row per run: a newline in a value is shown as \n
    assert main(["ls", store, "--order", "_id", "--columns", "id,config.lines"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ID  config.lines", "1   one\\ntwo",
                                                    "2   one\\ntwo"]
    # the fail trace keeps its lines; its escape sequences are shown
    assert main(["show", "1", "--store", store]) == 0
    assert f"    ValueError: {SHOWN}" in capsys.readouterr().out.splitlines()


def test_visible_keeps_text_and_shows_controls():
    assert visible("plain text\twith tab\nand lines") == "plain text\twith tab\nand lines"
    assert visible("a\tb\nc", cell=True) == "a\\tb\\nc"
    assert visible(EVIL) == SHOWN
    assert visible("ünïcode ✓") == "ünïcode ✓"
