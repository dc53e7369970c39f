"""S3 round trip against a local moto server: WARC inputs from s3://, shards and stats to s3://."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import REPO, SAMPLE_DIR, ended_pid

from tamis.engine.output_lock import Holder, OutputLock, OutputLockedError

s3fs = pytest.importorskip("s3fs", reason="s3fs is not installed: pip install -e '.[test]'")
pytest.importorskip("moto", reason="moto is not installed: pip install -e '.[test]'")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_env():
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    env = {
        "AWS_ACCESS_KEY_ID": "testing-key-id",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-never-logged",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
    }
    yield env
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def cli_env(s3_env, short_private_dir):
    """A tamis subprocess's environment: the S3 server's, and a private folder of its own for the embedded Ray."""
    return {**os.environ, **s3_env, "TAMIS_RAY_TEMP_DIR": str(short_private_dir)}


def _fs(env: dict[str, str]):
    return s3fs.S3FileSystem(key=env["AWS_ACCESS_KEY_ID"], secret=env["AWS_SECRET_ACCESS_KEY"],
                             endpoint_url=env["AWS_ENDPOINT_URL"], use_listings_cache=False)


@pytest.mark.slow
def test_run_reads_and_writes_s3(s3_env, cli_env, tmp_path: Path) -> None:
    fs = _fs(s3_env)
    fs.mkdir("crawl")
    for path in sorted(SAMPLE_DIR.glob("dolma*.warc.gz")):
        fs.put(str(path), f"crawl/in/{path.name}")
    env = cli_env
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("steps:\n  - step: trafilatura\n  - step: language_id\n    languages: [en]\n"
                        "  - step: token_count\nremoved: {mode: full}\n")
    run = ["run", str(pipeline), "--input", "s3://crawl/in/*.warc.gz", "--output", "s3://crawl/out", "--no-progress"]
    # the run, then the same command again (everything committed: it skips both inputs), on one embedded Ray
    done = _on_one_ray(env, run, run)
    first, again = done.stdout.split("\nEXIT 0", 1)
    assert s3_env["AWS_SECRET_ACCESS_KEY"] not in done.stdout + done.stderr

    shards = fs.glob("crawl/out/data/*/*.parquet")
    assert len(shards) == 2
    rows = []
    for shard in shards:
        with fs.open(shard, "rb") as handle:
            rows += pq.read_table(handle).to_pylist()
    assert rows and all(row["file_path"].startswith("s3://crawl/in/") for row in rows)
    stats = json.loads(fs.cat("crawl/out/stats.json"))
    assert stats["complete"] and stats["totals"]["kept"] == len(rows)
    assert stats["totals"]["tokens"] == sum(row["token_count"] for row in rows)
    assert len(fs.glob("crawl/out/_commits/process/*.json")) == 2
    assert not [p for p in fs.find("crawl/out") if ".tmp-" in p], "temporary objects left behind"
    assert not fs.exists("crawl/out/_lock.json"), "the run's lock was left behind"

    assert "skipped" not in " ".join(first.split()) and "skipped 2 input(s)" in " ".join(again.split())

    stats_cli = subprocess.run([sys.executable, "-m", "tamis.cli.main", "stats", "s3://crawl/out", "--json"],
                               env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert stats_cli.returncode == 0, stats_cli.stderr[-2000:]
    assert str(len(rows)) in stats_cli.stdout


_CLI_SCRIPT = """
import json, logging, sys
logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="LOG %(name)s %(message)s")
from click.testing import CliRunner
from tamis.cli.main import cli
from tamis.engine.ray_runtime import connect, disconnect
connect(num_cpus=2)  # one embedded Ray for every command: the commands join it and leave it running
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(cli, args)
    print(result.output)
    print("EXIT", result.exit_code)
