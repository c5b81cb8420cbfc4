"""The Lightning callback on a real Trainer: a small regression module trained on CPU with
the README's example as written."""

from __future__ import annotations

import json
import logging

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")

from conftest import readme_python  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]
FAULT_STEP = 20


class Regression(L.LightningModule):
    """A two-layer net fitting a noisy linear target; NaN loss from ``nan_at`` on."""

    def __init__(self, nan_at: int | None = None) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
        )
        self.nan_at = nan_at
        self.ended = False

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        if self.nan_at is not None and self.global_step >= self.nan_at:
            loss = loss * float("nan")
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)

    def on_train_end(self):
        self.ended = True


def fit(tmp_path, monkeypatch, module):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g) * 0.5 + 0.3 * torch.randn(512, 1, generator=g)
    data = torch.utils.data.TensorDataset(x, y)
    names = {
        "module": module,
        "train_loader": torch.utils.data.DataLoader(data, batch_size=32),
        "val_loader": torch.utils.data.DataLoader(torch.utils.data.Subset(data, range(64)), 64),
    }
    # judged at every logging step (no pacing): every prefix of the healthy run is judged
    code = readme_python("### PyTorch Lightning").replace(
        "LossDoctorCallback(", "LossDoctorCallback(min_interval=0, "
    )
    exec(code, names)
    trainer = names["trainer"]
    report = json.loads((tmp_path / trainer.log_dir / "lossdoctor-report.json").read_text())
    return trainer, report


def test_healthy_run_trains_to_the_end_and_writes_a_healthy_report(tmp_path, monkeypatch):
    module = Regression()
    trainer, doc = fit(tmp_path, monkeypatch, module)
    assert trainer.current_epoch == 4
    assert trainer.global_step == 64
    assert module.ended
    run = doc["runs"][0]
    assert run["verdict"] == "healthy"
    assert run["columns"]["train"] == "train_loss"
    assert run["columns"]["val"] == "val_loss"
    assert run["series"]["val"]["points"] == 4  # one per epoch, not the sanity check
    assert run["series"]["train"]["points"] == 32  # log_every_n_steps=2


def test_nan_run_stops_at_the_next_logging_step_and_names_the_finding(
    tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING, logger="lightning.pytorch.callbacks.lossdoctor")
    module = Regression(nan_at=FAULT_STEP)
    trainer, doc = fit(tmp_path, monkeypatch, module)
    assert FAULT_STEP < trainer.global_step <= FAULT_STEP + 2 * 2
    assert trainer.should_stop
    assert module.ended
    run = doc["runs"][0]
    assert run["verdict"] == "failing"
    assert "non-finite" in run["drivers"]
    assert any("lossdoctor: error LD101 non-finite" in m for m in caplog.messages)
    # as the README warns: ModelCheckpoint (no monitor) still saves the epoch's broken weights
    saved = [p.name for p in (tmp_path / trainer.log_dir / "checkpoints").glob("*.ckpt")]
    assert saved == [f"epoch=1-step={trainer.global_step}.ckpt"]


def test_gradient_accumulation_feeds_one_point_per_optimizer_step(tmp_path, monkeypatch):
    from lossdoctor.integrations.lightning import LossDoctorCallback

    torch.manual_seed(0)
    monkeypatch.chdir(tmp_path)
    data = torch.utils.data.TensorDataset(torch.randn(256, 8), torch.randn(256, 1))
    callback = LossDoctorCallback(stop_on=None, report_formats=[])
    trainer = L.Trainer(
        max_epochs=1, log_every_n_steps=1, accumulate_grad_batches=2, callbacks=[callback],
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        logger=False,
    )  # fmt: skip
    trainer.fit(Regression(), torch.utils.data.DataLoader(data, batch_size=32))
    assert trainer.global_step == 4
    series = callback.report.to_dict()["runs"][0]["series"]["train"]
    # steps 0 (the first micro-batch, before any update), 1, 2, 3, 4: not 8 micro-batches
    assert (series["points"], series["first_step"], series["last_step"]) == (5, 0, 4)
    assert not list(tmp_path.iterdir())  # no report files asked for, none written
