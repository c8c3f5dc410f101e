"""Every public name of Sacred 0.8.7 resolves at the same import path in labbook, and each
callable does its job.

The lists below are the ``__all__`` of Sacred 0.8.7's modules (names only), plus the names
the issue asks for that Sacred's modules define without listing them.
"""
import datetime
import importlib
import io
import json
import logging
import os
import sys
import threading
from collections import OrderedDict

import pytest

SACRED_NAMES = {
    "": ["Experiment", "Ingredient", "observers", "host_info_getter", "__version__",
         "__author__", "__author_email__", "__url__", "SETTINGS", "host_info_gatherer",
         "cli_option"],
    "config": ["ConfigDict", "ConfigScope", "load_config_file", "save_config_file",
               "create_captured_function", "chain_evaluate_config_scopes", "dogmatize",
               "undogmatize"],
    "observers": ["FileStorageObserver", "RunObserver", "MongoObserver", "QueuedMongoObserver",
                  "SqlObserver", "QueueObserver", "TinyDbObserver", "TinyDbReader",
                  "SlackObserver", "TelegramObserver", "S3Observer", "GoogleCloudStorageObserver"],
    "utils": ["NO_LOGGER", "PYTHON_IDENTIFIER", "CircularDependencyError", "ObserverError",
              "SacredInterrupt", "TimeoutInterrupt", "create_basic_stream_logger",
              "recursive_update", "iterate_flattened", "iterate_flattened_separately",
              "set_by_dotted_path", "get_by_dotted_path", "iter_prefixes", "join_paths",
              "is_prefix", "convert_to_nested_dict", "convert_camel_case_to_snake_case",
              "print_filtered_stacktrace", "optional_kwargs_decorator", "get_inheritors",
              "apply_backspaces_and_linefeeds", "rel_path", "IntervalTimer", "PathType",
              # defined in sacred.utils without being listed
              "SacredError", "format_filtered_stacktrace"],
    "commands": ["print_config", "print_dependencies", "save_config", "help_for_command",
                 "print_named_configs",
                 # defined in sacred.commands without being listed
                 "ConfigEntry", "PathEntry"],
    "host_info": ["host_info_gatherers", "get_host_info", "host_info_getter",
                  "host_info_gatherer"],
    "serializer": ["flatten", "restore"],
    "metrics_logger": ["ScalarMetricLogEntry", "linearize_metrics"],
    "stdout_capturing": ["get_stdcapturer", "flush", "no_tee", "tee_output_python",
                         "tee_output_fd", "CapturedStdout"],
    "dependencies": ["Source", "PackageDependency", "get_digest"],
    "commandline_options": ["cli_option", "CLIOption"],
    "settings": ["SETTINGS", "SettingError"],
}


# Not yet: Sacred's observers that need back-ends labbook does not have (none left: every
# observer of Sacred 0.8.7 is provided). This list must shrink, not grow.
NOT_YET = {
    "observers": [],
}
SACRED_OBSERVERS_ALL = ["FileStorageObserver", "RunObserver", "MongoObserver",
                        "QueuedMongoObserver", "SqlObserver", "TinyDbObserver",
                        "TinyDbReader", "SlackObserver", "TelegramObserver", "S3Observer",
                        "QueueObserver", "GoogleCloudStorageObserver"]


def test_the_checklist_covers_sacreds_observers():
    assert sorted(SACRED_NAMES["observers"] + NOT_YET["observers"]) == \
        sorted(SACRED_OBSERVERS_ALL)
    import labbook.observers

    assert [n for n in NOT_YET["observers"] if hasattr(labbook.observers, n)] == []


def _resolve(module: str, name: str):
    mod = importlib.import_module("labbook" + (f".{module}" if module else ""))
    return getattr(mod, name)


@pytest.mark.parametrize("module,name", [(m, n) for m, names in SACRED_NAMES.items()
                                         for n in names])
