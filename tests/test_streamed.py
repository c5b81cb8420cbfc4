"""Large inputs read a block at a time give the same run (or the same one-line error) as
the whole reader: every fixture and generated logs in each streamed format, read with
block sizes small enough that every reader crosses many block ends."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest
from test_fast_paths import assert_same_outcome, outcome

from lossdoctor.errors import InputError
from lossdoctor.ingest import read_bytes, streamed, tfevents
from lossdoctor.ingest.streamed import line_blocks, read_file, read_large
from lossdoctor.safeio import GunzipStream, gunzip_capped

from conftest import ROOT

FIXTURES = sorted(
    p
    for folder in (ROOT / "tests" / "fixtures", ROOT / "examples")
    for p in folder.rglob("*")
    if p.is_file() and p.stat().st_size < 2_000_000 and p.suffix not in (".png", ".md", ".toml")
)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stream from 4 KiB on, in blocks of 512 bytes (event files: 1 KiB)."""
    monkeypatch.setattr(streamed, "STREAM_MIN_BYTES", 4096)
    monkeypatch.setattr(streamed, "BLOCK_BYTES", 512)
    monkeypatch.setattr(tfevents, "EVENT_BLOCK_BYTES", 1024)


def whole(path: Path) -> object:
    return outcome(read_bytes, path.read_bytes(), source=str(path))


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_fixture_reads_the_same_streamed(path: Path) -> None:
    assert_same_outcome(outcome(read_file, path, source=str(path), hints=None), whole(path))


def _jsonl(rows: int) -> bytes:
    lines = []
    for i in range(rows):
        record: dict[str, object] = {"step": i, "loss": 3.0 / (1 + i)}
        if i % 7 == 0:
            record["lr"] = 1e-4
        if i % 50 == 3:
            record["note"] = "a string, garbage in a number column"
        lines.append(json.dumps(record))
        if i % 97 == 5:
            lines.append("not json at all")
        if i % 131 == 0:
            lines.append("")
        if i == 300:
            lines.append('{"eval_loss": 2.5, "step": 300}')
    return ("\n".join(lines) + "\n").encode()


def _text(rows: int) -> bytes:
    out = [f"step {i} | loss {3.0 / (1 + i):.5f} | lr 0.0001" for i in range(rows)]
    out.insert(120, "iter 5: loss 2.5, time 10.0ms")
    out.insert(400, "Validation: val_loss 2.1 at step 300")
    return ("\r\n".join(out)).encode()


def _event_file(tmp_path: Path) -> Path:
    from tbwriter import write_events

    steps = np.arange(400)
    return write_events(
        tmp_path / "tb",
        {"train/loss": (steps, 3.0 / (1 + steps)), "lr": (steps, np.full(400, 1e-4))},
    )


GENERATED = {
    "jsonl": lambda tmp: _jsonl(600),
    "jsonl-bom": lambda tmp: b"\xef\xbb\xbf" + _jsonl(600),
    "jsonl-bulk": lambda tmp: b"".join(
        json.dumps({"step": i, "loss": 1.0 / (i + 1), "lr": 0.1}).encode() + b"\n"
        for i in range(800)
    ),
    "jsonl-hf-summary": lambda tmp: _jsonl(600) + b'{"train_runtime": 5.0, "total_flos": 1}\n',
    "text": lambda tmp: _text(700),
    "text-no-values": lambda tmp: b"nothing to see here, move along\n" * 300,
    "events": lambda tmp: _event_file(tmp).read_bytes(),
    "events-truncated": lambda tmp: _event_file(tmp).read_bytes()[:-7],
    "events-corrupt-length": lambda tmp: _corrupt_length(_event_file(tmp).read_bytes()),
}


def _corrupt_length(data: bytes) -> bytes:
    at = len(data) // 2
    # the next record's length field from ``at`` on: walk the records to one past the middle
    pos = 0
    while pos < at:
        (length,) = np.frombuffer(data[pos : pos + 8], dtype="<u8")
        pos += 12 + int(length) + 4
    return data[:pos] + b"\xff" + data[pos + 1 :]


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("kind", list(GENERATED))
@pytest.mark.parametrize("packed", ["plain", "gzip"])
def test_generated_logs_read_the_same_streamed(kind: str, packed: str, tmp_path: Path) -> None:
    data = GENERATED[kind](tmp_path)
    path = tmp_path / f"log-{kind}"
    path.write_bytes(gzip.compress(data) if packed == "gzip" else data)
    assert len(data) > 4096
    assert_same_outcome(
        outcome(read_file, path, source=str(path), hints=None),
        outcome(read_bytes, data, source=str(path)),
    )


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("kind", ["jsonl", "jsonl-bulk", "text", "events"])
def test_the_streamable_formats_are_streamed(kind: str, tmp_path: Path) -> None:
    data = GENERATED[kind](tmp_path)
    stream = io.BytesIO(data[4096:])
    run = read_large(stream.read, data[:4096], source="log", hints=None)
    assert run is not None
    assert not stream.read()  # read to the end
    assert_same_outcome(run, outcome(read_bytes, data, source="log"))


