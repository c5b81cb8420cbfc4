"""Run folders: find the runs a framework left under a directory.

Recognised, per run: TensorBoard event files (a folder of them is one run; its
``train``/``validation`` sub-folders are merged the way TensorBoard shows them),
Lightning ``version_*/metrics.csv``, Hugging Face ``trainer_state.json`` (the
latest ``checkpoint-*`` when there is no final one), and MLflow file-store runs
(``mlruns/<experiment>/<run>/metrics``).  One folder holding several runs gives
several runs, never one merged series.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from lossdoctor.errors import InputError
from lossdoctor.safeio import is_regular_file, os_reason

#: Folders below the one given that are searched at the most.
MAX_DEPTH = 8
#: Sub-folder names TensorBoard-style loggers use for one split of one run.
SPLIT_DIRS = frozenset(
    {"train", "training", "validation", "val", "valid", "eval", "evaluation", "test"}
)
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
#: The binary run file of a W&B or SwanLab run folder (SwanLab 0.6-0.7: backup.swanlab).
_RUN_FILE = re.compile(r"^(?:run-[\w-]+\.(?:wandb|swanlab)|backup\.swanlab)$")


@dataclass
class RunUnit:
    """One run found in a folder: its kind, its root folder and the files to read."""

    kind: str  # "tfevents", "lightning-csv", "hf-trainer-state", "mlflow-file", "wandb", ...
    root: Path
    files: list[Path] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)


Tree = list[tuple[Path, list[str], list[str]]]


def walk_tree(top: Path, unreadable: list[Path] | None = None) -> Tree:
    """Return (folder, sub-folders, files) for ``top`` and the folders below it, in path
    order (a folder's links to folders after its real sub-folders); hidden folders are left
    out, symbolic links to folders are followed once each, where they lead to a folder not
    reached before (a symlink loop ends), and the walk stops ``MAX_DEPTH`` folders down.
    Folders that cannot be listed go to ``unreadable``.

    Raises :class:`InputError` when ``top`` itself cannot be listed (permission denied).
    """
    out = []
    base_depth = len(top.parts)
    seen: set[tuple[int, int]] = set()

    def failed(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else top
        if where == top:
            raise InputError(os_reason(exc), path=str(top))
        if unreadable is not None:
            unreadable.append(where)

    for dirpath, dirnames, filenames in os.walk(top, onerror=failed, followlinks=True):
        here = Path(dirpath)
        try:
            info = here.stat()
        except OSError:
            dirnames[:] = []
            continue
        if (info.st_dev, info.st_ino) in seen:  # reached again through a symlink
            dirnames[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        # real folders before links to folders, so that a folder is named by its own path
        # (W&B's wandb/latest-run links to the newest offline-run-* folder)
        shown = (d for d in dirnames if not d.startswith("."))
        dirnames[:] = sorted(shown, key=lambda d: ((here / d).is_symlink(), d))
        if len(here.parts) - base_depth >= MAX_DEPTH:
            dirnames[:] = []
        out.append((here, dirnames, sorted(filenames)))
    return out


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def find_runs(top: Path, tree: Tree | None = None) -> list[RunUnit]:
    """Return the runs under ``top`` (``tree``: its :func:`walk_tree`), in path order."""
    tree = walk_tree(top) if tree is None else tree
    # only regular files make runs (a FIFO or a link to /dev/zero named metrics.csv would
    # block or read forever); the walk notes the others as skipped
    tree = [
        (here, dirs, [f for f in files if is_regular_file(here / f)]) for here, dirs, files in tree
    ]
    units: list[RunUnit] = []

    # Hugging Face: output_dir/trainer_state.json or output_dir/checkpoint-N/trainer_state.json
    hf: dict[Path, tuple[int, Path]] = {}
    for here, _, files in tree:
        if "trainer_state.json" not in files:
            continue
        match = _CHECKPOINT.match(here.name)
        root = here.parent if match else here
        rank = int(match.group(1)) if match else 1 << 62  # a final save beats checkpoints
        if root not in hf or rank > hf[root][0]:
            hf[root] = (rank, here / "trainer_state.json")
    for root, (_, path) in sorted(hf.items()):
        units.append(RunUnit("hf-trainer-state", root, [path]))
    taken = [u.root for u in units]

    # W&B run folders (wandb/offline-run-*/run-<id>.wandb) and SwanLab run folders
    for here, _, files in tree:
        binary = [f for f in files if _RUN_FILE.match(f)]
        if binary:
            kind = "wandb" if binary[0].endswith(".wandb") else "swanlab"
            units.append(RunUnit(kind, here, [here / binary[0]]))
    taken = [u.root for u in units]

    # SwanLab before 0.8 in local mode: <run>/logs/<column id>/<N>.log (no backup file)
    from lossdoctor.ingest.swanlab_legacy import is_logs_folder

    files_by_folder = {here: files for here, _, files in tree}
    for here, dirs, _ in tree:
        logs = here / "logs"
        if "logs" in dirs and not _under(here, taken) and is_logs_folder(files_by_folder, logs):
            units.append(RunUnit("swanlab-logs", here, [here / "logs"]))
    taken = [u.root for u in units]

    # MLflow file store: <run>/metrics/<key...>
    for here, dirs, _ in tree:
        is_mlflow = (here / "meta.yaml").is_file() or "mlruns" in here.parts
        if "metrics" in dirs and is_mlflow and not _under(here, taken):
            units.append(RunUnit("mlflow-file", here, [here / "metrics"]))
    taken = [u.root for u in units]

    # Lightning CSVLogger: version_N/metrics.csv
    for here, _, files in tree:
        if "metrics.csv" in files and not _under(here, taken):
            units.append(RunUnit("lightning-csv", here, [here / "metrics.csv"]))
    taken = [u.root for u in units]

    # TensorBoard: every folder holding event files; split sub-folders join their parent
    event_dirs: dict[Path, list[Path]] = {}
    for here, _, files in tree:
        events = [here / f for f in files if "tfevents" in f]
        if events and not _under(here, taken):
            event_dirs[here] = events
    tb_units: dict[Path, RunUnit] = {}
    for here in sorted(event_dirs):
        parent = here.parent
        is_split = here.name.lower() in SPLIT_DIRS or parent in event_dirs
        if is_split and here != top:
            root, prefix = parent, f"{here.name}/"
        else:
            root, prefix = here, ""
        unit = tb_units.setdefault(root, RunUnit("tfevents", root))
        for path in event_dirs[here]:
            unit.files.append(path)
            unit.prefixes.append(prefix)
    units.extend(tb_units.values())
    return sorted(units, key=lambda u: str(u.root))


def claimed_files(unit: RunUnit, tree: Tree) -> dict[Path, str]:
    """Return the files under ``unit``'s root that belong to it without being read (path
    -> why): earlier checkpoints, a trainer's log beside its state, the TensorBoard copy of
    a run read from another file, an MLflow run's other files."""
    out: dict[Path, str] = {}
    label = unit.root.name or str(unit.root)
    for here, _, files in tree:
        if here != unit.root and unit.root not in here.parents:
            continue
        for name in files:
            path = here / name
            if path in unit.files:
                continue
            if unit.kind == "mlflow-file":
                out[path] = f"part of MLflow run {label}"
            elif unit.kind in ("wandb", "swanlab", "swanlab-logs"):
                writer = "W&B" if unit.kind == "wandb" else "SwanLab"
                out[path] = f"part of {writer} run {label} (read from {unit.files[0].name})"
            elif name == "trainer_state.json":
                out[path] = f"an earlier checkpoint of run {label}"
            elif name == "config.json" and unit.kind == "hf-trainer-state":
                out[path] = f"the model config of run {label} (its vocab_size is read)"
            elif name == "trainer_log.jsonl" and unit.kind == "hf-trainer-state":
                out[path] = "the same points as trainer_state.json beside it"
            elif "tfevents" in name and unit.kind != "tfevents":
                out[path] = f"TensorBoard copy of run {label} (read from {unit.files[0].name})"
    dashboard = unit.root.parent / "runs.swanlab"
    if unit.kind.startswith("swanlab") and is_regular_file(dashboard):
        out[dashboard] = "SwanLab dashboard database (names of the runs' metrics)"
    return out
