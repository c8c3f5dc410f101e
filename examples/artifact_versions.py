"""Versioned artifacts with lineage: ``labbook.log_artifact`` and ``labbook.use_artifact``.

A training run logs a model directory twice (v0, then v1 after more training) and marks v0
``best``; an evaluation run uses ``model:best``, downloads it and reads it. The store then
knows which run made which version and which run used it. Everything happens in a new
temporary directory (an SQLite store there, downloads under its ``artifacts/``).

    python examples/artifact_versions.py
"""
import json
import os
import tempfile

import labbook

workdir = tempfile.mkdtemp(prefix="labbook-artifacts-")
os.chdir(workdir)
store = f"sqlite:///{os.path.join(workdir, 'labbook.db')}"

os.makedirs("model")
with labbook.start_run("train", store=store, capture="no") as train:
    for epoch, accuracy in ((1, 0.91), (2, 0.87)):
        with open("model/weights.json", "w") as fh:
            json.dump({"epoch": epoch, "w": [0.1 * epoch, 0.2]}, fh)
        with open("model/README.txt", "w") as fh:
            fh.write("a tiny model\n")
        version = labbook.log_artifact("model", type="model", metadata={"accuracy": accuracy},
                                       aliases=["best"] if epoch == 1 else None)
        print(f"logged {version.ref} aliases {version.aliases}")
    # the same content again is no new version
    print(f"again: {labbook.log_artifact('model', type='model').ref}")

with labbook.start_run("evaluate", store=store, capture="no") as evaluate:
    best = labbook.use_artifact("model:best")
    path = best.download()                  # ./artifacts/model-v0
    with open(os.path.join(path, "weights.json")) as fh:
        print(f"evaluating {best.ref} from {os.path.relpath(path)}: epoch {json.load(fh)['epoch']}")

api = labbook.Api(store)
best = api.artifact("model:best")
print(f"versions of model: {[(v.version, v.aliases) for v in best.versions()]}")
print(f"{best.ref} logged by run {[r.id for r in best.logged_by()]}, "
      f"used by run {[r.id for r in best.used_by()]}")
print(f"store: {store}")
