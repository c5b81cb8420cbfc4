"""`lossdoctor check DIR` and `check PATH...`: every log found by content, one report per
run, every file listed as read or skipped (issue 17)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from lossdoctor import synth as curves
from lossdoctor.cli import app
from lossdoctor.ingest import read_source

from conftest import FIXTURES, ROOT, run_json, write_curve

EXAMPLES = ROOT / "examples"


def files_by_status(doc) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"read": {}, "skipped": {}}
    for note in doc.get("files", []):
        out[note["status"]][note["path"]] = note["detail"]
    return out


def test_check_examples_folder_reads_every_log_and_lists_the_rest(runner):
    code, doc = run_json(runner, str(EXAMPLES))
    sources = sorted(Path(r["source"]).name for r in doc["runs"])
    assert sources == sorted(
        ["reference.jsonl", "divergence_nan.csv", "flatline.tsv", "healthy.csv",
         "overfitting_trainer_state.json", "plateau_metrics.csv",
         "run-oscillation-tag-loss.csv", "spikes.jsonl", *["sweep_trials.csv"] * 3]  # 3 trials
    )  # fmt: skip
    assert all(r["verdict"] != "error" for r in doc["runs"])
    assert code == 1  # failing examples, not an input error
    files = files_by_status(doc)
    assert files["skipped"][f"{EXAMPLES}/README.md"] == "not a log (.md file)"
    assert files["skipped"][f"{EXAMPLES}/charts/healthy.png"] == "not a log (.png file)"
    assert files["read"][f"{EXAMPLES}/healthy.csv"] == "a run of its own"


def test_check_examples_glob_skips_non_logs_with_a_note(runner):
    paths = sorted(str(p) for p in EXAMPLES.iterdir())
    result = runner.invoke(app, ["check", *paths])
    assert result.exit_code == 1, result.output
    assert "README.md  (no loss values found" in result.stdout
    assert "charts  (no loss logs found in this folder" in result.stdout
    assert "12 runs" not in result.stdout
    assert "11 runs: " in result.stdout  # 7 one-run files, the sweep's 3 trials, ci/
    code, doc = run_json(runner, *paths)
    assert code == 1
    assert len(doc["runs"]) == 11
    assert f"{EXAMPLES}/README.md" in files_by_status(doc)["skipped"]


def test_a_single_non_log_is_still_an_input_error(runner):
    result = runner.invoke(app, ["check", str(EXAMPLES / "README.md")])
    assert result.exit_code == 2
    assert "README.md: no loss values found" in result.stderr


def test_paths_that_are_all_non_logs_exit_2(runner, tmp_path):
    (tmp_path / "a.txt").write_text("hello\n")
    (tmp_path / "b.txt").write_text("world\n")
    result = runner.invoke(app, ["check", str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])
    assert result.exit_code == 2
    assert "none of the paths is a loss log" in result.stderr


@pytest.fixture
def tbw():
    import tbwriter

    return tbwriter


def _event_file(tbw, tmp_path: Path, into: Path, name: str, points) -> Path:
    made = tbw.write_events(tmp_path / f"_w_{name}", points)
    into.mkdir(parents=True, exist_ok=True)
    target = into / f"events.out.tfevents.{name}"
    shutil.move(made, target)
    return target


def mixed_folder(tmp_path: Path, tbw) -> Path:
    top = tmp_path / "logs"
    ft = FIXTURES / "finetune"
    (top / "yolo" / "train4").mkdir(parents=True)
    shutil.copy(ft / "ultralytics_results.csv", top / "yolo" / "train4" / "results.csv")
    (top / "llm").mkdir()
    shutil.copy(ft / "torchtune_log_1718000000.txt", top / "llm" / "log_1718000000.txt")
    shutil.copy(ft / "hf_notebook_table.txt", top / "llm" / "pasted.txt")
    shutil.copy(EXAMPLES / "README.md", top / "README.md")
    (top / "weights.safetensors").write_bytes(b"\x00" * 64)
    (top / "blob.dat").write_bytes(b"\x01\x00\x02" * 100)
    (top / "empty.log").write_text("")
    # a Hugging Face output_dir: checkpoints, and LLaMA-Factory's log beside the state
    out = top / "qwen-lora"
    for step in (100, 200):
        ckpt = out / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        history = [{"loss": 3.0 - i * 0.01, "step": i * 10} for i in range(step // 10)]
        (ckpt / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    shutil.copy(ft / "llamafactory_trainer_log.jsonl", out / "trainer_log.jsonl")
    (out / "config.json").write_text('{"hidden_size": 896}')
    # two projects' event files dropped in one folder: no tag in common
    steps = np.arange(50.0)
    _event_file(tbw, tmp_path, top / "tb", "1700000000.a", {"train/loss": (steps, 3 - steps / 50)})
    _event_file(tbw, tmp_path, top / "tb", "1700000001.b", {"lr": (steps, np.full(50, 1e-3)),
                                                           "loss": (steps, 1 - steps / 60)})  # fmt: skip
    # one run restarted: two event files sharing their tag
    _event_file(tbw, tmp_path, top / "resumed", "1700000000.h", {"loss": (steps, 3 - steps / 50)})
    _event_file(tbw, tmp_path, top / "resumed", "1700000100.h",
                {"loss": (steps + 50, 2 - steps / 100)})  # fmt: skip
    return top


def test_mixed_folder_one_report_per_run_never_merged(tmp_path, tbw, runner):
    top = mixed_folder(tmp_path, tbw)
    code, doc = run_json(runner, str(top))
    sources = [r["source"] for r in doc["runs"]]
    assert sources == sorted(sources)
    assert sorted(s.removeprefix(f"{top}/") for s in sources) == sorted(
        ["llm/log_1718000000.txt", "llm/pasted.txt", "qwen-lora", "resumed",
         "tb/events.out.tfevents.1700000000.a", "tb/events.out.tfevents.1700000001.b",
         "yolo/train4/results.csv"]
    )  # fmt: skip
    by_source = {r["source"].removeprefix(f"{top}/"): r for r in doc["runs"]}
    assert by_source["qwen-lora"]["reader"] == "hf-trainer-state"
    assert by_source["qwen-lora"]["series"]["train"]["points"] == 20  # the latest checkpoint
    assert by_source["resumed"]["series"]["train"]["points"] == 100  # one run, two files
    assert by_source["tb/events.out.tfevents.1700000001.b"]["columns"] == {
        "train": "loss",
        "lr": "lr",
    }
    assert "lr" not in by_source["tb/events.out.tfevents.1700000000.a"]["columns"]
    assert by_source["yolo/train4/results.csv"]["columns"]["train"] == "train/loss"
    assert by_source["llm/pasted.txt"]["reader"] == "hf-notebook-table"
    skipped = {k.removeprefix(f"{top}/"): v for k, v in files_by_status(doc)["skipped"].items()}
    assert skipped["README.md"] == "not a log (.md file)"
    assert skipped["weights.safetensors"] == "not a log (.safetensors file)"
    assert skipped["blob.dat"] == "binary file, not a loss log"
    assert skipped["empty.log"] == "file is empty"
    assert skipped["qwen-lora/checkpoint-100/trainer_state.json"].startswith(
        "an earlier checkpoint"
    )
    assert skipped["qwen-lora/trainer_log.jsonl"].startswith("the same points as trainer_state")
    assert skipped["qwen-lora/config.json"].startswith("the model config of run qwen-lora")
    assert code == 1


def test_include_and_exclude_globs(tmp_path, tbw, runner):
    top = mixed_folder(tmp_path, tbw)
    _, doc = run_json(runner, str(top), "--include", "*.txt")
    assert sorted(Path(r["source"]).name for r in doc["runs"]) == [
        "log_1718000000.txt",
        "pasted.txt",
    ]
    _, doc = run_json(runner, str(top), "--exclude", "tb/*", "--exclude", "qwen-lora*")
    names = [r["source"].removeprefix(f"{top}/") for r in doc["runs"]]
    assert not any(n.startswith(("tb/", "qwen-lora")) for n in names)
    assert (
        files_by_status(doc)["skipped"][f"{top}/tb/events.out.tfevents.1700000000.a"] == "--exclude"
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symlinks")
def test_walk_skips_pipes_and_survives_symlink_loops(tmp_path):
    top = tmp_path / "runs"
    top.mkdir()
    write_curve(top / "a.csv", *curves.healthy(n=50))
    os.mkfifo(top / "pipe.log")
    (top / "loop").symlink_to(top, target_is_directory=True)
    (top / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")
    runs, files = read_source(str(top))
    assert [Path(r.source).name for r in runs] == ["a.csv"]
    notes = {Path(f.path).name: f.detail for f in files}
    assert notes["pipe.log"] == "not a regular file"
    assert notes["dangling.csv"] == "broken link"


def test_folder_without_logs_is_an_input_error_naming_why(tmp_path, runner):
    (tmp_path / "notes.md").write_text("# notes\n")
    result = runner.invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == 2
    assert (
        "no loss logs found in this folder; 1 files skipped (not a log (.md file))" in result.stderr
    )


NOTES = """Experiment notes
run a, first try. loss: 2.31 at the start; best val_loss: 1.9
lr=3e-4 gave train_loss=0.91 after one epoch
eval loss: 1.2 on the held-out set (batch size: 8)
the grad norm: 0.8 looked fine; baseline loss: 1.7, warmup: 100
final loss: 0.65 (epochs: 3)
"""
PROVENANCE = (
    "file\tsource\tnotes\n"
    "a.csv\tgithub\tval_loss: 1.39 at 100, min: 1.37; train_loss n: 20\n"
    "b.csv\tgithub\ttrain loss: 2.5 then 0.7 (step 40), eval_loss n: 12, first: 3.1\n"
    "c.json\tgithub\ttotal_loss: 0.41 to 0.15; last: 0.155\n"
    "d.log\tgithub\tloss: 11.01 at step 1, val loss: 3.45 (min: 3.2); lr: 6e-4\n"
)


def _walk_beside_a_log(folder: Path, runner) -> tuple[int, dict[str, str]]:
    """Write a key=value training log into ``folder``, check the folder, assert that log is
    its only run; return the exit code and the skipped files' reasons by name."""
    steps, loss = curves.healthy(200, seed=3)
    lines = [f"step={int(s)} loss={v:.4f} lr=3e-4" for s, v in zip(steps, loss, strict=True)]
    (folder / "train.log").write_text("\n".join(lines) + "\n")
    code, doc = run_json(runner, str(folder))
    assert [Path(r["source"]).name for r in doc["runs"]] == ["train.log"]
    return code, {Path(k).name: v for k, v in files_by_status(doc)["skipped"].items()}


