"""Parity of the readers' fast paths with their line-by-line paths: the same run (series,
steps, values, source lines, notes) or the same error, on varied inputs."""

from __future__ import annotations

import csv
import io
import itertools
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lossdoctor.arrays import all_finite, unique_ints
from lossdoctor.errors import InputError
from lossdoctor.features import pearson
from lossdoctor.ingest import delimited, read_bytes, textlines, textlog
from lossdoctor.ingest.columns import ColumnHints, choose_columns
from lossdoctor.ingest.components import summed_totals
from lossdoctor.ingest.jsonl_bulk import read_jsonl_bulk
from lossdoctor.ingest.jsonlike import read_jsonl
from lossdoctor.ingest.lines import strip_prefix
from lossdoctor.ingest.streamed import read_jsonl_file
from lossdoctor.ingest.table import coerce_objects, coerce_texts
from lossdoctor.ingest.textlines import nanogpt_iter, parse_line
from lossdoctor.ingest.textlog import read_text_log
from lossdoctor.model import LR, TRAIN, VAL, ConsecutiveLines, Run
from lossdoctor.robust import bucket_medians, even_edges, median, quantile


def assert_same_run(fast: Run, slow: Run) -> None:
    """Assert two runs are the same to the bit (NaN where NaN, same source lines)."""
    assert fast.reader == slow.reader
    assert fast.notes == slow.notes
    assert list(fast.series) == list(slow.series)
    for role, series in fast.series.items():
        other = slow.series[role]
        assert series.column == other.column
        assert series.x_kind == other.x_kind
        assert series.meta == other.meta
        assert np.array_equal(series.steps, other.steps, equal_nan=True)
        assert np.array_equal(series.values, other.values, equal_nan=True)
        assert (series.lines is None) == (other.lines is None)
        if series.lines is not None:
            assert np.array_equal(series.lines, other.lines)


def outcome(read: object, *args: object, **kwargs: object) -> Run | str:
    """Return the run, or the one-line error, that a reader gives."""
    try:
        return read(*args, **kwargs)  # type: ignore[operator, no-any-return]
    except InputError as exc:
        return exc.one_line()


def assert_same_outcome(fast: Run | str, slow: Run | str) -> None:
    if isinstance(fast, str) or isinstance(slow, str):
        assert fast == slow
    else:
        assert_same_run(fast, slow)


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["nan", "NaN", "-inf", "Infinity", "+INF", ".5", "5.", "1e-400", "2.5E+3"]),
)
ASCII_DIGITS = st.text("0123456789", min_size=1, max_size=18)
STEPS = st.one_of(st.integers(0, 10**12).map(str), ASCII_DIGITS)
#: Plain decimals of every length around the bulk reader's limit of exact digits.
DECIMALS = st.one_of(
    ASCII_DIGITS, st.tuples(ASCII_DIGITS, st.text("0123456789", max_size=18)).map(".".join)
)


@st.composite
def text_lines(draw: st.DrawFn) -> str:
    """One line of a text log: mostly nanoGPT lines, and every kind that must not be read
    as one (colours, prefixes, blanks, broken numbers, other dialects)."""
    step, value = draw(STEPS), draw(NUMBERS)
    return draw(
        st.sampled_from(
            [
                f"iter {step}: loss {value}, time 12.5ms, mfu 30.1%",
                f"iter {step}: loss {draw(DECIMALS)}, time 12.5ms, mfu 30.1%",
                f"iter {step}: loss {draw(DECIMALS)}",
                f"iter {step}: loss {draw(DECIMALS)}e-3, time 1ms",
                f"iter {step}: loss {draw(DECIMALS)}.5.1",
                f"iter {step}: loss {draw(DECIMALS)}nan",
                f"iter {step}: loss -{draw(DECIMALS)}",
                f"iter {step}: loss\t{value}",
                "iter \u0663: loss 1.0",
                "iter 7: loss \u0663.5",
                f"iter {step}: loss {draw(DECIMALS)}\u0661e-3",
                f"iter 1\u0661: loss {value}",
                f"iter {step}: loss {value}",
                f"iter {step}: loss {value}   ",
                f"step {step}: train loss {value}, val loss {value}",
                f"\x1b[32miter {step}: loss {value}\x1b[0m, time 1ms",
                f"iter {step}: loss \x1b[1m{value}\x1b[0m",
                f" iter {step}: loss {value}",
                f"INFO:train:iter {step}: loss {value}",
                f"2024-01-01 10:00:00 iter {step}: loss {value}",
                f"iter {step}: loss abc",
                f"iter {step}:loss {value}",
                f"iterate {step}: loss {value}",
                f"iter {step}: loss {value}" + "x" * textlines.MAX_LINE_CHARS,
                f"step {step} | loss {value} | lr 3e-4",
                f"{{'loss': {value}, 'learning_rate': 1e-4, 'epoch': 0.5}}",
                f"Epoch 1 | Step {step}/100 | loss={value}",
                "Validation:",
                f"  loss: {value}",
                "",
                "   ",
                "iter ",
                "number of parameters: 10.65M",
                "caf\u00e9 \u2028 iter 3: loss 1.0",
            ]
        )
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(text_lines(), min_size=1, max_size=40), block=st.integers(1, 300))
@example(lines=["iter 0: loss 0\u0661e-3, time 1ms"], block=1)  # another script's digit
@example(lines=["iter 3: loss 4.5e2", "iter 4: loss 1.2.3", "iter 5: loss 7."], block=300)
@example(  # a nanoGPT line among generic ones: a log both ways (bulk and line by line)
    lines=[
        "iter 0: loss abc",
        "iter 0: loss abc",
        "step 0 | loss 0.0 | lr 3e-4",
        "Validation:",
        "iter 0: loss 0.0, time 12.5ms, mfu 30.1%",
    ],
    block=300,
)
def test_text_log_fast_path_reads_as_line_by_line(lines: list[str], block: int) -> None:
    """nanoGPT lines read in bulk give exactly what line-by-line parsing gives, whatever
    the other lines around them and wherever the blocks are cut."""
    text = "\n".join(lines)
    original = textlog.BLOCK_CHARS
    textlog.BLOCK_CHARS = block
    try:
        fast = outcome(read_text_log, text, source="log.txt")
    finally:
        textlog.BLOCK_CHARS = original
    slow = outcome(read_text_log, text, source="log.txt", fast=False)
    assert_same_outcome(fast, slow)


