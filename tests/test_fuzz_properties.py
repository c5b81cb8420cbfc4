"""Property tests: every reader, the live line parser, the configuration and rule-pack
loaders and the case-file harness fail only with their own one-line errors, whatever
they are given.  Example counts are bounded (the normal suite stays fast); the long
campaign is ``python benchmarks/fuzz.py --minutes N``."""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import struct
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossdoctor.casefile import run_case_file
from lossdoctor.config import apply_settings, parse_settings
from lossdoctor.detectors import load_builtin_detectors
from lossdoctor.engine.loader import load_rules, parse_rule
from lossdoctor.errors import ConfigError, InputError, LossdoctorError, RulePackError
from lossdoctor.ingest import read_bytes
from lossdoctor.ingest.mlflow import read_sqlite
from lossdoctor.live.parse import LineParser

from conftest import ROOT, load_script

FEW = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- values that broke something once, mixed into every generator -------------------------

NASTY_NUMBERS = st.sampled_from(
    [0, -1, 1e308, -1e308, float("inf"), float("-inf"), float("nan"), 10**30, -(10**19),
     2**63, 1e-320, 5e-324]
)  # fmt: skip
KEYS = st.sampled_from(
    ["loss", "train_loss", "val_loss", "eval_loss", "step", "epoch", "lr", "learning_rate",
     "log_history", "global_step", "grad_norm", "x", ""]
)  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    NASTY_NUMBERS,
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=5)), inner, max_size=6),
    ),
    max_leaves=20,
)


def _only(kind: type[LossdoctorError], func: Any, *args: Any, **kwargs: Any) -> Any:
    """Return ``func(*args)``; a ``kind`` error is an answer, anything else fails the test."""
    with contextlib.suppress(kind):
        return func(*args, **kwargs)
    return None


# --- readers -------------------------------------------------------------------------------


@FEW
@given(doc=json_values)
def test_json_readers_raise_only_input_errors(doc: Any) -> None:
    text = json.dumps(doc, allow_nan=True)
    _only(InputError, read_bytes, text.encode(), source="doc.json")
    if isinstance(doc, list):  # the same records as JSON Lines
        lines = "\n".join(json.dumps(item, allow_nan=True) for item in doc)
        _only(InputError, read_bytes, lines.encode(), source="doc.jsonl")


TEXT_TOKENS = st.sampled_from(
    ["Epoch", "epoch", "step", "Step", "iter", "loss", "loss:", "loss=", "val_loss:", "lr:",
     "|", "[", "]", "(", ")", "/", "-", ":", "=", ",", "{", "}", "'loss':", "nan", "inf",
     "Epoch(train)", "Epoch(val)", "1/10", "10/10", "[====]", "-", "9" * 5000, "1e999",
     "{'loss': 1.0, 'epoch': 0.5}", "Iter(train)", "it/s", "\t", "\r"]
)  # fmt: skip
text_lines = st.lists(
    st.lists(st.one_of(TEXT_TOKENS, st.floats(allow_nan=True).map(repr), st.integers().map(str)),
             max_size=8).map(" ".join),
    min_size=1, max_size=12,
)  # fmt: skip


@FEW
@given(lines=text_lines)
def test_text_log_reader_raises_only_input_errors(lines: list[str]) -> None:
    _only(InputError, read_bytes, "\n".join(lines).encode(), source="train.log")


@FEW
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 2**63), st.one_of(st.floats().map(repr), st.text(max_size=5)),
                  st.one_of(st.none(), st.integers(-(10**30), 10**30))),
        min_size=1, max_size=30,
    )
)  # fmt: skip
def test_mlflow_metric_file_raises_only_input_errors(
    rows: list[tuple[int, str, int | None]],
) -> None:
    text = "\n".join(f"{ts} {v}" + ("" if s is None else f" {s}") for ts, v, s in rows)
    _only(InputError, read_bytes, text.encode(), source="loss")


@functools.cache
def _events() -> bytes:
    return _event_file([3.0 / (i + 1) for i in range(40)])


def _event_file(values: list[float]) -> bytes:
    event_pb2 = pytest.importorskip("tensorboard.compat.proto.event_pb2")
    from tensorboard.compat.proto import summary_pb2

    from lossdoctor.ingest.tfevents import masked_crc

    out = b""
    for step, value in enumerate(values):
        item = summary_pb2.Summary.Value(tag="loss", simple_value=value)
        payload = event_pb2.Event(
            step=step, wall_time=1.0, summary=summary_pb2.Summary(value=[item])
        ).SerializeToString()
        header = struct.pack("<Q", len(payload))
        out += header + struct.pack("<I", masked_crc(header)) + payload
        out += struct.pack("<I", masked_crc(payload))
    return out


