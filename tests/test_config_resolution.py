"""Config resolution through the public API: scopes, updates, named configs, ingredients."""
import logging

import pytest

from labbook import Experiment, Ingredient
from labbook.errors import (ConfigAddedError, ConfigError, LabbookError,
                            NamedConfigNotFoundError, UnserializableConfigError)


def make_hello():
    ex = Experiment("hello_cs")

    @ex.config
    def cfg():
        recipient = "world"  # who gets greeted
        message = "Hello {}!".format(recipient)

    @ex.main
    def main(message):
        return message

    return ex


def test_defaults_and_result():
    run = make_hello().run()
    assert run.result == "Hello world!"
    assert run.config["recipient"] == "world"
    assert run.status == "COMPLETED"
    assert isinstance(run.config["seed"], int)


def test_fixed_updates_flow_into_derived_values():
    run = make_hello().run(config_updates={"recipient": "Bob"})
    assert run.result == "Hello Bob!"
    assert run.config_modifications.modified == {"recipient"}
    assert run.config_modifications.added == set()


def test_update_of_unknown_key_suggests_the_right_one():
    with pytest.raises(ConfigAddedError) as info:
        make_hello().run(config_updates={"recipent": "Bob"})
    message = str(info.value)
    assert "  recipent=Bob" in message and "Did you mean 'recipient'?" in message
    assert "force=True" in message


def test_force_accepts_unknown_key_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        run = make_hello().run(config_updates={"extra": 1}, options={"--force": True})
    assert run.config["extra"] == 1
    assert run.config_modifications.added == {"extra"}
    assert 'Added new config entry "extra" that is not used anywhere' in caplog.text


def test_update_used_by_a_captured_function_is_accepted():
    ex = make_hello()

    @ex.capture
    def shout(volume=1):
        return volume

    @ex.command
    def loud():
        return shout()

    run = ex.run("loud", config_updates={"volume": 11})
    assert run.result == 11
    assert run.config_modifications.added == {"volume"}


def test_type_change_warns(caplog):
    with caplog.at_level(logging.WARNING):
        run = make_hello().run(config_updates={"recipient": 3})
    assert run.result == "Hello 3!"
    assert 'Changed type of config entry "recipient" from str to int' in caplog.text
    assert "recipient" in run.config_modifications.typechanged


def test_nested_dotted_updates_merge_with_siblings():
    ex = Experiment("nested")

    @ex.config
    def cfg():
        optimizer = {"name": "sgd", "lr": 0.1, "sched": {"gamma": 0.5, "step": 10}}

    @ex.main
    def main(optimizer):
        return optimizer

    run = ex.run(config_updates={"optimizer.sched.step": 3, "optimizer": {"lr": 0.2}})
    assert run.result == {"name": "sgd", "lr": 0.2, "sched": {"gamma": 0.5, "step": 3}}
    assert run.config_modifications.modified == {"optimizer.sched.step", "optimizer.lr"}


def test_scopes_run_in_order_and_see_earlier_entries():
    ex = Experiment("ordered")

    @ex.config
    def first():
        a = 1

    @ex.config
    def second(a):
        b = a + 1

    @ex.config
    def third():
        a = 10  # later scopes may overwrite earlier (non-fixed) entries
        c = b * 2  # noqa: F821 - earlier entries are visible by name

    @ex.main
    def main(a, b, c):
        return a, b, c

    assert ex.run().result == (10, 2, 4)
    assert ex.run(config_updates={"a": 5}).result == (5, 6, 12)


def test_add_config_dict_kwargs_and_files(tmp_path):
    (tmp_path / "c.yaml").write_text("depth: 3\nname: yaml\n")
    (tmp_path / "d.json").write_text('{"width": 7}')
    ex = Experiment("files")
    ex.add_config({"name": "dict", "lr": 0.5})
    ex.add_config(batch=32)
    ex.add_config(str(tmp_path / "c.yaml"))
    ex.add_config(tmp_path / "d.json")

    @ex.main
    def main(_config):
        return dict(_config)

    result = ex.run().result
    assert result["name"] == "yaml" and result["lr"] == 0.5 and result["batch"] == 32
    assert result["depth"] == 3 and result["width"] == 7