@pytest.mark.parametrize(
    ("text", "train", "val"),
    [
        (
            "iter 0: loss 5.0, time 1ms\niter 1: loss 4.0\nstep 1: train loss 4.0, val loss 4.5\n",
            2,
            1,
        ),
        ("step 0: train loss 5.0, val loss 5.1\niter 0: loss 5.0\niter 10: loss nan\n", 2, 1),
        ("hello\n\niter 0: loss 5.0\n\x1b[1miter 1: loss 4.0\x1b[0m\niter 2: loss 3.0\n", 3, 0),
    ],
)
def test_text_log_mixed_lines_keep_their_source_lines(text: str, train: int, val: int) -> None:
    """Fast and slow agree on a hand-made mix, and the points keep their line numbers."""
    fast = read_text_log(text, source="log.txt")
    assert_same_run(fast, read_text_log(text, source="log.txt", fast=False))
    assert len(fast.series["train"]) == train
    assert len(fast.series.get("val") or ()) == val
    lines = fast.series["train"].lines
    assert lines is not None
    assert [text.split("\n")[n - 1].lstrip("\x1b[1m")[:4] for n in lines] == ["iter"] * train


@given(line=text_lines())
def test_nanogpt_iter_agrees_with_parse_line(line: str) -> None:
    """The live monitor's per-line shortcut reads a line as the general parser does."""
    quick = nanogpt_iter(line)
    if quick is None:
        return
    parsed = parse_line(strip_prefix(line), textlines.LineState())
    assert parsed is not None
    assert parsed.dialect == "nanogpt"
    step, loss = parsed.values["step"], parsed.values["loss"]
    assert quick[0] == step
    assert quick[1] == loss or (np.isnan(quick[1]) and np.isnan(loss))


KEYS = st.sampled_from(
    ["step", "loss", "val_loss", "lr", "grad_norm", "epoch", "x y", "NaN", "iter", "train_runtime"]
)
JSON_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.none(),
    st.booleans(),
    st.sampled_from(["1.5", "nan", "word", [1], {"a": 1}]),
)


@st.composite
def jsonl_lines(draw: st.DrawFn) -> str:
    """One line of a JSON Lines log: mostly flat objects of numbers (NaN and infinities as
    Python writes them), and lines the bulk reader must leave to the line-by-line one."""
    keys = draw(st.lists(KEYS, max_size=5))
    numbers_only = draw(st.booleans())
    values = [
        draw(
            st.floats(allow_nan=True, allow_infinity=True)
            | st.integers(-(2**62), 2**62)
            | st.none()
        )
        if numbers_only
        else draw(JSON_VALUES)
        for _ in keys
    ]
    record = dict(zip(keys, values, strict=True))
    separators = draw(st.sampled_from([(", ", ": "), (",", ":"), (",", " : ")]))
    line = json.dumps(record, separators=separators)
    return draw(
        st.sampled_from(
            [line, line, line, line, line.replace("{", '{"step": 1, ', 1), "", "[1, 2]", "{"]
        )
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(jsonl_lines(), min_size=2, max_size=30), schema_rows=st.integers(1, 5))
@example(lines=['{"lr": 0.0}', '{"step": null}'], schema_rows=1)  # an all-null key after the schema
@example(lines=["{}", '{"step": Infinity}'], schema_rows=1)  # only non-finite under a key
@example(lines=['{"loss": 0.0}', '{"train_runtime": null}'], schema_rows=1)  # summary key missed
# a key repeated with null as its later value (Python keeps the null, polars the first)
@example(lines=['{"step": 0.0}', '{"step": 1, "loss": 0.0, "step": null}'], schema_rows=2)
def test_jsonl_bulk_reads_as_line_by_line(lines: list[str], schema_rows: int) -> None:
    """A JSON Lines file read in bulk gives exactly the line-by-line run, or is left to the
    line-by-line reader (None)."""
    text = "\n".join(lines)
    bulk = outcome(
        read_jsonl_bulk, text.encode(), source="log.jsonl", min_bytes=0, schema_rows=schema_rows
    )
    if bulk is None:
        return
    assert_same_outcome(bulk, outcome(read_jsonl, text, source="log.jsonl"))


def test_jsonl_bulk_takes_the_common_shape() -> None:
    """The usual logger output (a key added later, NaN written by Python, nulls) is read
    in bulk, with the same points and lines as line by line."""
    rows = [{"step": i, "loss": 5.0 - i / 1000} for i in range(40_000)]
    rows[7]["loss"] = float("nan")
    rows[9]["loss"] = float("inf")
    rows[30_000]["val_loss"] = 4.5
    rows[31_000]["lr"] = None
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    bulk = read_jsonl_bulk(text.encode(), source="log.jsonl", schema_rows=2)
    assert bulk is not None
    assert_same_run(bulk, read_jsonl(text, source="log.jsonl"))
    assert list(bulk.columns.values()) == ["loss", "val_loss"]
    assert bulk.series["train"].n_nonfinite == 2
    assert bulk.series["val"].line_of(0) == 30_001
    # a line a row: the rows' lines are a range, not an array of 40,000 numbers
    assert isinstance(bulk.series["train"].lines, ConsecutiveLines)
    assert bulk.series["train"].line_of(9) == 10


