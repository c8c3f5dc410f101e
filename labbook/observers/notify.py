"""``SlackObserver`` and ``TelegramObserver``: a chat message when a run ends (Sacred's).

Both post with the standard library's ``urllib`` (no extra package). A message that cannot be
sent (server down, refused, a template naming an unknown field) never fails the run nor keeps
other observers from recording it: the observer logs one warning line and carries on. The
webhook URL and the bot token are secrets: no message or log line shows them.
"""
from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from typing import Any

from labbook.errors import ArgumentError, ConfigFileError
from labbook.observers.base import RunObserver, td_format
from labbook.redact import MASK, redact_text

__all__ = ["SlackObserver", "TelegramObserver", "DEFAULT_SLACK_PRIORITY",
           "DEFAULT_TELEGRAM_PRIORITY"]

log = logging.getLogger("labbook.observers")

DEFAULT_SLACK_PRIORITY = 10
DEFAULT_TELEGRAM_PRIORITY = 10
#: seconds a message may take before it is given up (with a warning)
DEFAULT_TIMEOUT = 10.0


def _load_settings(filename: str | os.PathLike, who: str) -> dict:
    """The settings in a ``.json`` or ``.yaml``/``.yml`` file (Sacred's ``from_config``)."""
    path = os.fsdecode(filename)
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".json", ".yaml", ".yml"):
        raise ConfigFileError(path, f"{who}.from_config reads .json, .yaml or .yml files")
    try:
        with open(path, encoding="utf-8") as fh:
            if extension == ".json":
                data = json.load(fh)
            else:
                import yaml

                data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigFileError(path, "file not found") from None
    except (ValueError, ImportError) as exc:  # JSON and YAML parse errors
        raise ConfigFileError(path, str(exc).splitlines()[0]) from None
    except OSError as exc:
        raise ConfigFileError(path, exc.strerror or str(exc)) from None
    if not isinstance(data, dict):
        raise ConfigFileError(path, "top level must be a mapping")
    return data


class _ChatObserver(RunObserver):
    """What both observers share: the run's fields for the templates, and sending without
    ever raising."""

    #: fields of the settings file that set a message template
    TEXTS: tuple[str, ...] = ()
    priority = 10

    def __init__(self) -> None:
        self.run: dict | None = None
        self.timeout = DEFAULT_TIMEOUT

    def _secrets(self) -> list[str]:
        return []

    def _hide(self, text: str) -> str:
        for secret in self._secrets():
            if secret:
                text = text.replace(secret, MASK)
        return redact_text(text)

    def _send(self, event: str, make_text, **options: Any) -> None:
        """Send the message ``make_text()`` gives; a failure is one warning line."""
        try:
            self._post(make_text(), **options)
        except Exception as exc:  # a notification must never take the run down
            reason = str(exc).splitlines()[0] if str(exc) else ""
            if isinstance(exc, urllib.error.URLError) and not isinstance(
                    exc, urllib.error.HTTPError):
                reason = str(exc.reason)
            log.warning("%s could not send the %s message (%s: %s); the run is not affected.",
                        type(self).__name__, event, type(exc).__name__, self._hide(reason))

    def _post(self, text: str, **options: Any) -> None:
        raise NotImplementedError

    def _post_json(self, url: str, payload: dict, opener: Any = None) -> bytes:
        request = urllib.request.Request(
            url, data=json.dumps(payload).encode("utf-8"), method="POST",
            headers={"Content-Type": "application/json", "Accept": "text/plain"})
        open_url = urllib.request.urlopen if opener is None else opener.open
        with open_url(request, timeout=self.timeout) as response:
            return response.read()

    def _elapsed(self, until) -> str:
        start = (self.run or {}).get("start_time")
        try:
            return td_format(until - start)
        except TypeError:
            return "an unknown time"

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        self.run = {"_id": _id, "config": config, "start_time": start_time,
                    "experiment": ex_info, "command": command, "host_info": host_info}

    def _completed_options(self) -> dict:
        """Options of the completion message (Telegram's may be silent)."""
        return {}

    def completed_event(self, stop_time, result):
        if self.completed_text is None:
            return
        self._ended(result=result, stop_time=stop_time, elapsed_time=self._elapsed(stop_time))
        self._send("completed", self.get_completed_text, **self._completed_options())

    def interrupted_event(self, interrupt_time, status):
        if self.interrupted_text is None:
            return
        self._ended(status=status, interrupt_time=interrupt_time,
                    elapsed_time=self._elapsed(interrupt_time))
        self._send("interrupted", self.get_interrupted_text)

    def failed_event(self, fail_time, fail_trace):
        if self.failed_text is None:
            return
        self._ended(fail_trace=fail_trace, error=_last_line(fail_trace), fail_time=fail_time,
                    elapsed_time=self._elapsed(fail_time))
        self._send("failed", self.get_failed_text)

    def _ended(self, **fields: Any) -> None:
        if self.run is None:  # no start event seen: what is known
            self.run = {"_id": None, "config": {}, "start_time": None, "experiment": {},
                        "command": None, "host_info": {}}
        self.run.update(fields)


