"""Secrets in input URLs (basic auth, presigned queries) never reach an output file, a console or a log line.

A real WARC of ../shared/data is served over HTTP on 127.0.0.1 by a tiny threaded server that demands the
basic-auth credentials and accepts any query, and the pipeline runs on it on a real local Ray.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest
from conftest import WARC_DIR
from rich.console import Console

from tamis.engine.inputs import MissingInputError
from tamis.engine.plan import WorkUnit
from tamis.engine.runner import run_pipeline
from tamis.io.redact import public_url, redact_text
from tamis.pipeline.spec import parse_pipeline

PASSWORD = "s3cretpw"
SIGNATURE = "s3cretsig"
CREDENTIAL = "AKIAs3cretcred"
SECRETS = (PASSWORD, SIGNATURE, CREDENTIAL, "X-Amz-Signature", "X-Amz-Credential")
WARC = WARC_DIR / "cc-main-2024-22_whirlwind.warc.gz"


class _Handler(BaseHTTPRequestHandler):
    """Serves files of one folder under /dir/, with Range requests, only with the right basic auth."""

    root: Path
    expected_auth = "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()

    def log_message(self, *args: object) -> None:
        pass

    def _target(self) -> Path | None:
        path = urlsplit(self.path).path
        if not path.startswith("/dir/"):
            return None
        target = self.root / path[len("/dir/"):]
        return target if target.is_file() else None

    def _headers(self) -> tuple[Path | None, int, int]:
        if self.headers.get("Authorization") != self.expected_auth:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None, 0, 0
        target = self._target()
        if target is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None, 0, 0
        size = target.stat().st_size
        start, end = 0, size - 1
        ranged = self.headers.get("Range", "").startswith("bytes=")
        if ranged:
            first, _, last = self.headers["Range"][len("bytes="):].partition("-")
            start = int(first) if first else 0
            end = min(int(last), size - 1) if last else size - 1
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(max(0, end - start + 1)))
        self.end_headers()
        return target, start, end

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._headers()

    def do_GET(self) -> None:  # noqa: N802
        target, start, end = self._headers()
        if target is not None and end >= start:
            with open(target, "rb") as handle:
                handle.seek(start)
                self.wfile.write(handle.read(end - start + 1))


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "served"
    root.mkdir()
    handler = type("Handler", (_Handler,), {"root": root})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def _secret_url(host: str, name: str) -> str:
    return (f"http://user:{PASSWORD}@{host}/dir/{name}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Credential={CREDENTIAL}%2F20260101%2Fus-east-1&X-Amz-Signature={SIGNATURE}")


def _everything_written(root: Path) -> str:
    """Every file name under `root`, and every file's content (Parquet decoded row by row)."""
    parts = []
    for path in sorted(root.rglob("*")):
        parts.append(str(path.relative_to(root)))
        if path.is_file() and path.suffix == ".parquet":
            parts.append(json.dumps(pq.read_table(path).to_pylist(), default=str))
        elif path.is_file():
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def test_public_url_keeps_scheme_host_path() -> None:
    url = _secret_url("example.org:8080", "a/f.warc.gz") + "#frag"
    assert public_url(url) == "http://example.org:8080/dir/a/f.warc.gz"
    assert public_url("s3://bucket/key.warc.gz") == "s3://bucket/key.warc.gz"
    assert public_url("/local/path?odd") == "/local/path?odd"
    message = f"ClientResponseError: 404, message='Not Found', url='{url}' (quoted: {PASSWORD}, {SIGNATURE})"
    clean = redact_text(message, url)
    assert not any(secret in clean for secret in SECRETS) and "example.org:8080/dir/a/f.warc.gz" in clean
    # ids and labels, which become file names and console lines, come from the public form
    unit = WorkUnit(url)
    assert not any(secret in unit.unit_id + unit.label() for secret in SECRETS)
    assert unit.unit_id == WorkUnit(public_url(url)).unit_id


def test_secret_urls_never_written_or_printed(ray_session, http_root, tmp_path: Path, caplog) -> None:
    host, served = http_root
    (served / "f.warc.gz").write_bytes(WARC.read_bytes())
    good, missing = _secret_url(host, "f.warc.gz"), _secret_url(host, "gone.warc.gz")
    # the paths listing names the missing file (a task failure, reported by input); the good one is direct
    listing = tmp_path / "warc.paths"
    listing.write_text(missing + "\n")
    out = tmp_path / "out"
    stream = io.StringIO()
    console = Console(file=stream, width=200)
    caplog.set_level(logging.INFO)
    result = run_pipeline(parse_pipeline({"steps": [{"step": "trafilatura"}]}), [good, str(listing)], str(out),
                          console=console, show_progress=False)
    assert len(result.completed) == 1 and len(result.failed) == 1, result.failed
    written = _everything_written(out)
    rows = [r for p in out.glob("data/*/*.parquet") for r in pq.read_table(p).to_pylist()]
    assert rows and {r["file_path"] for r in rows} == {f"http://{host}/dir/f.warc.gz"}
    [(label, error)] = result.failed.items()
    assert label == f"http://{host}/dir/gone.warc.gz" and "gone.warc.gz" in error
    # the workers' output (their log lines) and Ray's own logs and task events, in the session's logs folder
    logs_dir = Path(ray_session._private.worker._global_node.get_logs_dir_path())
    worker_logs = [p.read_text(errors="replace") for p in logs_dir.rglob("*") if p.is_file()]
    assert any(p.name.startswith("worker-") for p in logs_dir.rglob("*"))
    shown = "\n".join([written, stream.getvalue(), caplog.text, json.dumps(result.failed), *result.inputs,
                       json.dumps(result.completed, default=str), *worker_logs])
    leaked = [secret for secret in SECRETS if secret in shown]
    assert not leaked, leaked


def test_unreadable_secret_url_error_is_redacted(http_root, tmp_path: Path) -> None:
    host, served = http_root
    (served / "f.warc.gz").write_bytes(WARC.read_bytes())
    wrong = _secret_url(host, "f.warc.gz").replace(f"user:{PASSWORD}", "user:wrongs3cretpw")
    with pytest.raises(MissingInputError) as caught:
        run_pipeline(parse_pipeline({"steps": []}), [wrong], str(tmp_path / "out"), show_progress=False)
    message = str(caught.value)
    assert f"http://{host}/dir/f.warc.gz" in message
    assert not any(secret in message for secret in (*SECRETS, "wrongs3cretpw")), message
    assert not (tmp_path / "out").exists()
