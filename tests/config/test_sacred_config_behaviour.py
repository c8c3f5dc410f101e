"""Sacred 0.8.7's config behaviour that labbook reproduces (issue 13): special arguments of
config scopes, named configs reading earlier ones, dict merging across scopes, the check of
nested keys against prefixed captured functions, error wording and key order."""
import logging

import pytest

from labbook import Experiment
from labbook.errors import ConfigError, ConfigScopeArgumentError


# --- config scopes may take _log ---------------------------------------------------------------

def test_config_scope_takes_log_like_sacreds_hello_config_scope(caplog):
    ex = Experiment("hello_cs")

    @ex.config
    def cfg(_log):
        recipient = "world"
        message = "Hello {}!".format(recipient)
        _log.warning("config scope says %s", message)

    @ex.main
    def main(message):
        return message

    with caplog.at_level(logging.WARNING):
        run = ex.run()
    assert run.result == "Hello world!"
    assert "config scope says Hello world!" in caplog.text
    # the logger is an argument, not a config entry
    assert sorted(run.config) == ["message", "recipient", "seed"]


# --- named configs read what earlier named configs set ----------------------------------------

def _doubling_experiment():
    ex = Experiment("named_order")

    @ex.config
    def cfg():
        a = 1

    @ex.named_config
    def first():
        a = 10

    @ex.named_config
    def second(a):
        a = a * 2

    @ex.main
    def main(a):
        return a

    return ex


def test_named_config_reads_the_value_an_earlier_named_config_set():
    run = _doubling_experiment().run(named_configs=["first", "second"])
    assert run.result == 20
    assert run.config["a"] == 20


def test_named_config_reads_explicit_updates():
    run = _doubling_experiment().run(named_configs=["second"], config_updates={"a": 3})
    # the update is fixed: the named config's assignment cannot change it
    assert run.result == 3


def test_named_config_before_its_input_fails_with_sacreds_key_error():
    with pytest.raises(ConfigScopeArgumentError) as info:
        _doubling_experiment().run(named_configs=["second", "first"])
    assert isinstance(info.value, KeyError) and isinstance(info.value, ConfigError)
    lines = str(info.value).splitlines()
    assert lines[0] == "'a' not in preset for ConfigScope. Available options are: {'_log'}"
    assert lines[1].startswith("Config scope 'second' reads 'a'")
    assert info.value.key == "a"


# --- a dict assigned by several scopes is merged ----------------------------------------------

def test_later_scope_dict_updates_the_earlier_one_and_keeps_its_other_keys():
    ex = Experiment("merge")

    @ex.config
    def one():
        settings = {"key_1": 1, "key_2": 2, "deep": {"x": 1, "y": 2}}

    @ex.config
    def two():
        settings = {"key_2": 20, "key_3": 30, "deep": {"y": 3}}

    ex.add_config({"settings": {"key_4": 4, "deep": {"z": 5}}})

    @ex.main
    def main(settings):
        return settings

    run = ex.run(config_updates={"settings.key_3": 300})
    assert run.result == {"key_1": 1, "key_2": 20, "key_3": 300, "key_4": 4,
                          "deep": {"x": 1, "y": 3, "z": 5}}
    assert run.config_modifications.modified == {"settings.key_3"}
    assert run.config_modifications.added == set()


def test_a_non_dict_value_still_replaces_an_earlier_dict():
    ex = Experiment("replace")
    ex.add_config({"opt": {"lr": 1}})

    @ex.config
    def two():
        opt = "adam"

    @ex.main
    def main(opt):
        return opt

    assert ex.run().result == "adam"


# --- key order ---------------------------------------------------------------------------------

def test_an_update_does_not_move_its_key_to_the_front():
    ex = Experiment("order")

    @ex.config
    def cfg():
        a = 1
        b = 2
        c = 3
        d = {"x": 1, "y": 2}

    ex.add_config({"e": 1, "f": 2})

    @ex.main
    def main(a, b, c, d, e, f):
        return c

    run = ex.run(config_updates={"c": 5, "d.x": 3, "f": 4})
    assert run.result == 5
    assert list(run.config) == ["a", "b", "c", "d", "e", "f", "seed"]
    assert list(run.config["d"]) == ["x", "y"]
    assert list(ex.run(config_updates={"c": 5}).config) == ["a", "b", "c", "d", "e", "f", "seed"]


def test_stored_config_keeps_the_order(tmp_path):
    import json

    from labbook.observers import FileStorageObserver

    ex = Experiment("order_stored")

    @ex.config
    def cfg():
        a = 1
        b = 2
        c = 3

    @ex.main
    def main(c):
        return c

    ex.observers.append(FileStorageObserver(str(tmp_path / "runs")))
    run = ex.run(config_updates={"c": 5})
    stored = json.loads((tmp_path / "runs" / str(run._id) / "config.json").read_text())
    assert list(stored) == ["a", "b", "c", "seed"]
    assert stored["c"] == 5


# --- typos inside nested keys --------------------------------------------------------------------

def _optimizer_experiment(main_takes_the_dict: bool):
    ex = Experiment("nested_typo")

    @ex.config
    def cfg():
        optimizer = {"lr": 0.1, "name": "sgd"}

    @ex.capture(prefix="optimizer")
    def make(lr, name):
        return f"{name}@{lr}"

    if main_takes_the_dict:
        @ex.main
        def main(optimizer):
            return make(), optimizer
    else:
        @ex.main
        def main():
            return make()

    return ex