def test_every_sacred_name_resolves(module, name):
    value = _resolve(module, name)
    assert value is not None
    if module:
        # ``from sacred.X import name`` works as ``from labbook.X import name``
        exec(f"from labbook.{module} import {name}", {})


def test_top_level_observers_is_the_observers_package():
    import labbook
    import labbook.observers

    assert labbook.observers is sys.modules["labbook.observers"]
    assert labbook.observers.FileStorageObserver.__name__ == "FileStorageObserver"
    assert isinstance(labbook.__author__, str) and isinstance(labbook.__url__, str)


# --- utils ------------------------------------------------------------------------------------

def test_sacred_error_is_the_base_error():
    from labbook.errors import LabbookError, NoRunError
    from labbook.utils import SacredError

    assert SacredError is LabbookError
    with pytest.raises(SacredError):
        raise NoRunError("x")


def test_dotted_path_helpers():
    from labbook import utils

    d = {"a": {"b": 1}, "c": 2}
    assert utils.get_by_dotted_path(d, "a.b") == 1
    assert utils.get_by_dotted_path(d, "a.x") is None
    assert utils.get_by_dotted_path(d, "a.x", default=5) == 5
    utils.set_by_dotted_path(d, "a.z.y", 3)
    assert d == {"a": {"b": 1, "z": {"y": 3}}, "c": 2}
    assert list(utils.iterate_flattened({"b": 1, "a": {"y": 2, "x": 3}})) == [
        ("a.x", 3), ("a.y", 2), ("b", 1)]
    assert list(utils.iter_prefixes("a.b.c")) == ["a", "a.b", "a.b.c"]
    assert utils.join_paths("", "a", None, "b") == "a.b"
    assert utils.is_prefix("a.b", "a.b.c") and utils.is_prefix("", "x")
    assert not utils.is_prefix("a.b", "a.bc")
    assert not utils.is_prefix("a.b", "a.b")  # as in Sacred: a path is not its own prefix
    assert utils.rel_path("a.b", "a.b.c.d") == "c.d" and utils.rel_path("a.b", "a.b") == ""
    assert utils.convert_to_nested_dict({"a.b": 1, "c": 2}) == {"a": {"b": 1}, "c": 2}
    target = {"a": {"b": 1, "c": 2}}
    assert utils.recursive_update(target, {"a": {"b": 5}, "d": 1}) is target
    assert target == {"a": {"b": 5, "c": 2}, "d": 1}


def test_iterate_flattened_separately_marks_each_dict_and_puts_values_first():
    from labbook.utils import PATHCHANGE, iterate_flattened_separately

    items = list(iterate_flattened_separately({"z": {"q": 1}, "b": 2, "seed": 3},
                                              ["seed"]))
    assert items == [("seed", 3), ("b", 2), ("z", PATHCHANGE), ("z.q", 1)]


def test_small_helpers():
    from labbook import utils

    assert utils.convert_camel_case_to_snake_case("HTTPServerError") == "http_server_error"
    assert utils.convert_camel_case_to_snake_case("MyObserver") == "my_observer"
    assert utils.PYTHON_IDENTIFIER.match("lr_2") and not utils.PYTHON_IDENTIFIER.match("2lr")
    assert utils.NO_LOGGER.disabled

    class A:
        pass

    class B(A):
        pass

    class C(B):
        pass

    assert utils.get_inheritors(A) == {B, C}

    @utils.optional_kwargs_decorator
    def tag(func, label="none"):
        func.label = label
        return func

    @tag
    def f():
        pass

    @tag(label="x")
    def g():
        pass

    assert (f.label, g.label) == ("none", "x")


def test_create_basic_stream_logger_adds_one_handler():
    from labbook.utils import create_basic_stream_logger

    root = logging.getLogger()
    before = list(root.handlers)
    try:
        logger = create_basic_stream_logger()
        create_basic_stream_logger()
        assert logger is root and logger.level == logging.INFO
        assert len(root.handlers) == len(before) + 1
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)