class SlackObserver(_ChatObserver):
    """Posts a message to a Slack incoming webhook when a run completes, is interrupted or
    fails (Sacred's SlackObserver). The texts are ``str.format`` templates over the run's
    fields: ``experiment``, ``_id``, ``config``, ``command``, ``host_info``, ``start_time``,
    ``elapsed_time`` and, as they apply, ``result``, ``status``, ``error`` and ``fail_trace``;
    a text set to None sends no message for that event."""

    TEXTS = ("completed_text", "interrupted_text", "failed_text")

    @classmethod
    def from_config(cls, filename: str | os.PathLike) -> SlackObserver:
        """A SlackObserver from a ``.json`` or ``.yaml`` file with ``webhook_url`` and,
        optionally, ``bot_name``, ``icon``, ``priority`` and the three texts."""
        settings = _load_settings(filename, cls.__name__)
        if "webhook_url" not in settings:
            raise ArgumentError(f"The Slack configuration file {os.fsdecode(filename)} must "
                                "contain an entry for 'webhook_url'.")
        unknown = sorted(set(settings) - {"webhook_url", "bot_name", "icon", "priority",
                                          "timeout", *cls.TEXTS})
        if unknown:
            raise ArgumentError(f"The Slack configuration file {os.fsdecode(filename)} has "
                                f"unknown entries: {', '.join(unknown)}.")
        return _with_texts(cls(**{k: v for k, v in settings.items() if k not in cls.TEXTS}),
                           settings)

    def __init__(self, webhook_url: str, bot_name: str = "sacred-bot", icon: str = ":angel:",
                 priority: int = DEFAULT_SLACK_PRIORITY, completed_text: str | None = None,
                 interrupted_text: str | None = None, failed_text: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT):
        super().__init__()
        self.webhook_url = webhook_url
        self.bot_name = bot_name
        self.icon = icon
        self.priority = priority
        self.timeout = timeout
        self.completed_text = completed_text or (
            ":white_check_mark: *{experiment[name]}* completed after _{elapsed_time}_ "
            "with result=`{result}`")
        self.interrupted_text = interrupted_text or (
            ":warning: *{experiment[name]}* interrupted after _{elapsed_time}_")
        self.failed_text = failed_text or (
            ":x: *{experiment[name]}* failed after _{elapsed_time}_ with `{error}`")

    def __repr__(self) -> str:  # never the webhook URL: it holds the secret
        return f"SlackObserver(bot_name={self.bot_name!r})"

    def _secrets(self) -> list[str]:
        url = str(self.webhook_url)
        return [url, url.rsplit("/", 1)[-1]]

    def get_completed_text(self) -> str:
        return self.completed_text.format(**self.run)

    def get_interrupted_text(self) -> str:
        return self.interrupted_text.format(**self.run)

    def get_failed_text(self) -> str:
        return self.failed_text.format(**self.run)

    def _post(self, text: str, **options: Any) -> None:
        self._post_json(self.webhook_url, {"username": self.bot_name,
                                           "icon_emoji": self.icon, "text": text})


def _with_texts(observer: _ChatObserver, settings: dict) -> Any:
    """Set the texts a settings file gives (None: no message for that event)."""
    for name in observer.TEXTS:
        if name in settings:
            setattr(observer, name, settings[name])
    return observer


def _last_line(fail_trace: Any) -> str:
    if isinstance(fail_trace, str):
        lines = fail_trace.strip().splitlines()
        return lines[-1].strip() if lines else ""
    return fail_trace[-1].strip() if fail_trace else ""


