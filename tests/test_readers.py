"""Readers: one small file per dialect -> roles, columns, lengths, x kind, NaN kept."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest

from lossdoctor.errors import InputError
from lossdoctor.ingest import ColumnHints, read_bytes, read_run, read_runs

from conftest import FIXTURES


def read(name: str, **kw):
    return read_run(str(FIXTURES / name), **kw)


def test_lightning_sparse_rows_split_train_and_val():
    run = read("lightning_metrics.csv")
    assert run.columns == {"train": "train_loss_step", "val": "val_loss"}
    assert run.series["train"].steps.tolist() == [49, 99, 199, 249]
    assert run.series["val"].steps.tolist() == [156, 313]
    assert run.series["val"].values.tolist() == [1.7342, 1.601]
    assert run.series["val"].lines.tolist() == [4, 8]


def test_keras_csvlogger_epochs_and_na_missing():
    run = read("keras_csvlogger.csv")
    assert run.series["train"].x_kind == "epoch"
    assert run.series["val"].steps.tolist() == [0, 1, 3]  # NA is a missing cell, not a NaN
    assert run.series["train"].n_nonfinite == 0


def test_tensorboard_csv_export_names_the_series_from_the_tag_and_keeps_nan():
    run = read("run-train-tag-loss.csv")
    assert run.reader == "tensorboard-csv"
    train = run.series["train"]
    assert train.column == "loss"
    assert np.isnan(train.values[2])
    assert np.isinf(train.values[3])
    assert train.steps.tolist() == [100, 200, 300, 400]


def test_wandb_panel_export_drops_min_max_columns():
    run = read("wandb_export.csv")
    assert run.columns == {"train": "exp1 - train/loss", "val": "exp1 - val/loss"}
    assert run.series["val"].steps.tolist() == [0, 500]


def test_wandb_history_export_with_index_column():
    run = read("wandb_history.csv")
    assert run.columns == {"train": "train/loss", "lr": "train/lr"}
    assert "x: _step" in run.notes[0]


def test_tsv_is_sniffed():
    run = read("generic.tsv")
    assert run.reader == "tsv"
    assert run.series["train"].n_nonfinite == 1


def test_every_nan_spelling_is_kept_and_empty_cells_are_missing():
    values = read("nan_spellings.csv").series["train"].values
    assert len(values) == 7  # steps 7 (empty) and 8 (NA) are no points
    assert [math.isnan(v) for v in values[1:3]] == [True, True]
    assert values[3:6].tolist() == [math.inf, -math.inf, math.inf]


def test_jsonl_sparse_keys_and_nan_literal():
    run = read("records.jsonl")
    assert run.reader == "jsonl"
    assert run.series["val"].values.tolist() == [2.7]
    assert np.isnan(run.series["train"].values[1])
    assert run.series["train"].lines.tolist() == [1, 3, 4]


def test_hf_trainer_state_keeps_nan_and_ignores_the_summary_entry():
    run = read("trainer_state.json")
    assert run.reader == "hf-trainer-state"
    train = run.series["train"]
    assert train.steps.tolist() == [100, 200, 300]
    assert np.isnan(train.values[1])
    assert run.columns["val"] == "eval_loss"
    assert run.columns["grad_norm"] == "grad_norm"


def test_keras_history_dict_is_per_epoch():
    run = read("keras_history.json")
    assert run.series["train"].x_kind == "epoch"
    assert run.series["val"].values.tolist() == [2.4, 1.8, 1.4, 1.3]


def test_tensorboard_json_export_with_nan_strings():
    run = read("tb_export.json")
    assert run.reader == "tensorboard-json"
    assert np.isnan(run.series["train"].values[-1])


def test_resumed_run_replaces_overlapping_steps_and_says_so():
    run = read("resumed.csv")
    assert run.series["train"].steps.tolist() == [10, 20, 30, 40]
    assert run.series["train"].values.tolist() == [3.0, 2.7, 2.5, 2.3]
    assert any("resumed at line 6" in note for note in run.notes)


def test_restarted_counter_gives_one_run_per_session_and_says_so():
    first, second = read_runs(str(FIXTURES / "two_runs.csv"))
    assert first.series["train"].values.tolist() == [3.0, 2.5, 2.1]
    assert second.series["train"].values.tolist() == [3.1, 2.6, 2.0, 1.8]
    assert (first.group, second.group) == ("session 1 of 2", "session 2 of 2")
    assert any("from scratch started at line 5 (step 0)" in note for note in second.notes)


def test_column_overrides_win():
    run = read("keras_csvlogger.csv", hints=ColumnHints(train="val_loss", val="loss"))
    assert run.columns["train"] == "val_loss"
    assert run.columns["val"] == "loss"


def test_unknown_override_suggests_a_column():
    with pytest.raises(InputError, match="did you mean 'val_loss'"):
        read("keras_csvlogger.csv", hints=ColumnHints(val="val_los"))


def test_format_is_sniffed_from_content_not_name():
    data = (FIXTURES / "records.jsonl").read_bytes()
    assert read_bytes(data, source="-").reader == "jsonl"
    data = (FIXTURES / "trainer_state.json").read_bytes()
    assert read_bytes(data, source="-").reader == "hf-trainer-state"


def test_gzip_bom_and_crlf_are_read():
    text = "\ufeffstep,loss\r\n1,2.0\r\n2,1.5\r\n"
    run = read_bytes(gzip.compress(text.encode("utf-8")), source="log.csv.gz")
    assert run.series["train"].values.tolist() == [2.0, 1.5]


def test_headerless_two_columns_are_step_and_loss():
    run = read_bytes(b"1,2.5\n2,2.0\n3,1.5\n", source="x.csv")
    assert run.series["train"].steps.tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("name", "message", "line"),
    [
        ("ragged.csv", "malformed row", 3),
        ("header_only.csv", "no data rows", None),
        ("not_numeric.csv", "column 'loss' holds no numbers", 2),
        ("truncated.json", "invalid JSON", 1),
        ("scalar.json", "JSON holds no loss log", None),
        ("no_loss.csv", "no loss column found (columns: step, accuracy)", None),
    ],
)
def test_bad_input_is_one_line_error_with_file_and_line(name, message, line):
    with pytest.raises(InputError) as info:
        read(name)
    text = info.value.one_line()
    assert message in text
    assert "\n" not in text
    where = f"{FIXTURES / name}:{line}:" if line else f"{FIXTURES / name}:"
    assert text.startswith(where)


def test_missing_file_directory_empty_and_binary(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        read_run(str(tmp_path / "nope.csv"))
    with pytest.raises(InputError, match="no loss logs found in this folder"):
        read_run(str(tmp_path))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="file is empty"):
        read_run(str(tmp_path / "empty.csv"))
    (tmp_path / "bin").write_bytes(b"\x00\x01\x02garbage\x00")
    with pytest.raises(InputError, match="binary file"):
        read_run(str(tmp_path / "bin"))


def test_reading_never_modifies_the_input(tmp_path):
    path = tmp_path / "log.csv"
    original = (FIXTURES / "lightning_metrics.csv").read_bytes()
    path.write_bytes(original)
    read_run(str(path))
    assert path.read_bytes() == original
