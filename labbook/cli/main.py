"""The ``labbook`` console script."""
from __future__ import annotations

import sys
from typing import Sequence

USAGE = """labbook - reproducible, comparable experiments.

Usage:
  labbook --version
  labbook (-h | --help)

Experiments are Python scripts: python my_experiment.py [COMMAND] [with UPDATE...] [OPTIONS]
(run one with --help to see its options). Documentation: the docs/ folder of the project.
"""


def main(argv: Sequence[str] | None = None) -> int:
    from docopt import DocoptExit, docopt

    from labbook import __version__

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = docopt(USAGE, argv=argv, default_help=False)
    except DocoptExit:
        print(USAGE, file=sys.stderr)
        return 2
    if args["--version"]:
        print(f"labbook {__version__}")
        return 0
    print(USAGE)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