def test_walk_reads_only_what_looks_like_a_log(tmp_path, runner):
    # notes and a provenance table mention losses, but no line shape repeats: not logs
    (tmp_path / "notes.txt").write_text(NOTES)
    (tmp_path / "PROVENANCE.tsv").write_text(PROVENANCE)
    (tmp_path / "README").write_text("step=1 loss=2.0\nstep=2 loss=1.9\nstep=3 loss=1.8\n")
    (tmp_path / "requirements.txt").write_text("torch==2.3.0\nloss-landscape==1.0\n")
    (tmp_path / ".gitignore").write_text("*.ckpt\n")
    (tmp_path / "tiny.log").write_text("step=1 loss=2.0\nstep=2 loss=1.9\n")
    code, skipped = _walk_beside_a_log(tmp_path, runner)
    assert skipped["notes.txt"].startswith("not a log: 5 lines mention a loss, at most 1 in")
    assert skipped["PROVENANCE.tsv"] == (
        "not a loss log: a table of text (columns: file, source, notes), no column of loss values"
    )
    assert skipped["README"] == "not a log (by its name)"
    assert skipped["requirements.txt"] == "not a log (by its name)"
    assert skipped[".gitignore"] == "hidden file"
    assert skipped["tiny.log"].startswith("not a log: 2 lines mention a loss")
    assert code == 0
    # named on the command line: a best effort, and a clear error when plainly not a log
    result = runner.invoke(app, ["check", str(tmp_path / "notes.txt")])
    assert result.exit_code == 2
    assert "notes.txt: not a loss log: 5 lines mention a loss, at most 1 in the same shape" in (
        result.stderr
    )
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["check", str(tmp_path / "tiny.log")])
    assert result.exit_code == 0, result.output
    assert "loss: 2 points" in result.stdout


