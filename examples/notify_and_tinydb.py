#!/usr/bin/env python
"""Sacred's TinyDB store and Slack notifications: ``TinyDbObserver``, ``TinyDbReader`` and
``SlackObserver``.

Two runs (one completes, one fails) are recorded into a TinyDB store (``runs_db/``: Sacred's
``metadata.json`` + ``hashfs/`` layout) and announced to Slack; then the store is read back with
``TinyDbReader``. Without ``LABBOOK_EXAMPLE_SLACK_URL`` (a Slack incoming webhook), the
messages go to a small HTTP server this script starts on a free local port, standing in for
Slack, which prints what it received. The script works in a new temporary directory. Needs the
``tinydb`` extra (``pip install "labbook[tinydb]"``).

    python examples/notify_and_tinydb.py
    export LABBOOK_EXAMPLE_SLACK_URL=https://hooks.slack.com/services/...
    python examples/notify_and_tinydb.py        # the two messages go to your Slack channel
"""
import json
import os
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from labbook import Experiment
from labbook.observers import SlackObserver, TinyDbObserver, TinyDbReader

ex = Experiment("notify_and_tinydb")


@ex.config
def cfg():
    lr = 0.1  # learning rate of the toy training
    epochs = 5
    diverge_at = None  # the epoch at which the toy training fails


@ex.main
def train(lr, epochs, diverge_at, _run):
    loss = 1.0
    for epoch in range(epochs):
        if epoch == diverge_at:
            raise FloatingPointError(f"loss diverged at epoch {epoch}")
        loss *= 1 - lr
        _run.log_scalar("loss", round(loss, 4), epoch)
    with open("weights.txt", "w", encoding="utf-8") as fh:
        fh.write(f"lr={lr} loss={loss:.4f}\n")
    _run.add_artifact("weights.txt")
    return round(1 - loss, 4)


class StandInSlack(BaseHTTPRequestHandler):
    """Answers like Slack's webhook and prints each message it receives."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        message = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        print(f"[slack] {message['username']}: {message['text']}")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def main():
    os.chdir(tempfile.mkdtemp(prefix="labbook-tinydb-"))
    print("working in", os.getcwd())
    webhook = os.environ.get("LABBOOK_EXAMPLE_SLACK_URL")
    server = None
    if not webhook:
        server = ThreadingHTTPServer(("127.0.0.1", 0), StandInSlack)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        webhook = f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/stand-in"

    ex.observers.append(TinyDbObserver("runs_db"))
    ex.observers.append(SlackObserver(webhook, bot_name="lab-bot"))
    options = {"--no-system-metrics": True, "--loglevel": "ERROR"}
    ex.run(options=options)
    try:
        ex.run(config_updates={"diverge_at": 3}, options=options)
    except FloatingPointError:
        pass  # the run is recorded as FAILED, and Slack was told
    if server is not None:
        server.shutdown()
        server.server_close()

    reader = TinyDbReader("runs_db")
    for doc in reader.fetch_metadata("notify_and_tinydb"):
        points = reader.fetch_metrics(doc["_id"])["loss"]["values"]
        print(f"{doc['status']}: lr={doc['config']['lr']} result={doc['result']} "
              f"loss={points}")
    (files,) = reader.fetch_files(indices=0)
    with files["artifacts"]["weights.txt"] as fh:
        print("artifact weights.txt:", fh.read().decode().strip())
    print(reader.fetch_report(indices=0)[0].split("Dependencies:")[0].rstrip())


if __name__ == "__main__":
    main()
