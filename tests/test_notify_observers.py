"""SlackObserver and TelegramObserver post to a local HTTP server standing in for Slack's
webhook and Telegram's Bot API; a server that is down or refuses costs one warning line and
never the run."""
import datetime
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import labbook
from labbook.errors import ArgumentError, ConfigFileError
from labbook.observers import FileStorageObserver, SlackObserver, TelegramObserver
from labbook.observers.base import td_format

TOKEN = "123456:SECRET-bot-token"
HOOK_SECRET = "T000/B000/XXXXsecretXXXX"


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append({"path": self.path, "type": self.headers["Content-Type"],
                                  "body": json.loads(body)})
        status, answer = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    httpd.posts = []
    httpd.answer = (200, b'{"ok": true, "result": {}}')
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _run(observer, main, tmp_path=None, **kwargs):
    ex = labbook.Experiment("notified", interactive=True)
    ex.main(main)
    ex.observers.append(observer)
    if tmp_path is not None:
        ex.observers.append(FileStorageObserver(tmp_path / "runs"))
    return ex.run(options={"--no_system_metrics": True}, **kwargs)


def _fails():
    raise ValueError("bad value")


def _interrupted():
    raise KeyboardInterrupt()


# --- Slack ---------------------------------------------------------------------------------

def test_slack_posts_sacreds_completed_message(server):
    observer = SlackObserver(f"{server.url}/services/{HOOK_SECRET}")
    _run(observer, lambda: 42)
    (post,) = server.posts
    assert post["path"] == f"/services/{HOOK_SECRET}"
    assert post["type"] == "application/json"
    assert post["body"] == {
        "username": "sacred-bot", "icon_emoji": ":angel:",
        "text": ":white_check_mark: *notified* completed after _less than a second_ with "
                "result=`42`"}
    assert observer.priority == 10


def test_slack_posts_the_failed_and_the_interrupted_message(server):
    observer = SlackObserver(f"{server.url}/hook", bot_name="lab", icon=":robot:")
    with pytest.raises(ValueError):
        _run(observer, _fails)
    with pytest.raises(KeyboardInterrupt):
        _run(observer, _interrupted)
    failed, interrupted = (p["body"] for p in server.posts)
    assert failed == {"username": "lab", "icon_emoji": ":robot:",
                      "text": ":x: *notified* failed after _less than a second_ with "
                              "`ValueError: bad value`"}
    assert interrupted["text"] == (":warning: *notified* interrupted after "
                                   "_less than a second_")


def test_slack_templates_can_be_changed_or_silenced(server):
    observer = SlackObserver(f"{server.url}/hook",
                             completed_text="{experiment[name]} gave {result} ({_id})")
    run = _run(observer, lambda: 7)
    assert server.posts[0]["body"]["text"] == f"notified gave 7 ({run._id})"
    observer.completed_text = None
    _run(observer, lambda: 8)
    assert len(server.posts) == 1


def test_a_slack_server_that_is_down_costs_a_warning_not_the_run(tmp_path, caplog):
    url = f"{_closed_port_url()}/services/{HOOK_SECRET}"
    with caplog.at_level(logging.WARNING, logger="labbook.observers"):
        run = _run(SlackObserver(url), lambda: 5, tmp_path)
    assert run.status == "COMPLETED" and run.result == 5
    stored = labbook.Api(str(tmp_path / "runs")).run(run._id)
    assert stored.status == "COMPLETED" and stored.result == 5
    (record,) = [r for r in caplog.records if r.name == "labbook.observers"]
    message = record.getMessage()
    assert message.startswith("SlackObserver could not send the completed message (URLError: ")
    assert message.endswith("); the run is not affected.")
    assert "\n" not in message
    assert HOOK_SECRET not in caplog.text and "XXXXsecretXXXX" not in caplog.text


def test_a_slack_server_that_refuses_costs_a_warning(server, caplog):
    server.answer = (500, b"no")
    with caplog.at_level(logging.WARNING, logger="labbook.observers"):
        run = _run(SlackObserver(f"{server.url}/hook"), lambda: 1)
    assert run.status == "COMPLETED"
    assert ("SlackObserver could not send the completed message (HTTPError: HTTP Error 500: "
            "Internal Server Error); the run is not affected.") in caplog.messages