def test_interval_timer_calls_until_stopped_and_once_more():
    from labbook.utils import IntervalTimer

    calls = []
    stop, timer = IntervalTimer.create(lambda: calls.append(1), interval=0.01)
    timer.start()
    while len(calls) < 2:
        threading.Event().wait(0.01)
    stop.set()
    timer.join()
    count = len(calls)
    assert count >= 3  # two ticks and the final call
    assert len(calls) == count


def _raise_from_user_code():
    raise ValueError("boom")


def test_filtered_stacktrace_leaves_labbook_frames_out(capsys):
    from labbook.captured import create_captured_function
    from labbook.utils import format_filtered_stacktrace, print_filtered_stacktrace

    wrapped = create_captured_function(_raise_from_user_code)
    try:
        wrapped()
    except ValueError:
        filtered = format_filtered_stacktrace()
        full = format_filtered_stacktrace("never")
        print_filtered_stacktrace("always")
    labbook_dir = os.path.dirname(importlib.import_module("labbook").__file__)
    assert filtered.endswith("ValueError: boom\n") and "_raise_from_user_code" in filtered
    assert labbook_dir not in filtered and labbook_dir in full
    assert capsys.readouterr().err == filtered


def test_filtered_stacktrace_refuses_an_unknown_mode():
    from labbook.errors import OptionValueError
    from labbook.utils import format_filtered_stacktrace

    with pytest.raises(OptionValueError, match="'default', 'always' or 'never'"):
        format_filtered_stacktrace("sometimes")


# --- config ------------------------------------------------------------------------------------

def test_config_files_round_trip(tmp_path):
    from labbook.config import load_config_file, save_config_file

    for ext in ("json", "yaml"):
        path = tmp_path / f"c.{ext}"
        save_config_file({"lr": 0.1, "layers": [1, 2], "opt": {"name": "sgd"}}, str(path))
        assert load_config_file(str(path)) == {"lr": 0.1, "layers": [1, 2],
                                               "opt": {"name": "sgd"}}


def test_config_scope_and_dict_evaluated_in_a_chain():
    from labbook.config import ConfigDict, ConfigScope, chain_evaluate_config_scopes

    def first():
        a = 1
        b = a + 1  # noqa: F841

    def second(a):
        c = a * 10  # noqa: F841

    config, results = chain_evaluate_config_scopes(
        [ConfigScope(first), ConfigScope(second), ConfigDict({"d": 4})], fixed={"a": 5})
    assert config == {"a": 5, "b": 6, "c": 50, "d": 4}
    assert len(results) == 3


def test_a_config_scope_called_gives_its_entries_as_sacreds_does():
    from labbook.config import ConfigDict, ConfigScope

    def scope():
        x = 1
        y = x + 1  # noqa: F841

    result = ConfigScope(scope)(fixed={"x": 10})
    assert dict(result) == {"x": 10, "y": 11} and result["y"] == 11
    assert list(result.keys()) == ["x", "y"] and dict(result.items()) == dict(result)
    assert result.get("z", 3) == 3 and result.values == {"x": 10, "y": 11}
    assert dict(ConfigDict({"a": 1, "b": {"c": 2}})()) == {"a": 1, "b": {"c": 2}}


def test_dogmatize_keeps_fixed_values_and_undogmatize_gives_plain_data():
    from labbook.config import dogmatize, undogmatize

    d = dogmatize({"a": 1, "sub": {"x": 1}}, fixed={"a": 2, "sub": {"x": 9}})
    d["a"] = 3
    d["sub"]["x"] = 4
    d["new"] = 5
    plain = undogmatize(d)
    assert plain == {"a": 2, "sub": {"x": 9}, "new": 5}
    assert type(plain) is dict and type(plain["sub"]) is dict


