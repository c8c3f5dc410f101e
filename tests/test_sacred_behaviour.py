"""Details in which labbook behaves as Sacred 0.8.7 does (issue 13, "a true drop-in")."""
import pytest

from labbook import Experiment


# -- option hooks --------------------------------------------------------------------------------
def test_option_hook_sees_sacreds_dashed_keys_and_its_changes_count():
    ex = Experiment("opts")
    seen = {}

    @ex.option_hook
    def hook(options):
        seen.update(options)
        options["--name"] = "hooked"
        options["--beat-interval"] = 2.5

    @ex.main
    def main(_run):
        return _run.meta_info["name"], _run.meta_info["options"]["--beat-interval"]

    run = ex.run(options={"--comment": "hello", "--enforce_clean": False})
    assert seen["--comment"] == "hello"
    assert seen["--name"] is None and seen["--unobserved"] is False
    assert "--beat-interval" in seen and "--print-config" in seen and "--enforce_clean" in seen
    assert not [key for key in seen if not key.startswith("--")]
    assert run.result == ("hooked", 2.5)


def test_option_hook_on_the_command_line_sees_dashed_keys():
    ex = Experiment("opts_cli")
    seen = {}

    @ex.option_hook
    def hook(options):
        seen.update(options)

    @ex.main
    def main():
        return 1

    run = ex.run_commandline(["prog", "-c", "from the line", "-n", "nm"])
    assert run.result == 1
    assert seen["--comment"] == "from the line" and seen["--name"] == "nm"


def test_option_hook_adding_an_unknown_option_is_a_clear_error():
    from labbook.errors import OptionValueError

    ex = Experiment("opts_bad")

    @ex.option_hook
    def hook(options):
        options["--nmae"] = "x"

    @ex.main
    def main():
        return 1

    with pytest.raises(OptionValueError, match=r"Unknown run option '--nmae'\. Did you mean"):
        ex.run()