def test_jsonl_read_in_bulk_pieces_keeps_its_lines_a_range() -> None:
    """A JSON Lines log read in bulk a piece at a time (a file too large to read at once,
    standard input) keeps its rows' lines as one range, and the points and lines are
    those of the line-by-line reader; a piece the bulk reader leaves to the line-by-line
    one makes them an array again, with the same lines."""
    from lossdoctor.ingest.streamed import read_jsonl_blocks

    rows = [json.dumps({"step": i, "loss": 5.0 - i / 1000}) + "\n" for i in range(30)]
    pieces = ["".join(rows[:10]), "".join(rows[10:25]), "".join(rows[25:])]
    text = "".join(pieces)
    slow = read_jsonl(text, source="log.jsonl")
    bulk = read_jsonl_blocks([p.encode() for p in pieces], source="log.jsonl", hints=None)
    assert_same_run(bulk, slow)
    assert isinstance(bulk.series["train"].lines, ConsecutiveLines)
    assert bulk.series["train"].line_of(29) == 30
    pieces[1] = pieces[1].replace('"loss": 4.99}', '"loss": "x"}', 1)  # not all numbers
    mixed = read_jsonl_blocks([p.encode() for p in pieces], source="log.jsonl", hints=None)
    assert_same_run(mixed, read_jsonl("".join(pieces), source="log.jsonl"))
    assert not isinstance(mixed.series["train"].lines, ConsecutiveLines)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(jsonl_lines(), min_size=2, max_size=30), schema_rows=st.integers(1, 5))
@example(lines=['{"lr": 0.0}', '{"step": null}'], schema_rows=1)  # an all-null key after the schema
@example(lines=['{"step": 0.0}', '{"step": 1, "loss": 0.0, "step": null}'], schema_rows=2)
@example(lines=['{"step": 1,\t"loss": 2.5}', '{"step": 2, "loss": 2.4}\r'], schema_rows=1)
def test_jsonl_read_from_the_file_at_once_reads_as_line_by_line(
    lines: list[str], schema_rows: int
) -> None:
    """A JSON Lines file read by polars from the file at once gives exactly the
    line-by-line run, or is left to the piece-at-a-time reader (None)."""
    text = "\n".join(lines)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.jsonl"
        path.write_text(text)
        whole = outcome(
            read_jsonl_file, path, source="log.jsonl", hints=None, schema_rows=schema_rows
        )
    if whole is None:
        return
    assert_same_outcome(whole, outcome(read_jsonl, text, source="log.jsonl"))


def test_jsonl_read_from_the_file_at_once_takes_the_common_shape(tmp_path: Path) -> None:
    """The usual logger output (a key added later, explicit nulls) is read from the file at
    once, with the same points and lines as line by line; NaN written by Python, an escape
    or a carriage return leave the file to the piece-at-a-time reader."""
    rows: list[dict[str, float | None]] = [
        {"step": i, "loss": 5.0 - i / 1000} for i in range(40_000)
    ]
    rows[30_000]["val_loss"] = 4.5
    rows[31_000]["lr"] = None
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    path = tmp_path / "log.jsonl"
    path.write_text(text)
    whole = read_jsonl_file(path, source="log.jsonl", hints=None, schema_rows=2)
    assert whole is not None
    assert_same_run(whole, read_jsonl(text, source="log.jsonl"))
    assert list(whole.columns.values()) == ["loss", "val_loss"]
    assert whole.series["val"].line_of(0) == 30_001
    # a line a row: the rows' lines are a range, not an array of 40,000 numbers
    assert isinstance(whole.series["train"].lines, ConsecutiveLines)
    assert whole.series["train"].line_of(39_999) == 40_000
    for other in ('{"step": 1, "loss": NaN}\n', '{"st\\u0065p": 1, "loss": 1}\n', "\r\n"):
        path.write_text(text + other)
        assert read_jsonl_file(path, source="log.jsonl", hints=None) is None


CELL_TEXTS = st.one_of(
    st.text(alphabet="0123456789.eE+-", max_size=8),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "-", "nan", "NA", " 1.5", "1_000", '"2"', "inf", "1e400", "true"]),
)


@given(cells=st.lists(CELL_TEXTS, max_size=30))
def test_text_cells_convert_as_one_by_one(cells: list[str]) -> None:
    """A delimited file's cells converted at once read as cell by cell."""
    fast, slow = coerce_texts(cells), coerce_objects(cells, nan_is_missing=True)
    assert np.array_equal(fast.values, slow.values, equal_nan=True)
    assert np.array_equal(fast.present, slow.present)
    assert (fast.garbage, fast.first_garbage) == (slow.garbage, slow.first_garbage)


@given(
    values=st.lists(st.floats(-1e300, 1e300), min_size=1, max_size=700),
    buckets=st.integers(1, 200),
)
@example(values=[float(v % 7) for v in range(40)], buckets=10)  # buckets of one even size
@example(values=[float(v % 5) for v in range(600)], buckets=200)  # ... of one odd size
@example(values=[float(v) for v in range(41)], buckets=10)  # sizes differ
def test_bucket_medians_are_numpy_medians(values: list[float], buckets: int) -> None:
    """The coarse trend's bucket medians, computed at once, are np.median's per bucket,
    on the edges ``np.linspace`` gives."""
    y = np.array(values)
    n, count = y.shape[0], min(buckets, y.shape[0])
    edges = np.linspace(0, n, count + 1).astype(np.int64)
    assert np.array_equal(even_edges(n, count), edges)
    expected = [np.median(y[a:b]) for a, b in itertools.pairwise(edges.tolist())]
    assert np.array_equal(bucket_medians(y, even_edges(n, count)), np.array(expected))


