"""Config scopes, config dicts, value normalisation and dotted-path helpers."""
from __future__ import annotations

import enum
import inspect
import math
import threading
import traceback

import numpy as np
import pytest

from labbook.config.paths import dict_merge, get_path, has_path, iter_paths, set_path
from labbook.config.scope import ConfigDict, ConfigScope, ScopeResult, normalize_value
from labbook.errors import (ConfigError, InvalidConfigKeyError, LabbookError,
                            UnserializableConfigError)


class Point:
    """A custom object jsonpickle can store (it must live at module level to be importable)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


class Color(enum.Enum):
    RED = "red"


# Module-level (unindented) scopes: the source is parsed without any wrapping.
@ConfigScope
def module_level_error():
    a = 1
    b = a / 0  # raises


def module_level_name_error():
    size = 3
    area = size * width  # noqa: F821 - undefined on purpose


# --- plain entries ----------------------------------------------------------------------------

def test_local_variables_become_entries():
    def cfg():
        """The docstring is not an entry."""
        lr = 0.01
        name = "mlp"
        layers = [64, 32]
        opts = {"momentum": 0.9, "nesterov": True}
        nothing = None

    result = ConfigScope(cfg)()
    assert isinstance(result, ScopeResult)
    assert result.values == {"lr": 0.01, "name": "mlp", "layers": [64, 32],
                             "opts": {"momentum": 0.9, "nesterov": True}, "nothing": None}
    assert result.overridden == {}
    assert result.assigned == {"lr", "name", "layers", "opts", "nothing"}


def test_modules_functions_classes_and_underscore_names_are_skipped():
    def cfg():
        import json
        from os import path as ospath

        def helper():
            return 1

        class Local:
            pass

        square = lambda v: v * v  # noqa: E731
        biggest = max
        upper = "abc".upper
        _private = 5
        kept = helper() + square(2) + _private
        pi = math.pi

    result = ConfigScope(cfg)()
    assert result.values == {"kept": 10, "pi": math.pi}
    assert result.assigned == {"kept", "pi"}


def test_entries_are_visible_in_comprehensions_and_lambdas():
    def cfg():
        n = 3
        squares = [i * n for i in range(n)]
        lookup = {k: n for k in ("a", "b")}
        doubled = (lambda: n * 2)()

    assert ConfigScope(cfg)().values == {"n": 3, "squares": [0, 3, 6],
                                         "lookup": {"a": 3, "b": 3}, "doubled": 6}


def test_enclosing_variables_are_readable():
    factor = 4

    def cfg():
        scaled = factor * 2

    assert ConfigScope(cfg)().values == {"scaled": 8}


def test_annotated_assignments_are_entries_and_do_not_touch_module_annotations():
    before = dict(globals().get("__annotations__", {}))

    def cfg():
        epochs: int = 5

    assert ConfigScope(cfg)().values == {"epochs": 5}
    assert dict(globals().get("__annotations__", {})) == before


def test_unindented_multiline_string_in_an_indented_scope():
    def cfg():
        text = """
