"""Files lossdoctor keeps for itself (the report cache, the checked rule pack): written
whole or not at all."""

from __future__ import annotations

import contextlib
import os
import pickle
from pathlib import Path
from typing import Any


def write_pickles(path: Path | str, *objects: Any) -> bool:
    """Store ``objects`` one after another as pickles at ``path``, whole or not at all
    (written to a temporary file beside it, then renamed over it; the temporary file is
    removed when writing fails).  The folder must exist.

    Returns False when the file could not be written (the caller goes on without it)."""
    import tempfile

    folder = os.path.dirname(os.fspath(path)) or "."
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".entry-", suffix=".tmp")
    except OSError:
        return False
    try:
        with os.fdopen(handle, "wb") as out:
            for item in objects:
                pickle.dump(item, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return False
    return True
