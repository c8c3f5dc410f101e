import copy
import json
import pickle

import pytest

from labbook.config.containers import ReadOnlyDict, ReadOnlyList, freeze, thaw
from labbook.errors import LabbookError, ReadOnlyConfigError


@pytest.fixture
def cfg():
    return freeze({"lr": 0.1, "optimizer": {"name": "sgd", "betas": [0.9, 0.99]},
                   "layers": [{"units": 4}]})


def test_behaves_like_plain_containers(cfg):
    assert isinstance(cfg, dict)
    assert isinstance(cfg["optimizer"]["betas"], list)
    assert cfg == {"lr": 0.1, "optimizer": {"name": "sgd", "betas": [0.9, 0.99]},
                   "layers": [{"units": 4}]}
    assert json.loads(json.dumps(cfg)) == cfg
    assert repr(cfg["optimizer"]) == "{'name': 'sgd', 'betas': [0.9, 0.99]}"


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.__setitem__("lr", 1), "cannot set 'lr'"),
    (lambda c: c["optimizer"].__setitem__("name", "adam"), "cannot set 'optimizer.name'"),
    (lambda c: c["optimizer"]["betas"].append(1), "cannot append to 'optimizer.betas'"),
    (lambda c: c["optimizer"]["betas"].__setitem__(0, 1), "cannot set 'optimizer.betas[0]'"),
    (lambda c: c["layers"][0].pop("units"), "cannot pop 'layers[0].units'"),
    (lambda c: c.__delitem__("lr"), "cannot delete 'lr'"),
    (lambda c: c.update(lr=3), "cannot update 'lr'"),
    (lambda c: c.clear(), "cannot clear 'the config'"),
    (lambda c: c.setdefault("new", 1), "cannot set 'new'"),
    (lambda c: c["optimizer"]["betas"].sort(), "cannot sort 'optimizer.betas'"),
])
def test_mutation_is_refused_naming_the_key(cfg, mutate, message):
    with pytest.raises(ReadOnlyConfigError) as info:
        mutate(cfg)
    assert message in str(info.value)
    assert "read-only" in str(info.value)
    assert isinstance(info.value, LabbookError) and isinstance(info.value, TypeError)


def test_setdefault_of_existing_key_is_allowed(cfg):
    assert cfg.setdefault("lr", 5) == 0.1


def test_pickle_round_trip_keeps_contents_and_protection(cfg):
    restored = pickle.loads(pickle.dumps(cfg))
    assert restored == cfg
    assert isinstance(restored, ReadOnlyDict)
    with pytest.raises(ReadOnlyConfigError, match="optimizer.name"):
        restored["optimizer"]["name"] = "x"
    lst = pickle.loads(pickle.dumps(cfg["optimizer"]["betas"]))
    assert isinstance(lst, ReadOnlyList) and lst == [0.9, 0.99]


def test_copies_are_plain_and_mutable(cfg):
    deep = copy.deepcopy(cfg)
    assert type(deep) is dict and type(deep["optimizer"]["betas"]) is list
    deep["optimizer"]["betas"].append(1)
    assert cfg["optimizer"]["betas"] == [0.9, 0.99]
    shallow = copy.copy(cfg)
    shallow["lr"] = 2
    assert cfg["lr"] == 0.1
    plain = dict(cfg)
    plain["lr"] = 3
    assert thaw(cfg)["optimizer"] == {"name": "sgd", "betas": [0.9, 0.99]}


def test_multiprocessing_can_send_the_config(cfg):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        assert pool.apply(len, (cfg,)) == 3