@settings(deadline=None)  # the first example imports bottleneck
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=50))
def test_median_is_numpy_median(values: list[float]) -> None:
    """The detectors' median is np.median's, NaN and infinities included."""
    y = np.array(values)
    with np.errstate(all="ignore"):
        expected = np.median(y)
    assert np.array_equal(median(y), expected, equal_nan=True)
    assert np.isnan(median(np.empty(0)))


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.lists(
            st.text(alphabet="0123456789.eE+- ", max_size=6) | st.sampled_from(["", "nan", "é"]),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=12,
    ),
    delimiter=st.sampled_from([",", "\t", ";", "|"]),
    trailing=st.booleans(),
)
def test_plain_number_tables_read_as_the_csv_path(
    rows: list[list[str]], delimiter: str, trailing: bool
) -> None:
    """A small table of plain numbers read at once gives the ``csv`` path's columns; any
    other table (ragged, blanks, empty cells) is left to the ``csv`` path."""
    width = len(rows[0])
    header = [f"c{i}" for i in range(width)]
    body = "\n".join(delimiter.join(row) for row in rows) + ("\n" if trailing else "")
    fast = delimited._plain_numbers(body, header, delimiter)
    if fast is None:
        return
    reader = csv.reader(io.StringIO(body), delimiter=delimiter, skipinitialspace=True)
    padded = [row + [""] * (width - len(row)) for row in reader]  # as _parse_small pads
    slow = delimited._columns(header, padded)
    assert list(fast) == list(slow)
    for name, column in fast.items():
        assert np.array_equal(column.values, slow[name].values, equal_nan=True)
        assert np.array_equal(column.present, slow[name].present)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=1),
    style=st.sampled_from(["simple", "tensor", "float_val"]),
    big_steps=st.booleans(),
)
def test_event_records_decoded_at_once_as_one_by_one(
    values: list[float], style: str, big_steps: bool
) -> None:
    """Scalar records (old-style, TF2 tensor_content with the metadata after the value,
    float_val) decoded at once give what protobuf gives record by record."""
    tbwriter = pytest.importorskip("tbwriter")
    from lossdoctor.ingest import tfevents

    steps = np.arange(len(values)) * (10**9 if big_steps else 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = tbwriter.write_events(
            Path(tmp), {"train/loss": (steps, np.array(values))}, style=style
        )
        data = path.read_bytes()
    fast = tfevents.EventScalars()
    tfevents.read_event_bytes(data, fast, source="events")
    frames = tfevents._frame(data)
    slow = tfevents.EventScalars()
    tfevents._decode_each(data, frames, np.arange(frames.starts.shape[0]), slow, 0)
    assert list(fast.tags) == list(slow.tags) == ["train/loss"]
    for got, want in zip(
        fast.tags["train/loss"].arrays(), slow.tags["train/loss"].arrays(), strict=True
    ):
        assert np.array_equal(got, want, equal_nan=True)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(text_lines(), min_size=1, max_size=30),
    ends=st.sampled_from(["\n", "\r\n", "\r"]),
    bom=st.booleans(),
    block=st.integers(1, 200),
)
def test_text_log_bytes_read_in_blocks_as_the_decoded_text(
    lines: list[str], ends: str, bom: bool, block: int
) -> None:
    """A text log read a block of bytes at a time (nanoGPT lines in bulk) reads as the whole
    decoded text parsed line by line."""
    data = (b"\xef\xbb\xbf" if bom else b"") + ends.join(lines).encode("utf-8", "surrogatepass")
    data += b"\xff caf\xc3 \n" if block % 3 == 0 else b""
    fast = outcome(textlog.read_text_log_bytes, data, source="log.txt", block_bytes=block)
    slow = outcome(read_text_log, delimited.decode_text(data), source="log.txt", fast=False)
    assert_same_outcome(fast, slow)


def test_a_large_text_log_is_read_without_decoding_it_whole() -> None:
    """read_bytes routes a large nanoGPT log to the block reader: same run as the text."""
    lines = ["number of parameters: 10.65M"]
    for step in range(30_000):
        if step % 1000 == 0:
            lines.append(f"step {step}: train loss 4.0, val loss 4.1")
        lines.append(f"iter {step}: loss {5 - step / 10_000:.4f}, time 12.3ms, mfu 30.0%")
    data = ("\n".join(lines) + "\n").encode()
    run = read_bytes(data, source="train.log")
    assert_same_run(run, read_text_log(delimited.decode_text(data), source="train.log"))
    assert run.reader == "text:nanogpt"
    assert len(run.series["train"]) == 30_000
    assert run.series["val"].line_of(0) == 2


CSV_CELLS = st.one_of(
    NUMBERS,
    st.text(alphabet="0123456789.eE+- \r", max_size=6),
    st.sampled_from(["", "-", "nan", "NA", "N/A", "null", "None", " 1.5", "1.5 ", "1_000"]),
    st.sampled_from(['"2"', "true", "#x", "0x10", "1d5", "\r", " ", "\t"]),
)


