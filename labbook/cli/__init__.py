"""Command lines: the experiment-script CLI (run_args) and the ``labbook`` tool (main)."""
