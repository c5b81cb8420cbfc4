"""The Hugging Face callback on a real Trainer: a GPT-2 shrunk to one tiny layer, built from
a config (no hub download), trained on CPU with the README's example as written."""

from __future__ import annotations

import json
import logging
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from conftest import readme_python  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]
VOCAB, LENGTH = 32, 16
FAULT_STEP = 12


class Counting(torch.utils.data.Dataset):
    """Sequences that count up modulo the vocabulary: easy to learn, loss falls fast."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, object]:
        ids = torch.tensor([(index + k) % VOCAB for k in range(LENGTH)])
        return {"input_ids": ids, "labels": ids}


class NaNAfter(transformers.GPT2LMHeadModel):
    """The tiny GPT-2 whose training loss turns NaN after ``FAULT_STEP`` optimizer steps."""

    calls = 0

    def forward(self, input_ids=None, labels=None, **kwargs):
        out = super().forward(input_ids=input_ids, labels=labels, **kwargs)
        if self.training:
            NaNAfter.calls += 1
            if NaNAfter.calls > FAULT_STEP:
                out.loss = out.loss * float("nan")
        return out


class EndSeen(transformers.TrainerCallback):
    ended = False

    def on_train_end(self, args, state, control, **kwargs):
        EndSeen.ended = True


def train(tmp_path, monkeypatch, model_class):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=LENGTH, n_embd=32, n_layer=1, n_head=2,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    NaNAfter.calls, EndSeen.ended = 0, False
    names = {
        "model": model_class(config),
        "train_ds": Counting(256),
        "eval_ds": torch.utils.data.Subset(Counting(256), range(16)),
    }
    code = readme_python("### Hugging Face `Trainer`").replace(
        # judged at every logging step (no pacing): every prefix of the healthy run is judged
        "callbacks=[LossDoctorCallback(",
        "callbacks=[EndSeen(), LossDoctorCallback(min_interval=0, ",
    )
    names["EndSeen"] = EndSeen
    exec(code, names)
    return names["trainer"], json.loads((tmp_path / "out" / "lossdoctor-report.json").read_text())


def test_healthy_run_trains_to_the_end_and_writes_a_healthy_report(tmp_path, monkeypatch):
    trainer, doc = train(tmp_path, monkeypatch, transformers.GPT2LMHeadModel)
    assert trainer.state.global_step == 30
    assert EndSeen.ended
    assert doc["runs"][0]["verdict"] == "healthy"
    assert doc["runs"][0]["series"]["val"]["points"] == 3
    for suffix in (".md", ".html"):
        assert (tmp_path / "out" / f"lossdoctor-report{suffix}").stat().st_size > 500
    assert (tmp_path / "out" / "checkpoint-30").is_dir()  # the Trainer's own final save


def test_nan_run_stops_within_two_logging_steps_and_names_the_finding(
    tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING, logger="transformers.trainer")
    # transformers' library logger propagates to the root logger (where caplog listens)
    # only when the CI environment variable is set: listen on the Trainer's logger itself
    trainer_logger = logging.getLogger("transformers.trainer")
    trainer_logger.addHandler(caplog.handler)
    try:
        trainer, doc = train(tmp_path, monkeypatch, NaNAfter)
    finally:
        trainer_logger.removeHandler(caplog.handler)
    assert FAULT_STEP < trainer.state.global_step <= FAULT_STEP + 2 * 2  # logging_steps=2
    assert EndSeen.ended  # the Trainer's end of training still ran
    run = doc["runs"][0]
    assert run["verdict"] == "failing"
    # the Trainer hides the NaN loss itself: the NaN gradient norm gives it away
    gradient_rules = {"masked-non-finite", "non-finite-grad-norm"}
    assert run["drivers"]
    assert set(run["drivers"]) <= gradient_rules
    logged = [m for m in caplog.messages if m.startswith("lossdoctor: error LD10")]
    assert any(rule in m for m in logged for rule in gradient_rules)
    assert any("stopping training at step" in m for m in caplog.messages)
    assert not list((tmp_path / "out").glob("checkpoint-*"))  # no checkpoint of broken weights
