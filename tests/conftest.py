"""Shared fixtures: the real data in ../shared/data, and one real local Ray per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from tamis.readers.warc import HTML_TYPES

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAMIS_SHARED_DATA", REPO.parent / "shared" / "data"))
WARC_DIR = SHARED / "warc"
SAMPLE_DIR = REPO / "examples" / "data"

# Cosmetic settings only: loopback, token authentication and the private temp folder come from
# tamis.engine.ray_runtime.make_private_ray, as in the product (no RAY_AUTH_MODE=disabled here).
for key, value in {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DEDUP_LOGS": "0",
    "RAY_COLOR_PREFIX": "0",
}.items():
    os.environ.setdefault(key, value)


def clean_environment(home: Path) -> dict[str, str]:
    """What a user's bare shell gives a process: no RAY_* variables, a private HOME, tamis importable."""
    return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(home),
            "PYTHONPATH": str(REPO / "src"), "LANG": "C.UTF-8"}


def tamis_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    """`tamis ARGS` as a user runs it from a bare shell (clean_environment), its output captured."""
    return subprocess.run([sys.executable, "-m", "tamis.cli.main", *args], env=clean_environment(home),
                          capture_output=True, text=True, timeout=600)


def said_by(done: subprocess.CompletedProcess) -> str:
    """What a command printed, stdout then stderr, its whitespace (the console's line wrapping) made single."""
    return " ".join((done.stdout + done.stderr).split())


def ended_pid() -> int:
    """The pid of a process that has ended (a lock holder that is gone)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def shared_warcs() -> list[Path]:
    files = sorted(WARC_DIR.glob("*.gz"))
    if not files:
        pytest.skip(f"shared WARC data not found at {WARC_DIR}")
    return files


@pytest.fixture
def short_private_dir() -> Path:
    """A new owner-only folder with a short path (mkdtemp under /tmp), removed after the test.

    For an embedded Ray in a subprocess (`TAMIS_RAY_TEMP_DIR`) or a fault script's work: Ray's Unix socket
    paths must stay under 107 bytes, which a pytest tmp_path can exceed; and a fixed name such as
    /tmp/ts-<pid> could be made in advance by another user, and was left behind by every run.
    """
    path = Path(tempfile.mkdtemp(prefix="tamis-t", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray with 2 CPUs, started once for the whole test session, private as tamis's own
    (loopback, a token, a per-run folder in the per-user 0700 one)."""
    import ray

    from tamis.engine.ray_runtime import dashboard_agent_on_a_free_port, make_private_ray

    private = make_private_ray()
    with dashboard_agent_on_a_free_port():  # on Ray's fixed port, a Ray beside another waits 3.4 s to start
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=512 * 2**20,
            _temp_dir=str(private.ray_dir),
            _node_ip_address="127.0.0.1",
            logging_level="WARNING",
        )
    yield ray
    ray.shutdown()
    private.release()


def warcio_documents(path: Path) -> list[tuple[str, int, int]]:
    """(record id, offset, length) of every HTML response / WET conversion record, by warcio alone."""
    found = []
    with open(path, "rb") as handle:
        iterator = ArchiveIterator(handle, arc2warc=True)
        for record in iterator:
            if record.rec_type not in ("response", "conversion", "resource"):
                continue
            payload_type = record.rec_headers.get_header("WARC-Identified-Payload-Type")
            content_type = record.http_headers.get_header("Content-Type") if record.http_headers else None
            if record.rec_type == "conversion" and content_type is None:
                content_type = record.rec_headers.get_header("Content-Type")
            mime = (payload_type or content_type or "").split(";")[0].strip().lower()
            if mime in HTML_TYPES or (record.rec_type == "conversion" and mime == "text/plain"):
                record_id = record.rec_headers.get_header("WARC-Record-ID")
                found.append((record_id, iterator.get_record_offset(), iterator.get_record_length()))
    return found


CORPUS_TOOL = SHARED.parent / "tools" / "make_warc_corpus.py"
AEB_PAGES = SHARED / "extraction" / "scrapinghub_aeb" / "html"


def build_corpus(directory: Path, records: int, files: int, seed: int = 0, pages: Path | None = None,
                 **rates: float) -> list[Path]:
    """A Common-Crawl-shaped WARC corpus from the real pages in ../shared/data (see make_warc_corpus.py);
    `pages` is a folder of HTML pages to draw from instead of scrapinghub_aeb's."""
    import subprocess
    import sys

    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(CORPUS_TOOL), "--pages", str(pages or AEB_PAGES),
               "--out", str(directory / "corpus.warc.gz"),
               "--records", str(records), "--files", str(files), "--seed", str(seed)]
    for name, value in rates.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return sorted(directory.glob("*.warc.gz"))


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> list[Path]:
    """6 files, 120 records from 80 real pages (the other 40 are copies of them, for dedup to find).

    For the fault tests: a run there must outlast a signal or a lost node, but each is run two or three times;
    240 records had made them the suite's longest."""
    pages = tmp_path_factory.mktemp("pages")
    (pages / "html").mkdir()
    (pages / "ground-truth.json").symlink_to(AEB_PAGES.parent / "ground-truth.json")  # the pages' real URLs
    for page in sorted(AEB_PAGES.glob("*.html*"))[:80]:
        (pages / "html" / page.name).symlink_to(page)
    return build_corpus(tmp_path_factory.mktemp("corpus"), records=120, files=6, pages=pages / "html")


#: Long modules that use no Ray, run first: `--dist loadfile` hands modules out in collection order, and with
#: these two at the alphabetical end one process worked on alone for their last minute or so.
FIRST_MODULES = ("test_whole_chunks", "test_word_memo")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put FIRST_MODULES' tests first; the rest keep their order (a stable sort)."""
    items.sort(key=lambda item: item.module.__name__ not in FIRST_MODULES if item.module else True)
