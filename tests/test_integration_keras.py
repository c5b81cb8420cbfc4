"""The Keras 3 callback on a real ``model.fit`` (torch backend, CPU), with the README's
example as written."""

from __future__ import annotations

import json
import logging
import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")

from conftest import readme_python  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]
BATCHES_PER_EPOCH = 7  # 448 training rows / 64


class EndSeen(keras.callbacks.Callback):
    ended = False

    def on_train_end(self, logs=None):
        EndSeen.ended = True


def fit(tmp_path, monkeypatch, learning_rate):
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1)) * 0.5 + 0.3 * rng.normal(size=(512, 1))).astype("float32")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
    EndSeen.ended = False
    names = {"model": model, "x": x, "y": y, "EndSeen": EndSeen}
    code = readme_python("### Keras 3").replace("callbacks=[", "callbacks=[EndSeen(), ")
    code = code.replace("LossDoctorCallback(", "LossDoctorCallback(min_interval=0, ")
    exec(code, names)
    return model, json.loads((tmp_path / "reports" / "lossdoctor-report.json").read_text())


def test_healthy_run_trains_to_the_end_and_writes_a_healthy_report(tmp_path, monkeypatch):
    model, doc = fit(tmp_path, monkeypatch, 0.02)
    assert not model.stop_training
    assert EndSeen.ended
    run = doc["runs"][0]
    assert run["verdict"] == "healthy"
    assert run["series"]["train"]["points"] == 4 * BATCHES_PER_EPOCH
    assert run["series"]["val"]["points"] == 4


def test_learning_rate_far_too_high_stops_within_a_few_batches(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="lossdoctor")
    model, doc = fit(tmp_path, monkeypatch, 1e4)
    run = doc["runs"][0]
    assert model.stop_training
    assert EndSeen.ended
    assert run["series"]["train"]["last_step"] <= 8  # of 28 batches
    assert run["verdict"] == "failing"
    assert "non-finite" in run["drivers"]
    assert any("stopping training at step" in m for m in caplog.messages)


def test_batch_values_are_recovered_from_keras_running_means():
    from lossdoctor.integrations.keras import _batch_value

    losses = [4.0, 2.0, 3.0, 1.0]
    means = [sum(losses[: i + 1]) / (i + 1) for i in range(len(losses))]
    recovered = [_batch_value(m, means[i - 1] if i else None, i + 1) for i, m in enumerate(means)]
    assert recovered == pytest.approx(losses)
    assert np.isnan(_batch_value(float("nan"), 2.0, 3))
    assert _batch_value(float("inf"), 2.0, 3) == float("inf")