def test_create_captured_function_reads_arguments_from_the_run(tmp_path):
    from labbook import Experiment
    from labbook.config import create_captured_function

    def scaled(x, factor):
        return x * factor

    captured = create_captured_function(scaled, prefix="model")
    ex = Experiment("names", interactive=True)

    @ex.config
    def cfg():
        model = {"factor": 3}  # noqa: F841

    @ex.main
    def main():
        return captured(2)

    assert ex.run(options={"--no_system_metrics": True}).result == 6


# --- commands ----------------------------------------------------------------------------------

def test_config_entry_and_path_entry_have_sacreds_fields():
    from labbook.commands import ConfigEntry, PathEntry

    assert ConfigEntry._fields == ("key", "value", "added", "modified", "typechanged", "doc")
    assert PathEntry._fields == ("key", "added", "modified", "typechanged", "doc")
    entry = ConfigEntry("lr", 0.1, False, True, None, "learning rate")
    assert entry.value == 0.1 and entry.modified


def test_help_for_command_shows_signature_and_doc():
    from labbook.commands import help_for_command

    def train(epochs, lr=0.1):
        """Train the model.

        Long description."""

    text = help_for_command(train)
    assert text.splitlines()[0] == "train(epochs, lr=0.1)"
    assert "    Train the model." in text and "    Long description." in text


def test_print_config_prints_the_runs_config(tmp_path, capsys):
    from labbook import Experiment
    from labbook.commands import print_config

    ex = Experiment("names", interactive=True)

    @ex.config
    def cfg():
        lr = 0.25  # noqa: F841

    @ex.main
    def main(_run):
        print_config(_run)

    ex.run(options={"--no_system_metrics": True, "--capture": "no"})
    assert "lr = 0.25" in capsys.readouterr().out


# --- host info ---------------------------------------------------------------------------------

def test_host_info_gatherer_adds_an_entry_to_the_experiments_that_list_it():
    from labbook import Experiment, host_info_gatherer
    from labbook.host_info import get_host_info, host_info_gatherers

    @host_info_gatherer("answer")
    def answer():
        return 42

    assert answer.name == "answer" and answer() == 42
    assert "answer" not in host_info_gatherers  # not global, unlike host_info_getter
    assert get_host_info([answer])["answer"] == 42
    ex = Experiment("names", interactive=True, additional_host_info=[answer])
    ex.main(lambda: None)
    assert ex.run(options={"--no_system_metrics": True}).host_info["answer"] == 42


def test_host_info_gatherer_needs_a_name():
    from labbook import host_info_gatherer
    from labbook.errors import DefinitionError

    with pytest.raises(DefinitionError, match=r'write @host_info_gatherer\("name"\)'):
        host_info_gatherer(lambda: 1)


# --- serializer, metrics_logger, stdout_capturing ------------------------------------------

def test_serializer_round_trips_what_json_cannot_hold():
    from labbook.serializer import flatten, restore

    value = {"t": (1, (2, 3)), "when": datetime.date(2024, 1, 2), "at": datetime.datetime(
        2024, 1, 2, 3, 4, 5), "s": {1, 2}, 7: "int key", "l": [1, (2,)]}
    data = json.loads(json.dumps(flatten(value)))  # JSON-compatible, as Sacred's
    assert data["t"] == {"py/tuple": [1, {"py/tuple": [2, 3]}]} and data["json://7"] == "int key"
    back = restore(data)
    assert back == value and type(back["t"]) is tuple and type(back["l"][1]) is tuple
    assert restore(flatten([1, "a", None])) == [1, "a", None]


