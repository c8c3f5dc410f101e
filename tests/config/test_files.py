"""Config files: json / yaml / pickle loading and saving, and their error messages."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pytest

from labbook.config.files import load_config_file, save_config_file
from labbook.errors import ConfigError, ConfigFileError, ConfigFileSaveError

from .test_scope import Point

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIG = {"lr": 0.1, "name": "näive", "layers": [64, 32], "flag": True, "nothing": None,
          "opt": {"momentum": 0.9, "schedule": {"steps": [1, 2]}, "empty": {}}}


@pytest.mark.parametrize("ext", [".json", ".yaml", ".yml", ".pickle", ".pkl", ".JSON"])
def test_save_and_load_round_trip(tmp_path, ext):
    path = tmp_path / f"config{ext}"
    save_config_file(CONFIG, path)
    loaded = load_config_file(path, trusted=True)
    assert loaded == CONFIG
    assert list(loaded) == list(CONFIG)  # order kept
    assert load_config_file(str(path), trusted=True) == CONFIG


def test_json_is_indented_and_unsorted(tmp_path):
    path = tmp_path / "c.json"
    save_config_file({"b": 1, "a": {"c": 2}}, path)
    assert path.read_text(encoding="utf-8") == '{\n  "b": 1,\n  "a": {\n    "c": 2\n  }\n}\n'


def test_yaml_is_block_style(tmp_path):
    path = tmp_path / "c.yaml"
    save_config_file({"b": 1, "a": {"c": [1, 2]}}, path)
    assert path.read_text(encoding="utf-8") == "b: 1\na:\n  c:\n  - 1\n  - 2\n"


def test_json_round_trips_objects_through_jsonpickle(tmp_path):
    path = tmp_path / "c.json"
    config = {"p": Point(1, 2), "nested": {"points": [Point(3, 4)], "tags": {"x"}}, "n": 1}
    save_config_file(config, path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["n"] == 1
    assert raw["p"]["py/object"].endswith("test_scope.Point")
    loaded = load_config_file(path, trusted=True)
    assert loaded == config
    assert type(loaded["p"]) is Point
    assert type(loaded["nested"]["points"][0]) is Point
    assert loaded["nested"]["tags"] == {"x"}


def test_pickle_keeps_python_objects(tmp_path):
    path = tmp_path / "c.pkl"
    save_config_file({"t": (1, 2), "p": Point(5, 6)}, path)
    assert load_config_file(path, trusted=True) == {"t": (1, 2), "p": Point(5, 6)}


def test_hand_written_yaml_with_comments(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# settings\nlr: 0.5  # rate\nopt:\n  name: adam\n", encoding="utf-8")
    assert load_config_file(path) == {"lr": 0.5, "opt": {"name": "adam"}}


def test_empty_yaml_is_an_empty_config(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("", encoding="utf-8")
    assert load_config_file(path) == {}


def test_broken_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": 1,\n  "b": 2\n  "c": 3\n}\n', encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_config_file(path)
    assert str(info.value) == (f"Cannot load config file {path}, line 4: invalid JSON: "
                               "Expecting ',' delimiter (column 3)")
    assert info.value.line == 4
    assert info.value.filename == str(path)
    assert isinstance(info.value, ConfigError)


def test_broken_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [1, 2\nc: 3\n", encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_config_file(path)
    assert str(info.value) == (f"Cannot load config file {path}, line 3: invalid YAML: "
                               "expected ',' or ']', but got ':' (column 2)")
    assert info.value.line == 3


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text('a: 1\nb: !!python/object/apply:os.system ["echo hacked"]\n',
                    encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_config_file(path)
    assert str(info.value) == (
        f"Cannot load config file {path}, line 2: invalid YAML: could not determine a "
        "constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system' (column 4)")


def test_broken_pickle(tmp_path):
    path = tmp_path / "bad.pickle"
    path.write_bytes(b"not a pickle")
    with pytest.raises(ConfigFileError) as info:
        load_config_file(path, trusted=True)
    assert str(info.value).startswith(
        f"Cannot load config file {path}: cannot unpickle (UnpicklingError: ")


@pytest.mark.parametrize("name, ext", [("c.txt", ".txt"), ("c.toml", ".toml"),
                                       ("config", "(no extension)")])
def test_unsupported_extension(tmp_path, name, ext):
    path = tmp_path / name
    path.write_text("a = 1", encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_config_file(path)
    assert str(info.value) == (f"Cannot load config file {path}: unsupported format '{ext}'; "
                               "use .json, .yaml/.yml or .pickle")
    with pytest.raises(ConfigFileSaveError) as info:
        save_config_file({"a": 1}, path)
    assert str(info.value) == (f"Cannot save config file {path}: unsupported format '{ext}'; "
                               "use .json, .yaml/.yml or .pickle")


@pytest.mark.parametrize("ext", [".json", ".yaml", ".pickle"])
def test_missing_file(tmp_path, ext):
    path = tmp_path / f"missing{ext}"
    with pytest.raises(ConfigFileError) as info:
        load_config_file(path)
    assert str(info.value) == f"Cannot load config file {path}: file not found"
    assert info.value.line is None


@pytest.mark.parametrize("ext, content, typename", [
    (".json", "[1, 2]", "list"),
    (".yaml", "- 1\n- 2\n", "list"),
    (".yaml", "just text\n", "str"),
    (".json", "3", "int"),
])
def test_top_level_must_be_a_mapping(tmp_path, ext, content, typename):
    path = tmp_path / f"c{ext}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_config_file(path)
    assert str(info.value) == (f"Cannot load config file {path}: top level must be a mapping, "
                               f"got {typename}")


def test_pickle_top_level_must_be_a_mapping(tmp_path):
    path = tmp_path / "c.pickle"
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ConfigFileError, match="top level must be a mapping, got list$"):
        load_config_file(path, trusted=True)


def test_yaml_refuses_objects_when_saving(tmp_path):
    path = tmp_path / "c.yaml"
    with pytest.raises(ConfigFileSaveError) as info:
        save_config_file({"model": {"p": Point(1, 2)}}, path)
    assert str(info.value) == (f"Cannot save config file {path}: entry 'model.p' of type Point "
                               "cannot be written as YAML; save to .json or .pickle instead")
    assert isinstance(info.value, ConfigFileError)
    assert not path.exists()


def test_unpicklable_config_cannot_be_saved_as_pickle(tmp_path):
    path = tmp_path / "c.pickle"
    with pytest.raises(ConfigFileSaveError) as info:
        save_config_file({"f": lambda: 1}, path)
    assert str(info.value).startswith(f"Cannot save config file {path}: cannot pickle the "
                                      "config (")
    assert not path.exists()


def test_saving_into_a_missing_directory(tmp_path):
    path = tmp_path / "nope" / "c.json"
    with pytest.raises(ConfigFileSaveError) as info:
        save_config_file({"a": 1}, path)
    assert str(info.value) == f"Cannot save config file {path}: No such file or directory"


def test_loading_plain_files_does_not_need_jsonpickle(tmp_path):
    # Only dicts carrying a py/ key are restored; a plain file never even imports jsonpickle.
    path = tmp_path / "c.json"
    path.write_text('{"a": [{"b": "py/object"}], "c": {"d": 1}}', encoding="utf-8")
    code = ("import sys; from labbook.config.files import load_config_file; "
            f"print(load_config_file({str(path)!r}), 'jsonpickle' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out == "{'a': [{'b': 'py/object'}], 'c': {'d': 1}} False\n"