class TelegramObserver(_ChatObserver):
    """Sends a Telegram message when a run starts (silently), completes, is interrupted or
    fails (Sacred's TelegramObserver), through the Bot API's ``sendMessage`` in Markdown.

    ``bot`` is the bot's token (text), an object with a ``token`` (python-telegram-bot's
    ``Bot``: labbook posts itself) or with a ``send_message`` method (called as
    python-telegram-bot's). ``silent_completion`` sends the completion without a sound.
    ``api_url`` is the Bot API's address (default ``https://api.telegram.org``). The templates
    are as SlackObserver's, plus ``started_text`` and ``{backtrace}`` in ``failed_text``."""

    TEXTS = ("started_text", "completed_text", "interrupted_text", "failed_text")
    API_URL = "https://api.telegram.org"

    @classmethod
    def from_config(cls, filename: str | os.PathLike) -> TelegramObserver:
        """A TelegramObserver from a ``.json`` or ``.yaml`` file with ``token`` and
        ``chat_id`` and, optionally, ``silent_completion``, ``priority``, ``api_url``,
        ``proxy_url`` (http or https) and the four texts."""
        settings = _load_settings(filename, cls.__name__)
        if "token" not in settings or "chat_id" not in settings:
            raise ArgumentError(f"The Telegram configuration file {os.fsdecode(filename)} "
                                "must contain entries for 'token' and 'chat_id'.")
        unknown = sorted(set(settings) - {"token", "chat_id", "silent_completion", "priority",
                                          "api_url", "proxy_url", "username", "password",
                                          "timeout", *cls.TEXTS})
        if unknown:
            raise ArgumentError(f"The Telegram configuration file {os.fsdecode(filename)} has "
                                f"unknown entries: {', '.join(unknown)}.")
        token = settings.pop("token")
        return _with_texts(cls(token, **{k: v for k, v in settings.items()
                                         if k not in cls.TEXTS}), settings)

    def __init__(self, bot: Any, chat_id: Any, silent_completion: bool = False,
                 priority: int = DEFAULT_TELEGRAM_PRIORITY, *, api_url: str | None = None,
                 proxy_url: str | None = None, username: str | None = None,
                 password: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 started_text: str | None = None, completed_text: str | None = None,
                 interrupted_text: str | None = None, failed_text: str | None = None):
        super().__init__()
        if not isinstance(bot, str) and not isinstance(getattr(bot, "token", None), str) \
                and not callable(getattr(bot, "send_message", None)):
            raise ArgumentError("TelegramObserver needs the bot's token, or a bot object with "
                                "a token or a send_message method.")
        self.bot = bot
        self.chat_id = chat_id
        self.silent_completion = silent_completion
        self.priority = priority
        self.timeout = timeout
        self.api_url = (api_url or self.API_URL).rstrip("/")
        self._opener = _proxy_opener(proxy_url, username, password)
        self._proxy_password = password
        self.started_text = started_text or (
            "♻ *{experiment[name]}* started at _{start_time}_ on host `{host_info[hostname]}`")
        self.completed_text = completed_text or (
            "✅ *{experiment[name]}* completed after _{elapsed_time}_ with result=`{result}`")
        self.interrupted_text = interrupted_text or (
            "⚠ *{experiment[name]}* interrupted after _{elapsed_time}_")
        self.failed_text = failed_text or (
            "❌ *{experiment[name]}* failed after _{elapsed_time}_ with `{error}`\n\n"
            "Backtrace:\n```{backtrace}```")

    def __repr__(self) -> str:  # never the token
        return f"TelegramObserver(chat_id={self.chat_id!r})"

    @property
    def token(self) -> str | None:
        if isinstance(self.bot, str):
            return self.bot
        token = getattr(self.bot, "token", None)
        return token if isinstance(token, str) else None

    def _secrets(self) -> list[str]:
        return [s for s in (self.token, self._proxy_password) if s]

    def get_started_text(self) -> str:
        return self.started_text.format(**self.run)

    def get_completed_text(self) -> str:
        return self.completed_text.format(**self.run)

    def get_interrupted_text(self) -> str:
        return self.interrupted_text.format(**self.run)

    def get_failed_text(self) -> str:
        trace = self.run.get("fail_trace") or []
        backtrace = trace if isinstance(trace, str) else "".join(trace)
        return self.failed_text.format(backtrace=backtrace, **self.run)

    def _post(self, text: str, *, silent: bool = False, **options: Any) -> None:
        token = self.token
        if token is None:  # python-telegram-bot's (or a look-alike's) own method
            import asyncio
            import inspect

            sent = self.bot.send_message(chat_id=self.chat_id, text=text,
                                         disable_notification=silent, parse_mode="Markdown")
            if inspect.isawaitable(sent):  # python-telegram-bot 20 and later
                asyncio.run(_awaited(sent))
            return
        answer = self._post_json(f"{self.api_url}/bot{token}/sendMessage",
                                 {"chat_id": self.chat_id, "text": text,
                                  "disable_notification": silent, "parse_mode": "Markdown"},
                                 self._opener)
        try:
            reply = json.loads(answer.decode("utf-8"))
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or reply.get("ok") is not True:
            detail = reply.get("description") if isinstance(reply, dict) else None
            raise ConnectionError(f"the Bot API refused it: {detail or 'no ok in its answer'}")

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        super().started_event(ex_info, command, host_info, start_time, config, meta_info, _id)
        if self.started_text is not None:
            self._send("started", self.get_started_text, silent=True)

    def _completed_options(self) -> dict:
        return {"silent": self.silent_completion}


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _proxy_opener(proxy_url: str | None, username: str | None, password: str | None):
    """An opener going through an HTTP(S) proxy (Sacred's ``proxy_url`` setting), or None."""
    if not proxy_url:
        return None
    scheme, sep, rest = proxy_url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise ArgumentError("TelegramObserver's proxy_url must be http://HOST[:PORT] or "
                            "https://HOST[:PORT] (SOCKS proxies are not supported).")
    if username:
        host = rest.rsplit("@", 1)[-1]
        credentials = username + (f":{password}" if password else "")
        proxy_url = f"{scheme}://{credentials}@{host}"
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": proxy_url, "https": proxy_url}))
