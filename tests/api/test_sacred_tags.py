"""Tags and notes where Omniboard reads them, and what labbook.Api filters and shows, on every
store: ``--tag``, ``_run.set_tag`` during the run, ``--notes`` and Sacred's ``--comment``."""
from __future__ import annotations

import pytest

from labbook import Api, Experiment
from labbook.stores import open_store


def _record(url: str) -> int:
    ex = Experiment("tagged")

    @ex.main
    def main(_run):
        _run.set_tag("best")
        _run.set_tag("lr", 0.1)
        return 1

    run = ex.run(options={"--store": url, "--tag": ["cli"], "--notes": "wide net",
                          "--comment": "first try", "--beat-interval": 0.05})
    return run._id


def test_set_tag_during_a_run_is_kept_with_the_command_line_tags(empty_url):
    run_id = _record(empty_url)
    doc = open_store(empty_url).get(run_id)
    assert doc["meta"]["tags"] == ["cli", "best", "lr"]
    assert doc["meta"]["comment"] == "first try" and doc["meta"]["notes"] == "wide net"
    assert doc["info"]["tags"] == {"best": None, "lr": 0.1}
    api = Api(empty_url)
    view = api.run(run_id)
    assert view.tags == ["cli", "best", "lr"] and view.notes == "wide net"
    assert [r.id for r in api.runs("tags = 'best'")] == [run_id]
    assert [r.id for r in api.runs({"notes": "wide net"})] == [run_id]
    assert view.status == "COMPLETED" and view.result == 1


@pytest.fixture
def mongo_url(request) -> str:
    """A fresh database on the MongoDB test server (Omniboard reads MongoDB only)."""
    return request.getfixturevalue("server_databases").new("mongo", request)


def test_mongo_run_document_holds_omniboards_fields(mongo_url):
    empty_url = mongo_url
    run_id = _record(empty_url)
    store = open_store(empty_url)
    raw = store.runs.find_one({"_id": run_id})
    assert raw["omniboard"] == {"tags": ["cli", "best", "lr"], "notes": "wide net"}
    assert raw["meta"]["comment"] == "first try"
    # Omniboard edits: a tag added there and new notes are what the Api shows and filters
    store.runs.update_one({"_id": run_id}, {"$push": {"omniboard.tags": "from-omniboard"},
                                            "$set": {"omniboard.notes": "edited in omniboard"}})
    api = Api(empty_url)
    view = api.run(run_id)
    assert view.tags == ["cli", "best", "lr", "from-omniboard"]
    assert view.notes == "edited in omniboard"
    assert [r.id for r in api.runs("tags = 'from-omniboard'")] == [run_id]
    assert [r.id for r in api.runs({"notes": "edited in omniboard"})] == [run_id]
    # an edit through the Api reaches Omniboard's fields too (a removed tag stays removed)
    view.tags = ["cli", "from-omniboard"]
    view.notes = "from the api"
    view.update()
    raw = store.runs.find_one({"_id": run_id})
    assert raw["omniboard"] == {"tags": ["cli", "from-omniboard"], "notes": "from the api"}
    again = Api(empty_url).run(run_id)
    assert again.tags == ["cli", "from-omniboard"] and again.notes == "from the api"
    assert again.config == view.config and again.status == "COMPLETED"


def test_a_run_without_tags_or_notes_has_no_omniboard_entry(mongo_url):
    empty_url = mongo_url
    ex = Experiment("plain")

    @ex.main
    def main():
        return 2

    run = ex.run(options={"--store": empty_url})
    raw = open_store(empty_url).runs.find_one({"_id": run._id})
    assert "omniboard" not in raw and raw["result"] == 2
