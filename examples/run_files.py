"""Files kept in step with the store: ``run.save``, ``labbook.restore`` and a syncable directory.

Run 1 saves a checkpoint with ``policy="live"`` (stored again whenever it changes, and at
the end), and pushes a directory ``search/`` of results as a syncable directory. Run 2
restores the checkpoint with ``labbook.restore`` and pulls run 1's directory, adds to it and
pushes it again. Everything is recorded in a file store in a new temporary directory.

    python examples/run_files.py
"""
import os
import tempfile

import labbook

work = tempfile.mkdtemp(prefix="labbook-files-")
os.chdir(work)
store = os.path.join(work, "runs")

with labbook.start_run("search", store=store) as first:
    with open("checkpoint.txt", "w") as fh:
        fh.write("epoch 0")
    first.save("checkpoint.txt")                      # live: re-stored when it changes
    with open("checkpoint.txt", "w") as fh:
        fh.write("epoch 9")                           # the final version is stored at the end
    results = labbook.create_syncable_directory("search", "results")
    with open(os.path.join("results", "trials.csv"), "w") as fh:
        fh.write("lr,loss\n0.1,0.5\n")

with labbook.start_run("search", store=store) as second:
    path = labbook.restore("checkpoint.txt", run_path=first._id, root="restored")
    print("restored:", open(path).read())
    labbook.create_syncable_directory("search", "results2", source_run=first._id)
    with open(os.path.join("results2", "trials.csv"), "a") as fh:
        fh.write("0.01,0.4\n")

back = labbook.Api(store).run(second._id)
print("run 2 pushed:", back.artifacts)
print(back.file("search/trials.csv").read_bytes().decode().strip().replace("\n", " | "))
print(f"store: {store}")
