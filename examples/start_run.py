"""A run without decorators, as in a notebook or a quick script: ``labbook.start_run``.

The run records into a file store in a new temporary directory (``store=``; without it the run
goes to ``$LABBOOK_STORE``, else to the embedded default ``labbook.db``), logs metrics, a
parameter, a tag, text, a dict and an image with the module-level helpers, ends with the
``with`` block, and is read back with ``labbook.Api``. Needs numpy (for the image).

    python examples/start_run.py
"""
import tempfile

import numpy as np

import labbook

store = tempfile.mkdtemp(prefix="labbook-start-run-")

with labbook.start_run("quick-script", config={"lr": 0.1, "epochs": 4}, tags=["demo"],
                       notes="no decorators", group="examples", store=store) as run:
    params = labbook.load_parameters()
    loss = 1.0
    for epoch in range(params["epochs"]):
        loss *= 1 - params["lr"]
        labbook.log({"loss": loss, "epoch": epoch})  # wandb style: one global step per call
    labbook.log_metric("accuracy", 0.91)              # Foundations style: calls append
    labbook.log_param("optimizer", "sgd")
    labbook.set_tag("baseline")
    labbook.log_text("loss went down every epoch", "summary")
    labbook.log_dict("final", {"loss": loss})
    labbook.log_image(np.linspace(0.0, 1.0, 64).reshape(8, 8), "gradient")  # a PNG
    print(f"run {run._id}: final loss {loss:.4f}")

back = labbook.Api(store).runs()[0]
print(f"stored: {back.status}, tags {back.tags}, group {back.meta['group']}, "
      f"artifacts {sorted(back.artifacts)}")
print(f"store: {store}")