def test_check_of_the_projects_own_readme_finds_no_loss_log(runner):
    # it holds sample logs and reports among its prose: once read as a "healthy" run
    result = runner.invoke(app, ["check", str(ROOT / "README.md")])
    assert result.exit_code == 2, result.output
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1
    assert "README.md: not a loss log: " in errors[0]
    assert "in the same shape among prose (a document or notes?)" in errors[0]
    assert "Traceback" not in result.output


def _prose(lines: int) -> str:
    """A document of about ``lines`` lines that mentions a loss now and then."""
    words = ["the run", "our baseline", "this sweep", "a LoRA", "the fine-tune", "run b"]
    out = []
    for i in range(lines):
        if i % 7 == 3:
            topic = words[i % len(words)]
            out.append(f"With {topic} the loss: {2 + i / 1000:.3f} at first, then {i} steps.")
        else:
            out.append(f"Paragraph {i} of the notes, written by hand about the experiments.")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("path", ["whole", "blocks", "streamed"])
def test_every_text_reader_path_refuses_prose_in_a_walk(tmp_path, runner, monkeypatch, path):
    # small texts are read whole, texts over 64 KiB a block at a time, and from
    # STREAM_MIN_BYTES on streamed from the file: all three judge the shape alike
    from lossdoctor import ingest
    from lossdoctor.ingest import streamed

    if path == "streamed":
        monkeypatch.setattr(ingest, "STREAM_MIN_BYTES", 1 << 16)
        monkeypatch.setattr(streamed, "STREAM_MIN_BYTES", 1 << 16)
        monkeypatch.setattr(streamed, "BLOCK_BYTES", 1 << 12)
    text = _prose(60 if path == "whole" else 1400)
    assert (len(text) > 1 << 16) == (path != "whole")
    (tmp_path / "notes.txt").write_text(text)
    code, skipped = _walk_beside_a_log(tmp_path, runner)
    mentions = text.count("the loss:")
    assert skipped["notes.txt"] == (
        f"not a log: {mentions} lines mention a loss, at most {mentions // 6 + 1} in the same "
        "shape (name the file to read it anyway)"
    )
    # named, it is prose: refused as well, with the same count
    result = runner.invoke(app, ["check", str(tmp_path / "notes.txt")])
    assert result.exit_code == 2, result.output
    assert f"notes.txt: not a loss log: {mentions} lines mention a loss" in result.stderr
    assert code == 0


