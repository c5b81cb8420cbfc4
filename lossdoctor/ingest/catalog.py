"""The readers lossdoctor has, with an example of what each recognises (for
``lossdoctor formats`` and the README)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReaderInfo:
    """One reader: the name the report shows, what it reads, an example of its input, and
    what it was tested against (the writer library and version that wrote the test
    fixtures, or the source the fixtures follow)."""

    name: str
    reads: str
    example: str
    tested: str = "fixtures written from the format's documentation"


READERS: tuple[ReaderInfo, ...] = (
    ReaderInfo("csv / tsv", "CSV or TSV with a header; delimiter sniffed; Lightning metrics.csv (sparse rows), Keras CSVLogger (NA), W&B exports; Ultralytics results.csv (the loss parts summed into the total)", "step,loss,val_loss", "lightning 2.6.6 CSVLogger and keras 3.15.1 CSVLogger (tests write files with them); Ultralytics results.csv and W&B exports: fixtures in their documented shape (no library in the tests)"),
    ReaderInfo("tensorboard-csv", "TensorBoard scalar export; the tag comes from the file name", "Wall time,Step,Value", "tensorboard 2.21.0 scalars plugin source (its CSV header and rows; fixtures written from it)"),
    ReaderInfo("tensorboard-json", "TensorBoard JSON export", "[[1700000000.5, 100, 2.31], ...]", "tensorboard 2.21.0 scalars plugin source (its JSON rows, NaN as strings; fixtures written from it)"),
    ReaderInfo("jsonl", "one JSON object per line; other lines skipped and counted: a text preamble above them (a warning that python train.py > log.txt caught), tqdm or print lines among them (also detectron2 metrics.json with its loss parts, mmengine scalars.json with validation lines counted in epochs or iterations, LLaMA-Factory trainer_log.jsonl: step = current_steps, ms-swift logging.jsonl: step from global_step/max_steps)", "{\"step\": 100, \"loss\": 2.31}", "fixtures in the line shapes of the detectron2 JSONWriter, mmengine LocalVisBackend, LLaMA-Factory LogCallback and ms-swift sources (those libraries are not installed in the tests)"),
    ReaderInfo("json-records", "a JSON list of records", "[{\"step\": 100, \"loss\": 2.31}, ...]", "fixtures written from the format's documentation (no writer library)"),
    ReaderInfo("json-history", "a dict of per-epoch lists (Keras History.history)", "{\"loss\": [2.3, 1.9], \"val_loss\": [2.4, 2.0]}", "keras 3.15.1 (tests dump History.history from a real fit)"),
    ReaderInfo("hf-trainer-state", "Hugging Face trainer_state.json (log_history)", "{\"log_history\": [{\"loss\": 2.31, \"step\": 100}, ...]}", "transformers 5.24.0 (tests write it with TrainerState.save_to_json)"),
    ReaderInfo("tfevents", "TensorBoard event files and log folders (simple_value and tensor scalars, every point)", "events.out.tfevents.1700000000.host", "tensorboard 2.21.0 (tests write event files with it)"),
    ReaderInfo("wandb-offline", "W&B run files (wandb/offline-run-*/run-<id>.wandb, also online runs' local copy) without the wandb package: every logged number on _step, or on train/global_step where the run logs it (the Hugging Face Trainer), or on --step-col KEY; a run folder is one run", "wandb/offline-run-20240101_120000-abc123/", "wandb 0.31.0 (tests write offline runs with it)"),
    ReaderInfo("mlflow-metric", "one MLflow metric file", "1700000000123 2.31 100", "mlflow-skinny 3.17.2 (tests write a file store with it, MLFLOW_ALLOW_FILE_STORE=true)"),
    ReaderInfo("mlflow-file", "an MLflow file-store run folder (mlruns/<exp>/<run>/metrics/<key>), named by its run name", "mlruns/0/<run id>/", "mlflow-skinny 3.17.2 (tests write a file store with it, MLFLOW_ALLOW_FILE_STORE=true)"),
    ReaderInfo("mlflow-sqlite", "an MLflow SQLite tracking store (the default from MLflow 3.7); +Inf stored as 1.797e+308 and NaN flagged by is_nan read back as Inf and NaN; one run per MLflow run (--run picks)", "mlflow.db", "mlflow-skinny 3.17.2 (tests write the store with it)"),
    ReaderInfo("trackio", "a trackio project database (metrics table, JSON values, NaN as \"NaN\"); one run per run_name (--run picks); on train/global_step where the run logs it, or --step-col KEY", "~/.cache/huggingface/trackio/<project>.db", "trackio 0.43.0 (tests write the database with it)"),
    ReaderInfo("trackio-parquet", "a trackio Parquet export (run_name, step and one column per metric)", "<project>.parquet", "trackio 0.43.0 rows (its export flattening), written with polars"),
    ReaderInfo("swanlab", "SwanLab 0.8+ run files (swanlog/run-*/run-<id>.swanlab) without the swanlab package; a run folder is one run, named by its experiment's name", "swanlog/run-20240101_120000-abc123/", "swanlab 0.10.3 (tests write offline runs with it)"),
    ReaderInfo("swanlab (before 0.8)", "SwanLab 0.4-0.7 run folders without the swanlab package: backup.swanlab (JSON records, 0.6-0.7) or, in local mode, logs/<column id>/<N>.log named from swanlog/runs.swanlab; system metrics left out", "swanlog/run-20240101_120000-abc123/logs/0/1000.log", "swanlab 0.7.20 folders (offline and local mode, read here); tests write the layouts from swanlab 0.7.20 / swanboard 0.1.9b3 sources"),
    ReaderInfo("text:nanogpt", "nanoGPT stdout, and its variants' 'step N:' lines of comma-separated name value items", "iter 100: loss 2.8901, time 35.1ms / step 500: train loss 1.98, val loss 2.01 / step 0: loss 10.9, lr 6e-4", "nanoGPT train.py's print formats (a script, no library version; fixtures written from it)"),
    ReaderInfo("text:build-nanogpt", "build-nanogpt's log/log.txt (train loss, validation loss, HellaSwag accuracy)", "250 val 3.4567 / 250 hella 0.2950 / 250 train 3.391234", "build-nanogpt train_gpt2.py's log lines (a script, no library version; fixtures written from it)"),
    ReaderInfo("text:llm.c", "llm.c main.log and stdout", "s:500 trl:3.91 / s:500 tel:3.90 / step 1/19560 | loss 11.01 |", "llm.c train_gpt2 main.log and stdout formats (a C program, no library version; fixtures written from it)"),
    ReaderInfo("text:hf-printed", "Hugging Face Trainer printed dicts (values may be quoted, as TRL prints them; nan understood); axolotl stdout", "{'loss': 2.1, 'grad_norm': nan, 'epoch': 0.5}", "transformers 5.24.0 ProgressCallback (tests print dicts with it); TRL and axolotl lines from their sources"),
    ReaderInfo("text:megatron", "Megatron-LM / Megatron-DeepSpeed", "iteration 100/ 1000 | ... | lm loss: 2.3E+00 |", "Megatron-LM training_log format (not installed in the tests; fixtures written from its source)"),
    ReaderInfo("text:fairseq", "fairseq simple log format", "epoch 001:  100 / 1891 loss=11.52, ..., num_updates=100", "fairseq simple progress format (not installed in the tests; fixtures written from its source)"),
    ReaderInfo("text:mmengine", "mmengine / mmcv text logs", "Epoch(train) [1][240/735]  lr: 2e-04  loss: 2.5128", "mmengine / mmcv text logger format (not installed in the tests; fixtures written from its source)"),
    ReaderInfo("text:keras", "Keras progress-bar stdout (epoch-end lines)", "449/449 - 37s - loss: 1.8313 - val_loss: 1.7856", "keras 3.15.1 (tests capture a real fit's verbose=2 output)"),
    ReaderInfo("text:generic", "any key=value, key: value or 'key value |' lines", "step=100 loss=2.31 lr=3e-4", "no one writer: fixtures of common key=value and key: value lines"),
    ReaderInfo("hf-notebook-table", "the Hugging Face / unsloth notebook table as pasted: progress banner, tab or space separated, 'No log' cells, extra TRL columns", "[300/300 05:12, Epoch 3/3] / Step  Training Loss  Validation Loss", "transformers 5.24.0 NotebookProgressCallback source (utils/notebook.py: the columns and the [step/total time, Epoch e/n] banner a rendered notebook shows; fixtures written from it)"),
    ReaderInfo("text:lightning-progress", "PyTorch Lightning TQDM and Rich progress bars: step = epoch x batches + batch, one validation value per epoch", "Epoch 3: 100%|####| 250/250 [00:12<00:00, v_num=0, train_loss=0.312, val_loss=0.345]", "lightning 2.6.6 (tests capture a real fit's TQDMProgressBar); the RichProgressBar from its source"),
    ReaderInfo("text:torchtune", "torchtune DiskLogger files (log_<time>.txt; tensor values as tensor(...)) and StdoutLogger lines; the recipes' tqdm bar in captured output (step from its description, in check and watch alike); DiskLogger output_fmt=\"jsonl\" files are read as JSON Lines", "Step 1 | loss:2.0853 lr:2e-05 grad_norm:tensor(0.8618) / 1|1|Loss: 2.0853:   2%|▏  | 1/60 [...]", "torchtune 0.6.1 training/metric_logging.py and recipes (the bar drawn by tqdm 4.70)"),
    ReaderInfo("folder", "a folder, walked: run folders (event files, version_*/metrics.csv, checkpoint-*/trainer_state.json, MLflow runs) and every other log file, one run each; files read and skipped are listed", "lightning_logs/", "fixtures above laid out in folders"),
)  # fmt: skip


def markdown_table() -> str:
    """Return the README's table of readers (Markdown)."""
    rows = ["| reader | reads | example | tested against |", "|---|---|---|---|"]
    for info in READERS:
        example = info.example.replace("|", "\\|")
        rows.append(f"| `{info.name}` | {info.reads} | `{example}` | {info.tested} |")
    return "\n".join(rows) + "\n"