EVENT_BYTES = 40 * 30  # about: 40 records of ~30 bytes


@FEW
@given(
    cuts=st.lists(st.tuples(st.integers(0, EVENT_BYTES), st.integers(0, 255)), max_size=8),
    keep=st.integers(1, EVENT_BYTES),
)
def test_event_file_reader_raises_only_input_errors(cuts: list[tuple[int, int]], keep: int) -> None:
    data = bytearray(_events()[:keep])
    for at, byte in cuts:
        if at < len(data):
            data[at] = byte
    _only(InputError, read_bytes, bytes(data), source="events.out.tfevents.1.host")


db_cells = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=4),
                     st.binary(max_size=4))  # fmt: skip


@FEW
@given(rows=st.lists(st.tuples(db_cells, db_cells, db_cells, db_cells, db_cells), max_size=20))
def test_mlflow_database_reader_raises_only_input_errors(tmp_path_factory, rows) -> None:
    path = tmp_path_factory.mktemp("db") / "mlflow.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (run_uuid, name)")
        conn.execute("INSERT INTO runs VALUES ('r1', NULL)")
        conn.execute("CREATE TABLE metrics (run_uuid, key, value, timestamp, step, is_nan)")
        conn.executemany("INSERT INTO metrics VALUES ('r1', ?, ?, 0, ?, ?)", [r[:4] for r in rows])
    conn.close()
    _only(InputError, read_sqlite, path, source=str(path), hints=None, run=None)


@FEW
@given(lines=st.lists(st.one_of(st.text(max_size=60), text_lines.map("\n".join),
                                json_values.map(json.dumps)), max_size=8))  # fmt: skip
def test_live_line_parser_never_raises(lines: list[str]) -> None:
    parser = LineParser()
    records = []
    for line in lines:
        for part in line.split("\n"):
            records.extend(parser.feed(part))
    for record in [*records, *parser.finish()]:
        assert all(isinstance(v, float) for v in record.values())


# --- configuration, rule packs, case files ------------------------------------------------