def test_a_file_of_several_runs_is_named_as_the_walk_names_its_files(tmp_path, runner, monkeypatch):
    # a sweep's table (and a tracker's database) gives several runs: they were named from
    # the normalised path ("runs/sweep.csv") while every other file kept the folder as
    # given ("./runs/a.csv"), and the file was listed as "a run of its own"
    (tmp_path / "runs").mkdir()
    shutil.copy(EXAMPLES / "sweep_trials.csv", tmp_path / "runs" / "sweep.csv")
    shutil.copy(EXAMPLES / "healthy.csv", tmp_path / "runs" / "a.csv")
    monkeypatch.chdir(tmp_path)
    code, doc = run_json(runner, "./runs")
    assert code == 1
    sources = [(r["source"], r.get("group")) for r in doc["runs"]]
    assert sources == [
        ("./runs/a.csv", None),
        *[("./runs/sweep.csv", f"trial_id=lr_{lr}") for lr in ("1e-4", "1e-3", "1e-2")],
    ]
    assert files_by_status(doc)["read"] == {
        "./runs/a.csv": "a run of its own",
        "./runs/sweep.csv": "3 runs",
    }


def test_a_store_is_told_by_its_first_bytes_and_an_unreadable_path_is_not_one(tmp_path):
    from lossdoctor.ingest.walk import _is_store, _starts_with

    (tmp_path / "runs.db").write_bytes(b"SQLite format 3\x00" + bytes(100))
    (tmp_path / "export.parquet").write_bytes(b"PAR1" + bytes(100))
    (tmp_path / "log.csv").write_text("step,loss\n1,2\n")
    assert _is_store(tmp_path / "runs.db")
    assert _is_store(tmp_path / "export.parquet")
    assert not _is_store(tmp_path / "log.csv")
    assert not _starts_with(tmp_path / "missing.db", b"SQLite")
    assert not _starts_with(tmp_path, b"SQLite")  # a folder: not a regular file