disconnect()
"""


def _on_one_ray(env: dict[str, str], *commands: list[str]) -> subprocess.CompletedProcess:
    """`tamis ARGS` for each of `commands`, in turn in one process on one embedded Ray (_CLI_SCRIPT); each must
    exit 0."""
    done = subprocess.run([sys.executable, "-c", _CLI_SCRIPT, json.dumps(list(commands))], env=env,
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0 and done.stdout.count("EXIT 0") == len(commands), (done.stdout + done.stderr)[-3000:]
    return done


@pytest.mark.slow
def test_dedup_on_s3_reads_its_block_files_and_recomputes_a_damaged_one(s3_env, cli_env, tmp_path: Path) -> None:
    """`tamis dedup` with shards and work directory on S3: block files are written and read through s3fs
    (ranged reads), the result is the same as on local disk, and a damaged signature file is recomputed."""
    from dedup_corpus import make_corpus

    fs = _fs(s3_env)
    fs.mkdir("dedup-s3")
    paths, origin = make_corpus(tmp_path / "in", originals=40, exact=15, near=10, words=200, shards=2)
    for path in paths:
        fs.put(path, f"dedup-s3/in/{Path(path).name}")
    env = cli_env

    def dedup(*runs: list[str]) -> str:
        """`tamis dedup ARGS` for each of `runs`, in one process on one embedded Ray; its output and logs."""
        return _on_one_ray(env, *(["dedup", *run] for run in runs)).stdout

    dedup([str(tmp_path / "in" / "*.parquet"), "--output", str(tmp_path / "local"), "--workers", "2"],
          ["s3://dedup-s3/in/*.parquet", "--output", "s3://dedup-s3/out", "--workers", "2"])

    def kept_ids() -> list[str]:
        ids = []
        for shard in sorted(fs.glob("dedup-s3/out/data/**/*.parquet")):
            with fs.open(shard, "rb") as handle:
                ids += pq.read_table(handle, columns=["id"]).column("id").to_pylist()
        return sorted(ids)

    kept = kept_ids()
    local_kept = sorted(pq.read_table(str(tmp_path / "local" / "data"), columns=["id"]).column("id").to_pylist())
    assert kept == local_kept and len({origin[i] for i in kept}) == 40 and len(kept) < 65
    signatures = sorted(fs.glob("dedup-s3/out/dedup/signatures/*.blocks"))
    assert len(signatures) == 2 and fs.glob("dedup-s3/out/dedup/components/**/*.blocks")

    data = bytearray(fs.cat(signatures[0]))
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)  # same size: only a block's digest can tell
    fs.pipe(signatures[0], bytes(data))
    for marker in fs.glob("dedup-s3/out/dedup/_commits/buckets/*.json"):
        fs.rm(marker)
    # a later dump on local disk, deduplicated against the S3 run's index: the index's files are read from S3
    later, _ = make_corpus(tmp_path / "later", originals=40, exact=0, near=0, words=200, shards=1)
    fresh, _ = make_corpus(tmp_path / "fresh", originals=10, exact=0, near=0, words=200, shards=1, seed=7)
    again = dedup(["s3://dedup-s3/in/*.parquet", "--output", "s3://dedup-s3/out", "--workers", "2"],
                  [*later, *fresh, "--output", str(tmp_path / "out2"), "--workers", "2", "--previous-index",
                   "s3://dedup-s3/out/dedup"])
    assert "recomputing" in again and signatures[0].split("/")[-1] in again
    assert kept_ids() == kept
    assert pq.read_table(str(tmp_path / "out2" / "data")).num_rows == 10  # the 40 copies of indexed documents go


_TOKENIZE_SCRIPT = """
import sys
from tamis.engine.ray_runtime import connect, disconnect
from tamis.tokenize import stage
stage.SHUFFLE_BUCKET_BYTES = 20_000  # many buckets, so each task reads block files on the object store
connect(num_cpus=2)  # one embedded Ray for both runs
for source, target in zip(sys.argv[1::2], sys.argv[2::2]):
    result = stage.run_tokenize([source], stage.TokenizeOptions(target, format="megatron", shuffle=True, seed=4,
                                                                max_tokens=30_001, shards=3), show_progress=False)
    assert result.ok, result.failed
    print("TOKENS", result.totals["tokens"])
