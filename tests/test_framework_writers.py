"""Logs written by the frameworks themselves (the versions installed with the test extra),
read with the right series and step axis, and a planted problem diagnosed: Lightning's
CSVLogger, the Hugging Face Trainer's trainer_state.json and printed dicts, and Keras'
CSVLogger, History and ``verbose=2`` output.  ``lossdoctor formats`` names these versions
as what the readers were tested against."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from lossdoctor.api import diagnose
from lossdoctor.ingest import read_run

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def active(path: Path) -> dict[str, str]:
    report = diagnose(str(path))
    assert report.error is None, report.error
    return {f.rule: f.severity for f in report.active}


def _overfitting_val(epoch: int) -> float:
    """A validation loss that bottoms out at epoch 4 and climbs after."""
    return 0.9 + 0.05 * abs(epoch - 4) + (0.04 * (epoch - 4) if epoch > 4 else 0.0)


def test_lightning_csvlogger_metrics_csv(tmp_path):
    loggers = pytest.importorskip("lightning.pytorch.loggers")
    logger = loggers.CSVLogger(save_dir=str(tmp_path), name="lightning_logs")
    step = 0
    for epoch in range(12):
        for _ in range(10):
            loss = 2.0 * math.exp(-step / 40) + 0.4
            logger.log_metrics({"train_loss": loss, "epoch": epoch}, step=step)
            step += 1
        logger.log_metrics({"val_loss": _overfitting_val(epoch), "epoch": epoch}, step=step - 1)
    logger.save()
    logger.finalize("success")
    path = tmp_path / "lightning_logs" / "version_0" / "metrics.csv"
    run = read_run(str(path))
    assert run.reader == "csv"
    assert run.columns["train"] == "train_loss"
    assert run.columns["val"] == "val_loss"
    assert run.series["train"].x_kind == "step"
    assert run.series["train"].steps[[0, -1]].tolist() == [0, 119]
    assert run.series["val"].steps[:2].tolist() == [9, 19]
    assert len(run.series["val"]) == 12
    assert active(path)["overfitting"] in ("warning", "error")


def test_transformers_trainer_state_and_printed_dicts(tmp_path):
    trainer_callback = pytest.importorskip("transformers.trainer_callback")
    state = trainer_callback.TrainerState(max_steps=300, logging_steps=10, eval_steps=50)
    progress = trainer_callback.ProgressCallback()
    control = trainer_callback.TrainerControl()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        progress.on_train_begin(None, state, control)
        for step in range(10, 301, 10):
            state.global_step, state.epoch = step, step / 100
            loss = 1.8 * math.exp(-step / 80) + 0.5 if step < 200 else float("nan")
            logs = {"loss": loss, "grad_norm": 0.9, "learning_rate": 2e-5, "epoch": state.epoch}
            # as Trainer.log: the history gets the step, the callbacks the logs
            state.log_history.append({**logs, "step": step})
            progress.on_log(None, state, control, logs=logs)
        progress.on_train_end(None, state, control)
    state.save_to_json(str(tmp_path / "trainer_state.json"))
    (tmp_path / "train.log").write_text(printed.getvalue())

    run = read_run(str(tmp_path / "trainer_state.json"))
    assert run.reader == "hf-trainer-state"
    assert run.series["train"].steps[[0, -1]].tolist() == [10, 300]
    assert run.series["train"].n_nonfinite == 11
    printed_run = read_run(str(tmp_path / "train.log"))
    assert printed_run.reader == "text:hf-printed"
    assert printed_run.series["train"].x_kind == "epoch"  # the printed dicts hold no step
    assert len(printed_run.series["train"]) == 30
    assert printed_run.series["train"].n_nonfinite == 11
    for path in (tmp_path / "trainer_state.json", tmp_path / "train.log"):
        assert active(path)["non-finite"] == "error"


def test_keras_csvlogger_history_and_verbose_output(tmp_path, monkeypatch):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    torch = pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    np = pytest.importorskip("numpy")
    torch.set_num_threads(1)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1))).astype("float32")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)]
    )
    # a learning rate far too high: the loss explodes to inf/NaN within a few epochs
    model.compile(optimizer=keras.optimizers.SGD(5.0), loss="mse")
    csv_path = tmp_path / "training.csv"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        history = model.fit(
            x, y, epochs=12, batch_size=64, validation_split=0.25, verbose=2,
            callbacks=[keras.callbacks.CSVLogger(str(csv_path))],
        )  # fmt: skip
    (tmp_path / "history.json").write_text(json.dumps(history.history))
    (tmp_path / "stdout.txt").write_text(printed.getvalue())
    expected = {"training.csv": "csv", "history.json": "json-history", "stdout.txt": "text:keras"}
    for name, reader in expected.items():
        run = read_run(str(tmp_path / name))
        assert run.reader == reader, name
        assert run.columns["train"] == "loss", name
        assert run.columns["val"] == "val_loss", name
        assert len(run.series["train"]) == 12, name
        assert run.series["train"].n_nonfinite > 0, name
        assert active(tmp_path / name)["non-finite"] == "error", name


def test_lightning_tqdm_progress_bar_as_captured(tmp_path, monkeypatch):
    # a real fit's TQDM bar redrawn into a captured stdout: the step is epoch x batches +
    # batch, and the training loss turns NaN from step 30 on.  (With rich installed the
    # default is the Rich bar, which writes only its last state when not on a terminal.)
    torch = pytest.importorskip("torch")
    lightning = pytest.importorskip("lightning")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)

    class Regression(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(8, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            if self.global_step >= 30:
                loss = loss * float("nan")
            self.log("train_loss", loss, prog_bar=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y), prog_bar=True)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(320, 8, generator=g)
    data = torch.utils.data.TensorDataset(x, x @ torch.randn(8, 1, generator=g))
    trainer = lightning.Trainer(
        max_epochs=6, logger=False, enable_checkpointing=False, enable_model_summary=False,
        accelerator="cpu", devices=1, log_every_n_steps=1,
        callbacks=[lightning.pytorch.callbacks.TQDMProgressBar()],
    )  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        trainer.fit(
            Regression(),
            torch.utils.data.DataLoader(data, batch_size=32),
            torch.utils.data.DataLoader(torch.utils.data.Subset(data, range(64)), 64),
        )
    path = tmp_path / "stdout.txt"
    path.write_text(printed.getvalue())
    run = read_run(str(path))
    assert run.reader == "text:lightning-progress"
    train = run.series["train"]
    assert train.x_kind == "step"
    # 6 epochs of 10 batches; the bar's reset to 0/10 at each epoch start (still showing
    # the last epoch's loss) is no point: it put that loss at step 0
    assert train.steps.tolist() == list(range(1, 61))
    assert run.series["val"].steps.tolist() == [10, 20, 30, 40, 50, 60]  # one per epoch
    # Lightning pads a NaN to "nan.0": it was dropped, the NaN half of the run unseen
    assert train.n_nonfinite == 30
    nonfinite = next(f for f in diagnose(str(path)).active if f.rule == "non-finite")
    assert nonfinite.severity == "error"
    assert "step 31" in nonfinite.message
    # watch reads the capture as check does: Lightning draws each step first with the
    # step before's loss, then with its own (watch took the first: every value one step
    # late); the bar's reset at each epoch's start and the last redraw with
    # "`Trainer.fit` stopped" run on were extra points (66 and 12 for 60 and 6)
    from lossdoctor.engine.loader import load_rules
    from lossdoctor.live.monitor import LiveMonitor

    monitor = LiveMonitor("-", load_rules())
    monitor.add_lines(printed.getvalue().replace("\r", "\n").split("\n"))
    monitor.end_of_input()
    watched = monitor.run()
    assert watched is not None
    for role in ("train", "val"):
        assert watched.series[role].steps.tolist() == run.series[role].steps.tolist(), role
        np.testing.assert_array_equal(watched.series[role].values, run.series[role].values)
