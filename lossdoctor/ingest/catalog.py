"""The readers lossdoctor has, with an example of what each recognises (for
``lossdoctor formats`` and the README)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReaderInfo:
    """One reader: the name the report shows, what it reads, an example of its input."""

    name: str
    reads: str
    example: str


READERS: tuple[ReaderInfo, ...] = (
    ReaderInfo("csv / tsv", "CSV or TSV with a header; delimiter sniffed; Lightning metrics.csv (sparse rows), Keras CSVLogger (NA), W&B exports", "step,loss,val_loss"),
    ReaderInfo("tensorboard-csv", "TensorBoard scalar export; the tag comes from the file name", "Wall time,Step,Value"),
    ReaderInfo("tensorboard-json", "TensorBoard JSON export", '[[1700000000.5, 100, 2.31], ...]'),
    ReaderInfo("jsonl", "one JSON object per line (also detectron2 metrics.json, mmengine scalars.json)", '{"step": 100, "loss": 2.31}'),
    ReaderInfo("json-records", "a JSON list of records", '[{"step": 100, "loss": 2.31}, ...]'),
    ReaderInfo("json-history", "a dict of per-epoch lists (Keras History.history)", '{"loss": [2.3, 1.9], "val_loss": [2.4, 2.0]}'),
    ReaderInfo("hf-trainer-state", "Hugging Face trainer_state.json (log_history)", '{"log_history": [{"loss": 2.31, "step": 100}, ...]}'),
    ReaderInfo("tfevents", "TensorBoard event files and log folders (simple_value and tensor scalars, every point)", "events.out.tfevents.1700000000.host"),
    ReaderInfo("mlflow-metric", "one MLflow metric file", "1700000000123 2.31 100"),
    ReaderInfo("mlflow-file", "an MLflow file-store run folder (mlruns/<exp>/<run>/metrics/<key>)", "mlruns/0/<run id>/"),
    ReaderInfo("mlflow-sqlite", "an MLflow SQLite tracking store; one run per MLflow run (--run picks)", "mlflow.db"),
    ReaderInfo("text:nanogpt", "nanoGPT stdout", "iter 100: loss 2.8901, time 35.1ms / step 500: train loss 1.98, val loss 2.01"),
    ReaderInfo("text:llm.c", "llm.c main.log and stdout", "s:500 trl:3.91 / s:500 tel:3.90 / step 1/19560 | loss 11.01 |"),
    ReaderInfo("text:hf-printed", "Hugging Face Trainer printed dicts (values may be quoted; nan understood)", "{'loss': 2.1, 'grad_norm': nan, 'epoch': 0.5}"),
    ReaderInfo("text:megatron", "Megatron-LM / Megatron-DeepSpeed", "iteration 100/ 1000 | ... | lm loss: 2.3E+00 |"),
    ReaderInfo("text:fairseq", "fairseq simple log format", "epoch 001:  100 / 1891 loss=11.52, ..., num_updates=100"),
    ReaderInfo("text:mmengine", "mmengine / mmcv text logs", "Epoch(train) [1][240/735]  lr: 2e-04  loss: 2.5128"),
    ReaderInfo("text:keras", "Keras progress-bar stdout (epoch-end lines)", "449/449 - 37s - loss: 1.8313 - val_loss: 1.7856"),
    ReaderInfo("text:generic", "any key=value, key: value or 'key value |' lines", "step=100 loss=2.31 lr=3e-4"),
    ReaderInfo("folder", "a folder of runs: event files, version_*/metrics.csv, checkpoint-*/trainer_state.json, MLflow runs", "lightning_logs/"),
)  # fmt: skip


def markdown_table() -> str:
    """Return the README's table of readers (Markdown)."""
    rows = ["| reader | reads | example |", "|---|---|---|"]
    for info in READERS:
        example = info.example.replace("|", "\\|")
        rows.append(f"| `{info.name}` | {info.reads} | `{example}` |")
    return "\n".join(rows) + "\n"
