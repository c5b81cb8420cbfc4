"""Remote sources through fsspec: a real S3 endpoint (moto's server on a loopback port, fake
credentials) and a local HTTP server; globs, prefixes, a missing bucket, wrong credentials,
a corrupt object among good ones, a missing filesystem package."""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import s3fs

from lossdoctor import synth as curves
from lossdoctor.cli import app

from conftest import write_curve

LOOPBACK = "127.0.0.1"
BUCKET = "sweeps"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("the moto server exited")
        try:
            socket.create_connection((LOOPBACK, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {LOOPBACK}:{port}")


def _csv_bytes(tmp: Path, name: str, curve: tuple) -> bytes:
    return write_curve(tmp / name, *curve).read_bytes()


@dataclass(frozen=True)
class Endpoint:
    url: str
    key_id: str
    secret: str
    local: Path  # the same logs on disk


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory) -> Iterator[Endpoint]:
    """A moto S3 server on a loopback port holding a small sweep and an IAM user's key.

    Authentication is off for the reading tests (moto's check of SigV4 signatures depends on
    how the HTTP stack in use encodes query strings, which is no behaviour of lossdoctor's)
    and on for the credential tests (:func:`s3_authenticating`)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(port, proc)
        url = f"http://{LOOPBACK}:{port}"
        setup = {"endpoint_url": url, "region_name": "us-east-1"}
        setup |= {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="sweeper")
        key = iam.create_access_key(UserName="sweeper")["AccessKey"]
        iam.put_user_policy(UserName="sweeper", PolicyName="s3", PolicyDocument=json.dumps(POLICY))
        s3 = boto3.client("s3", **setup)
        s3.create_bucket(Bucket=BUCKET)
        local = tmp_path_factory.mktemp("sweep")
        objects = {
            "sweep/lr-1e-4/log.csv": _csv_bytes(local, "healthy.csv", curves.healthy()),
            "sweep/lr-1e-3/log.csv": _csv_bytes(local, "nan.csv", curves.with_nan()),
            "sweep/lr-1e-2/log.csv": b"\x00\x01\x02 not a log \xff" * 20,
            "sweep/README.md": b"# notes, not a log\n",
            "hf/run-a/checkpoint-10/trainer_state.json": json.dumps(
                {"log_history": [{"step": s, "loss": 3.0 - s / 100} for s in range(1, 60)]}
            ).encode(),
        }
        for name, body in objects.items():
            s3.put_object(Bucket=BUCKET, Key=name, Body=body)
        yield Endpoint(url, key["AccessKeyId"], key["SecretAccessKey"], local)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _require_signatures(url: str, free_requests: int) -> None:
    """Have moto check every request's signature after ``free_requests`` more requests."""
    urllib.request.urlopen(
        urllib.request.Request(
            f"{url}/moto-api/reset-auth",
            data=str(free_requests).encode(),
            method="POST",
            headers={"Content-Type": "application/octet-stream"},
        ),
        timeout=10,
    ).close()


@pytest.fixture
def s3(s3_endpoint, monkeypatch, tmp_path) -> Iterator[Endpoint]:
    """The endpoint, with credentials in the environment as a user would have them."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)  # nothing of the machine's own AWS set-up reaches the tests
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_endpoint.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_endpoint.secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    s3fs.S3FileSystem.clear_instance_cache()
    yield s3_endpoint
    s3fs.S3FileSystem.clear_instance_cache()


def _check(runner, *args: str):
    result = runner.invoke(app, ["check", "-f", "json", *args])
    return result, json.loads(result.stdout) if result.stdout.strip() else None


def test_a_glob_reads_every_object_and_a_corrupt_one_is_an_error_run(runner, s3):
    result, doc = _check(runner, f"s3://{BUCKET}/sweep/**/log.csv")
    assert result.exit_code == 2
    sources = [r["source"] for r in doc["runs"]]
    assert sources == [f"s3://{BUCKET}/sweep/lr-1e-{n}/log.csv" for n in (2, 3, 4)]
    verdicts = [r["verdict"] for r in doc["runs"]]
    assert verdicts == ["error", "failing", "healthy"]
    assert doc["runs"][0]["error"] == f"{sources[0]}: binary file, not a loss log"
    assert "non-finite" in {f["rule"] for f in doc["runs"][1]["findings"]}
    assert result.stderr.strip() == f"lossdoctor: {sources[0]}: binary file, not a loss log"


def test_worker_processes_read_the_objects_as_this_process_does(runner, s3):
    url = f"s3://{BUCKET}/sweep/**/log.csv"
    serial = runner.invoke(app, ["check", "-f", "json", url])
    parallel = runner.invoke(app, ["check", "-f", "json", "--jobs", "2", url])
    assert serial.exit_code == parallel.exit_code == 2
    assert parallel.stdout == serial.stdout


def test_an_object_reads_as_the_same_file_on_disk_does(runner, s3):
    _, remote = _check(runner, f"s3://{BUCKET}/sweep/lr-1e-3/log.csv")
    _, local = _check(runner, str(s3.local / "nan.csv"))
    (remote_run,), (local_run,) = remote["runs"], local["runs"]
    assert remote_run.pop("source") == f"s3://{BUCKET}/sweep/lr-1e-3/log.csv"
    local_run.pop("source")
    assert remote_run == local_run


def test_a_prefix_lists_the_log_objects_under_it(runner, s3):
    result = runner.invoke(app, ["check", "-f", "summary-csv", f"s3://{BUCKET}/"])
    rows = result.stdout.splitlines()
    assert rows[0] == "run,verdict,final,best,top_finding"
    runs = [row.split(",")[0] for row in rows[1:]]
    assert runs == [
        f"s3://{BUCKET}/hf/run-a/checkpoint-10/trainer_state.json",
        *(f"s3://{BUCKET}/sweep/lr-1e-{n}/log.csv" for n in (2, 3, 4)),
    ]  # README.md is not a log name


def test_a_missing_bucket_is_one_line_naming_the_url(runner, s3):
    url = "s3://no-such-bucket/sweep/*.csv"
    result, doc = _check(runner, url)
    assert result.exit_code == 2
    assert doc["runs"] == [{"source": url, "verdict": "error", "error": doc["runs"][0]["error"]}]
    assert result.stderr == (
        f"lossdoctor: {url}: not found (The specified bucket does not exist)\n"
    )


@pytest.fixture
def s3_authenticating(s3) -> Iterator[Endpoint]:
    """The endpoint with IAM authentication on: every request must be signed by the key."""
    _require_signatures(s3.url, 0)
    try:
        yield s3
    finally:
        _require_signatures(s3.url, 1 << 62)


def test_wrong_credentials_are_one_line_naming_the_url(runner, s3_authenticating, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    url = f"s3://{BUCKET}/sweep/lr-1e-4/log.csv"
    result, _ = _check(runner, url)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"lossdoctor: {url}: permission denied (")
    assert "Traceback" not in result.output


def test_a_missing_filesystem_package_names_the_extra(runner, monkeypatch):
    monkeypatch.setitem(sys.modules, "gcsfs", None)
    result = runner.invoke(app, ["check", "gs://bucket/run.csv"])
    assert result.exit_code == 2
    assert result.stderr == (
        "lossdoctor: gs://bucket/run.csv: reading gs:// URLs needs the 'gcs' extra: "
        "pip install 'lossdoctor[gcs]'\n"
    )


# --- HTTP ---------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def http_root(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A local HTTP server on a loopback port serving a folder of runs."""
    root = tmp_path_factory.mktemp("www")
    (root / "sweep").mkdir()
    write_curve(root / "sweep" / "a.csv", *curves.healthy())
    write_curve(root / "sweep" / "b.csv", *curves.diverging())
    (root / "sweep" / "c.csv").write_bytes(b"")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_http_glob_and_one_empty_file_among_good_ones(runner, http_root):
    base, _ = http_root
    result, doc = _check(runner, f"{base}/sweep/*.csv")
    assert result.exit_code == 2
    assert [(r["source"], r["verdict"]) for r in doc["runs"]] == [
        (f"{base}/sweep/a.csv", "healthy"),
        (f"{base}/sweep/b.csv", "failing"),
        (f"{base}/sweep/c.csv", "error"),
    ]
    assert doc["runs"][2]["error"] == f"{base}/sweep/c.csv: file is empty"


def test_http_missing_file_is_an_error_run_naming_the_url(runner, http_root):
    base, root = http_root
    url = f"{base}/sweep/gone.csv"
    result, doc = _check(runner, url, str(root / "sweep" / "a.csv"))
    assert result.exit_code == 2
    assert [r["verdict"] for r in doc["runs"]] == ["error", "healthy"]
    assert result.stderr.startswith(f"lossdoctor: {url}: not found (")
    assert len(result.stderr.splitlines()) == 1


def test_the_cache_keys_objects_by_etag(s3, tmp_path, monkeypatch):
    from lossdoctor.api import select_rules
    from lossdoctor.cache import ReportCache
    from lossdoctor.config import Settings
    from lossdoctor.fleet import Options, diagnose_stream

    options = Options(rules=select_rules(Settings()))
    url = f"s3://{BUCKET}/cached/*.csv"
    client = boto3.client(
        "s3", endpoint_url=s3.url, region_name="us-east-1",
        aws_access_key_id=s3.key_id, aws_secret_access_key=s3.secret,
    )  # fmt: skip
    for name, curve in (("a.csv", curves.healthy()), ("b.csv", curves.healthy(seed=5))):
        client.put_object(
            Bucket=BUCKET, Key=f"cached/{name}", Body=_csv_bytes(tmp_path, name, curve)
        )

    def verdicts() -> tuple[list[str], ReportCache]:
        cache = ReportCache(tmp_path / "cache", options.fingerprint())
        return [r.verdict for r in diagnose_stream([url], options, cache=cache)], cache

    assert verdicts()[0] == ["healthy", "healthy"]
    again, cache = verdicts()
    assert again == ["healthy", "healthy"]
    assert (cache.hits, cache.misses) == (2, 0)
    body = _csv_bytes(tmp_path, "b.csv", curves.with_nan())  # the run was redone: new ETag
    client.put_object(Bucket=BUCKET, Key="cached/b.csv", Body=body)
    changed, cache = verdicts()
    assert changed == ["healthy", "failing"]
    assert (cache.hits, cache.misses) == (1, 1)


def _big_jsonl(rows: int) -> bytes:
    return b"".join(
        json.dumps({"step": i, "loss": 3.0 / (1 + i / 50), "note": "x" * 40}).encode() + b"\n"
        for i in range(rows)
    )


@pytest.mark.parametrize("packed", ["plain", "gzip"])
def test_a_large_object_is_streamed_and_reads_as_the_local_file(
    runner, http_root, monkeypatch, packed
):
    from lossdoctor.ingest import streamed

    monkeypatch.setattr(streamed, "STREAM_MIN_BYTES", 4096)
    monkeypatch.setattr(streamed, "BLOCK_BYTES", 1000)
    blocks_read = []
    real = streamed.read_jsonl_blocks

    def counting(blocks, **kwargs):
        return real((blocks_read.append(b) or b for b in blocks), **kwargs)

    monkeypatch.setattr(streamed, "read_jsonl_blocks", counting)
    base, root = http_root
    data = _big_jsonl(2000)
    name = f"big-{packed}.jsonl" + (".gz" if packed == "gzip" else "")
    (root / name).write_bytes(gzip.compress(data) if packed == "gzip" else data)
    (root / "big-local.jsonl").write_bytes(data)
    remote = streamed.read_url(f"{base}/{name}", hints=None)
    local = streamed.read_file(root / "big-local.jsonl", source=f"{base}/{name}", hints=None)
    from test_fast_paths import assert_same_run

    assert_same_run(remote, local)
    assert remote.series["train"].values.shape == (2000,)
    assert len(blocks_read) > 2 * 50  # remote and local, each in blocks of ~1,000 bytes
