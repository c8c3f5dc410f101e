import random

import pytest

from labbook import Experiment, Ingredient
from labbook.errors import MissingConfigError


def make():
    ex = Experiment("capture")

    @ex.config
    def cfg():
        a = 1
        b = 2
        opt = {"lr": 0.1, "momentum": 0.9}

    return ex


def test_missing_arguments_come_from_config_and_explicit_ones_win():
    ex = make()

    @ex.capture
    def f(a, b, c=3):
        return a, b, c

    @ex.main
    def main():
        return f(), f(10), f(b=20, c=30), f(1, 2, 4)

    assert ex.run().result == ((1, 2, 3), (10, 2, 3), (1, 20, 30), (1, 2, 4))


def test_prefix_looks_in_a_subtree():
    ex = make()

    @ex.capture(prefix="opt")
    def make_opt(lr, momentum, nesterov=False):
        return lr, momentum, nesterov

    @ex.main
    def main():
        return make_opt()

    run = ex.run(config_updates={"opt.lr": 0.5})
    assert run.result == (0.5, 0.9, False)


def test_missing_argument_error_names_function_argument_and_paths():
    ex = make()

    @ex.capture(prefix="opt")
    def needs(lr, weight_decay):
        return lr

    @ex.main
    def main():
        return needs()

    with pytest.raises(MissingConfigError) as info:
        ex.run()
    message = str(info.value)
    assert "needs() is missing value(s) for 'weight_decay'" in message
    assert "'opt.weight_decay'" in message
    assert isinstance(info.value, TypeError)


def test_outside_a_run_only_explicit_and_defaults_work():
    ex = make()

    @ex.capture
    def f(a, b=5):
        return a, b

    assert f(1) == (1, 5)
    with pytest.raises(MissingConfigError, match="no run is active"):
        f()


def test_special_values():
    ex = make()
    seen = {}

    @ex.capture
    def special(_config, _run, _log, _seed, _rnd):
        seen.update(config=dict(_config), run=_run, log=_log, seed=_seed, rnd=_rnd)

    @ex.main
    def main():
        special()

    run = ex.run()
    assert seen["config"]["a"] == 1
    assert seen["run"] is run
    assert seen["log"].name == "special"  # as in Sacred: not under the experiment's name
    assert isinstance(seen["seed"], int)
    assert hasattr(seen["rnd"], "randint")


def test_same_seed_same_streams_different_functions_differ():
    ex = make()

    @ex.capture
    def draw(_rnd):
        return [int(_rnd.randint(0, 10**6)) for _ in range(3)]

    @ex.capture
    def other(_seed):
        return _seed

    @ex.main
    def main():
        return draw(), draw(), other(), random.random()

    r1 = ex.run(config_updates={"seed": 7}).result
    r2 = ex.run(config_updates={"seed": 7}).result
    r3 = ex.run(config_updates={"seed": 8}).result
    assert r1 == r2
    assert r1 != r3
    assert r1[0] != r1[1]  # successive calls get successive seeds


def test_ingredient_captured_functions_read_their_own_subtree():
    data = Ingredient("data")
    data.add_config(path="x", a="ingredient a")

    @data.capture
    def get(path, a, _config):
        return path, a, sorted(_config)

    ex = Experiment("ing", ingredients=[data])
    ex.add_config(a="experiment a")

    @ex.main
    def main(a):
        return a, get()

    assert ex.run().result == ("experiment a", ("x", "ingredient a", ["a", "path"]))


def test_captured_config_values_are_read_only():
    ex = make()

    @ex.capture
    def mutate(opt):
        opt["lr"] = 5

    @ex.main
    def main():
        mutate()

    from labbook.errors import ReadOnlyConfigError

    with pytest.raises(ReadOnlyConfigError, match="'opt.lr'"):
        ex.run()


def test_capture_keeps_metadata():
    ex = make()

    @ex.capture
    def documented(a):
        """Docs stay."""
        return a

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Docs stay."
    assert ex.capture(documented) is documented


def test_rnd_is_a_numpy_generator_that_also_answers_legacy_calls():
    np = pytest.importorskip("numpy")
    ex = Experiment("rnd_kinds")

    @ex.main
    def main(_rnd):
        return (isinstance(_rnd, np.random.Generator), int(_rnd.integers(0, 10)),
                int(_rnd.randint(5, 6)), _rnd.rand(2, 3).shape, float(_rnd.randn()) == 0.0,
                0 <= float(_rnd.random_sample()) < 1)

    generator, drawn, legacy, shape, zero, unit = ex.run(
        options={"--loglevel": "ERROR"}).result
    assert generator and 0 <= drawn < 10 and legacy == 5 and shape == (2, 3)
    assert not zero and unit