def read_both(data: bytes, tmp: Path) -> tuple[Run | str, Run | str, bool]:
    """Return the run (or error) read by the polars bulk path and by pandas' chunked path
    from ``data`` as a file on disk, and whether the bulk path took the table."""
    path = tmp / "log.csv"
    path.write_bytes(data)
    layout = delimited.table_layout(delimited.decode_text(data[: 1 << 16]), complete=True)
    assert layout is not None
    took = []
    real_bulk = delimited._parse_bulk

    def bulk(*args: object) -> object:
        took.append(real_bulk(*args))  # type: ignore[arg-type]
        return took[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(delimited, "_parse_bulk", bulk)
        fast = outcome(delimited.read_delimited, path, layout, source="log.csv")
        patch.setattr(delimited, "_parse_bulk", lambda *args: None)
        slow = outcome(delimited.read_delimited, path, layout, source="log.csv")
    return fast, slow, bool(took and took[0] is not None)


PLAIN_CELLS = st.one_of(NUMBERS, st.sampled_from(["", "NA", "null", "-", "nan", " 2", "1e"]))


@st.composite
def csv_rows(draw: st.DrawFn) -> list[list[str]]:
    """Rows of a table: as wide as the header and mostly numbers (polars reads those), or
    ragged with any cells."""
    if draw(st.booleans()):
        width = draw(st.integers(1, 4))
        row = st.lists(PLAIN_CELLS, min_size=width, max_size=width)
        return draw(st.lists(row | st.just([]), min_size=1, max_size=12))
    return draw(st.lists(st.lists(CSV_CELLS, min_size=1, max_size=4), min_size=1, max_size=12))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=csv_rows(),
    delimiter=st.sampled_from([",", "\t", ";"]),
    end=st.sampled_from(["\n", "\r\n", "\r"]),
    trailing=st.booleans(),
    header=st.sampled_from(["step,loss,val_loss,lr", "step,loss", "loss", "step,loss,loss", ""]),
    comments=st.integers(0, 2),
)
@example(  # an unterminated last row wider than the header: polars dropped its empty cell
    rows=[["0.0"], ["0.0", ""]], delimiter=",", end="\n", trailing=False, header="loss", comments=0
)
def test_large_csv_bulk_path_reads_as_pandas(
    rows: list[list[str]], delimiter: str, end: str, trailing: bool, header: str, comments: int
) -> None:
    """A table read by polars gives pandas' chunked reader's run (columns, values, missing
    cells, source lines) or its error; tables polars cannot read the same are left to
    pandas."""
    head = "# comment" + end if comments else ""
    head += end * max(0, comments - 1)
    lines = ([header.replace(",", delimiter)] if header else []) + [
        delimiter.join(row) for row in rows
    ]
    text = head + end.join(lines) + (end if trailing else "")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            fast, slow, _ = read_both(text.encode(), Path(tmp))
        except AssertionError:
            return  # not a table: never reaches the delimited reader
    assert_same_outcome(fast, slow)


def test_large_csv_bulk_path_takes_plain_numbers() -> None:
    """The common shape (numbers, empty cells, NaN and infinities) is read by polars, as
    pandas reads it."""
    rows = ["step,loss,lr,val_loss"]
    for step in range(5000):
        loss = "nan" if step == 4000 else "inf" if step == 4001 else f"{5 - step / 2000:.5f}"
        val = f"{4 - step / 2000:.5f}" if step % 100 == 0 else ""
        rows.append(f"{step},{loss},3e-4,{val}")
    with tempfile.TemporaryDirectory() as tmp:
        fast, slow, took = read_both(("\n".join(rows) + "\n").encode(), Path(tmp))
    assert took
    assert_same_outcome(fast, slow)
    assert isinstance(fast, Run)
    assert fast.series["train"].n_nonfinite == 2  # nan and inf cells are logged points
    assert len(fast.series["val"]) == 50  # empty cells are no points
    assert fast.series["val"].line_of(1) == 102


def zeros_counted_point_by_point(losses: np.ndarray) -> int:
    """The masked-NaN detector's count of 0.0 losses after a non-zero one, computed for
    every point (as before the detector looked only at the zeros)."""
    nonzero = (losses != 0.0) & ~np.isnan(losses)
    first_nonzero = int(np.argmax(nonzero)) if nonzero.any() else losses.shape[0]
    zeros_after = losses[first_nonzero + 1 :] == 0.0
    last_nonzero = np.where(nonzero, np.arange(losses.shape[0]), -1)
    last_nonzero = np.maximum.accumulate(last_nonzero)[first_nonzero + 1 :]
    zeros_after &= np.abs(losses[np.maximum(last_nonzero, 0)]) >= 0.01
    return int(np.count_nonzero(zeros_after))


@settings(deadline=None)
@given(
    values=st.lists(
        st.sampled_from([0.0, 0.0, float("nan"), 0.005, 2.5, -1.0, float("inf")]), max_size=40
    )
)
def test_masked_zero_count_is_the_point_by_point_count(values: list[float]) -> None:
    """The zeros counted at the zeros only are those counted at every point."""
    from lossdoctor.detectors.masked import masked_non_finite
    from lossdoctor.features import SeriesView
    from lossdoctor.model import Series

    losses = np.array(values, dtype=np.float64)
    series = Series(role="train", column="loss", steps=np.arange(losses.shape[0]) * 1.0,
                    values=losses)  # fmt: skip
    measured = masked_non_finite(SeriesView(series))
    assert measured.zero_after_nonzero == zeros_counted_point_by_point(losses)


@settings(deadline=None)
@given(
    n=st.integers(1, 400),
    limit=st.integers(3, 50),
    holes=st.lists(st.integers(0, 399), max_size=5),
)
def test_regular_picks_without_ranks_as_with_ranks(n: int, limit: int, holes: list[int]) -> None:
    """A sampled series whose points are all finite finds its regular picks from the
    positions alone: the same as from the ranks among the finite points."""
    from lossdoctor.features import SeriesView
    from lossdoctor.model import Series
    from lossdoctor.sampling import sample_stride

    values = 2.0 + np.sin(np.arange(n) / 7.0)
    values[[h for h in holes if h < n]] = np.nan
    view = SeriesView(Series(role="train", column="loss", steps=np.arange(n) * 1.0,
                             values=values), max_points=limit)  # fmt: skip
    if not view.n:
        return
    stride = sample_stride(view.n_finite, limit)
    ranks = (np.cumsum(np.isfinite(values)) - 1)[view.index]
    expected = ranks % stride == 0 if view.sampled else np.ones(view.n, dtype=bool)
    assert np.array_equal(view.regular, expected)