def test_serializer_round_trips_numpy_values_and_reads_sacreds_numpy_form():
    np = pytest.importorskip("numpy")
    from labbook.serializer import flatten, restore

    value = {"a": np.array([[1.5, 2.0], [3.0, 4.0]]), "f": np.float32(2.5), "i": np.int64(3)}
    back = restore(json.loads(json.dumps(flatten(value))))
    assert back["a"].dtype == np.float64 and back["a"].tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert type(back["f"]) is np.float32 and back["f"] == 2.5 and type(back["i"]) is np.int64
    # the form Sacred's flatten gives numpy values (jsonpickle's numpy handlers)
    sacred = {"x": {"dtype": "int32", "py/object": "numpy.ndarray", "values": [1, 2]},
              "y": {"dtype": "float32", "py/object": "numpy.float32", "value": 1.5}}
    back = restore(sacred)
    assert back["x"].dtype == np.int32 and back["x"].tolist() == [1, 2]
    assert type(back["y"]) is np.float32 and back["y"] == 1.5
    # the handlers were there for that restore only: flatten's form is unchanged
    assert "py/reduce" in json.dumps(flatten(np.array([1.0])))


def test_package_dependency_create_names_the_distribution_of_a_module():
    import email.mime

    import pytest as module
    from labbook.dependencies import PackageDependency

    found = PackageDependency.create(module)
    assert found.name == "pytest" and found.version == module.__version__
    assert found.to_json() == f"pytest=={module.__version__}"
    # a module no distribution installed: its top-level name, no version (as in Sacred)
    assert PackageDependency.create(email.mime) == PackageDependency("email", None)


def test_linearize_metrics_gives_sacreds_shape():
    from labbook.metrics_logger import ScalarMetricLogEntry, linearize_metrics

    t0, t1 = datetime.datetime(2024, 1, 1), datetime.datetime(2024, 1, 2)
    entries = [ScalarMetricLogEntry("loss", 0, t0, 1.0), ScalarMetricLogEntry("acc", 0, t0, 0.5),
               ScalarMetricLogEntry("loss", 1, t1, 0.5)]
    assert linearize_metrics(entries) == {
        "loss": {"steps": [0, 1], "values": [1.0, 0.5], "timestamps": [t0, t1], "name": "loss"},
        "acc": {"steps": [0], "values": [0.5], "timestamps": [t0], "name": "acc"},
    }
    assert ScalarMetricLogEntry._fields == ("name", "step", "timestamp", "value")


def test_stdcapturer_returns_new_text_at_each_get(monkeypatch):
    from labbook.stdout_capturing import get_stdcapturer

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    mode, capture = get_stdcapturer("sys")
    assert mode == "sys"
    with capture() as out:
        print("one")
        assert out.get() == "one\n"
        print("two")
        assert out.get() == "two\n"
    assert sys.stdout.getvalue() == "one\ntwo\n"  # still printed (tee)
    assert get_stdcapturer("no")[0] == "no"


TEE_SCRIPT = r"""
import json, os, sys
from labbook.stdout_capturing import (CapturedStdout, flush, no_tee, tee_output_fd,
                                      tee_output_python)
captured = {}
for name, manager in (("python", tee_output_python), ("fd", tee_output_fd), ("no", no_tee)):
    with manager() as out:
        assert isinstance(out, CapturedStdout)
        print(f"printed under {name}")
        flush()
        os.write(1, f"written to fd 1 under {name}\n".encode())
        flush()
        captured[name] = out.get()
print(json.dumps(captured))
"""