@pytest.mark.usefixtures("small_blocks")
def test_a_framework_log_that_needs_every_record_is_read_again_whole(tmp_path: Path) -> None:
    records = [{"iter": i, "step": i, "epoch": i // 100, "loss": 1.0 / (i + 1)} for i in range(400)]
    records += [{"step": e, "accuracy": 0.5} for e in range(4)]
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    path = tmp_path / "scalars.json"
    path.write_bytes(data)
    run = read_file(path, source=str(path), hints=None)
    assert any("mmengine" in note for note in run.notes)
    assert_same_outcome(run, outcome(read_bytes, data, source=str(path)))


def test_line_blocks_end_at_line_ends_and_join_to_the_input() -> None:
    data = b"".join(b"x" * (i % 37) + b"\n" for i in range(500)) + b"tail without a line end"
    stream = io.BytesIO(data[100:])
    pieces = list(line_blocks(stream.read, data[:100], source="s", size=64))
    assert b"".join(pieces) == data
    assert all(piece.endswith(b"\n") for piece in pieces[:-1])
    assert len(pieces) > 10


def test_a_line_longer_than_the_limit_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streamed, "MAX_STREAM_LINE", 1000)
    stream = io.BytesIO(b"y" * 5000 + b"\n")
    with pytest.raises(InputError) as raised:
        list(line_blocks(stream.read, b"", source="big.log", size=64))
    assert raised.value.one_line() == "big.log: a line longer than 0 MiB: not a loss log"


@pytest.mark.parametrize(
    "data",
    [
        gzip.compress(b"a" * 10_000) + gzip.compress(b"b" * 5),  # two members
        gzip.compress(b"step,loss\n1,2\n") + b"trailing garbage",
        gzip.compress(b"c" * 10_000)[:-9],  # truncated
        gzip.compress(b"d" * 1000)[:20] + b"\x00" * 50,  # corrupt
        gzip.compress(b"e" * 300_000),  # past the cap below
    ],
    ids=["members", "garbage", "truncated", "corrupt", "bomb"],
)
def test_the_gzip_stream_inflates_as_the_whole_inflater(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lossdoctor import safeio

    monkeypatch.setattr(safeio, "INFLATE_FLOOR_BYTES", 100_000)
    expected = outcome(gunzip_capped, data, "log.gz")
    stream = GunzipStream(io.BytesIO(data), "log.gz", safeio.inflate_cap(len(data)))

    def inflate() -> bytes:
        return b"".join(iter(lambda: stream.read(777), b""))

    assert outcome(inflate) == expected


def test_large_stdin_is_spooled_to_a_private_file_and_read_as_stdin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lossdoctor.ingest as ingest
    from lossdoctor.ingest import read_runs, read_stdin
    from lossdoctor.ingest.streamed import SpooledInput

    monkeypatch.setattr(ingest, "STREAM_MIN_BYTES", 4096)
    data = _jsonl(600)
    spooled = read_stdin(io.BytesIO(data))
    assert isinstance(spooled, SpooledInput)
    try:
        path = Path(spooled.path)
        assert path.read_bytes() == data
        assert path.stat().st_mode & 0o777 == 0o600
        (run,) = read_runs("-", data=spooled)
        assert_same_outcome(run, outcome(read_bytes, data, source="-"))
    finally:
        Path(spooled.path).unlink()
    assert read_stdin(io.BytesIO(data[:4000])) == data[:4000]  # small: held, not spooled


def test_the_check_command_removes_the_spooled_stdin(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    spool_dir = tmp_path / "tmp"
    spool_dir.mkdir()
    rows = (9 << 20) // 30
    data = b"".join(
        b'{"step": %d, "loss": %.6f}\n' % (i, 3.0 / (1 + i / 1000)) for i in range(rows)
    )
    assert len(data) > streamed.STREAM_MIN_BYTES
    done = subprocess.run(
        [sys.executable, "-m", "lossdoctor", "check", "-f", "json", "--fail-on", "never", "-"],
        input=data,
        capture_output=True,
        env={**os.environ, "TMPDIR": str(spool_dir)},
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["source"] == "-"
    assert run["series"]["train"]["points"] == rows
    assert list(spool_dir.iterdir()) == []


def test_a_text_log_of_long_lines_is_streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2 KiB lines: the first 64 KiB hold fewer than the 64 lines the sniffing looks at
    monkeypatch.setattr(streamed, "STREAM_MIN_BYTES", 1 << 20)
    monkeypatch.setattr(streamed, "BLOCK_BYTES", 1 << 16)
    data = b"".join(
        b"step %d | loss %.5f | lr 0.0001\nINFO sample: %s\n" % (i, 3.0 / (1 + i), b"x" * 2000)
        for i in range(700)
    )
    head = data[: 1 << 20]
    stream = io.BytesIO(data[len(head) :])
    run = read_large(stream.read, head, source="log", hints=None)
    assert run is not None
    assert_same_outcome(run, outcome(read_bytes, data, source="log"))


def test_plain_json_lines_of_numbers_go_to_polars_before_the_large_head_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the 8 MiB head that tells the other large inputs apart is not read for them
    monkeypatch.setattr(streamed, "STREAM_MIN_BYTES", 1 << 16)
    path = tmp_path / "run.jsonl"
    path.write_bytes(GENERATED["jsonl-bulk"](tmp_path) * 40)
    assert path.stat().st_size > 1 << 16

    def no_head(*args: object, **kwargs: object) -> None:
        raise AssertionError("the head of a large input was read")

    expected = read_bytes(path.read_bytes(), source=str(path))
    monkeypatch.setattr(streamed, "read_large", no_head)
    run = read_file(path, source=str(path), hints=None)
    assert run.series.keys() == expected.series.keys()
    assert run.series["train"].values.tolist() == expected.series["train"].values.tolist()