disconnect()
"""


@pytest.mark.slow
def test_shuffled_tokenize_on_s3_writes_what_it_writes_locally(s3_env, cli_env, tmp_path: Path) -> None:
    """Encoded key files (block files), bucket totals and output shards on S3: the same bytes as on local disk."""
    import pyarrow as pa

    from tamis.io.parquet import FINEWEB_SCHEMA

    articles = json.loads((REPO.parent / "shared" / "data" / "extraction" / "scrapinghub_aeb" /
                           "ground-truth.json").read_text())
    docs = [(f"<urn:aeb:{k}>", articles[k]["articleBody"]) for k in sorted(articles) if articles[k]["articleBody"]]
    local_in = tmp_path / "in"
    local_in.mkdir()
    fs = _fs(s3_env)
    fs.mkdir("tokens")
    for i in range(3):
        chunk = docs[i::3]
        columns = {name: [None] * len(chunk) for name in FINEWEB_SCHEMA.names}
        columns["id"], columns["text"] = [d for d, _ in chunk], [t for _, t in chunk]
        pq.write_table(pa.table(columns, schema=FINEWEB_SCHEMA), local_in / f"part-{i}.parquet")
        fs.put(str(local_in / f"part-{i}.parquet"), f"tokens/in/part-{i}.parquet")
    env = cli_env
    run = subprocess.run([sys.executable, "-c", _TOKENIZE_SCRIPT, "s3://tokens/in/*.parquet", "s3://tokens/out",
                          str(local_in / "*.parquet"), str(tmp_path / "out")], env=env, capture_output=True, text=True,
                         timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    assert [line for line in run.stdout.splitlines() if line.startswith("TOKENS")] == ["TOKENS 30001"] * 2
    local_files = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.name.startswith("part-")}
    assert len(local_files) == 6  # 3 shards, .bin and .idx
    assert {name: fs.cat(f"tokens/out/{name}") for name in local_files} == local_files
    assert json.loads(fs.cat("tokens/out/manifest.json"))["buckets"] > 8
    assert not fs.exists("tokens/out/_work"), "the encoded work is deleted once complete"


def test_an_s3_output_is_locked_against_a_second_run(s3_env, cli_env, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """On S3 the lock is a conditional create (If-None-Match: *): a second lock, and a `tamis run` into the
    output, are refused while it is held; a lock whose process is gone is taken over; release removes it."""
    fs = _fs(s3_env)
    fs.mkdir("locked")
    with OutputLock("locked/out", fs) as lock:
        assert json.loads(fs.cat_file("locked/out/_lock.json"))["pid"] == os.getpid()
        with pytest.raises(OutputLockedError, match=r"^s3://locked/out is in use by the run started .* on this "
                                                    r"machine.*Wait for it to end"):
            OutputLock("locked/out", fs).acquire()
        refused = subprocess.run([sys.executable, "-m", "tamis.cli.main", "run", str(REPO / "pipelines/fineweb.yaml"),
                                  "--input", str(SAMPLE_DIR / "dolma_sample-0000.warc.gz"), "--output",
                                  "s3://locked/out", "--no-progress"], env=cli_env, capture_output=True, text=True,
                                 timeout=300, cwd=tmp_path)
        said = " ".join((refused.stdout + refused.stderr).split())
        assert refused.returncode == 2 and "error: s3://locked/out is in use by the run started" in said, said
        assert fs.find("locked/out") == ["locked/out/_lock.json"]  # the refused run wrote nothing
    assert lock.held is False and not fs.exists("locked/out/_lock.json")

    stale = {**asdict(Holder.this_process()), "pid": ended_pid()}  # this machine, a process that ended
    fs.pipe_file("locked/out/_lock.json", json.dumps(stale).encode())
    with caplog.at_level("WARNING", logger="tamis.engine.output_lock"), OutputLock("locked/out", fs):
        assert json.loads(fs.cat_file("locked/out/_lock.json"))["pid"] == os.getpid()
    assert "is gone; taking it over" in caplog.text and "s3://locked/out/_lock.json" in caplog.text


def test_sizes_of_listed_files_are_looked_up_on_s3(s3_env, monkeypatch) -> None:
    """A paths file's WARCs on S3: their sizes come from concurrent requests (so large ones can be split), a
    missing one is None (run whole, and its task reports it), and the credentials are the environment's."""
    from tamis.engine.inputs import lookup_sizes

    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    fs = _fs(s3_env)
    fs.mkdir("listed")
    files = sorted(SAMPLE_DIR.glob("dolma*.warc.gz"))
    for path in files:
        fs.put(str(path), f"listed/{path.name}")
    urls = [f"s3://listed/{path.name}" for path in files] + ["s3://listed/missing.warc.gz"]
    assert lookup_sizes(urls, at_once=2) == {**{f"s3://listed/{p.name}": p.stat().st_size for p in files},
                                              "s3://listed/missing.warc.gz": None}
