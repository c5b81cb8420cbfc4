"""How runs found in a folder are named and picked by ``--run``.

A run is named by its path below the folder given; a run among several in one store (an
MLflow or trackio database) by ``path#name``; a W&B offline run, a SwanLab run and an
MLflow file-store run by ``folder#name`` where ``folder`` holds its run folder
(``offline-run-*``, ``run-*``, ``mlruns/<experiment>/<run id>``; the run folder's own
path where two runs there share a name).  ``--run TEXT`` keeps the runs whose path or
name contains ``TEXT``; ``--run PATH#NAME`` the runs named ``NAME`` in the stores or run
folders whose path holds ``PATH``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lossdoctor.model import Run

#: Names listed at the most when ``--run`` matches none.
MAX_NAMES_SHOWN = 12


@dataclass(frozen=True)
class RunFilter:
    """``--run``: ``place`` must be in a run's path (any path when None) and ``name`` in its
    name, or, without a ``place``, the whole text in its path."""

    text: str
    place: str | None
    name: str

    @classmethod
    def parse(cls, text: str) -> RunFilter:
        """Return the filter ``--run text`` asks for (``PATH#NAME`` or ``TEXT``)."""
        place, mark, name = text.partition("#")
        return cls(text, place if mark else None, name if mark else text)

    def keeps_path(self, *paths: str) -> bool:
        """Return True when a log at any of ``paths`` (its path below the folder, its
        label) is kept whole: ``--run TEXT`` found in its path."""
        return self.place is None and any(self.text in p for p in paths)

    def may_name(self, *paths: str) -> bool:
        """Return True when the named runs in a store or run folder at ``paths`` may match
        (``--run NAME``, or ``--run PATH#NAME`` with ``PATH`` in one of the ``paths``)."""
        return self.place is None or any(self.place in p for p in paths)

    def keeps_name(self, name: str) -> bool:
        """Return True when a run named ``name`` (by its tracker) is picked."""
        return bool(name) and self.name in name


def relabel(run: Run, old: str, new: str) -> Run:
    """Return ``run`` read from ``old`` named from ``new`` instead, keeping the ``#name`` a
    store gives each of its runs (``old#qlora`` becomes ``new#qlora``)."""
    suffix = run.source[len(old) :] if run.source.startswith(f"{old}#") else ""
    return replace(run, source=f"{new}{suffix}", groups=())


#: Kinds of run folders (see :mod:`lossdoctor.ingest.folders`) whose run carries its
#: tracker's name: W&B, SwanLab and MLflow file-store runs.
NAMED_RUN_FOLDERS = frozenset({"wandb", "swanlab", "swanlab-logs", "mlflow-file"})


def folder_run_labels(
    found: Sequence[tuple[Path, Run]], label_of: Callable[[Path], str | None]
) -> list[str]:
    """Return the label of each run of a named run folder (:data:`NAMED_RUN_FOLDERS`) in
    ``found`` ((its run folder, its run)): ``folder#name``, ``folder`` labelled by
    ``label_of`` (None: outside the walk) being the folder that holds the run folder, or
    the run folder itself when another run there has the same name or the walk began at
    the run folder; a run without a name keeps its folder's label."""
    counts = Counter((folder.parent, run.name) for folder, run in found if run.name)
    out = []
    for folder, run in found:
        own = label_of(folder) or str(folder)
        if not run.name:
            out.append(own)
            continue
        shared = counts[(folder.parent, run.name)] > 1
        place = None if shared else label_of(folder.parent)
        out.append(f"{(place or own).rstrip('/')}#{run.name}")
    return out


def no_match_reason(text: str, names: Sequence[str]) -> str:
    """Return why ``--run text`` picked nothing, listing the run ``names`` met."""
    shown = ", ".join(names[:MAX_NAMES_SHOWN]) or "none"
    more = f" and {len(names) - MAX_NAMES_SHOWN} more" if len(names) > MAX_NAMES_SHOWN else ""
    return f"no run matching --run '{text}' in this folder (runs: {shown}{more})"
