"""The HTML report opens in a real headless browser (Debian's chromium) with no console error, offline.

A screenshot is saved as a test artifact: $TAMIS_ARTIFACTS, else tests/artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE_DIR

from tamis.engine.runner import run_pipeline
from tamis.pipeline.spec import load_pipeline
from tamis.stats.load import load_run
from tamis.stats.report_html import render, write_report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARTIFACTS = Path(os.environ.get("TAMIS_ARTIFACTS", REPO / "tests" / "artifacts"))


def chromium(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    """Lines of the page's console (the report logs nothing, so any is an error) and uncaught exceptions."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def report(ray_session, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("report") / "out"
    inputs = [str(SAMPLE_DIR / f"dolma_sample-000{i}.warc.gz") for i in (0, 1)]
    assert run_pipeline(load_pipeline(REPO / "pipelines" / "fineweb.yaml"), inputs, str(output),
                        show_progress=False).ok
    page = output.parent / "report.html"
    write_report(load_run(str(output)), str(page))
    return page


def test_report_is_self_contained(report) -> None:
    page = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the report must not fetch anything"
    assert "@import" not in page and "url(" not in page
    for part in ("Funnel", "Drop reasons", "fineweb_quality", "line_punct_ratio", "Languages", "Shards", "COMPLETE"):
        assert part in page


def test_report_renders_in_chromium_without_console_errors(report, tmp_path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium not installed (CI installs it: apt-get install -y chromium)")
    # the check itself must be able to fail: a page with an error is caught
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>console.error('x'); notDefined();</script></body></html>")
    assert console_errors(chromium(broken, tmp_path, "--dump-dom").stderr)

    dom = chromium(report, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    # the page's script ran to its end and counted the charts it found
    ready = re.search(r'<body data-ready="(\d+)"', dom.stdout)
    assert ready and int(ready.group(1)) >= 10

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "stats_report.png"
    screenshot.unlink(missing_ok=True)
    shot = chromium(report, tmp_path, "--window-size=1280,3600", "--hide-scrollbars", f"--screenshot={screenshot}")
    assert shot.returncode == 0 and console_errors(shot.stderr) == []
    assert screenshot.stat().st_size > 20_000


def test_partial_run_is_labelled_in_report(report, tmp_path) -> None:
    output = report.parent / "out"
    copy = tmp_path / "copy"
    shutil.copytree(output, copy)
    sorted(copy.glob("_commits/process/*.json"))[0].unlink()
    (copy / "stats.json").unlink()
    page = render(load_run(str(copy)))
    assert 'class="badge partial"' in page and "PARTIAL: 1 of 2 inputs committed" in page
