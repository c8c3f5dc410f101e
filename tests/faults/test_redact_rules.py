"""The rules of labbook.redact: which names are secret, what is masked inside strings, and that
a run's observers (and so every store and journal) get masked copies while the running code
keeps the real values."""
from __future__ import annotations

import pytest

import labbook
from labbook.observers import RunObserver
from labbook.redact import (MASK, is_secret_name, redact_argv, redact_text, redact_value,
                            secret_paths)


@pytest.mark.parametrize("name", [
    "password", "db_password", "DB_PASSWORD", "dbPassword", "--password", "passwd", "pwd",
    "secret", "client_secret", "token", "auth_token", "--auth-token", "auth", "api_key",
    "apiKey", "APIKEY", "access_key", "AWS_SECRET_ACCESS_KEY", "private_key", "credentials",
    "credential", "hf_token", "ssh_key", "passphrase"])
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", [
    "author", "authors", "tokenizer", "max_tokens", "num_tokens", "pad_token", "eos_token",
    "keyboard", "key", "monkey", "passes", "compass", "lr", "secretary", "x"])
def test_ordinary_names(name):
    assert not is_secret_name(name)


def test_extra_names():
    assert not is_secret_name("salt") and is_secret_name("my_salt", extra=["salt"])


@pytest.mark.parametrize("text,masked", [
    ("postgresql://u:secretpw@db:5432/lab", "postgresql://u:****@db:5432/lab"),
    ("mysql+pymysql://u:p@ss@h/db", "mysql+pymysql://u:****@h/db"),
    ("mongodb://u:pw@h1,h2/db?replicaSet=r", "mongodb://u:****@h1,h2/db?replicaSet=r"),
    ("mongodb://h/db?authSource=admin&password=pw",
     "mongodb://h/db?authSource=admin&password=****"),
    ("run.py -s postgresql://u:pw@h/db --password=pw with db_password=pw lr=0.1",
     "run.py -s postgresql://u:****@h/db --password=**** with db_password=**** lr=0.1"),
    ("token: abc", "token: ****"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("lr=0.1 author=me host:port", "lr=0.1 author=me host:port"),
    # requirement specifiers are not assignments: google-auth==2.23 stays a dependency
    ("google-auth==2.23.0", "google-auth==2.23.0"), ("oauth-token>=1", "oauth-token>=1"),
])
def test_text(text, masked):
    assert redact_text(text) == masked


def test_argv_with_a_separate_value():
    assert redact_argv(["exp.py", "--password", "pw", "-s", "mysql://r:pw@h/d", "--lr", "1"]) \
        == ["exp.py", "--password", MASK, "-s", "mysql://r:****@h/d", "--lr", "1"]


def test_values_and_paths():
    config = {"db": {"url": "postgresql://u:pw@h/d", "password": "pw", "port": 5432},
              "api_key": None, "tokens": ["a"], "auth": {"user": "me", "pin": 1234},
              "use_auth": True, "api_keys": ["k1", "k2"]}
    assert redact_value(config) == {
        "db": {"url": "postgresql://u:****@h/d", "password": MASK, "port": 5432},
        "api_key": None, "tokens": ["a"], "auth": {"user": MASK, "pin": MASK},
        "use_auth": True, "api_keys": [MASK, MASK]}
    assert secret_paths(config) == ["db.password", "auth", "api_keys"]
    assert config["db"]["password"] == "pw"  # a copy; the original is untouched


class _Recorder(RunObserver):
    def __init__(self):
        self.started = None
        self.trace = None

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        self.started = {"config": config, "meta": meta_info}
        return 1

    def failed_event(self, fail_time, fail_trace):
        self.trace = "".join(fail_trace)


def test_observers_get_masked_copies_and_the_code_the_real_values():
    ex = labbook.Experiment("masks", interactive=True)
    seen = {}

    @ex.config
    def cfg():
        db_password = "unset"
        url = "sqlite:///x.db"

    @ex.main
    def main(db_password, url):
        seen.update(db_password=db_password, url=url)

    recorder = _Recorder()
    ex.observers.append(recorder)
    ex.run(config_updates={"db_password": "secretpw", "url": "postgresql://u:secretpw@h/d"},
           options={"--comment": "db_password=secretpw", "--no-system-metrics": True})
    assert seen == {"db_password": "secretpw", "url": "postgresql://u:secretpw@h/d"}
    assert recorder.started["config"]["db_password"] == MASK
    assert recorder.started["config"]["url"] == "postgresql://u:****@h/d"
    assert recorder.started["meta"]["comment"] == "db_password=****"
    assert recorder.started["meta"]["redacted"] == ["config.db_password",
                                                    "config_updates.db_password"]
    assert "secretpw" not in repr(recorder.started)


def test_a_failure_trace_is_masked():
    ex = labbook.Experiment("trace", interactive=True)

    @ex.main
    def main():
        raise RuntimeError("cannot log in to postgresql://u:secretpw@h/d")

    recorder = _Recorder()
    ex.observers.append(recorder)
    with pytest.raises(RuntimeError):
        ex.run(options={"--no-system-metrics": True})
    assert "postgresql://u:****@h/d" in recorder.trace and "secretpw" not in recorder.trace


def test_settings_add_secret_names(monkeypatch):
    from labbook import settings

    ex = labbook.Experiment("salted", interactive=True)

    @ex.config
    def cfg():
        my_salt = "s4lt"

    @ex.main
    def main(my_salt):
        return my_salt

    recorder = _Recorder()
    ex.observers.append(recorder)
    monkeypatch.setitem(settings.SETTINGS, "SECRET_NAMES", ["salt"])
    assert ex.run(options={"--no-system-metrics": True}).result == "s4lt"
    assert recorder.started["config"]["my_salt"] == MASK
