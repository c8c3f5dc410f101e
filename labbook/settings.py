"""Process-wide settings (a Munch, so ``SETTINGS.CAPTURE_MODE`` works as in Sacred).

This module is imported only when the program touches ``labbook.SETTINGS``; until then the
defaults below apply without importing it (munch imports PyYAML: 15 ms per process).
"""
from __future__ import annotations

import os

from munch import Munch

SETTINGS = Munch(
    # fd | sys | no; None picks fd where supported
    CAPTURE_MODE=os.environ.get("LABBOOK_CAPTURE_MODE") or None,
    HOST_INFO=Munch(
        # environment variables recorded in host_info["ENV"] (besides --capture-env)
        CAPTURED_ENV=[],
        INCLUDE_GPU_INFO=True,
    ),
    CONFIG=Munch(
        # read-only containers for the running config
        READ_ONLY_CONFIG=True,
        # _rnd: numpy's RandomState (True) or a Generator (False, Sacred 0.8's default)
        NUMPY_RANDOM_LEGACY_API=False,
    ),
)