def test_a_large_table_of_numbers_is_checked_without_pandas(tmp_path: Path) -> None:
    """`check` of a table past 1 MiB of plain numbers reads it with polars: pandas (half a
    second of imports) is not loaded; a table with a missing-value token goes to pandas."""
    import subprocess
    import sys

    rows = "".join(f"{s},{5 - s / 40_000:.6f},3e-4,\n" for s in range(60_000))
    plain, tokens = tmp_path / "plain.csv", tmp_path / "tokens.csv"
    plain.write_text("step,loss,lr,val_loss\n" + rows)
    tokens.write_text("step,loss,lr,val_loss\n" + rows + "60000,NA,3e-4,\n")
    assert plain.stat().st_size > delimited.SMALL_TABLE_BYTES
    script = (
        "import sys\nfrom lossdoctor.ingest import read_run\n"
        "run = read_run(sys.argv[1])\nprint(len(run.series['train']), 'pandas' in sys.modules)"
    )
    for path, points, pandas in ((plain, 60_000, False), (tokens, 60_000, True)):
        proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                              text=True, check=True)  # fmt: skip
        assert proc.stdout.split() == [str(points), str(pandas)]


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False, width=64),
            st.sampled_from([np.inf, -np.inf, 0.0, -0.0, 1.0, np.nan]),
        ),
        min_size=1,
        max_size=60,
    ),
    q=st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.001, 0.5, 0.999, 1.0, 0, 1])),
)
@example(values=[-np.inf, 1.0, 2.0], q=0)
@example(values=[1.0, np.inf], q=1.0)
@example(values=[0.0, -0.0, -np.inf], q=1)  # numpy 0.0, partition -0.0: equal
def test_quantile_is_numpys_bit_for_bit(values: list[float], q: float) -> None:
    """The spikes detector's quantile (no numpy.ma import) is np.quantile's, NaN and all."""
    array = np.array(values, dtype=np.float64)
    with np.errstate(all="ignore"):
        want = float(np.quantile(array, q))
    got = quantile(array.copy(), q)
    assert np.array_equal(np.array(got), np.array(want), equal_nan=True)
    if want != 0.0:  # which of equal zeros (0.0, -0.0) a partition puts first is numpy's whim
        assert np.signbit(got) == np.signbit(want)


@given(values=st.lists(st.integers(-(2**62), 2**62), max_size=50))
def test_unique_ints_is_numpys_unique(values: list[int]) -> None:
    """Decimation's distinct sorted indices (no numpy.ma import) are np.unique's."""
    array = np.array(values, dtype=np.int64)
    assert np.array_equal(unique_ints(array), np.unique(array))
    assert unique_ints(array).dtype == np.unique(array).dtype


@given(
    pairs=st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=3, max_size=300),
)
@example(pairs=[(float(i), float(-i % 7)) for i in range(200)])
def test_pearson_is_numpys_corrcoef_bit_for_bit(pairs: list[tuple[float, float]]) -> None:
    """The trend's steadiness (Spearman's rho of ranks) is np.corrcoef's, to the bit."""
    x, y = (np.array(column) for column in zip(*pairs, strict=True))
    with np.errstate(all="ignore"):
        expected = np.corrcoef(x, y)[0, 1]
        got = pearson(x, y)
    assert np.array_equal(got, expected, equal_nan=True)


@given(
    values=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308])),
        max_size=40,
    )
)
@example(values=[1e308, 1e308])  # a sum that overflows: every value finite all the same
@example(values=[float("inf"), float("-inf")])  # a sum that is NaN
def test_all_finite_is_numpys_isfinite_all(values: list[float]) -> None:
    """The steps' check for NaN and infinities (by their sum first) says what
    ``np.isfinite(values).all()`` says."""
    array = np.array(values, dtype=np.float64)
    assert all_finite(array) == bool(np.isfinite(array).all())


def test_text_log_read_with_freed_memory_released_reads_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large log's freed memory is handed back between the stages of reading (here from
    the first row on): the run is the one read without."""
    lines = ["number of parameters: 10.65M"]
    for step in range(3_000):
        if step % 500 == 0:
            lines.append(f"step {step}: train loss 4.0, val loss 4.1")
        lines.append(f"iter {step}: loss {5 - step / 1_000:.4f}, time 12.3ms, mfu 30.0%")
    data = "\n".join(lines).encode()
    kept = textlog.read_text_log_bytes(data, source="train.log", block_bytes=4096)
    calls: list[None] = []
    monkeypatch.setattr(textlog, "RELEASE_MIN_ROWS", 0)
    monkeypatch.setattr(textlog, "release_freed_memory", lambda: calls.append(None))
    released = textlog.read_text_log_bytes(data, source="train.log", block_bytes=4096)
    assert_same_run(released, kept)
    assert len(calls) == 3  # blocks read, bulk rows placed, table let go
    assert len(released.series["train"]) == 3_000
    assert len(released.series["val"]) == 6


@settings(max_examples=300, deadline=None)
@given(
    cells=st.lists(
        st.text(alphabet="0123456789.eE+-", max_size=8)
        | st.floats(allow_nan=False).map(repr)
        | st.sampled_from(["", "1e999", "-1e999", "1e-400", "4.9e-324", "-0", "9007199254740993"]),
        min_size=1,
        max_size=30,
    ),
    delimiter=st.sampled_from([",", ";", "|"]),
)
def test_numbers_read_in_c_are_pythons_floats(cells: list[str], delimiter: str) -> None:
    """numpy's parse of a table's cells gives each cell's ``float`` to the bit (an empty
    cell NaN), or declines (None) when a cell is no number."""
    got = delimited._numbers_in_c(delimiter.join(cells), delimiter, len(cells))
    try:
        expected = np.array([float(c) if c else float("nan") for c in cells])
    except ValueError:
        assert got is None
        return
    if got is not None:
        assert got.view(np.int64).tolist() == expected.view(np.int64).tolist()


@settings(max_examples=200, deadline=None)
@given(
    doc=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.tuples(inner, inner)
            | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        ),
        max_leaves=30,
    )
)
def test_json_report_text_is_json_dumps(doc: object) -> None:
    """The JSON report's writer gives ``json.dumps(indent=2, allow_nan=False)``'s text."""
    from lossdoctor.reporters.json_report import dumps_indented

    assert dumps_indented(doc) == json.dumps(doc, indent=2, allow_nan=False)


@pytest.mark.parametrize(
    "doc", [{"a": [1.0, float("nan")]}, {1: "a"}, {"a": {"b": float("-inf")}}, {"a": {1, 2}}]
)
def test_json_report_errs_as_json_dumps(doc: object) -> None:
    """A NaN, a non-string key or a set: the same text or the same error as ``json.dumps``."""
    from lossdoctor.reporters.json_report import dumps_indented

    try:
        expected: object = json.dumps(doc, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        expected = (type(exc), str(exc))
    try:
        got: object = dumps_indented(doc)
    except (TypeError, ValueError) as exc:
        got = (type(exc), str(exc))
    assert got == expected


@given(
    values=st.lists(
        st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0.0, -0.0, 1.5, 2.0])),
        min_size=1,
        max_size=300,
    )
)
@example(values=[float(i) for i in range(50)])  # no ties
@example(values=[3.0, 1.0, 3.0, 2.0, 1.0])  # ties
@settings(deadline=None)  # the first example imports scipy
def test_average_ranks_are_scipys_rankdata(values: list[float]) -> None:
    """Ranks (ties sharing their average rank) are scipy's, with ties or without."""
    from scipy.stats import rankdata

    from lossdoctor.features import average_ranks

    array = np.array(values, dtype=np.float64)
    assert np.array_equal(average_ranks(array), rankdata(array))


