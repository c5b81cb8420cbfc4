"""Fine-tuning stacks' logs (issue 17): each form is read with the right series and step
axis, and a problem planted in its fixture is diagnosed.

Fixtures: ``tests/fixtures/finetune/`` written by ``scripts/make_finetune_fixtures.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lossdoctor.api import diagnose
from lossdoctor.errors import InputError
from lossdoctor.ingest import read_bytes, read_run

from conftest import FIXTURES, run_json

FT = FIXTURES / "finetune"


def active(path) -> dict[str, str]:
    report = diagnose(str(path))
    assert report.error is None, report.error
    return {f.rule: f.severity for f in report.active}


def test_text_starting_with_a_bracket_is_a_text_log_not_json():
    run = read_run(str(FT / "bracket_prefixed.log"))
    assert run.reader == "text:generic"
    assert run.series["train"].steps[:3].tolist() == [10, 20, 30]
    assert active(FT / "bracket_prefixed.log")["non-finite"] == "error"


def test_bracket_tagged_key_value_bar_lines_keep_their_step():
    # "[train] step 10 | loss 4.1 | lr 3e-4": the tag before the first 'key value'
    # segment hid the step (the run was judged on row order, "index 0-2")
    lines = [f"[train] step {s} | loss {4.0 - s / 100:.3f} | lr 3e-4" for s in (10, 20, 30)]
    text = "[train] tokens/iter = 524288\n" + "\n".join(lines) + "\n"
    run = read_bytes(text.encode(), source="x.log")
    assert run.series["train"].x_kind == "step"
    assert run.series["train"].steps.tolist() == [10, 20, 30]
    val = read_bytes(b"[val] step 50 | loss 2.5\n[train] step 50 | loss 2.4\n", source="v.log")
    assert val.series["val"].steps.tolist() == [50]
    assert val.series["train"].steps.tolist() == [50]


def test_bracket_text_without_values_says_so_not_invalid_json():
    with pytest.raises(InputError) as err:
        read_bytes(b"[train] tokens/iter = many\n[train] starting\n", source="x.log")
    assert "invalid JSON" not in str(err.value)
    assert "no loss values found" in str(err.value)
    with pytest.raises(InputError, match="invalid JSON"):
        read_bytes(b'[{"loss": 1.0},\n', source="x.json")


def test_notebook_table_with_banner_and_trl_columns():
    run = read_run(str(FT / "hf_notebook_table.txt"))
    assert run.reader == "hf-notebook-table"
    assert run.columns == {"train": "loss", "val": "eval_loss"}
    val = run.series["val"]
    assert val.steps[:3].tolist() == [10, 210, 410]
    assert run.series["train"].steps[0] == 210  # "No log" in the first row is no point
    assert val.lines[0] == 3
    assert any("progress banner: step 6000/6000, epoch 3/3" in n for n in run.notes)
    assert active(FT / "hf_notebook_table.txt")["overfitting"] == "error"


def test_notebook_table_space_separated_unsloth():
    run = read_run(str(FT / "unsloth_notebook_spaces.txt"))
    assert run.series["train"].steps[-1] == 1200
    assert len(run.series["train"]) == 120
    assert active(FT / "unsloth_notebook_spaces.txt")["spikes"] == "warning"


def test_llamafactory_trainer_log_steps_are_current_steps():
    run = read_run(str(FT / "llamafactory_trainer_log.jsonl"))
    train, val = run.series["train"], run.series["val"]
    assert train.x_kind == "step"
    assert train.steps[:2].tolist() == [10, 20]
    assert val.steps.tolist() == [500, 1000, 1500, 2000, 2500, 3000]
    found = active(FT / "llamafactory_trainer_log.jsonl")
    assert found["spikes"] == "warning"
    assert "per-epoch" not in found
    report = diagnose(str(FT / "llamafactory_trainer_log.jsonl"))
    spikes = next(f for f in report.findings if f.rule == "spikes")
    assert "step 610" in spikes.message


def test_lightning_progress_bar_real_steps_and_one_val_per_epoch():
    run = read_run(str(FT / "lightning_progress.log"))
    assert run.reader == "text:lightning-progress"
    train, val = run.series["train"], run.series["val"]
    assert train.steps[:5].tolist() == [10, 20, 30, 40, 50]
    assert train.steps[-1] == 600
    assert val.steps.tolist() == [50.0 * (e + 1) for e in range(12)]
    report = diagnose(str(FT / "lightning_progress.log"))
    over = next(f for f in report.active if f.rule == "overfitting")
    assert "step 250" in over.message  # the end of epoch 4 (0-based), validation's best


def test_mmengine_validation_lines_count_epochs():
    run = read_run(str(FT / "mmengine_scalars.json"))
    train, val = run.series["train"], run.series["val"]
    assert len(train) == 240
    assert train.steps[-1] == 240
    assert val.column == "val/loss"
    assert val.steps.tolist() == [60, 120, 180, 240]
    assert any("mmengine: 4 validation lines" in n for n in run.notes)
    assert active(FT / "mmengine_scalars.json")["spikes"] == "warning"


def test_mmengine_iteration_based_validation_lines_are_not_called_epochs(tmp_path):
    # IterBasedTrainLoop: validation lines carry "step": <iteration> (the note said
    # "(step = epoch)" although the step is the iteration)
    lines = []
    for i in range(1, 301):
        loss = 3.0 * 0.99**i + 0.5
        lines.append({"lr": 2e-4, "data_time": 0.004, "loss": round(loss, 4), "time": 0.28,
                      "iter": i, "memory": 10762, "step": i})  # fmt: skip
        if i % 100 == 0:
            lines.append({"loss": round(loss * 1.1, 4), "data_time": 0.01, "time": 0.05,
                          "step": i})  # fmt: skip
    path = tmp_path / "scalars.json"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = read_run(str(path))
    assert run.series["train"].steps[[0, -1]].tolist() == [1, 300]
    assert run.series["val"].steps.tolist() == [100, 200, 300]
    assert run.series["val"].column == "val/loss"
    moved = [n for n in run.notes if n.startswith("mmengine: ")]
    assert moved == [
        "mmengine: 3 validation lines (step = iteration), their values named val/<key>"
    ]


def test_ultralytics_total_is_the_sum_of_parts():
    run = read_run(str(FT / "ultralytics_results.csv"))
    train, val = run.series["train"], run.series["val"]
    assert train.x_kind == "epoch"
    assert train.steps[0] == 1
    parts = ["train/box_loss", "train/cls_loss", "train/dfl_loss"]
    assert all(p in run.series for p in parts)
    total = sum(run.series[p].values for p in parts)
    np.testing.assert_allclose(train.values, total)
    assert {"val/box_loss", "val/cls_loss", "val/dfl_loss"} <= set(run.series)
    assert val.column == "val/loss"
    assert any(
        "the sum of train/box_loss + train/cls_loss + train/dfl_loss" in n for n in run.notes
    )
    assert active(FT / "ultralytics_results.csv")["overfitting"] == "error"


def test_detectron2_total_loss_judged_parts_kept():
    run = read_run(str(FT / "detectron2_metrics.json"))
    assert run.columns["train"] == "total_loss"
    assert {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"} <= set(run.series)
    assert run.series["loss_cls"].steps[:2].tolist() == [1, 3]
    assert any("logged total of loss_box_reg, loss_cls" in n for n in run.notes)
    assert active(FT / "detectron2_metrics.json")["divergence"] == "error"


def test_parts_in_json_report(runner):
    code, doc = run_json(runner, str(FT / "ultralytics_results.csv"))
    assert "train/cls_loss" in doc["runs"][0]["series"]
    assert code == 1


ULTRALYTICS_PARTS = [
    "train/box_loss", "train/cls_loss", "train/dfl_loss",
    "val/box_loss", "val/cls_loss", "val/dfl_loss",
]  # fmt: skip


def test_loss_parts_are_listed_in_the_logs_column_order(runner):
    # the parts were gathered in a set: their order in the report (text and JSON) changed
    # from one process to the next with Python's hash seed
    _, doc = run_json(runner, str(FT / "ultralytics_results.csv"))
    series = list(doc["runs"][0]["series"])
    assert [s for s in series if s in ULTRALYTICS_PARTS] == ULTRALYTICS_PARTS
    _, doc = run_json(runner, str(FT / "detectron2_metrics.json"))
    parts = [s for s in doc["runs"][0]["series"] if s.startswith("loss_")]
    assert parts == ["loss_box_reg", "loss_cls", "loss_rpn_cls", "loss_rpn_loc"]


def test_torchtune_disk_logger():
    run = read_run(str(FT / "torchtune_log_1718000000.txt"))
    assert run.reader == "text:torchtune"
    assert run.series["train"].steps[:3].tolist() == [1, 2, 3]
    assert run.columns["lr"] == "lr"
    # a clipped norm is written as the tensor's repr: "grad_norm:tensor(0.5010, device='cuda:0')"
    assert run.series["grad_norm"].values[:2].tolist() == [0.501, 0.502]
    assert active(FT / "torchtune_log_1718000000.txt")["high-flatline"] == "error"


def test_build_nanogpt_log_train_val_hella_lines():
    # build-nanogpt's log/log.txt: "<step> train X", "<step> val X", "<step> hella X"
    run = read_run(str(FT / "build_nanogpt_log.txt"))
    assert run.reader == "text:build-nanogpt"
    assert run.series["train"].steps[:3].tolist() == [0, 1, 2]
    assert run.series["train"].values[0] == pytest.approx(4.527508)
    assert run.series["val"].steps[:2].tolist() == [0, 10]
    assert run.series["val"].values[0] == pytest.approx(3.0037)
    assert len(run.series["val"]) == 30  # hella lines are accuracy, never validation loss
    assert active(FT / "build_nanogpt_log.txt")["overfitting"] == "error"


def test_torchtune_jsonl_metric_logger():
    # DiskLogger(output_fmt="jsonl"): {"step": N, "loss": X, ...} a line
    run = read_run(str(FT / "torchtune_log_1718000001.jsonl"))
    assert run.series["train"].steps[:3].tolist() == [1, 2, 3]
    assert run.series["grad_norm"].values[0] == pytest.approx(0.501)
    assert active(FT / "torchtune_log_1718000001.jsonl")["spikes"] == "warning"


def test_torchtune_progress_bar_steps_from_the_description():
    # tqdm redraws "<epoch>|<step>|Loss: <loss>:  3%|...| 2/60 [...]" with carriage returns,
    # several times per step (update, then set_description; close redraws the last)
    run = read_run(str(FT / "torchtune_stdout.log"))
    assert run.reader == "text:torchtune"
    train = run.series["train"]
    assert train.x_kind == "step"
    assert train.steps.tolist() == list(range(1, 121))  # one point per optimizer step
    assert train.values[0] == pytest.approx(4.699500745739669)
    assert any("progress bar: 120 optimizer steps" in n for n in run.notes)
    report = diagnose(str(FT / "torchtune_stdout.log"))
    (finding,) = [f for f in report.active if f.rule == "non-finite"]
    assert finding.severity == "error"
    assert finding.evidence["last_finite_step"] == 96


def _watched(data: bytes):
    """Return the run and report ``watch`` makes of ``data`` (split into lines as watch
    splits its input)."""
    from lossdoctor.engine.loader import load_rules
    from lossdoctor.live.monitor import LiveMonitor
    from lossdoctor.live.sources import split_lines

    lines, rest = split_lines(b"", data + b"\n")
    assert rest == b""
    monitor = LiveMonitor("-", load_rules())
    monitor.add_lines(lines)
    report = monitor.report(finished=True)  # the end of the input: what was held is read
    return monitor.run(), report


@pytest.mark.parametrize("name", ["torchtune_stdout.log", "torchtune_log_1718000000.txt"])
def test_watch_reads_torchtune_output_on_the_steps_check_reads(name):
    # the tqdm bar's own step, each step once however often tqdm redraws it (watch
    # took the row order: 240 points, steps 4-243, for 120 optimizer steps)
    checked = read_run(str(FT / name))
    run, report = _watched((FT / name).read_bytes())
    assert run is not None
    assert report is not None
    train = run.series["train"]
    assert train.x_kind == "step"
    assert train.steps.tolist() == checked.series["train"].steps.tolist()
    np.testing.assert_array_equal(train.values, checked.series["train"].values)
    if name == "torchtune_stdout.log":
        (finding,) = [f for f in report.active if f.rule == "non-finite"]
        assert finding.evidence["last_finite_step"] == 96
    else:  # a tensor's repr is its number, not a "cuda" series from device='cuda:0'
        assert "cuda" not in run.series
        np.testing.assert_array_equal(
            run.series["grad_norm"].values, checked.series["grad_norm"].values
        )


def test_watch_reads_a_lightning_progress_bar_on_the_steps_check_reads(tmp_path):
    # epoch x batches + batch, each step once, one validation value per epoch (watch took
    # the row order: steps 0-71, and 67 validation points for 12 validations)
    path = FT / "lightning_progress.log"
    checked = read_run(str(path))
    run, report = _watched(path.read_bytes())
    assert run is not None
    assert report is not None
    for role in ("train", "val"):
        assert run.series[role].steps.tolist() == checked.series[role].steps.tolist()
        np.testing.assert_array_equal(run.series[role].values, checked.series[role].values)
    assert len(run.series["val"]) == 12
    # a NaN the bar prints as 'nan.0' is read live too
    text = path.read_text(encoding="utf-8").replace("train_loss=0.357,", "train_loss=nan.0,")
    run, report = _watched(text.encode())
    assert report is not None
    assert [f.rule for f in report.active if f.severity == "error"] == ["non-finite"]


def test_nanogpt_style_step_lines_with_named_values_in_check_and_watch():
    # "step N: loss X, lr Y, time Zms, mfu W%" and "step N: train loss X, val loss Y, lr Z":
    # were read by no reader (check judged the 13 validation points as the training loss)
    path = FIXTURES / "text" / "nanogpt_step_pairs.log"
    checked = read_run(str(path))
    assert checked.reader == "text:nanogpt"
    train, val, lr = (checked.series[role] for role in ("train", "val", "lr"))
    assert (train.column, val.column) == ("loss", "val_loss")
    assert train.x_kind == "step"
    assert train.steps[[0, 1, -1]].tolist() == [0, 25, 3000]
    assert [len(train), len(val), len(lr)] == [121, 13, 121]
    assert train.values[1] == pytest.approx(4.0371)
    assert val.steps[:2].tolist() == [0, 250]
    assert lr.values[1] == pytest.approx(7.8e-05)
    report = diagnose(str(path))
    (finding,) = [f for f in report.active if f.rule == "overfitting"]
    assert finding.severity == "warning"
    assert finding.evidence["best_value"] == pytest.approx(1.614, abs=1e-3)
    assert finding.evidence["smoothed_best_step"] == 1250
    # watch reads the same lines through the same parser
    run, live = _watched(path.read_bytes())
    assert run is not None
    assert live is not None
    for role in ("train", "val", "lr"):
        assert run.series[role].steps.tolist() == checked.series[role].steps.tolist()
        np.testing.assert_array_equal(run.series[role].values, checked.series[role].values)
    assert [f.rule for f in live.active if f.severity != "info"] == ["overfitting"]


def test_swift_logging_jsonl_step_from_global_step_over_max_steps():
    run = read_run(str(FT / "swift_logging.jsonl"))
    train = run.series["train"]
    assert train.steps[:2].tolist() == [10, 20]
    assert train.steps[-1] == 1500
    assert len(train) == 150
    assert train.n_nonfinite == 30
    report = diagnose(str(FT / "swift_logging.jsonl"))
    nonfinite = next(f for f in report.active if f.rule == "non-finite")
    assert nonfinite.severity == "error"
    assert "step 1210" in nonfinite.message


@pytest.mark.parametrize("name", ["trl_quoted_stdout.log", "axolotl_stdout.log"])
def test_printed_dicts_quoted_numbers_and_axolotl(name):
    run = read_run(str(FT / name))
    assert run.reader == "text:hf-printed"
    assert len(run.series["train"]) == 120
    assert run.series["train"].values[0] == pytest.approx(3.2411)
    assert active(FT / name)["oscillation"] == "error"


def test_lightning_rich_progress_bar():
    lines = []
    for epoch in range(4):
        for batch in (50, 100):
            val = f" val_loss: {1.5 - 0.1 * epoch:.3f}" if batch == 100 else ""
            lines.append(
                f"Epoch {epoch}/3  ━━━━━━━━━━━━━━━━━━━━ {batch}/100 0:00:12 • 0:00:00 20.10it/s "
                f"v_num: 0 train_loss: {2.0 - 0.2 * epoch - batch / 1000:.3f}{val}"
            )
    run = read_bytes(("\n".join(lines) + "\n").encode(), source="rich.log")
    assert run.reader == "text:lightning-progress"
    assert run.series["train"].steps.tolist() == [50, 100, 150, 200, 250, 300, 350, 400]
    assert run.series["val"].steps.tolist() == [100, 200, 300, 400]
    assert run.series["val"].values.tolist() == pytest.approx([1.5, 1.4, 1.3, 1.2])


def test_loss_weights_and_scales_are_not_loss_parts():
    lines = [
        f'{{"iteration": {i}, "total_loss": {2 - i / 100}, "loss_cls": {1 - i / 200}, '
        f'"loss_box_reg": {1 - i / 200}, "loss_weight": 1.0, "loss_scale": 65536}}'
        for i in range(1, 60)
    ]
    run = read_bytes(("\n".join(lines) + "\n").encode(), source="metrics.json")
    assert run.columns["train"] == "total_loss"
    assert {"loss_cls", "loss_box_reg"} <= set(run.series)
    assert "loss_weight" not in run.series
    assert "loss_scale" not in run.series
