import pytest

from labbook import Experiment, Ingredient
from labbook.errors import CircularDependencyError, CommandNotFoundError, NoRunError


def test_name_defaults_to_the_file_name():
    assert Experiment().path == "test_experiment"
    assert Experiment("explicit").name == "explicit"


def test_traverse_and_circular_dependency_names_the_cycle():
    a = Ingredient("a")
    b = Ingredient("b", ingredients=[a])
    ex = Experiment("ex", ingredients=[b])
    assert [(i.path, d) for i, d in ex.traverse_ingredients()] == [("ex", 0), ("b", 1), ("a", 2)]
    a.ingredients.append(b)
    with pytest.raises(CircularDependencyError) as info:
        list(ex.traverse_ingredients())
    assert str(info.value).startswith("Circular dependency detected: b -> a -> b\n")


def test_gather_commands_and_named_configs():
    ing = Ingredient("data")

    @ing.command
    def stats():
        pass

    ing.add_named_config("small", {"x": 1})
    ex = Experiment("ex", ingredients=[ing])

    @ex.main
    def main():
        pass

    ex.add_named_config("big", {"y": 2})
    commands = dict(ex.gather_commands())
    assert {"main", "data.stats", "print_config", "print_dependencies", "save_config",
            "print_named_configs"} <= set(commands)
    assert sorted(n for n, _ in ex.gather_named_configs()) == ["big", "data.small"]


def test_commands_run_by_name_and_unknown_command():
    ex = Experiment("cmds")
    ex.add_config(x=2)

    @ex.command
    def double(x):
        return 2 * x

    @ex.main
    def main():
        return 0

    assert ex.run("double").result == 4
    assert ex.run().result == 0
    with pytest.raises(CommandNotFoundError, match="Command \"dubble\" not found. Available "
                                                   "commands are: print_config, .*, double, "
                                                   "main\nDid you mean 'double'\\?"):
        ex.run("dubble")


def test_ingredient_command_runs_by_dotted_name():
    ing = Ingredient("data")
    ing.add_config(n=3)

    @ing.command
    def count(n):
        return n

    ex = Experiment("ex", ingredients=[ing])
    assert ex.run("data.count").result == 3


def test_run_time_methods_outside_a_run_raise_a_clear_error(tmp_path):
    ex = Experiment("outside")
    for call in (lambda: ex.log_scalar("a", 1), lambda: ex.info,
                 lambda: ex.add_artifact(tmp_path), lambda: ex.add_resource(tmp_path),
                 lambda: ex.open_resource(tmp_path)):
        with pytest.raises(NoRunError, match="can only be used while a run is active"):
            call()


def test_run_time_methods_delegate_to_the_current_run():
    ex = Experiment("inside")

    @ex.main
    def main(_run):
        ex.info["x"] = 1
        ex.log_scalar("loss", 0.5)
        return _run.info

    run = ex.run()
    assert run.result == {"x": 1}
    assert run.summary["loss"] == 0.5


def test_hooks_run_around_main():
    ex = Experiment("hooks")
    ex.add_config(a=1)
    order = []

    @ex.pre_run_hook
    def before(a):
        order.append(("pre", a))

    @ex.post_run_hook
    def after(_run):
        order.append(("post", _run.result))

    @ex.main
    def main():
        order.append("main")
        return 5

    ex.run()
    assert order == [("pre", 1), "main", ("post", 5)]


def test_option_hook_sees_and_changes_options():
    ex = Experiment("opts")

    @ex.option_hook
    def hook(options):
        options["comment"] = "from hook"

    @ex.main
    def main(_run):
        return _run.meta_info["comment"]

    assert ex.run().result == "from hook"
    with pytest.raises(KeyError, match="argument 'options'"):
        ex.option_hook(lambda opts: None)


def test_experiment_info_lists_this_file_as_source():
    ex = Experiment("info")
    info = ex.get_experiment_info()
    assert info["name"] == "info"
    assert any(name.endswith("test_experiment.py") for name, _ in info["sources"])


def test_interactive_experiment_needs_a_name():
    with pytest.raises(RuntimeError, match="needs a name"):
        Experiment(interactive=True)


def test_settings_read_only_switch(monkeypatch):
    from labbook import SETTINGS

    monkeypatch.setitem(SETTINGS.CONFIG, "READ_ONLY_CONFIG", False)
    ex = Experiment("writable")
    ex.add_config(opts={"a": 1})

    @ex.main
    def main(opts):
        opts["a"] = 2
        return opts

    assert ex.run().result == {"a": 2}
    assert SETTINGS.CONFIG.READ_ONLY_CONFIG is False


def test_file_storage_observer_create_spelling(tmp_path):
    from labbook.observers import FileStorageObserver

    obs = FileStorageObserver.create(str(tmp_path))
    assert isinstance(obs, FileStorageObserver) and obs.basedir == str(tmp_path)