first
second"""
        n = 1  # after the string

    scope = ConfigScope(cfg)
    assert scope().values == {"text": "\nfirst\nsecond", "n": 1}
    assert scope.docs == {"n": "after the string"}


def test_empty_scope_and_docstring_only():
    def cfg():
        """Nothing here."""

    assert ConfigScope(cfg)().values == {}


def test_scope_keeps_name_and_doc_of_the_function():
    def small():
        """A small model."""
        size = 1

    scope = ConfigScope(small)
    assert scope.func is small
    assert scope.__name__ == "small"
    assert scope.__doc__ == "A small model."
    assert scope.arg_names == []


# --- doc comments -----------------------------------------------------------------------------

def test_comments_become_docs():
    def cfg():
        # the learning rate
        # of the optimizer
        lr = 0.01
        momentum = 0.9  # momentum term

        # a detached comment

        batch = 32
        # section heading
        epochs = 3  # the inline comment wins
        opt = {  # optimizer settings
            # algorithm name
            "name": "sgd",
            "decay": 0.1,  # weight decay
            "sub": {  # a nested dict
                "x": 1,  # the x
            },
        }
        _private = 1  # not an entry
        tol = 1e-3  # noqa
        width, height = 3, 4  # image size
        if batch > 10:
            big = True  # set for large batches

    scope = ConfigScope(cfg)
    expected = {
        "lr": "the learning rate of the optimizer",
        "momentum": "momentum term",
        "epochs": "the inline comment wins",
        "opt": "optimizer settings",
        "opt.name": "algorithm name",
        "opt.decay": "weight decay",
        "opt.sub": "a nested dict",
        "opt.sub.x": "the x",
        "width": "image size",
        "height": "image size",
        "big": "set for large batches",
    }
    assert scope.docs == expected
    assert scope().docs == expected


def test_blank_line_breaks_the_comment_above():
    def cfg():
        # belongs to nothing

        a = 1
        # belongs to b
        b = 2

    assert ConfigScope(cfg).docs == {"b": "belongs to b"}


def test_result_docs_only_cover_present_entries():
    def cfg():
        opt = {
            "lr": 0.1,  # learning rate
        }
        seed_offset = 3  # offset

    result = ConfigScope(cfg)(fixed={"opt": 5})
    assert result.values == {"opt": 5, "seed_offset": 3}
    assert result.docs == {"seed_offset": "offset"}


def test_first_documented_assignment_wins():
    def cfg():
        a = 1  # first
        a = 2  # second

    assert ConfigScope(cfg).docs == {"a": "first"}


# --- fixed values -----------------------------------------------------------------------------

def test_fixed_values_win_and_flow_into_derived_values():
    def cfg():
        recipient = "world"
        message = "Hello {}".format(recipient)

    result = ConfigScope(cfg)(fixed={"recipient": "Bob"})
    assert result.values == {"recipient": "Bob", "message": "Hello Bob"}
    assert result.overridden == {"recipient": "world"}
    assert result.assigned == {"recipient", "message"}


def test_first_attempted_value_is_recorded_and_augmented_assignment_is_ignored():
    def cfg():
        steps = 10
        steps += 5
        total = steps

    result = ConfigScope(cfg)(fixed={"steps": 100})
    assert result.values == {"steps": 100, "total": 100}
    assert result.overridden == {"steps": 10}


def test_nested_fixed_values_merge_with_siblings():
    def cfg():
        a = {"b": 1, "c": 2}
        seen_b = a["b"]
        a["c"] = 3
        a["b"] = 7
        after_b = a["b"]
        a.update({"b": 8, "d": 4})
        a.setdefault("b", 9)
        a |= {"b": 10}
        del a["b"]
        final_b = a["b"]

    result = ConfigScope(cfg)(fixed={"a": {"b": 5}})
    assert result.values == {"a": {"b": 5, "c": 3, "d": 4}, "seen_b": 5, "after_b": 5,
                             "final_b": 5}
    assert result.overridden == {"a.b": 1}
    assert result.assigned == {"a", "seen_b", "after_b", "final_b"}


def test_deeply_nested_fixed_values():
    def cfg():
        a = {"x": {"y": 0, "z": 2}, "w": 3}
        y = a["x"]["y"]
        a["x"]["y"] = 99
        a["x"] = {"y": -1, "q": 1}

    result = ConfigScope(cfg)(fixed={"a": {"x": {"y": 1}}})
    assert result.values == {"a": {"x": {"y": 1, "q": 1}, "w": 3}, "y": 1}
    assert result.overridden == {"a.x.y": 0}


def test_fixed_dict_over_a_scalar_and_scalar_over_a_dict():
    def cfg():
        a = 3
        b = {"c": 1}

    result = ConfigScope(cfg)(fixed={"a": {"k": 1}, "b": 2})
    assert result.values == {"a": {"k": 1}, "b": 2}
    assert result.overridden == {"a": 3, "b": {"c": 1}}


def test_fixed_keys_the_scope_never_assigns_are_added():
    def cfg():
        a = 1

    result = ConfigScope(cfg)(fixed={"extra": {"deep": [1, 2]}, "a": 1})
    assert result.values == {"a": 1, "extra": {"deep": [1, 2]}}
    assert result.overridden == {"a": 1}
    assert "extra" not in result.assigned


def test_in_place_changes_cannot_defeat_fixed_values_or_change_the_callers_dict():
    def cfg():
        items = [1]
        items.append(2)
        opts = {"b": 1}
        opts.pop("b")
        inner = opts

    fixed = {"items": [0], "opts": {"b": 5}}
    result = ConfigScope(cfg)(fixed=fixed)
    assert result.values["items"] == [0]
    assert result.values["opts"] == {"b": 5}
    assert result.values["inner"] == {}
    assert fixed == {"items": [0], "opts": {"b": 5}}


# --- preset and fallback ----------------------------------------------------------------------

def test_preset_is_visible_overwritable_and_part_of_the_values():
    def cfg():
        a = a + 1  # noqa: F821 - comes from the preset
        opts["d"] = 3  # noqa: F821

    preset = {"a": 1, "opts": {"c": 2}, "keep": "me"}
    result = ConfigScope(cfg)(preset=preset)
    assert result.values == {"a": 2, "opts": {"c": 2, "d": 3}, "keep": "me"}
    assert result.assigned == {"a"}
    assert preset == {"a": 1, "opts": {"c": 2}, "keep": "me"}


def test_fixed_wins_over_preset():
    def cfg():
        size = size * 2  # noqa: F821

    result = ConfigScope(cfg)(fixed={"size": 3}, preset={"size": 10, "opts": {"x": 1}})
    assert result.values == {"size": 3, "opts": {"x": 1}}


def test_fallback_is_readable_but_not_an_entry():
    def cfg():
        n = dataset["size"] * 2  # noqa: F821
        both = [dataset["size"] for _ in range(2)]  # noqa: F821

    result = ConfigScope(cfg)(fallback={"dataset": {"size": 10}})
    assert result.values == {"n": 20, "both": [10, 10]}


def test_unknown_name_raises_name_error():
    def cfg():
        a = undefined_thing  # noqa: F821

    with pytest.raises(NameError, match="name 'undefined_thing' is not defined"):
        ConfigScope(cfg)()


# --- parameters -------------------------------------------------------------------------------

def test_parameters_come_from_fixed_preset_fallback_or_defaults():
    def cfg(a, b, c=10):
        total = a + b + c

    scope = ConfigScope(cfg)
    assert scope.arg_names == ["a", "b", "c"]
    result = scope(fixed={"a": 1}, preset={"b": 2})
    assert result.values == {"a": 1, "b": 2, "total": 13}
    result = scope(fixed={"a": 1}, fallback={"b": 2, "c": 5})
    assert result.values == {"a": 1, "total": 8}


def test_missing_parameter_names_function_and_parameter():
    def cfg2(a, b):
        total = a + b

    with pytest.raises(ConfigError) as info:
        ConfigScope(cfg2)(preset={"a": 1})
    assert str(info.value) == (
        "'b' not in preset for ConfigScope. Available options are: {'a'}\n"
        "Config scope 'cfg2' reads 'b', which neither the config updates, the named configs "
        "given before it, the earlier config scopes of its ingredient nor the configs of the "
        "ingredients it uses provide; define 'b' there or remove the parameter.")
    assert info.value.key == "b"


def test_star_arguments_are_refused_at_decoration():
    def cfg(*args):
        a = 1

    with pytest.raises(ConfigError) as info:
        ConfigScope(cfg)
    assert str(info.value) == ("Config scope 'cfg' cannot take *args or **kwargs; name the "
                               "config entries it reads as parameters.")


# --- value normalisation ----------------------------------------------------------------------

def test_numpy_values_become_python_values():
    def cfg():
        i = np.int64(3)
        f = np.float32(0.5)
        flag = np.bool_(True)
        arr = np.arange(6).reshape(2, 3)
        nested = {"w": np.zeros(2), "t": (1, np.int8(2))}

    values = ConfigScope(cfg)().values
    assert values == {"i": 3, "f": 0.5, "flag": True, "arr": [[0, 1, 2], [3, 4, 5]],
                      "nested": {"w": [0.0, 0.0], "t": [1, 2]}}
    assert type(values["i"]) is int
    assert type(values["f"]) is float
    assert values["flag"] is True
    assert type(values["nested"]["w"][0]) is float


def test_objects_jsonpickle_can_restore_are_kept():
    point = Point(1, 2)

    def cfg():
        p = point
        color = Color.RED
        tags = {"a", "b"}
        inside = {"where": [point]}

    values = ConfigScope(cfg)().values
    assert values["p"] is point
    assert values["color"] is Color.RED
    assert values["tags"] == {"a", "b"}
    assert values["inside"]["where"][0] is point


def _unserializable_message(key: str, typename: str, reason: str) -> str:
    return (f"Config entry '{key}' has a value of type {typename} that cannot be stored as JSON: "
            f"{reason}. Use plain numbers, strings, lists and dicts (or objects jsonpickle can "
            "encode), or name it with a leading underscore to keep it out of the config.")


def test_lock_is_unserializable():
    def cfg():
        lock = threading.Lock()

    with pytest.raises(UnserializableConfigError) as info:
        ConfigScope(cfg)()
    assert str(info.value) == _unserializable_message(
        "lock", "_thread.lock",
        "it cannot be copied (TypeError: cannot pickle '_thread.lock' object)")
    assert info.value.key == "lock"
    assert isinstance(info.value, LabbookError)


def test_open_file_is_unserializable(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("x")

    def cfg():
        handle = open(path)

    with pytest.raises(UnserializableConfigError) as info:
        ConfigScope(cfg)()
    # the reason comes from jsonpickle (here: it restores a file as None)
    assert str(info.value).startswith("Config entry 'handle' has a value of type "
                                      "_io.TextIOWrapper that cannot be stored as JSON: ")
    assert info.value.key == "handle"


def test_generator_nested_in_a_dict_names_its_path():
    def cfg():
        opts = {"inner": [1, (i for i in range(3))]}

    with pytest.raises(UnserializableConfigError) as info:
        ConfigScope(cfg)()
    assert str(info.value).startswith("Config entry 'opts.inner[1]' has a value of type "
                                      "builtins.generator that cannot be stored as JSON: ")
    assert info.value.key == "opts.inner[1]"


def test_self_containing_list_is_unserializable():
    def cfg():
        loop = []
        loop.append(loop)

    with pytest.raises(UnserializableConfigError) as info:
        ConfigScope(cfg)()
    assert str(info.value) == _unserializable_message("loop[0]", "builtins.list",
                                                      "it contains itself")


@pytest.mark.parametrize("bad, key, message", [
    ({"a.b": 1}, "d.a.b",
     "Invalid config key 'd.a.b': keys must not contain '.' (use a nested dict instead)."),
    ({"$x": 1}, "d.$x",
     "Invalid config key 'd.$x': keys must not start with '$' (reserved by the database "
     "stores)."),
    ({"ok": {1: 2}}, "d.ok.1",
     "Invalid config key 1 in 'd.ok': keys must be strings, got int."),
])
def test_invalid_keys_in_a_dict(bad, key, message):
    def cfg():
        d = bad

    with pytest.raises(InvalidConfigKeyError) as info:
        ConfigScope(cfg)()
    assert str(info.value) == message
    assert info.value.key == key
    assert isinstance(info.value, ConfigError)


def test_normalize_value_directly():
    assert normalize_value((1, (2, 3)), "t") == [1, [2, 3]]
    assert normalize_value({"a": np.float64(1.5)}, "") == {"a": 1.5}
    assert normalize_value(np.array([[1.0]]), "m") == [[1.0]]
    source = {"a": [1, {"b": 2}]}
    copied = normalize_value(source, "x")
    copied["a"][1]["b"] = 3
    assert source == {"a": [1, {"b": 2}]}
    with pytest.raises(InvalidConfigKeyError, match=r"^Invalid config key 1 in the config"):
        normalize_value({1: 2}, "")


# --- errors from user code and from reading the source ----------------------------------------

def test_user_error_propagates_with_the_users_file_and_line():
    @ConfigScope
    def cfg():
        a = 1
        b = a / 0  # raises

    with pytest.raises(ZeroDivisionError) as info:
        cfg()
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert last.filename == __file__
    assert last.lineno == cfg.func.__code__.co_firstlineno + 3
    assert last.name == "cfg"
    assert last.line == "b = a / 0  # raises"


def test_module_level_scopes_report_the_right_lines_too():
    with pytest.raises(ZeroDivisionError) as info:
        module_level_error()
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (last.filename, last.lineno) == (
        __file__, module_level_error.func.__code__.co_firstlineno + 3)

    with pytest.raises(NameError) as info:
        ConfigScope(module_level_name_error)()
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert last.lineno == module_level_name_error.__code__.co_firstlineno + 2
    assert last.line.startswith("area = size * width")


def test_decoration_does_not_read_the_source(monkeypatch):
    def refuse(obj):
        raise OSError("could not get source code")

    monkeypatch.setattr(inspect, "findsource", refuse)  # what getsource reads through too

    def cfg():
        a = 1

    scope = ConfigScope(cfg)  # no error: nothing is read yet
    with pytest.raises(ConfigError) as info:
        scope()
    assert str(info.value) == (
        "Cannot read the source code of config scope 'cfg' (could not get source code). It was "
        "probably defined in an interactive session; use ex.add_config(dict) instead.")
    with pytest.raises(ConfigError):
        scope.docs


def test_source_is_parsed_once_and_cached(monkeypatch):
    calls = []
    real = inspect.findsource

    def counting(obj):
        calls.append(obj)
        return real(obj)

    monkeypatch.setattr(inspect, "findsource", counting)  # what getsource reads through too

    def cfg():
        a = 1  # the a

    scope = ConfigScope(cfg)
    assert calls == []
    assert scope.docs == {"a": "the a"}
    assert scope().values == {"a": 1}
    assert scope(fixed={"a": 2}).values == {"a": 2}
    assert len(calls) == 1


def test_function_without_source_suggests_add_config():
    namespace: dict = {}
    exec("def interactive():\n    x = 1\n", namespace)
    with pytest.raises(ConfigError, match=r"use ex\.add_config\(dict\) instead\.$"):
        ConfigScope(namespace["interactive"])()


def test_return_in_a_scope_body_is_a_config_error():
    def cfg():
        a = 1
        return a

    with pytest.raises(ConfigError) as info:
        ConfigScope(cfg)()
    message = str(info.value)
    assert message.startswith("Config scope 'cfg' cannot run: 'return' outside function (")
    assert f"{__file__}, line {cfg.__code__.co_firstlineno + 2})" in message


# --- ConfigDict -------------------------------------------------------------------------------

def test_config_dict_values_are_a_normalized_copy():
    source = {"a": (1, 2), "n": {"x": np.int64(1)}}
    conf = ConfigDict(source)
    source["n"]["x"] = 99
    result = conf()
    assert result.values == {"a": [1, 2], "n": {"x": 1}}
    assert result.assigned == {"a", "n"}
    assert result.docs == {} and result.overridden == {}
    result.values["n"]["x"] = 5
    assert conf().values == {"a": [1, 2], "n": {"x": 1}}


def test_config_dict_with_fixed_and_preset():
    conf = ConfigDict({"a": {"b": 1, "c": 2}, "d": 4})
    result = conf(fixed={"a": {"b": 5}, "e": 1}, preset={"p": 0, "d": 0})
    assert result.values == {"p": 0, "d": 4, "a": {"b": 5, "c": 2}, "e": 1}
    assert result.overridden == {"a.b": 1}
    assert result.assigned == {"a", "d"}


def test_config_dict_rejects_bad_input():
    with pytest.raises(InvalidConfigKeyError) as info:
        ConfigDict({"a.b": 1})
    assert str(info.value) == ("Invalid config key 'a.b': keys must not contain '.' (use a "
                               "nested dict instead).")
    with pytest.raises(ConfigError) as info:
        ConfigDict([1, 2])  # type: ignore[arg-type]
    assert str(info.value) == "A config dict must be a dict, got list."
    with pytest.raises(UnserializableConfigError, match="'lock'"):
        ConfigDict({"lock": threading.Lock()})


# --- dotted paths -----------------------------------------------------------------------------

def test_dict_merge_is_recursive_and_copies():
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    update = {"a": {"b": 2, "e": {"f": 3}}, "g": 4}
    merged = dict_merge(base, update)
    assert merged == {"a": {"b": 2, "c": [1], "e": {"f": 3}}, "d": 1, "g": 4}
    merged["a"]["c"].append(2)
    merged["a"]["e"]["f"] = 0
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}
    assert update == {"a": {"b": 2, "e": {"f": 3}}, "g": 4}
    assert dict_merge({"a": {"b": 1}}, {"a": 5}) == {"a": 5}
    assert dict_merge({"a": 5}, {"a": {"b": 1}}) == {"a": {"b": 1}}


def test_iter_paths_yields_leaves_in_order():
    d = {"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}, "f": None}
    assert list(iter_paths(d)) == [("a.b", 1), ("a.c.d", [1, 2]), ("e", {}), ("f", None)]


def test_get_and_has_path():
    d = {"a": {"b": {"c": 1}}, "x": 2}
    assert get_path(d, "a.b.c") == 1
    assert get_path(d, "a.b") == {"c": 1}
    assert get_path(d, "") is d
    assert get_path(d, "a.z", None) is None
    assert get_path(d, "x.y", "none") == "none"
    with pytest.raises(KeyError):
        get_path(d, "a.b.z")
    assert has_path(d, "a.b.c") and not has_path(d, "a.c")


def test_set_path_creates_dicts_and_refuses_to_overwrite_values():
    d: dict = {"a": {"keep": 1}}
    set_path(d, "a.b.c", 2)
    set_path(d, "top", 3)
    assert d == {"a": {"keep": 1, "b": {"c": 2}}, "top": 3}
    with pytest.raises(ConfigError) as info:
        set_path(d, "top.x", 1)
    assert str(info.value) == "Cannot set 'top.x': 'top' holds 3 (int), not a dict."
    assert info.value.key == "top.x"


def test_source_found_by_indentation_matches_inspect():
    from labbook.config.scope import _indented_source

    def cfg():
        a = 1
        # between
        b = [1,
             2]
        # trailing, kept by inspect too

    def short():  # the def line ends with a comment: inspect finds the block
        c = 3

    assert _indented_source(cfg) == inspect.getsource(cfg)
    assert _indented_source(short) is None
    assert ConfigScope(short)().values == {"c": 3}


def test_scope_with_an_unindented_string_line_falls_back_to_inspect():
    def cfg():
        text = """first
second at column 0"""
        after = 1

    assert ConfigScope(cfg)().values == {"text": "first\nsecond at column 0", "after": 1}