@given(
    steps=st.lists(st.integers(0, 60), min_size=3, max_size=200),
    values=st.lists(st.floats(-100, 100), min_size=200, max_size=200),
)
def test_spearman_of_rising_steps_is_the_ranked_pearson(
    steps: list[int], values: list[float]
) -> None:
    """Spearman's rho of steps that only go up (ranked by position, no sort) is the
    Pearson correlation of both series' average ranks, to the bit; steps with repeats or
    going back are ranked by sorting, to the same result."""
    from lossdoctor.features import average_ranks, spearman

    for x in (np.array(steps, dtype=np.float64), np.cumsum(np.array(steps) + 1.0)):
        y = np.array(values[: x.shape[0]])
        rank_x, rank_y = average_ranks(x), average_ranks(y)
        if rank_x.min() == rank_x.max() or rank_y.min() == rank_y.max():
            assert np.isnan(spearman(x, y))
        else:
            assert np.array_equal(spearman(x, y), pearson(rank_x, rank_y))


@given(
    values=st.lists(st.sampled_from([0.0, 1.0, 1.5, 2.0, 3.0, float("nan")]), max_size=40),
    low=st.sampled_from([0.0, 1.0, 1.5, 2.0]),
    high=st.sampled_from([0.0, 1.0, 1.5, 2.0, 3.0]),
)
def test_band_passes_count_moves_between_the_bands(
    values: list[float], low: float, high: float
) -> None:
    """Passes between the bands are the changes of the band a point lies in (at or above
    ``high``: the high band, even where the bands overlap; at or below ``low``: the low
    one), over the points in a band."""
    from lossdoctor.robust import band_passes

    bands = [1 if v >= high else -1 if v <= low else 0 for v in values]
    banded = [b for b in bands if b]
    want = sum(1 for a, b in itertools.pairwise(banded) if a != b)
    assert band_passes(np.array(values, dtype=np.float64), low, high) == want


@given(
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60),
    qs=st.lists(st.floats(0, 1), min_size=1, max_size=3),
)
def test_quantiles_from_one_partition_are_numpys(values: list[float], qs: list[float]) -> None:
    """Several quantiles read from one partial sort are each np.quantile's."""
    from lossdoctor.robust import quantiles

    array = np.array(values, dtype=np.float64)
    got = quantiles(array, tuple(qs))
    want = [float(np.quantile(array, q)) for q in qs]
    assert np.array_equal(np.array(got), np.array(want))


@settings(max_examples=100, deadline=None)
@given(
    runs=st.lists(
        st.dictionaries(
            st.text(max_size=5),
            st.none()
            | st.integers()
            | st.text()
            | st.lists(st.floats(allow_nan=False, allow_infinity=False)),
            max_size=4,
        ),
        max_size=4,
    ),
    written=st.lists(st.booleans(), min_size=4, max_size=4),
    files=st.booleans(),
)
def test_json_report_of_runs_written_apart_is_json_dumps(runs, written, files) -> None:
    """The runs' entries written apart (by the workers of ``--jobs``; some not) and put
    in the report give ``json.dumps``'s text of the whole report."""
    from lossdoctor.reporters.json_report import render, run_entry

    doc = {"schema_version": 1, "version": "0.1.0", "runs": runs}
    if files:
        doc["files"] = [{"path": '"runs": []', "status": "read"}]
    entries = [run_entry(run) if done else None for run, done in zip(runs, written, strict=False)]
    assert render(doc, entries) == json.dumps(doc, indent=2, allow_nan=False) + "\n"


def test_json_report_of_a_run_written_apart_errs_as_json_dumps() -> None:
    from lossdoctor.reporters.json_report import render, run_entry

    runs = [{"source": "a", "final": 1.5}, {"source": "b", "final": float("nan")}]
    entries = [run_entry(runs[0]), run_entry(runs[1])]
    assert entries[1] is None  # left to json.dumps
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        render({"runs": runs}, entries)


def test_column_choice_kept_per_header_is_each_callers_own() -> None:
    """The column choice is worked out once per header and hints, then kept: a caller that
    changes the roles it got does not change the next table's, other hints give their own
    choice, and a hint naming no column still raises every time."""
    header = ["step", "loss", "lr", "val_loss"]
    first = choose_columns(header)
    first.roles[TRAIN] = "lr"
    again = choose_columns(list(header))
    assert again.roles == {TRAIN: "loss", VAL: "val_loss", LR: "lr"}
    assert again.step == "step"
    assert choose_columns(header, ColumnHints(train="val_loss")).roles[TRAIN] == "val_loss"
    for _ in range(2):
        with pytest.raises(KeyError, match="--train-col"):
            choose_columns(header, ColumnHints(train="nope"))
    parts = ["step", "train/box_loss", "train/cls_loss"]
    totals = summed_totals(parts)
    totals["train/loss"].append("step")
    assert summed_totals(list(parts)) == {"train/loss": ["train/box_loss", "train/cls_loss"]}


