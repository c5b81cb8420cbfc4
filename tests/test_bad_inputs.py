"""The bad-input corpus: every kind of input a CI gate may be pointed at, through the CLI.

Each kind runs ``lossdoctor`` in a forked child under an address-space limit and a
deadline (tests/sandbox.py) and asserts: the exit code; for an error, exactly one line on
stderr naming the input, never a traceback or an "internal error"; for a report, an empty
stderr (no warnings); no hang; peak memory growth within :data:`MEMORY_BUDGET_MIB`; and
every file in the input's folder unchanged, nothing created (digest before and after).
The files in tests/fixtures/bad/ (crashes found by fuzzing and by the campaign of issue
15) run the same way, with their expected line in tests/fixtures/bad/expected.toml.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import struct
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="resource limits and /proc are Linux's"
)

from sandbox import run_cli, tree_digest  # noqa: E402

#: Peak resident memory an input may add to the test process (MiB): the largest inputs
#: below are 2 GiB, so reading any of them whole fails this.
MEMORY_BUDGET_MIB = 400
BAD = FIXTURES / "bad"
CSV = "step,loss\n1,3.0\n2,2.0\n3,1.5\n4,1.2\n"


@dataclass
class Case:
    """One CLI run on one prepared input and what it must give."""

    argv: list[str]
    code: int
    fragment: str
    named: str | None = None  # what the error line names first (default: argv[-1])
    stdin: Path | None = None
    as_nobody: bool = False
    cwd: Path | None = None
    extra: list[str] = field(default_factory=list)


Builder = Callable[[Path], Case]
KINDS: dict[str, Builder] = {}


def kind(name: str) -> Callable[[Builder], Builder]:
    def register(func: Builder) -> Builder:
        KINDS[name] = func
        return func

    return register


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def check(path: Path | str, code: int, fragment: str, **kw: object) -> Case:
    return Case(["check", "--fail-on", "never", str(path)], code, fragment, **kw)  # type: ignore[arg-type]


# --- plain files -------------------------------------------------------------------------

SIMPLE: dict[str, tuple[bytes, int, str]] = {
    "empty.csv": (b"", 2, "file is empty"),
    "blank.csv": (b"\n\n   \n", 2, "file is empty"),
    "header-only.csv": (b"step,loss\n", 2, "no data rows"),
    "binary.bin": (bytes(range(256)) * 64, 2, "binary file"),
    "nul-late.csv": (CSV.encode() * 400 + b"\x00\x00" + CSV.encode(), 0, ""),
    "ragged.csv": (b"step,loss\n1,2\n2,3,4,5\n", 2, ":3: malformed row"),
    "words.csv": (b"step,loss\n1,high\n2,low\n", 2, "holds no numbers"),
    "prose.txt": (b"Dear diary,\nthe model trained well today.\n", 2, "no loss values found"),
    "truncated.json": (b'{"log_history": [{"loss": 1.0, "step": 1}', 2, "invalid JSON"),
    "scalar.json": (b"3.14", 2, "JSON holds no loss log"),
    "deep-array.json": (b"[" * 100_000 + b"]" * 100_000, 2, "nested too deeply"),
    "deep-object.json": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 2, "nested too deeply"),
    "keras-bigint.log": (
        b"Epoch " + b"9" * 5000 + b"/10\n10/10 [====] - 1s - loss: 1.0\n",
        0,
        "",
    ),
    "mmengine-bigint.log": (
        b"Epoch(train) [" + b"9" * 5000 + b"][1/10] loss: 1.0\n" * 3,
        0,
        "",
    ),
    "tqdm-bigint.log": (
        "".join(
            f"Epoch {'9' * 5000}: 100%|##########| {i}/10 [00:01<00:00, 9.5it/s, loss=0.{9 - i}]\n"
            for i in range(1, 5)
        ).encode(),
        0,
        "",
    ),
    "utf16-bom.csv": ("step,loss\r\n1,3.0\r\n2,2.0\r\n".encode("utf-16"), 0, ""),
    "utf8-bom-crlf.csv": (b"\xef\xbb\xbfstep,loss\r\n1,3.0\r\n2,2.0\r\n", 0, ""),
    "cr-only.csv": (b"step,loss\r1,3\r2,2\r3,1\r", 0, ""),
    "huge-line.log": (b"a" * 5_000_000, 2, "no loss values found"),
    "ten-thousand-columns.csv": (
        (
            ",".join(f"c{i}" for i in range(10_000)) + "\n" + ",".join(["1"] * 10_000) + "\n"
        ).encode(),
        2,
        "",
    ),
    "corrupt.gz": (b"\x1f\x8b\x08\x00garbage", 2, "corrupt gzip file"),
    "truncated.gz": (gzip.compress(CSV.encode() * 50)[:-20], 2, "corrupt gzip file"),
    "tb-inf-steps.json": (
        json.dumps(
            [
                [0.0, s, 1.0 / (i + 1)]
                for i, s in enumerate(
                    [1e308, -1e308, float("inf"), float("-inf"), float("nan"), *range(6, 40)]
                )
            ]
        ).encode(),
        0,
        "",
    ),
    "overflow-values.csv": (b"step,loss\n1,1e309\n2,-1e309\n3,1e308\n4,2\n", 0, ""),
    "jsonl-mixed.jsonl": (b'{"step": 1, "loss": 2}\n[1,2]\n"x"\n{"step": 2, "loss": 1}\n', 0, ""),
    "mlflow-bad-line": (b"1700000000 0.5 1\nnot a metric line\n", 2, "no loss values found"),
}


def _simple(name: str) -> Builder:
    data, code, fragment = SIMPLE[name]
    return lambda d: check(write(d / name, data), code, fragment)


for _name in SIMPLE:
    kind(_name)(_simple(_name))


@kind("newline-in-name")
def _newline(d: Path) -> Case:
    path = write(d / "a\nb.csv", b"")
    return check(path, 2, "file is empty", named=str(path).replace("\n", "\\n"))


@kind("missing")
def _missing(d: Path) -> Case:
    return check(d / "nope.csv", 2, "no such file or folder")


@kind("dev-null")
def _dev_null(d: Path) -> Case:
    return check("/dev/null", 2, "not a regular file")


@kind("fifo")
def _fifo(d: Path) -> Case:
    os.mkfifo(d / "pipe.csv")
    return check(d / "pipe.csv", 2, "use '-' for a pipe")


@kind("symlink-loop")
def _symlink_loop(d: Path) -> Case:
    (d / "a.csv").symlink_to("b.csv")
    (d / "b.csv").symlink_to("a.csv")
    return check(d / "a.csv", 2, "symlink loop")


@kind("sparse-2gib")
def _sparse(d: Path) -> Case:
    path = d / "sparse.csv"
    with path.open("wb") as handle:
        handle.truncate(2 << 30)
    return check(path, 2, "binary file")


@kind("text-larger-than-limit")
def _text_too_large(d: Path) -> Case:
    # streamed a block at a time: the NUL run after the text is one endless line
    path = write(d / "big.log", b"training started, nothing to see here\n" * 2000)
    with path.open("r+b") as handle:
        handle.truncate((1 << 30) + (256 << 20))
    return check(path, 2, "a line longer than 64 MiB")


@kind("json-document-larger-than-limit")
def _json_too_large(d: Path) -> Case:
    # a JSON document cannot be streamed: refused from its size, before reading
    path = write(d / "big.json", b"[\n" + b"1.0,\n" * 2000)
    with path.open("r+b") as handle:
        handle.truncate((1 << 30) + (256 << 20))
    return check(path, 2, "too large to read whole")


@kind("gzip-bomb")
def _gzip_bomb(d: Path) -> Case:
    member = gzip.compress(b"0" * (16 << 20), 9)  # 16 MiB of zeros in ~16 KiB
    return check(write(d / "bomb.csv.gz", member * 128), 2, "decompression bomb")


@kind("stdin-sparse")
def _stdin_sparse(d: Path) -> Case:
    path = d / "sparse.bin"
    with path.open("wb") as handle:
        handle.truncate(2 << 30)
    return Case(["check", "-"], 2, "binary file", named="-", stdin=path)


# --- TensorBoard event files ---------------------------------------------------------------


def _record(payload: bytes) -> bytes:
    from lossdoctor.ingest.tfevents import masked_crc

    header = struct.pack("<Q", len(payload))
    return (
        header
        + struct.pack("<I", masked_crc(header))
        + payload
        + struct.pack("<I", masked_crc(payload))
    )


def _event_bytes(n: int = 30) -> bytes:
    tb = pytest.importorskip("tensorboard.compat.proto.event_pb2")
    from tensorboard.compat.proto import summary_pb2

    out = b""
    for step in range(n):
        value = summary_pb2.Summary.Value(tag="loss", simple_value=3.0 / (step + 1))
        event = tb.Event(step=step, wall_time=1.0, summary=summary_pb2.Summary(value=[value]))
        out += _record(event.SerializeToString())
    return out


@kind("events-truncated")
def _events_truncated(d: Path) -> Case:
    data = _event_bytes()
    return check(write(d / "events.out.tfevents.1.host", data[: len(data) - 7]), 0, "")


@kind("events-crc-corrupt")
def _events_crc(d: Path) -> Case:
    data = bytearray(_event_bytes())
    for at in range(40, len(data), 97):
        data[at] ^= 0xFF
    return check(write(d / "events.out.tfevents.1.host", bytes(data)), 0, "")


# --- MLflow ------------------------------------------------------------------------------


def _mlflow_db(path: Path, rows: list[tuple[object, ...]]) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (run_uuid TEXT, name TEXT)")
        conn.execute("INSERT INTO runs VALUES ('r1', 'first')")
        conn.execute(
            "CREATE TABLE metrics (run_uuid TEXT, key TEXT, value, timestamp INTEGER, "
            "step, is_nan INTEGER)"
        )
        conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.close()
    return path


@kind("mlflow-db-text-values")
def _mlflow_text(d: Path) -> Case:
    rows: list[tuple[object, ...]] = [("r1", "loss", 3.0 / (i + 1), i, i, 0) for i in range(20)]
    rows += [("r1", "loss", "abc", 30, 30, 0), ("r1", "loss", None, 31, 31, 0)]
    rows += [("r1", "loss", 1.0, 32, "step?", 0), ("r1", "loss", b"\x00", 33, None, 0)]
    return check(_mlflow_db(d / "mlflow.db", rows), 0, "")


@kind("mlflow-db-no-tables")
def _mlflow_empty(d: Path) -> Case:
    with sqlite3.connect(d / "other.db") as conn:
        conn.execute("CREATE TABLE x (a)")
    conn.close()
    return check(d / "other.db", 2, "not an MLflow tracking database")


@kind("sqlite-hash-in-name")
def _sqlite_hash(d: Path) -> Case:
    _mlflow_db(d / "a#b.db", [("r1", "loss", 1.0, 1, 1, 0)])
    return check(d / "a#b.db", 0, "")


@kind("sqlite-question-in-name")
def _sqlite_question(d: Path) -> Case:
    _mlflow_db(d / "c?d.db", [("r1", "loss", 1.0, 1, 1, 0)])
    return check(d / "c?d.db", 0, "")


@kind("sqlite-truncated")
def _sqlite_truncated(d: Path) -> Case:
    data = _mlflow_db(d / "full.db", [("r1", "loss", 1.0, i, i, 0) for i in range(500)])
    raw = data.read_bytes()
    data.unlink()
    return check(write(d / "cut.db", raw[: len(raw) // 2]), 2, "")


@kind("mlflow-file-store-bad-line")
def _mlflow_store(d: Path) -> Case:
    run = d / "mlruns" / "0" / "abc"
    write(run / "meta.yaml", "run_id: abc\n")
    write(run / "metrics" / "loss", "1700000000 0.5 0\n1700000001 oops 1\n")
    return check(d / "mlruns", 2, "'oops' is not a number")


# --- folders -----------------------------------------------------------------------------


@kind("folder-fifo-metrics")
def _folder_fifo(d: Path) -> Case:
    (d / "runs" / "version_0").mkdir(parents=True)
    os.mkfifo(d / "runs" / "version_0" / "metrics.csv")
    return check(d / "runs", 2, "not a regular file")


@kind("folder-dev-zero-metrics")
def _folder_zero(d: Path) -> Case:
    (d / "runs" / "version_0").mkdir(parents=True)
    (d / "runs" / "version_0" / "metrics.csv").symlink_to("/dev/zero")
    return check(d / "runs", 2, "not a regular file")


@kind("folder-symlinked-run")
def _folder_symlinked(d: Path) -> Case:
    write(d / "store" / "version_0" / "metrics.csv", CSV)
    (d / "runs").mkdir()
    (d / "runs" / "exp1").symlink_to(d / "store" / "version_0")
    return check(d / "runs", 0, "")


@kind("folder-symlink-loop")
def _folder_loop(d: Path) -> Case:
    write(d / "runs" / "version_0" / "metrics.csv", CSV)
    (d / "runs" / "version_0" / "again").symlink_to("..")
    return check(d / "runs", 0, "")


@kind("folder-empty")
def _folder_empty(d: Path) -> Case:
    (d / "runs").mkdir()
    return check(d / "runs", 2, "no loss logs found")


@kind("folder-unreadable")
def _folder_unreadable(d: Path) -> Case:
    write(d / "runs" / "version_0" / "metrics.csv", CSV)
    (d / "runs").chmod(0)
    return check(d / "runs", 2, "permission denied", as_nobody=True)


@kind("file-unreadable")
def _file_unreadable(d: Path) -> Case:
    path = write(d / "secret.csv", CSV)
    path.chmod(0)
    return check(path, 2, "permission denied", as_nobody=True)


# --- configuration, rule packs, case files -------------------------------------------------


def _config(d: Path, text: str, name: str = "lossdoctor.toml") -> Path:
    write(d / name, text)
    write(d / "log.csv", CSV)
    return d / name


CONFIGS = {
    "config-param-text": ('[rules.spikes.params]\nz = "abc"\n', "rules.spikes.params.z"),
    "config-param-range": ("[rules.spikes.params]\ntail_quantile = 5.0\n", "tail_quantile"),
    "config-param-list": ("[rules.plateau.params]\nband_share = [1, 2]\n", "band_share"),
    "config-unknown-profile": ('profile = "nope"\n', "key 'profile'"),
}


def _config_kind(name: str) -> Builder:
    text, fragment = CONFIGS[name]

    def build(d: Path) -> Case:
        path = _config(d, text)
        return Case(["check", "log.csv"], 2, fragment, named=str(path), cwd=d)

    return build


for _name in CONFIGS:
    kind(_name)(_config_kind(_name))


@kind("pyproject-invalid")
def _pyproject(d: Path) -> Case:
    path = _config(d, "[tool.lossdoctor\nselect = \n", "pyproject.toml")
    return Case(["check", "log.csv"], 2, "invalid TOML", named=str(path), cwd=d)


for _command, _argv in {
    "watch": ["watch", "log.csv"],
    "plot": ["plot", "log.csv", "-o", "out.png"],
    "compare": ["compare", "log.csv", "log.csv"],
    "run": ["run", "--", "true"],
}.items():

    def _profile(d: Path, argv: list[str] = _argv) -> Case:
        path = _config(d, 'profile = "nope"\n')
        return Case(argv, 2, "key 'profile'", named=str(path), cwd=d)

    kind(f"unknown-profile-{_command}")(_profile)


def _rule_pack(d: Path, edit: Callable[[str], str]) -> Path:
    source = ROOT / "rules" / "stability" / "LD201-spikes.toml"
    text = edit(source.read_text()).replace('code = "LD201"', 'code = "XX201"')
    text = text.replace('name = "spikes"', 'name = "my-spikes"')
    path = write(d / "pack" / "XX201-my-spikes.toml", text)
    _config(d, 'rule-paths = ["pack"]\n')
    return path


@kind("rule-template-width")
def _template(d: Path) -> Case:
    path = _rule_pack(d, lambda t: t.replace("{count} spikes in the", "{series:>1500000000}"))
    return Case(["check", "log.csv"], 2, "more than 100 characters", named=str(path), cwd=d)


@kind("rule-param-type")
def _rule_param(d: Path) -> Case:
    path = _rule_pack(d, lambda t: t.replace("z = 6.0", 'z = "six"'))
    return Case(["check", "log.csv"], 2, "params.z", named=str(path), cwd=d)


CASE_FILES = {
    "case-not-table": ("case = [1, 2]\n", "'case[0]': expected a table"),
    "case-also-text": ('also = "abc"', "case[0].also"),
    "case-params-number": ("params = 5", "case[0].params"),
    "case-n-negative": ("params = { n = -5 }", "case[0].params.n"),
    "case-n-huge": ("params = { n = 1e10 }", "case[0].params.n"),
    "case-n-too-many": ("params = { n = 10_000_000_000 }", "case[0].params.n"),
}


def _case_kind(name: str) -> Builder:
    body, fragment = CASE_FILES[name]

    def build(d: Path) -> Case:
        text = (
            body
            if body.startswith("case")
            else (f'rule = "spikes"\n[[case]]\nshape = "spiky"\nexpect = "fires"\n{body}\n')
        )
        path = write(d / "cases" / "c.toml", text)
        return Case(["rules", "test", str(d / "cases")], 2, fragment, named=str(path))

    return build


for _name in CASE_FILES:
    kind(_name)(_case_kind(_name))


# --- the test ------------------------------------------------------------------------------


def _expected_fixtures() -> dict[str, dict[str, object]]:
    path = BAD / "expected.toml"
    return tomllib.loads(path.read_text()) if path.exists() else {}


def _fixture_kind(name: str, spec: dict[str, object]) -> Builder:
    def build(d: Path) -> Case:
        data = (BAD / name).read_bytes()
        code, message = int(spec["code"]), str(spec.get("message", ""))  # type: ignore[call-overload]
        if spec.get("as") == "config":
            path = _config(d, data.decode())
            return Case(["check", "log.csv"], code, message, named=str(path), cwd=d)
        if spec.get("as") == "rule":
            path = write(d / "pack" / name, data)
            _config(d, 'rule-paths = ["pack"]\n')
            return Case(["check", "log.csv"], code, message, named=str(path), cwd=d)
        return check(write(d / name, data), code, message)

    return build


for _name, _spec in _expected_fixtures().items():
    kind(f"fixture:{_name}")(_fixture_kind(_name, _spec))


@pytest.fixture(scope="module")
def open_root() -> Iterator[Path]:
    """Return a folder every user can enter (permission cases run as 'nobody')."""
    root = Path(tempfile.mkdtemp(prefix="lossdoctor-bad-inputs-"))
    root.chmod(0o755)
    yield root
    for path in (root, *root.rglob("*")):
        if not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(root)


def test_the_corpus_has_at_least_40_kinds() -> None:
    assert len(KINDS) >= 40


@pytest.mark.parametrize("name", list(KINDS))
def test_bad_input(name: str, open_root: Path) -> None:
    folder = open_root / name.replace(":", "_").replace("/", "_")
    folder.mkdir(mode=0o755)
    case = KINDS[name](folder)
    before = tree_digest(folder)
    outcome = run_cli(case.argv, cwd=case.cwd or folder, stdin=case.stdin, as_nobody=case.as_nobody)
    assert not outcome.hung, f"{name}: still running after {outcome.seconds:.0f} s"
    assert tree_digest(folder) == before, f"{name}: the input folder changed"
    if case.as_nobody:
        for path in (folder, *folder.rglob("*")):
            if not path.is_symlink():
                path.chmod(0o755)
    assert outcome.peak_growth_mib < MEMORY_BUDGET_MIB, (name, outcome.peak_growth_mib)
    if case.as_nobody and os.geteuid() != 0 and outcome.code == 0:
        pytest.skip("cannot drop privileges")
    assert outcome.code == case.code, (outcome.code, outcome.stdout[-2000:], outcome.stderr)
    assert "Traceback" not in outcome.stderr
    for bug in ("internal error", "diagnosis failed"):  # an exception lossdoctor did not expect
        assert bug not in outcome.stderr + outcome.stdout, (outcome.stderr, outcome.stdout[-2000:])
    if case.code == 2:
        lines = outcome.stderr.splitlines()
        assert len(lines) == 1, outcome.stderr
        named = case.named if case.named is not None else case.argv[-1]
        assert lines[0].startswith(f"lossdoctor: {named}"), lines[0]
        assert case.fragment in lines[0], lines[0]
    else:
        assert outcome.stderr == "", outcome.stderr
        assert case.fragment in outcome.stdout