def test_broken_config_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [1, 2\nc: 3\n")
    ex = Experiment("broken")
    ex.add_config(str(bad))

    @ex.main
    def main():
        pass

    with pytest.raises(ConfigError) as info:
        ex.run()
    assert str(bad) in str(info.value) and "line" in str(info.value)


def test_named_configs_scope_dict_and_file(tmp_path):
    ex = Experiment("named")

    @ex.config
    def cfg():
        layers = 4
        width = 64
        params = layers * width

    @ex.named_config
    def large():
        layers = 12
        width = 512

    ex.add_named_config("tiny", {"layers": 1, "width": 8})
    cfg_file = tmp_path / "wide.json"
    cfg_file.write_text('{"width": 1000}')

    @ex.main
    def main(params):
        return params

    assert ex.run().result == 256
    assert ex.run(named_configs=["large"]).result == 12 * 512
    assert ex.run(named_configs=["tiny"]).result == 8
    # later named configs win, explicit updates win over all
    assert ex.run(named_configs=["large", "tiny"]).result == 8
    assert ex.run(named_configs=["large"], config_updates={"layers": 2}).result == 1024
    assert ex.run(named_configs=[str(cfg_file)]).result == 4000


def test_unknown_named_config_lists_available():
    ex = Experiment("named")
    ex.add_named_config("small", {"a": 1})
    ex.add_named_config("large", {"a": 2})
    ex.add_config(a=0)

    @ex.main
    def main(a):
        return a

    with pytest.raises(NamedConfigNotFoundError) as info:
        ex.run(named_configs=["smal"])
    assert str(info.value) == (
        "Named config not found: \"smal\". Available config values are: ('large', 'small')\n"
        "Did you mean 'small'? Available named configs: large, small.")


def make_with_ingredients():
    data = Ingredient("dataset")

    @data.config
    def data_cfg():
        path = "train.csv"  # where the data is
        batch = 16

    @data.named_config
    def small():
        batch = 2

    @data.capture
    def load(path, batch):
        return f"{path}:{batch}"

    loader = Ingredient("dataset.loader", ingredients=[data])

    @loader.config
    def loader_cfg():
        workers = 2

    @loader.capture
    def describe(workers):
        return workers

    ex = Experiment("withing", ingredients=[data, loader])

    @ex.config
    def cfg(dataset):
        note = "reads " + dataset["path"]

    @ex.main
    def main(note):
        return note, load(), describe()

    return ex


def test_ingredient_config_lives_under_its_path():
    run = make_with_ingredients().run()
    assert run.config["dataset"]["path"] == "train.csv"
    assert run.config["dataset"]["loader"] == {"workers": 2}
    assert run.result == ("reads train.csv", "train.csv:16", 2)


def test_ingredient_updates_and_named_configs():
    run = make_with_ingredients().run(
        config_updates={"dataset.path": "x.csv", "dataset.loader.workers": 8},
        named_configs=["dataset.small"])
    assert run.result == ("reads x.csv", "x.csv:2", 8)
    assert {"dataset.path", "dataset.batch", "dataset.loader.workers"} <= \
        run.config_modifications.modified


def test_replacing_an_ingredient_with_a_value_is_an_error():
    with pytest.raises(ConfigError, match="'dataset' is an ingredient"):
        make_with_ingredients().run(config_updates={"dataset": 3})


def test_config_hooks_update_the_config():
    ex = Experiment("hooks")
    ex.add_config(a=1, b=2)
    calls = []

    @ex.config_hook
    def hook(config, command_name, logger):
        calls.append((dict(config), command_name))
        return {"b": config["a"] * 10}

    @ex.main
    def main(a, b):
        return a, b

    assert ex.run(config_updates={"a": 3}).result == (3, 30)
    assert calls[0][1] == "main"


def test_config_hook_with_wrong_arity_is_rejected():
    ex = Experiment("hooks")
    with pytest.raises(ValueError, match="exactly 3 arguments"):
        @ex.config_hook
        def hook(config):
            return {}


def test_unserializable_value_is_rejected_with_its_key():
    import threading

    ex = Experiment("unser")

    @ex.config
    def cfg():
        lock = threading.Lock()

    @ex.main
    def main():
        pass

    with pytest.raises(UnserializableConfigError) as info:
        ex.run()
    assert "'lock'" in str(info.value)
    assert isinstance(info.value, LabbookError)


def test_unserializable_update_is_rejected():
    ex = make_hello()
    with pytest.raises(UnserializableConfigError, match="'recipient'"):
        ex.run(config_updates={"recipient": (x for x in [])})


def test_seed_given_or_random():
    ex = make_hello()
    assert ex.run(config_updates={"seed": 42}).config["seed"] == 42
    seeds = {ex.run().config["seed"] for _ in range(5)}
    assert len(seeds) > 1
    with pytest.raises(ConfigError, match="'seed' must be an integer"):
        ex.run(config_updates={"seed": "abc"})


def test_nested_ingredients_see_each_other_by_relative_path():
    """Sacred's modular example: 'dataset' reads 'dataset.paths' as 'paths', and a shared
    'settings' ingredient by its own path, in config scopes and captured functions."""
    settings = Ingredient("settings")
    settings.add_config(verbose=True)
    paths = Ingredient("dataset.paths", ingredients=[settings])

    @paths.config
    def paths_cfg(settings):
        quiet = not settings["verbose"]
        base = "/data/"

    data = Ingredient("dataset", ingredients=[paths, settings])

    @data.config
    def data_cfg(paths):
        basepath = paths["base"] + "sets/"

    @data.capture
    def where(basepath, paths, settings):
        return basepath, paths["quiet"], settings["verbose"]

    ex = Experiment("modular", ingredients=[data, paths])

    @ex.config
    def cfg(dataset):
        out = dataset["paths"]["base"] + "out/"

    @ex.main
    def main(out):
        return out, where()

    run = ex.run()
    assert run.result == ("/data/out/", ("/data/sets/", False, True))
    assert run.config["dataset"]["paths"] == {"quiet": False, "base": "/data/"}
    assert run.config["settings"] == {"verbose": True}