toml_values = st.recursive(
    st.one_of(st.booleans(), st.integers(-(10**12), 10**12), st.floats(), st.text(max_size=12),
              st.sampled_from(["{series:>1500000000}", "spikes", "LD2", "ALL", "error", "nope"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)  # fmt: skip
CONFIG_KEYS = st.sampled_from(
    ["select", "extend-select", "ignore", "fail-on", "exit-zero", "rules", "rule-paths",
     "columns", "vocab-size", "classes", "profile", "bogus"]
)  # fmt: skip
RULE_NAMES = st.sampled_from(["spikes", "plateau", "LD201", "provenance", "nope"])
PARAM_NAMES = st.sampled_from(
    ["z", "tail_quantile", "band_share", "sample_slack", "min_ratio", "w"]
)
rule_tables = st.dictionaries(
    RULE_NAMES,
    st.fixed_dictionaries(
        {},
        optional={
            "params": st.dictionaries(PARAM_NAMES, toml_values, max_size=3),
            "thresholds": st.dictionaries(st.text(max_size=10), toml_values, max_size=2),
            "severity": toml_values,
        },
    ),
    max_size=3,
)
configs = st.dictionaries(CONFIG_KEYS, toml_values, max_size=4).flatmap(
    lambda base: st.just(base) | rule_tables.map(lambda rules: {**base, "rules": rules})
)


@pytest.fixture(scope="module")
def pack() -> list[Any]:
    return load_rules()


@FEW
@given(table=configs)
def test_configuration_raises_only_config_errors(table: dict[str, Any], pack) -> None:
    settings_ = _only(ConfigError, parse_settings, table, path="lossdoctor.toml", base=Path("."))
    if settings_ is not None:
        _only(ConfigError, apply_settings, pack, settings_, load_builtin_detectors())


RULE_FILE = tomllib.loads((ROOT / "rules" / "stability" / "LD201-spikes.toml").read_text())
RULE_PATHS = [
    ("params", "z"), ("params", "tail_quantile"), ("thresholds", "many_big"), ("levels",),
    ("levels", 0, "when"), ("levels", 1, "message"), ("levels", 0, "severity"), ("fixes",),
    ("fixes", 0, "title"), ("docs",), ("docs", "references"), ("causes",), ("causes", 0, "when"),
    ("causes", 1, "fixes"), ("causes", 2, "evidence"), ("inputs",), ("series",), ("code",),
    ("name",), ("detector",), ("supersedes",), ("summary",),
]  # fmt: skip


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


@FEW
@given(edits=st.lists(st.tuples(st.sampled_from(RULE_PATHS), toml_values), min_size=1, max_size=3))
def test_rule_loader_raises_only_rule_pack_errors(edits: list[tuple[tuple[Any, ...], Any]]) -> None:
    doc = json.loads(json.dumps(RULE_FILE))
    for path, value in edits:
        with contextlib.suppress(KeyError, IndexError, TypeError):
            _set(doc, path, value)
    _only(RulePackError, parse_rule, doc, Path("XX201-spikes.toml"), load_builtin_detectors())


case_values = st.one_of(
    toml_values,
    st.fixed_dictionaries(
        {"shape": st.sampled_from(["spiky", "healthy", "late_spike", "nope", ""])},
        optional={
            "params": st.dictionaries(
                st.sampled_from(["n", "seed", "at", "ratio", "count", "bogus"]),
                st.one_of(st.integers(-(10**12), 10**12), st.floats(), st.text(max_size=3),
                          st.sampled_from([0.5, 0.999, 1.0])),
                max_size=3,
            ),
            "expect": st.sampled_from(["fires", "silent", "warning", "loud"]) | toml_values,
            "also": st.dictionaries(st.sampled_from(["spikes", "plateau", "nope"]), toml_values, max_size=2) | toml_values,
            "rule": st.sampled_from(["spikes", "nope"]) | toml_values,
            "file": toml_values,
        },
    ),
)  # fmt: skip


def _toml(value: Any) -> str:
    """Return ``value`` as a TOML inline value (strings through JSON escapes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


@FEW
@given(cases=st.lists(case_values, min_size=1, max_size=3), rule=st.sampled_from(["spikes", 5]))
def test_case_file_harness_raises_only_rule_pack_errors(
    tmp_path_factory, cases, rule, pack
) -> None:
    for case in cases:
        params = case.get("params") if isinstance(case, dict) else None
        if isinstance(params, dict) and isinstance(params.get("n"), int) and params["n"] > 5000:
            params["n"] = 5000  # valid but slow sizes are the campaign's job, not the suite's
    path = tmp_path_factory.mktemp("cases") / "c.toml"
    path.write_text(f"rule = {_toml(rule)}\ncase = {_toml(cases)}\n")
    _only(RulePackError, run_case_file, path, pack)


# --- the atheris target, without atheris -----------------------------------------------


def _fuzz_module() -> Any:
    return load_script("benchmarks/fuzz.py", "lossdoctor_fuzz")


def test_the_atheris_target_reads_every_seed_without_a_crash() -> None:
    fuzz = _fuzz_module()
    seeds, _, _ = fuzz.reader_target()
    assert len(seeds) > 50
    for seed in seeds:
        fuzz.one_input(seed)  # a crash (an exception or a warning) fails here


def test_the_atheris_target_lets_a_crash_through(monkeypatch: pytest.MonkeyPatch) -> None:
    import lossdoctor.ingest

    fuzz = _fuzz_module()

    def broken(data: bytes, **kwargs: Any) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(lossdoctor.ingest, "read_bytes", broken)
    with pytest.raises(KeyError):
        fuzz.one_input(b"step,loss\n1,2\n")
    monkeypatch.setattr(lossdoctor.ingest, "read_bytes", _raises_input_error)
    fuzz.one_input(b"step,loss\n1,2\n")  # a lossdoctor error is an answer


def _raises_input_error(data: bytes, **kwargs: Any) -> None:
    raise InputError("not a log", path="fuzz")


@FEW
@given(header=st.binary(min_size=8, max_size=8), tail=st.binary(max_size=20))
def test_an_event_files_header_is_told_by_the_crc_google_crc32c_computes(header, tail):
    # every input is sniffed for a TFRecord header without importing google_crc32c: the
    # header's CRC is computed from a table, and must be the library's
    from lossdoctor.ingest.tfrecord import looks_like_tfrecord, masked_crc

    right = header + struct.pack("<I", masked_crc(header)) + tail
    assert looks_like_tfrecord(right)
    wrong = header + struct.pack("<I", masked_crc(header) ^ 1) + tail
    assert not looks_like_tfrecord(wrong)