def test_rnd_is_a_random_state_with_the_legacy_setting():
    np = pytest.importorskip("numpy")
    from labbook import SETTINGS

    ex = Experiment("rnd_legacy")
    ex.main(lambda _rnd: type(_rnd))
    SETTINGS.CONFIG.NUMPY_RANDOM_LEGACY_API = True
    try:
        assert ex.run(options={"--loglevel": "ERROR"}).result is np.random.RandomState
    finally:
        SETTINGS.CONFIG.NUMPY_RANDOM_LEGACY_API = False


# --- Sacred's seed chain ----------------------------------------------------------------------

def seeded_tree():
    """An experiment with two ingredients (one holding a third) whose functions report the
    seeds they get; ``main`` and the command ``again`` call them."""
    leaf = Ingredient("leaf")

    @leaf.capture
    def leaf_seed(_seed):
        return _seed

    left = Ingredient("left", ingredients=[leaf])
    right = Ingredient("right")

    @left.capture
    def left_seed(_seed):
        return _seed

    @right.capture
    def right_seed(_seed):
        return _seed

    ex = Experiment("chain", ingredients=[left, right])

    @ex.capture
    def top(_seed):
        return _seed

    @ex.command
    def again(_seed):
        return _seed, top(), left_seed()

    @ex.main
    def main(_seed):
        return _seed, top(), top(), left_seed(), right_seed(), leaf_seed()

    return ex


def test_seeds_follow_sacreds_chain_so_a_seed_gives_sacreds_numbers():
    pytest.importorskip("numpy")
    ex = seeded_tree()
    # the numbers Sacred 0.8.7 (numpy's Generator) gives the same tree with seed=5 and 77
    result = ex.run(config_updates={"seed": 5}, options={"--loglevel": "ERROR"}).result
    assert result[:4] == (512869914, 463044638, 154034336, 715285953)
    assert ex.run("again", config_updates={"seed": 77},
                  options={"--loglevel": "ERROR"}).result == (9617762, 941781597, 709029622)


def test_seeds_with_the_legacy_random_state_are_sacreds_too():
    pytest.importorskip("numpy")
    from labbook import SETTINGS

    ex = seeded_tree()
    SETTINGS.CONFIG.NUMPY_RANDOM_LEGACY_API = True
    try:
        result = ex.run(config_updates={"seed": 5}, options={"--loglevel": "ERROR"}).result
    finally:
        SETTINGS.CONFIG.NUMPY_RANDOM_LEGACY_API = False
    # Sacred 0.8.7 with NUMPY_RANDOM_LEGACY_API = True
    assert result[:4] == (656592500, 179211347, 91326844, 243624202)


def test_an_ingredients_inner_ingredient_repeats_with_the_seed():
    # Sacred 0.8.7 seeds it from the unseeded random module (its numbers never repeat);
    # labbook derives its seed from the run's seed
    ex = seeded_tree()
    first = ex.run(config_updates={"seed": 5}, options={"--loglevel": "ERROR"}).result
    second = ex.run(config_updates={"seed": 5}, options={"--loglevel": "ERROR"}).result
    other = ex.run(config_updates={"seed": 6}, options={"--loglevel": "ERROR"}).result
    assert first[5] == second[5] != other[5]


def test_rnd_is_seeded_with_the_calls_seed():
    np = pytest.importorskip("numpy")
    ex = Experiment("one_seed_per_call")

    @ex.capture
    def both(_seed, _rnd):
        return _seed, int(_rnd.integers(0, 10**9))

    @ex.main
    def main():
        return both(), both()

    run = ex.run(config_updates={"seed": 3}, options={"--loglevel": "ERROR"})
    for seed, drawn in run.result:
        assert drawn == int(np.random.default_rng(seed).integers(0, 10**9))
    assert run.result[0] != run.result[1]


def test_a_seed_labbook_picks_is_in_sacreds_range():
    ex = Experiment("picked")
    ex.main(lambda _seed: _seed)
    for _ in range(20):
        run = ex.run(options={"--loglevel": "ERROR"})
        assert 1 <= run.config["seed"] < 10**9 and 1 <= run.result < 10**9