def test_measurement_keys_are_never_given_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rules measured by one detector with the same tunables share a measurement key; other
    tunables get another, even after the kept keys were emptied (a rule planned before
    that must not meet a new rule's measurement)."""
    from lossdoctor.engine import evaluate as engine

    monkeypatch.setattr(engine, "_MAX_PLANS", 2)
    monkeypatch.setattr(engine, "_KEYS", {})
    keys = [engine._key_number(("spikes", ("z", z))) for z in (6.0, 7.0, 8.0, 6.0)]
    assert len(set(keys)) == 4  # the third emptied the kept keys: 6.0 is numbered anew
    assert engine._key_number(("spikes", ("z", 6.0))) == keys[3]


@settings(max_examples=300, deadline=None)
@given(
    rows=st.integers(1, 40),
    size=st.integers(1, 12),
    level=st.floats(-50, 50),
    spread=st.floats(0, 3),
    bar=st.floats(0, 2),
    log_space=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    ties=st.booleans(),
)
def test_sample_outliers_found_as_every_bucket_measured(
    rows: int,
    size: int,
    level: float,
    spread: float,
    bar: float,
    log_space: bool,
    seed: int,
    ties: bool,
) -> None:
    """The sample's outlier picks, looked for only in buckets holding a value past the bar,
    are those of every bucket measured (values on and beside the bounds included)."""
    from lossdoctor.sampling import _bucket_extremes, _extremes

    rng = np.random.default_rng(seed)
    trend = level + rng.normal(0, 0.5, rows)
    offsets = rng.normal(0, spread, (rows, size))
    if ties:
        offsets = np.round(offsets * 2) / 2
    # values exactly on the bar, and one rounding away from it, in some buckets
    edge = rng.random((rows, size)) < 0.2
    offsets[edge] = np.sign(offsets[edge] + 0.5) * bar
    y = trend[:, None] + offsets
    values = np.exp(y) if log_space else y
    if log_space and not np.all(values > 0):
        return
    nudged = np.nextafter(values, rng.choice([-np.inf, np.inf], values.shape))
    for grid in (values, nudged):
        fast = _extremes(grid.ravel(), trend, bar, log_space=log_space)
        np.testing.assert_array_equal(fast, _bucket_extremes(grid, trend, bar, log_space=log_space))


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=400),
    limit=st.integers(2, 60),
)
def test_a_series_known_finite_is_judged_and_drawn_as_with_its_mask(
    values: list[float], limit: int
) -> None:
    """A series known to hold only finite values is sampled and drawn without a mask of
    every point, to the same positions and the same sparkline."""
    from lossdoctor.reporters.sparkline import sparkline
    from lossdoctor.sampling import judged_positions

    array = np.array(values)
    mask = np.isfinite(array)
    by_mask = judged_positions(array, limit, finite=mask)
    np.testing.assert_array_equal(judged_positions(array, limit, all_finite=True), by_mask)
    lowest = float(array.min())
    np.testing.assert_array_equal(
        judged_positions(array, limit, all_finite=True, lowest=lowest), by_mask
    )
    for log in (False, True):
        assert sparkline(array, log=log, finite=True) == sparkline(array, log=log, finite=mask)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.floats(-10, 10) | st.sampled_from([0.0, -0.0, -1.0, float("nan"), float("inf")]),
        min_size=1,
        max_size=40,
    )
)
def test_loss_sign_detectors_answer_as_without_the_one_pass_look(values: list[float]) -> None:
    """The negative-loss, zero-loss and masked-non-finite detectors give the same answer
    whether or not the series was first found above zero everywhere in one pass."""
    from lossdoctor.detectors.masked import masked_non_finite
    from lossdoctor.detectors.negative import negative
    from lossdoctor.detectors.zeroloss import zero_loss
    from lossdoctor.features import SeriesView
    from lossdoctor.model import Series

    array = np.array(values)
    steps = np.arange(array.shape[0], dtype=np.float64)
    series = Series(role=TRAIN, column="loss", steps=steps, values=array)
    for detector in (negative, zero_loss, masked_non_finite):
        looked = SeriesView(series)
        unlooked = SeriesView(series)
        unlooked.__dict__["all_positive"] = False  # as if the one-pass look found nothing
        assert repr(detector(looked)) == repr(detector(unlooked))
    assert SeriesView(series).all_positive == bool((array > 0).all())


def test_a_polars_column_with_nulls_is_a_column_with_nan_where_absent() -> None:
    """The bulk readers' columns hold NaN under an empty cell (absent) and keep a logged NaN
    as a point, from polars' own arrays (integers too), writable by a reader."""
    pl = pytest.importorskip("polars")
    from lossdoctor.ingest.delimited_bulk import float_column

    for cells in (
        pl.Series("loss", [1.5, None, float("nan"), None, 2.0]),
        pl.Series("step", [1, None, 3, None, 5]),
    ):
        column = float_column(cells.rechunk())
        assert column.present.tolist() == [True, False, True, False, True]
        assert np.isnan(column.values[[1, 3]]).all()
        assert column.values[0] in (1.5, 1.0)
        assert column.values.flags.writeable
        assert column.present.flags.writeable
    chunked = pl.concat([pl.Series("x", [1.0, None]), pl.Series("x", [None, 4.0])], rechunk=False)
    column = float_column(chunked)
    assert column.present.tolist() == [True, False, False, True]
    assert np.isnan(column.values[1:3]).all()
    assert column.values[3] == 4.0