def test_tee_context_managers_capture_what_they_should(tmp_path):
    """In a process of its own: the fd capture takes over the process's fd 1."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", TEE_SCRIPT], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=root))
    assert proc.returncode == 0, proc.stderr
    *shown, last = proc.stdout.splitlines()
    # sys capture sees Python's prints only, fd capture the process's fd 1 too, no_tee nothing
    assert json.loads(last) == {"python": "printed under python\n",
                                "fd": "printed under fd\nwritten to fd 1 under fd\n",
                                "no": ""}
    # the tee: everything still reaches the real stdout, in order
    assert shown == [f"{what} {name}" for name in ("python", "fd", "no")
                     for what in ("printed under", "written to fd 1 under")]


def test_interrupts_path_type_and_author_email():
    import pathlib

    import labbook
    from labbook.interrupts import LabbookInterrupt
    from labbook.utils import PathType, SacredInterrupt, TimeoutInterrupt

    assert SacredInterrupt is LabbookInterrupt and SacredInterrupt.STATUS == "INTERRUPTED"
    assert issubclass(TimeoutInterrupt, SacredInterrupt) and TimeoutInterrupt.STATUS == "TIMEOUT"
    for path in ("a.json", pathlib.Path("a.json")):
        assert isinstance(path, PathType.__args__)
    assert isinstance(labbook.__author_email__, str)


def test_stdcapturer_refuses_an_unknown_mode():
    from labbook.errors import OptionValueError
    from labbook.stdout_capturing import get_stdcapturer

    with pytest.raises(OptionValueError, match="capture mode must be one of"):
        get_stdcapturer("tee")


def test_ordered_dict_configs_are_plain():
    from labbook.config import undogmatize

    assert undogmatize(OrderedDict(a=1)) == {"a": 1}


# --- dependencies.Source, Ingredient.sources -------------------------------------------------

def test_source_create_outside_git(tmp_path):
    import hashlib

    from labbook.dependencies import Source

    path = tmp_path / "helper.py"
    path.write_text("X = 1\n")
    source = Source.create(str(path))
    assert source.filename == os.path.realpath(path)
    assert source.digest == hashlib.md5(b"X = 1\n").hexdigest()
    assert (source.repo, source.commit, source.isdirty) == (None, None, None)


def test_source_create_in_a_git_work_tree(tmp_path):
    import subprocess

    from labbook.dependencies import Source

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    path = tmp_path / "helper.py"
    path.write_text("X = 1\n")
    git("add", "helper.py")
    git("commit", "-q", "-m", "one")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, check=True,
                            capture_output=True, text=True).stdout.strip()
    source = Source.create(str(path))
    assert (source.repo, source.commit, source.isdirty) == (
        os.path.realpath(tmp_path), commit, False)
    path.write_text("X = 2\n")
    assert Source.create(str(path)).isdirty is True
    assert Source.create(str(path), save_git_info=False).repo is None


def test_ingredient_sources_hold_source_objects_and_the_run_records_them(tmp_path):
    from labbook import Experiment, Ingredient
    from labbook.dependencies import Source
    from labbook.errors import SourceNotFoundError
    from labbook.observers import FileStorageObserver

    helper = tmp_path / "helper.py"
    helper.write_text("X = 1\n")
    ing = Ingredient("data", interactive=True)
    ing.add_source_file(str(helper))
    (source,) = ing.sources
    assert isinstance(source, Source) and source.filename == os.path.realpath(helper)
    with pytest.raises(SourceNotFoundError) as info:
        ing.add_source_file(str(tmp_path / "missing.py"))
    assert str(info.value).startswith(f"Source file '{tmp_path / 'missing.py'}' not found.")
    assert ing.sources == {source}

    ex = Experiment("names", ingredients=[ing], interactive=True, base_dir=str(tmp_path))
    ex.main(lambda: None)
    ex.observers.append(FileStorageObserver(tmp_path / "runs"))
    run = ex.run(options={"--no_system_metrics": True})
    recorded = dict(run.experiment_info["sources"])
    assert recorded["helper.py"] == source.digest
    stored = dict(labbook_api(tmp_path / "runs").run(run._id).experiment["sources"])
    assert list(stored) == list(recorded) and "helper.py" in stored


def labbook_api(path):
    from labbook import Api

    return Api(str(path))


def test_all_cli_options_lists_the_built_in_options_then_the_experiments():
    from labbook import Experiment, cli_option
    from labbook.commandline_options import CLIOption

    @cli_option("-w", "--warmup", is_flag=True)
    def warmup(flag, run):
        run.info["warmup"] = flag

    ex = Experiment("opts", additional_cli_options=[warmup])
    options = ex.all_cli_options
    assert all(isinstance(o, CLIOption) for o in options) and options[-1] is warmup
    long_flags = [o.get_flags()[1] for o in options]
    assert {"--loglevel", "--name", "--unobserved", "--file_storage"} <= set(long_flags)


def test_top_level_cli_option_makes_a_working_flag():
    from labbook import Experiment, cli_option

    @cli_option("-o", "--own-flag", is_flag=True)
    def own_flag(value, run):
        """Remember that the flag was given."""
        run.info["own_flag"] = value

    ex = Experiment("names", interactive=True, additional_cli_options=[own_flag])
    ex.main(lambda: None)
    run = ex.run_commandline(["prog", "-o", "--no-system-metrics"])
    assert run.info["own_flag"] is True and run.status == "COMPLETED"


# --- settings ---------------------------------------------------------------------------------

def test_settings_refuse_a_name_that_is_no_setting_and_keep_the_real_ones(monkeypatch):
    import warnings

    import labbook.settings
    from labbook.errors import LabbookError
    from labbook.settings import SETTINGS, SettingError, current

    monkeypatch.setattr(labbook.settings, "_SETTINGS", None)  # a fresh SETTINGS for this test
    settings = labbook.settings.SETTINGS
    assert settings is not SETTINGS and issubclass(SettingError, LabbookError)
    settings.CAPTURE_MODE = "sys"
    settings.CONFIG.READ_ONLY_CONFIG = False
    settings["DELIVERY"] = {"MAX_WAIT": 2.5}  # a dict for a group sets its entries
    now = current()
    assert now["CAPTURE_MODE"] == "sys" and now["CONFIG"]["READ_ONLY_CONFIG"] is False
    assert now["DELIVERY"]["MAX_WAIT"] == 2.5 and now["DELIVERY"]["BACKOFF"] == 0.1
    for write in (lambda: setattr(settings, "CAPTUR_MODE", "sys"),
                  lambda: setattr(settings.CONFIG, "READ_ONLY", False),
                  lambda: settings.update(NEW=1),
                  lambda: settings.setdefault("NEW", 1)):
        with pytest.raises(SettingError, match="Unknown setting: (CAPTUR_MODE|CONFIG.READ_ONLY|"
                                               "NEW). Possible keys are: "):
            write()
    with pytest.raises(SettingError, match="SETTINGS.CONFIG is a group of settings"):
        settings.CONFIG = False
    assert "CAPTUR_MODE" not in current() and current()["CONFIG"]["READ_ONLY_CONFIG"] is False
    # a setting only Sacred acts on is taken, with a warning that it changes nothing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings.DISCOVER_SOURCES = "none"
        settings.CONFIG.ENFORCE_KEYS_MONGO_COMPATIBLE = False
        settings.COMMAND_LINE.STRICT_PARSING = True  # a group labbook does not have
    assert [str(w.message).split(" is ")[0] for w in caught] == [
        "SETTINGS.DISCOVER_SOURCES", "SETTINGS.CONFIG.ENFORCE_KEYS_MONGO_COMPATIBLE",
        "SETTINGS.COMMAND_LINE.STRICT_PARSING"]
    assert settings.COMMAND_LINE.STRICT_PARSING is True
    with pytest.raises(SettingError, match="Unknown setting: COMMAND_LINE.STRICT"):
        settings.COMMAND_LINE.STRICT = True
    with pytest.raises(AttributeError):
        settings.NO_SUCH_GROUP
    # a copy is a separate SETTINGS with the same checks
    import copy

    other = copy.deepcopy(settings)
    other.CAPTURE_MODE = "no"
    assert settings.CAPTURE_MODE == "sys"
    with pytest.raises(SettingError):
        other.CAPTUR_MODE = "no"


def test_no_logger_stays_silent_after_another_library_configures_logging():
    import logging.config

    from labbook import utils

    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    assert utils.NO_LOGGER.disabled
    assert not utils.NO_LOGGER.isEnabledFor(logging.CRITICAL)
