"""Large logs: streamed tables read in chunks give the same run as a small read, and long
series are judged on a sample that keeps every outlier while counts stay exact."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import lossdoctor.ingest.delimited as delimited
from lossdoctor.engine.evaluate import evaluate
from lossdoctor.engine.loader import load_rules
from lossdoctor.errors import InputError
from lossdoctor.features import SeriesView
from lossdoctor.ingest import read_run
from lossdoctor.model import TRAIN, Run, Series
from lossdoctor.sampling import JUDGE_MAX_POINTS, judged_positions


def big_csv(rows: int, *, every_val: int = 50, cell=None) -> str:
    """Return a CSV (step, loss, lr, sparse val_loss) of ``rows`` rows; ``cell(i)`` may
    replace the loss text of row ``i``."""
    rng = np.random.default_rng(3)
    loss = 3.0 * np.exp(-np.arange(rows) / rows) * np.exp(rng.normal(0, 0.02, rows))
    lines = ["step,loss,lr,val_loss"]
    for i in range(rows):
        text = cell(i) if cell else None
        text = f"{loss[i]:.5f}" if text is None else text
        val = f"{loss[i] * 1.1:.5f}" if i % every_val == 0 else ""
        lines.append(f"{i},{text},3e-4,{val}")
    return "\n".join(lines) + "\n"


@pytest.fixture(params=["one thread", "two halves"])
def streamed(request, monkeypatch):
    """Parse every file with pandas in small chunks, whole or as two halves on two threads."""
    monkeypatch.setattr(delimited, "SMALL_TABLE_BYTES", 0)
    monkeypatch.setattr(delimited, "CHUNK_ROWS", 997)
    split = request.param == "two halves"
    monkeypatch.setattr(delimited, "PARALLEL_MIN_BYTES", 0 if split else 1 << 60)
    monkeypatch.setattr(delimited, "_cpus", lambda: 2)
    return request.param


def same_run(a: Run, b: Run) -> None:
    assert a.series.keys() == b.series.keys()
    for role in a.series:
        sa, sb = a.series[role], b.series[role]
        np.testing.assert_array_equal(sa.steps, sb.steps)
        np.testing.assert_array_equal(sa.values, sb.values)
        assert sa.lines is not None
        assert sb.lines is not None
        np.testing.assert_array_equal(sa.lines, sb.lines)
    assert a.notes == b.notes


def test_a_large_table_is_streamed_in_chunks_and_reads_as_the_whole(tmp_path, monkeypatch):
    text = big_csv(20_000, cell=lambda i: "nan" if i == 15_000 else None)
    path = tmp_path / "big.csv"
    path.write_text(text)
    whole = read_run(str(path))  # the standard library's parser, all in memory
    for split in (False, True):
        monkeypatch.setattr(delimited, "SMALL_TABLE_BYTES", 0)
        monkeypatch.setattr(delimited, "CHUNK_ROWS", 997)
        monkeypatch.setattr(delimited, "PARALLEL_MIN_BYTES", 0 if split else 1 << 60)
        monkeypatch.setattr(delimited, "_cpus", lambda: 2)
        streamed = read_run(str(path))
        monkeypatch.undo()
        same_run(streamed, whole)
    train = streamed.series[TRAIN]
    assert len(train) == 20_000
    assert len(streamed.series["val"]) == 400
    # the logged NaN in a later chunk is kept, at its line (header is line 1)
    bad = int(np.flatnonzero(np.isnan(train.values))[0])
    assert train.steps[bad] == 15_000
    assert train.line_of(bad) == 15_002


def test_a_word_in_a_later_chunk_is_skipped_and_counted(tmp_path, streamed):
    text = big_csv(5_000, cell=lambda i: "oops" if i in (3_000, 4_000) else None)
    path = tmp_path / "words.csv"
    path.write_text(text)
    run = read_run(str(path))
    assert len(run.series[TRAIN]) == 4_998
    assert "'loss': 2 cells that are not numbers were skipped" in run.notes
    assert 3_002 not in run.series[TRAIN].lines
    assert 3_003 in run.series[TRAIN].lines


def test_a_ragged_row_deep_in_a_streamed_file_names_its_line(tmp_path, streamed):
    text = big_csv(8_000).splitlines()
    text[6_500] += ",1,2"
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(InputError) as info:
        read_run(str(path))
    assert info.value.line == 6_501
    assert "Expected 4 fields" in info.value.one_line()


def test_leading_comments_and_padded_cells(tmp_path, streamed):
    body = "# run 7\n\nstep, loss, val_loss\n" + "".join(
        f"{i}, {3 - i / 1000:.4f}, {'' if i % 10 else 3.5 - i / 1000}\n" for i in range(5_000)
    )
    path = tmp_path / "padded.csv"
    path.write_text(body)
    run = read_run(str(path))
    assert run.columns == {"train": "loss", "val": "val_loss"}
    assert len(run.series[TRAIN]) == 5_000
    assert len(run.series["val"]) == 500
    assert run.series[TRAIN].line_of(0) == 4
    assert run.series[TRAIN].line_of(4_999) == 5_003


def spiky_series(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    steps = np.arange(n, dtype=np.float64)
    values = (2.0 * np.exp(-steps / n) + 1.0) * np.exp(rng.normal(0, 0.02, n))
    return steps, values


def test_the_sample_keeps_one_step_spikes_dips_and_both_ends():
    _steps, values = spiky_series(1_000_003)
    values[123_457] *= 3.0  # one-step spike
    values[777_777] *= 0.3  # one-step dip
    picks = judged_positions(values, 100_000)
    assert picks.shape[0] <= 100_003
    assert np.all(np.diff(picks) > 0)
    assert {0, 123_457, 777_777, 1_000_002} <= set(picks.tolist())
    # ordinary noise is not promoted: the regular picks dominate
    regular = np.arange(0, 1_000_003, 11)
    assert np.isin(picks, regular).mean() > 0.99


def test_the_sample_skips_non_finite_points_and_is_deterministic():
    _, values = spiky_series(400_000)
    values[1000:1010] = np.nan
    values[-5:] = np.inf
    picks = judged_positions(values, 50_000)
    assert np.isfinite(values[picks]).all()
    assert picks[-1] == 400_000 - 6
    np.testing.assert_array_equal(picks, judged_positions(values, 50_000))


@pytest.mark.parametrize("level", [3e-4, 0.0, -2.5])
def test_a_constant_series_is_sampled_at_its_regular_picks(level):
    """A learning rate that never changes has no point that stands out: its sample is every
    k-th finite point and the last, as the outlier search over it would give."""
    values = np.full(400_003, level)
    values[[5, 6, 200_000]] = np.nan
    finite = np.flatnonzero(np.isfinite(values))
    picks = judged_positions(values, 50_000)
    np.testing.assert_array_equal(picks, finite[[*range(0, 400_000, 8), 400_000 - 1]])
    bumped = values.copy()
    bumped[300_001] = level + 1.0  # one point off the level: found as an outlier
    assert 300_001 in judged_positions(bumped, 50_000).tolist()


def test_short_series_are_judged_on_every_finite_point():
    values = np.array([1.0, np.nan, 2.0, np.inf, 3.0])
    np.testing.assert_array_equal(judged_positions(values, 10), [0, 2, 4])


def test_a_long_run_is_judged_on_a_sample_with_exact_counts_and_evidence():
    n = 3 * JUDGE_MAX_POINTS + 17
    steps, values = spiky_series(n)
    steps *= 10  # steps in the millions are written out whole in messages
    values[n // 3] *= 4.0
    values[n - 1000 :] = np.nan
    run = Run(source="long", reader="test", series={TRAIN: Series(TRAIN, "loss", steps, values)})
    report = evaluate(run, load_rules())
    found = {f.rule: f for f in report.findings}
    assert found["spikes"].evidence["start_step"] == 10 * (n // 3)
    assert f"at step {10 * (n // 3)}" in found["spikes"].message
    assert found["non-finite"].evidence["count"] == 1000
    assert report.series[TRAIN].points == n
    assert report.series[TRAIN].non_finite == 1000
    note = next(n for n in report.notes if n.startswith("train: judged on"))
    judged = int(
        re.match(r"train: judged on ([\d,]+) of its ([\d,]+) points", note)[1].replace(",", "")
    )
    assert f"of its {n - 1000:,} points" in note
    assert judged <= JUDGE_MAX_POINTS + 2
    view = SeriesView(run.series[TRAIN])
    assert view.sampled
    assert view.n_finite == n - 1000


def test_run_does_not_pass_lossdoctors_numpy_settings_to_the_child(tmp_path):
    names = ("NUMPY_MADVISE_HUGEPAGE", "OPENBLAS_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in names}
    script = f"import os; print('step 1 loss', 2.0); print([os.environ.get(n) for n in {names}])"
    proc = subprocess.run(
        [sys.executable, "-m", "lossdoctor", "run", "-f", f"json:{tmp_path / 'r.json'}", "--",
         sys.executable, "-c", script],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.stdout.splitlines()[-1] == "[None, None]", proc.stdout + proc.stderr
    assert json.loads((tmp_path / "r.json").read_text())["runs"]


EDGE_TABLES = {
    "trailing_delimiters.csv": b"step,loss\n1,2.5,\n2,2.4,\n3,2.3,\n",
    "duplicate_and_unnamed.csv": b"step,loss,loss,\n1,2.5,9,x\n2,2.4,8,y\n3,2.3,7,z\n",
    "quoted.csv": b'"step","loss"\n"1","2.5"\n"2","2,4"\n3,2.3\n',
    "blank_lines.csv": b"step,loss\n1,2.5\n\n2,2.4\n   \n3,2.3\n",
    "tokens.csv": b"step,loss,val_loss\n1,2.5,NA\n2,nan,-\n3,inf,null\n4,2.2,N/A\n5,NaN,3.0\n",
    "bom_crlf.csv": b"\xef\xbb\xbfstep,loss\r\n1,2.5\r\n2,2.4\r\n",
    "old_mac.csv": b"step,loss\r1,2.5\r2,2.4\r3,2.3\r",
    "padded.csv": b"step , loss\n 1 , 2.5 \n 2 , nan \n 3,  \n",
    "short_rows.csv": b"step,loss,val_loss\n1,2.5\n2,2.4,2.9\n3\n",
    "words.csv": b"step,loss\n1,2.5\n2,high\n3,True\n4,1_0\n5,2.1\n6,2.0\n7,1.9\n8,1.8\n",
    "bad_utf8.csv": b"step,loss,no\xffte\n1,2.5,\xff\n2,2.4,b\n",
    "semicolons.csv": b"# exported\n\nstep;loss\n1;2.5\n2;2.4\n",
    "booleans.csv": b"step,loss,lr\n1,2.5,True\n2,2.4,False\n3,2.3,True\n",
    "one_nan_among_numbers.csv": b"step,loss\n1,2.5\n2,nan\n3,2.3\n4,oops\n5,2.1\n6,2.0\n",
}


def both_engines(monkeypatch, path):
    from lossdoctor.ingest.delimited import SMALL_TABLE_BYTES

    assert path.stat().st_size <= SMALL_TABLE_BYTES
    small = read_run(str(path))
    monkeypatch.setattr(delimited, "SMALL_TABLE_BYTES", 0)
    try:
        chunked = read_run(str(path))
    finally:
        monkeypatch.undo()
    return small, chunked


@pytest.mark.parametrize("name", sorted(EDGE_TABLES))
def test_small_tables_read_the_same_with_either_parser(tmp_path, monkeypatch, name):
    path = tmp_path / name
    path.write_bytes(EDGE_TABLES[name])
    small, chunked = both_engines(monkeypatch, path)
    same_run(small, chunked)
    assert small.reader == chunked.reader


def test_every_table_fixture_reads_the_same_with_either_parser(monkeypatch):
    from conftest import FIXTURES, ROOT

    paths = [p for p in FIXTURES.iterdir() if p.suffix in (".csv", ".tsv")]
    paths += [p for p in (ROOT / "examples").iterdir() if p.suffix in (".csv", ".tsv")]
    compared = 0
    for path in sorted(paths):
        outcomes = []
        for limit in (delimited.SMALL_TABLE_BYTES, 0):
            monkeypatch.setattr(delimited, "SMALL_TABLE_BYTES", limit)
            try:
                outcomes.append(read_run(str(path)))
            except InputError as exc:
                outcomes.append(exc.line)
            monkeypatch.undo()
        small, chunked = outcomes
        if isinstance(small, Run) and isinstance(chunked, Run):
            same_run(small, chunked)
            compared += 1
        else:
            assert small == chunked, path.name  # the same error line
    assert compared >= 10


def test_a_trailing_delimiter_is_not_a_hidden_index_column(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_bytes(EDGE_TABLES["trailing_delimiters.csv"])
    run = read_run(str(path))
    np.testing.assert_array_equal(run.series[TRAIN].steps, [1, 2, 3])
    np.testing.assert_array_equal(run.series[TRAIN].values, [2.5, 2.4, 2.3])


def test_more_fields_than_the_header_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_bytes(b"step,loss\n1,2.5\n2,2.4,7\n")
    with pytest.raises(InputError) as info:
        read_run(str(path))
    assert info.value.line == 3
    assert "Expected 2 fields in line 3, saw 3" in info.value.one_line()


# --- event files: the bulk decoder against TensorBoard's own reader --------------------------


def write_mixed_events(logdir):
    """Write an event file the way a training loop does: three scalar tags per step, wall
    times that move, steps across varint widths, a multi-value summary every 1,000 steps,
    new-style tensor scalars, a histogram-like tensor and a restart marker."""
    tbw = pytest.importorskip("tbwriter")
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(logdir))
    rng = np.random.default_rng(5)
    for step in range(0, 20_000, 3):
        wall = 1_700_000_000.0 + step * 0.37
        if step == 12_345 - 12_345 % 3:
            restart = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            writer.add_event(event_pb2.Event(step=step, wall_time=wall, session_log=restart))
        for tag, value in (
            ("train/loss", 3.0 * np.exp(-step / 5000) + rng.normal(0, 0.01)),
            ("train/lr", 3e-4 * min(1.0, step / 500)),
            ("train/grad_norm", abs(rng.normal(1, 0.2))),
        ):
            summary = summary_pb2.Summary(value=[tbw.simple_value(tag, float(value))])
            writer.add_event(event_pb2.Event(step=step, wall_time=wall, summary=summary))
        if step % 999 == 0:
            both = [
                tbw.simple_value("eval/loss", 3.1 - step / 10000),
                tbw.simple_value("eval/acc", step / 20000),
            ]
            writer.add_event(
                event_pb2.Event(step=step, wall_time=wall, summary=summary_pb2.Summary(value=both))
            )
            tensor = tbw.tensor_value("eval/tensor_loss", 3.2 - step / 10000)
            writer.add_event(
                event_pb2.Event(
                    step=step, wall_time=wall, summary=summary_pb2.Summary(value=[tensor])
                )
            )
            hist = summary_pb2.Summary.Value(
                tag="weights",
                tensor=tensor_pb2.TensorProto(dtype=1, tensor_content=np.float32([1.5]).tobytes()),
                metadata=summary_pb2.SummaryMetadata(
                    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="histograms")
                ),
            )
            writer.add_event(
                event_pb2.Event(
                    step=step, wall_time=wall, summary=summary_pb2.Summary(value=[hist])
                )
            )
    writer.close()
    (path,) = [p for p in logdir.iterdir() if "tfevents" in p.name]
    return path


@pytest.fixture(scope="module")
def mixed_events(tmp_path_factory):
    return write_mixed_events(tmp_path_factory.mktemp("events") / "run")


def test_event_file_bulk_decoding_agrees_with_event_accumulator(mixed_events, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import lossdoctor.ingest.tfevents as tfevents

    one_by_one = []
    each = tfevents._decode_each
    monkeypatch.setattr(
        tfevents,
        "_decode_each",
        lambda d, f, which, *a: one_by_one.append(which.size) or each(d, f, which, *a),
    )
    path = mixed_events
    scalars = tfevents.EventScalars()
    tfevents.read_event_bytes(path.read_bytes(), scalars, source=str(path))
    assert sum(one_by_one) < 0.05 * scalars.records  # the bulk decoder did the rest
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    expected_tags = set(acc.Tags()["scalars"]) | {"eval/tensor_loss"}
    assert set(scalars.tags) == expected_tags  # the histogram is not a scalar
    for tag in acc.Tags()["scalars"]:
        steps, values = scalars.tags[tag].arrays()
        events = acc.Scalars(tag)
        np.testing.assert_array_equal(steps, [e.step for e in events])
        np.testing.assert_array_equal(
            values.astype(np.float32), np.float32([e.value for e in events])
        )
    assert scalars.restarts == 1
    assert scalars.bad_records == 0
    assert len(scalars.tags["train/loss"].arrays()[0]) == 6_667


def test_event_file_corrupt_records_in_the_bulk_are_dropped_and_counted(mixed_events):
    from lossdoctor.ingest.tfevents import EventScalars, read_event_bytes

    data = bytearray(mixed_events.read_bytes())
    clean = EventScalars()
    read_event_bytes(bytes(data), clean, source="x")
    # flip a byte of the value of three loss records deep in the file
    hits = 0
    for at in (len(data) // 3, len(data) // 2, 2 * len(data) // 3):
        tag_at = data.find(b"train/loss", at)
        data[tag_at + len("train/loss") + 2] ^= 0x5A  # inside the float after the tag
        hits += 1
    broken = EventScalars()
    read_event_bytes(bytes(data), broken, source="x")
    assert broken.bad_records == hits
    clean_steps = clean.tags["train/loss"].arrays()[0]
    broken_steps = broken.tags["train/loss"].arrays()[0]
    assert len(broken_steps) == len(clean_steps) - hits
    assert set(broken_steps) < set(clean_steps)
    for tag in ("train/lr", "train/grad_norm", "eval/loss"):
        np.testing.assert_array_equal(broken.tags[tag].arrays()[1], clean.tags[tag].arrays()[1])


def test_average_ranks_match_pandas_rank():
    import pandas as pd

    from lossdoctor.features import average_ranks, spearman

    rng = np.random.default_rng(2)
    values = rng.integers(0, 20, 500).astype(np.float64)  # many ties
    np.testing.assert_array_equal(average_ranks(values), pd.Series(values).rank().to_numpy())
    x = np.arange(50, dtype=np.float64)
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)


def test_spikes_in_a_million_point_run_with_dips_are_not_lost_to_sampling():
    # a sample keeps every outlier, dips too: 500 dips in a million points are 0.25% of the
    # sample; the noise tail must come from the regular picks or it hides the spikes
    n = 1_000_000
    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, n)
    values = (1.0 + 3.0 * np.exp(-4 * x)) * np.exp(rng.normal(0, 0.03, n))
    values[rng.random(n) < 0.0005] *= 0.4
    values[np.linspace(n * 0.2, n * 0.9, 5).astype(int)] *= 3.0
    series = Series(role=TRAIN, column="loss", steps=np.arange(1.0, n + 1), values=values)
    report = evaluate(Run(source="big", reader="test", series={TRAIN: series}), load_rules())
    spikes = next(f for f in report.findings if f.rule == "spikes")
    assert SeriesView(series).sampled
    assert spikes.evidence["events"] == 5


# --- line numbers of rows read one a line -----------------------------------------------------


def test_consecutive_lines_index_as_the_array_of_their_lines():
    import pickle

    from lossdoctor.model import ConsecutiveLines

    lines = ConsecutiveLines(first=2, count=6)
    array = np.arange(2, 8, dtype=np.int64)
    mask = np.array([True, False, False, True, True, False])
    positions = np.array([5, 0, 3, -1])
    assert [lines[i] for i in range(-6, 6)] == [int(array[i]) for i in range(-6, 6)]
    np.testing.assert_array_equal(lines[mask], array[mask])
    np.testing.assert_array_equal(lines[positions], array[positions])
    np.testing.assert_array_equal(lines[positions.reshape(2, 2)], array[positions.reshape(2, 2)])
    np.testing.assert_array_equal(lines[np.array([], dtype=np.int64)], array[:0])
    np.testing.assert_array_equal(lines[np.array([-6, 5], dtype=np.int32)], [2, 7])
    np.testing.assert_array_equal(lines[1:5:2], array[1:5:2])
    np.testing.assert_array_equal(np.asarray(lines + 10), array + 10)
    assert lines.tolist() == array.tolist()
    assert lines.shape == array.shape == (len(lines),)
    assert 7 in lines
    assert 8 not in lines
    assert 1 not in lines
    assert 2.5 not in lines
    assert pickle.loads(pickle.dumps(lines)) == lines  # --jobs sends runs to workers
    for wrong in (6, -7):
        with pytest.raises(IndexError):
            lines[wrong]
    with pytest.raises(IndexError):
        lines[np.ones(5, dtype=bool)]
    for outside in ([0, 6], [-7, 0]):
        with pytest.raises(IndexError):
            lines[np.array(outside)]


def test_a_large_tables_rows_name_their_lines_without_an_array_of_them(tmp_path, monkeypatch):
    """A table read one row a line keeps its rows' lines as a range (a 10,000,000-row
    log's array of them would take 80 MB); the points and their evidence lines are those
    of an array."""
    from lossdoctor.model import ConsecutiveLines

    text = "# exported\n" + big_csv(3_000, cell=lambda i: "nan" if i == 2_500 else None)
    path = tmp_path / "big.csv"
    path.write_text(text)
    monkeypatch.setattr(delimited, "SMALL_TABLE_BYTES", 0)
    run = read_run(str(path))
    train, val = run.series[TRAIN], run.series["val"]
    assert isinstance(train.lines, ConsecutiveLines)
    assert train.lines.tolist() == list(range(3, 3_003))  # comment line 1, header line 2
    assert val.lines is not None
    assert val.lines.tolist() == list(range(3, 3_003, 50))
    bad = int(np.flatnonzero(np.isnan(train.values))[0])
    assert train.line_of(bad) == 2_503


def test_a_lone_carriage_return_in_a_large_table_ends_its_line_as_pandas_reads_it(
    tmp_path, monkeypatch
):
    """polars reads a cell holding only a carriage return as empty; the large-table reader
    (which looks the file over while polars parses it) reads it as pandas and the small
    table parser do: the end of a line."""
    path = tmp_path / "cr.csv"
    path.write_bytes(b"step,loss,val\n1,\r,3\n2,2.4,2.9\n3,2.3,\n4,2.2,2.8\n")
    small, large = both_engines(monkeypatch, path)
    same_run(small, large)
    np.testing.assert_array_equal(large.series[TRAIN].values, [3.0, 2.4, 2.3, 2.2])
    assert large.series[TRAIN].lines is not None
    assert large.series[TRAIN].lines.tolist() == [3, 4, 5, 6]


def test_steps_per_epoch_takes_a_huge_step_over_a_tiny_epoch_without_a_warning():
    """A row whose step over its epoch overflows (3.9e140 / 2.2e-168, as a fuzzed JSON
    Lines table held) is one more ratio for the median, not a RuntimeWarning on stderr
    (which the tests turn into an error)."""
    from lossdoctor.ingest.table import steps_per_epoch

    epochs = np.array([1.0, 1.0, 2.1830779694901786e-168])
    steps = np.array([1.0, 1.0, 3.9245042786216585e140])
    assert steps_per_epoch(epochs, steps) == {"steps_per_epoch": "1"}