def test_a_template_naming_an_unknown_field_costs_a_warning(server, caplog):
    observer = SlackObserver(f"{server.url}/hook", completed_text="{nope}")
    with caplog.at_level(logging.WARNING, logger="labbook.observers"):
        assert _run(observer, lambda: 1).status == "COMPLETED"
    assert ("SlackObserver could not send the completed message (KeyError: 'nope'); the run "
            "is not affected.") in caplog.messages
    assert server.posts == []


def test_slack_from_config_reads_json_and_yaml(tmp_path, server):
    path = tmp_path / "slack.json"
    path.write_text(json.dumps({"webhook_url": f"{server.url}/hook", "bot_name": "b",
                                "icon": ":x:", "failed_text": "oops {error}"}))
    observer = SlackObserver.from_config(str(path))
    assert (observer.bot_name, observer.icon) == ("b", ":x:")
    assert observer.failed_text == "oops {error}"
    yaml_path = tmp_path / "slack.yaml"
    yaml_path.write_text(f"webhook_url: {server.url}/hook\npriority: 3\n")
    assert SlackObserver.from_config(yaml_path).priority == 3
    path.write_text(json.dumps({"bot_name": "b"}))
    with pytest.raises(ArgumentError, match="must contain an entry for 'webhook_url'"):
        SlackObserver.from_config(str(path))
    path.write_text(json.dumps({"webhook_url": "x", "colour": "red"}))
    with pytest.raises(ArgumentError, match="has unknown entries: colour"):
        SlackObserver.from_config(str(path))
    with pytest.raises(ConfigFileError, match="file not found"):
        SlackObserver.from_config(str(tmp_path / "missing.json"))


def test_the_observers_never_show_their_secret_in_repr():
    assert HOOK_SECRET not in repr(SlackObserver(f"https://hooks.slack.com/{HOOK_SECRET}"))
    assert TOKEN not in repr(TelegramObserver(TOKEN, chat_id=5))


# --- Telegram ------------------------------------------------------------------------------

def test_telegram_sends_the_started_and_completed_messages(server):
    observer = TelegramObserver(TOKEN, chat_id=1234, api_url=server.url)
    _run(observer, lambda: 0.5)
    started, completed = server.posts
    assert started["path"] == completed["path"] == f"/bot{TOKEN}/sendMessage"
    host = started["body"]["text"].rsplit("`", 2)[1]
    assert started["body"]["text"].startswith("♻ *notified* started at _")
    assert started["body"]["text"].endswith(f"_ on host `{host}`") and host
    assert (started["body"]["disable_notification"], started["body"]["chat_id"],
            started["body"]["parse_mode"]) == (True, 1234, "Markdown")
    assert completed["body"] == {
        "chat_id": 1234, "parse_mode": "Markdown", "disable_notification": False,
        "text": "✅ *notified* completed after _less than a second_ with result=`0.5`"}


def test_telegram_silent_completion_and_failure_with_backtrace(server):
    observer = TelegramObserver(TOKEN, "@channel", silent_completion=True, api_url=server.url)
    _run(observer, lambda: 1)
    assert server.posts[-1]["body"]["disable_notification"] is True
    with pytest.raises(ValueError):
        _run(observer, _fails)
    failed = server.posts[-1]["body"]
    assert failed["disable_notification"] is False and failed["chat_id"] == "@channel"
    head, backtrace = failed["text"].split("\n\nBacktrace:\n```")
    assert head == "❌ *notified* failed after _less than a second_ with `ValueError: bad value`"
    assert backtrace.startswith("Traceback (most recent call last):\n")
    assert backtrace.endswith("ValueError: bad value\n```")
    with pytest.raises(KeyboardInterrupt):
        _run(observer, _interrupted)
    assert server.posts[-1]["body"]["text"] == (
        "⚠ *notified* interrupted after _less than a second_")


