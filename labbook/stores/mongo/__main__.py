"""``python -m labbook.stores.mongo upload FAILURE_DIR URL`` (see :mod:`.upload`)."""
import sys

from labbook.stores.mongo.upload import main

__all__ = []

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
