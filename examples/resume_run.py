"""Resuming a run whose process was killed: ``start_run(run_id=..., resume="must")``.

A child process starts run 1 in a file store, logs three epochs and is killed (SIGKILL, as an
out-of-memory kill or a lost machine would do). Once the run is reported DIED (three missed
heartbeats, at least 5 s), this process resumes it: same id, same config, the steps continue
and the points are appended. The run's record ends COMPLETED with every epoch.

    python examples/resume_run.py
"""
import os
import subprocess
import sys
import tempfile
import time

import labbook

store = tempfile.mkdtemp(prefix="labbook-resume-")

FIRST_PART = f"""
import os, signal, time
import labbook
labbook.start_run("train", config={{"lr": 0.1}}, store={store!r}, run_id=1, beat_interval=0.2)
for epoch in range(3):
    labbook.log({{"loss": 1.0 / (epoch + 1)}})
time.sleep(0.5)                          # a heartbeat stores the points
os.kill(os.getpid(), signal.SIGKILL)     # the process dies without a word
"""
subprocess.run([sys.executable, "-c", FIRST_PART], env=dict(os.environ, PYTHONUNBUFFERED="1"))

api = labbook.Api(store)
while api.run(1).status != "DIED":  # no heartbeat for 3 beats and at least 5 s
    time.sleep(0.5)
print("before:", api.run(1).status, "after", len(api.run(1).history("loss")), "epochs")

with labbook.start_run("train", store=store, run_id=1, resume="must") as run:
    for epoch in range(3, 5):
        labbook.log({"loss": 1.0 / (epoch + 1)})

after = labbook.Api(store).run(1)
steps = list(after.history("loss", samples=None)["_step"])
print(f"after: {after.status}, lr={after.config['lr']}, loss steps {steps}, "
      f"resumed from {after.meta['resumptions'][0]['previous_status']}")
print(f"store: {store}")