def test_telegram_refusal_and_outage_cost_one_warning_without_the_token(
        server, caplog, tmp_path):
    server.answer = (200, b'{"ok": false, "description": "Bad Request: chat not found"}')
    with caplog.at_level(logging.WARNING, logger="labbook.observers"):
        run = _run(TelegramObserver(TOKEN, 1, api_url=server.url), lambda: 1)
    assert run.status == "COMPLETED"
    assert caplog.messages == [
        f"TelegramObserver could not send the {event} message (ConnectionError: the Bot API "
        "refused it: Bad Request: chat not found); the run is not affected."
        for event in ("started", "completed")]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="labbook.observers"):
        with pytest.raises(ValueError):
            _run(TelegramObserver(TOKEN, 1, api_url=_closed_port_url()), _fails, tmp_path)
    assert [m.split(" (")[0] for m in caplog.messages if "Telegram" in m] == [
        "TelegramObserver could not send the started message",
        "TelegramObserver could not send the failed message"]
    assert "SECRET-bot-token" not in caplog.text
    (stored,) = labbook.Api(str(tmp_path / "runs")).runs()
    assert stored.status == "FAILED"


def test_telegram_takes_a_bot_object_with_a_token_or_send_message(server):
    class TokenBot:
        token = TOKEN

    _run(TelegramObserver(TokenBot(), 1, api_url=server.url), lambda: 1)
    assert [p["path"] for p in server.posts] == [f"/bot{TOKEN}/sendMessage"] * 2

    class OwnBot:
        def __init__(self):
            self.sent = []

        def send_message(self, **kwargs):
            self.sent.append(kwargs)

    bot = OwnBot()
    _run(TelegramObserver(bot, 9, silent_completion=True), lambda: 2)
    assert [(m["chat_id"], m["disable_notification"], m["parse_mode"]) for m in bot.sent] == [
        (9, True, "Markdown"), (9, True, "Markdown")]
    assert bot.sent[1]["text"].startswith("✅ *notified* completed")

    class AsyncBot:
        sent = []

        async def send_message(self, **kwargs):
            self.sent.append(kwargs["text"])

    observer = TelegramObserver(AsyncBot(), 9)
    observer.started_text = None  # as in Sacred: no message for that event
    _run(observer, lambda: 3)
    assert len(AsyncBot.sent) == 1 and "result=`3`" in AsyncBot.sent[0]
    with pytest.raises(ArgumentError, match="needs the bot's token"):
        TelegramObserver(object(), 1)


def test_telegram_from_config(tmp_path, server):
    path = tmp_path / "telegram.json"
    path.write_text(json.dumps({"token": TOKEN, "chat_id": 77, "silent_completion": True,
                                "api_url": server.url, "started_text": None,
                                "completed_text": "done: {result}"}))
    observer = TelegramObserver.from_config(path)
    assert (observer.chat_id, observer.silent_completion, observer.token) == (77, True, TOKEN)
    _run(observer, lambda: 4)
    # started_text None in the file: no message when the run starts
    assert [p["body"]["text"] for p in server.posts] == ["done: 4"]
    path.write_text(json.dumps({"token": TOKEN}))
    with pytest.raises(ArgumentError, match="must contain entries for 'token' and 'chat_id'"):
        TelegramObserver.from_config(path)
    path.write_text(json.dumps({"token": TOKEN, "chat_id": 1, "proxy_url": "socks5://h:1"}))
    with pytest.raises(ArgumentError, match="SOCKS proxies are not supported"):
        TelegramObserver.from_config(path)


def test_td_format_words_a_duration_as_sacred_does():
    assert td_format(datetime.timedelta(seconds=0.4)) == "less than a second"
    assert td_format(datetime.timedelta(seconds=1)) == "1 second"
    assert td_format(datetime.timedelta(hours=1, minutes=2, seconds=3)) == \
        "1 hour, 2 minutes, 3 seconds"
    assert td_format(datetime.timedelta(days=400)) == "1 year, 1 month, 5 days"
