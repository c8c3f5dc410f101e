"""``labbook ui``: a local web dashboard over any store.

Runs table, run pages with live charts, a compare view; everything read through
:class:`labbook.api.Api`, edits (tags, notes) written through the store. Needs the ``[ui]``
extra (Starlette, uvicorn, Jinja2); htmx and uPlot ship inside the package, so it works
offline. Build the ASGI app with :func:`labbook.ui.app.create_app`.
"""
from __future__ import annotations

__all__ = ["create_app"]


def create_app(*args, **kwargs):  # type: ignore[no-untyped-def]
    """See :func:`labbook.ui.app.create_app` (imported on first call: Starlette is heavy)."""
    from labbook.ui.app import create_app as make

    return make(*args, **kwargs)