def test_typo_in_a_key_read_through_a_prefix_is_refused():
    from labbook.errors import ConfigAddedError

    ex = _optimizer_experiment(main_takes_the_dict=False)
    with pytest.raises(ConfigAddedError) as info:
        ex.run(config_updates={"optimizer.lrr": 0.5})
    assert info.value.keys == ["optimizer.lrr"]
    assert "Did you mean one of 'optimizer.lr'," in str(info.value)
    # the correct key still works, and -f adds the typo anyway
    assert ex.run(config_updates={"optimizer.lr": 0.5}).result == "sgd@0.5"
    forced = ex.run(config_updates={"optimizer.lrr": 0.5}, options={"--force": True})
    assert forced.config["optimizer"] == {"lr": 0.1, "name": "sgd", "lrr": 0.5}


def test_new_key_of_a_dict_a_function_takes_whole_is_added_with_a_warning(caplog):
    ex = _optimizer_experiment(main_takes_the_dict=True)
    with caplog.at_level(logging.WARNING):
        run = ex.run(config_updates={"optimizer.lrr": 0.5})
    assert [r.getMessage() for r in caplog.records if "Added new" in r.getMessage()] == [
        'Added new config entry: "optimizer.lrr"']
    assert run.result == ("sgd@0.1", {"lr": 0.1, "name": "sgd", "lrr": 0.5})
    assert run.config_modifications.added == {"optimizer.lrr"}


def test_new_key_read_through_a_prefix_is_added_with_a_warning(caplog):
    ex = Experiment("prefixed_new_key")

    @ex.capture(prefix="optimizer")
    def make(lr, momentum=0.0):
        return lr, momentum

    @ex.config
    def cfg():
        optimizer = {"lr": 0.1}

    @ex.main
    def main():
        return make()

    with caplog.at_level(logging.WARNING):
        run = ex.run(config_updates={"optimizer.momentum": 0.9})
    assert run.result == (0.1, 0.9)
    assert [r.getMessage() for r in caplog.records if "Added new" in r.getMessage()] == [
        'Added new config entry: "optimizer.momentum"']


# --- Sacred's wording first ---------------------------------------------------------------

def test_config_added_error_starts_with_sacreds_lines():
    from labbook.errors import ConfigAddedError

    ex = _optimizer_experiment(main_takes_the_dict=False)
    with pytest.raises(ConfigAddedError) as info:
        ex.run(config_updates={"optimizer.lrr": 0.5})
    assert str(info.value).splitlines() == [
        "Added new config entry that is not used anywhere",
        "Conflicting configuration values:",
        "  optimizer.lrr=0.5",
        "Did you mean one of 'optimizer.lr', 'optimizer', 'optimizer.name'?",
        "Check the spelling, or pass force=True (-f/--force on the command line) to add it "
        "anyway.",
    ]


def test_named_config_not_found_and_circular_dependency_start_with_sacreds_words():
    from labbook import Ingredient
    from labbook.errors import CircularDependencyError, NamedConfigNotFoundError

    ex = _doubling_experiment()
    with pytest.raises(NamedConfigNotFoundError) as info:
        ex.run(named_configs=["frist"])
    assert str(info.value).splitlines()[0] == (
        'Named config not found: "frist". Available config values are: (\'first\', \'second\')')
    assert str(info.value).splitlines()[1].startswith("Did you mean 'first'?")

    a = Ingredient("a")
    b = Ingredient("b", ingredients=[a])
    a.ingredients.append(b)
    with pytest.raises(CircularDependencyError) as info:
        Experiment("cyclic", ingredients=[a]).run()
    assert str(info.value).splitlines()[0].startswith("Circular dependency detected: ")


def test_command_line_prints_the_filtered_traceback_header(tmp_path, capsys):
    ex = Experiment("tb")

    @ex.main
    def main():
        raise ZeroDivisionError("boom")

    with pytest.raises(SystemExit) as info:
        ex.run_commandline(["prog", "-u", "-C", "no"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent calls WITHOUT labbook internals):\n" in err
    assert "most recent call last" not in err
    assert err.splitlines()[-1] == "ZeroDivisionError: boom"


def test_nested_typo_on_the_command_line_exits_2_and_stores_nothing(tmp_path, capsys):
    from labbook.observers import FileStorageObserver

    ex = _optimizer_experiment(main_takes_the_dict=False)
    runs = tmp_path / "runs"
    ex.observers.append(FileStorageObserver(str(runs)))
    ok = ex.run(config_updates={"optimizer.lr": 0.5})
    before = sorted(p.name for p in runs.iterdir())
    with pytest.raises(SystemExit) as info:
        ex.run_commandline(["prog", "with", "optimizer.lrr=0.5"])
    assert info.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[:3] == ["Error: Added new config entry that is not used anywhere",
                       "Conflicting configuration values:", "  optimizer.lrr=0.5"]
    # no run was started; the earlier run is untouched
    assert sorted(p.name for p in runs.iterdir()) == before
    import json
    stored = json.loads((runs / str(ok._id) / "config.json").read_text())
    assert stored["optimizer"] == {"lr": 0.5, "name": "sgd"}
