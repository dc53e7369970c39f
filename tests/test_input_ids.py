"""Input ids (the names of every shard, marker and commit) differ for different inputs, or the run refuses.

FineWeb-2's output puts a `part-<id>.parquet` of the same name in every language folder, so `tamis tokenize`
of a dump sees each name hundreds of times; ids that told them apart by 32 bits of hash gave about one clash
per dump, and a clash silently dropped one of the two inputs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import WARC_DIR

from tamis.cli.main import cli
from tamis.engine import layout
from tamis.engine.layout import InputIdClash, check_distinct_ids, input_id
from tamis.engine.runner import run_pipeline
from tamis.pipeline.spec import parse_pipeline
from tamis.tokenize.stage import TokenizeOptions, run_tokenize

SAMPLE = WARC_DIR / "ia-2008-heritrix_archive-org_sample.warc.gz"


def _same_name_in_folders(root: Path, name: str, folders: int, source: Path) -> list[str]:
    paths = []
    for i in range(folders):
        (root / f"lang{i:03d}").mkdir(parents=True)
        shutil.copyfile(source, root / f"lang{i:03d}" / name)
        paths.append(str(root / f"lang{i:03d}" / name))
    return paths


def test_same_name_in_many_folders_gets_distinct_ids() -> None:
    paths = [f"s3://bucket/run/data/lang{i:04d}/part-CC-MAIN-2024-10-00000.parquet" for i in range(5000)]
    ids = [input_id(p) for p in paths]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("part-CC-MAIN-2024-10-00000.parquet-") and len(i.rsplit("-", 1)[1]) == 16 for i in ids)
    check_distinct_ids(paths + paths[:3])  # the same input twice is not a clash
    # credentials and query strings are not part of the id: a re-signed URL is the same input
    assert input_id("https://user:secret@host/a/x.warc.gz?sig=1") == input_id("https://host/a/x.warc.gz?sig=2")


def test_a_clash_fails_the_run_before_any_work(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(layout, "INPUT_ID_HEX_DIGITS", 1)  # 16 ids for 20 inputs: a clash is certain
    paths = _same_name_in_folders(tmp_path / "in", "sample.warc.gz", 20, SAMPLE)
    with pytest.raises(InputIdClash, match=r"inputs .*sample\.warc\.gz.* and .*sample\.warc\.gz.* would both get"):
        run_pipeline(parse_pipeline({"steps": [{"step": "token_count"}]}), paths, str(tmp_path / "out"),
                     show_progress=False)
    assert not (tmp_path / "out").exists()
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("steps:\n  - step: token_count\n")
    result = CliRunner().invoke(cli, ["run", str(pipeline), "--input", str(tmp_path / "in" / "*" / "*.warc.gz"),
                                      "--output", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 2 and "would both get the id" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_a_clash_fails_tokenize_before_any_work(monkeypatch, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(layout, "INPUT_ID_HEX_DIGITS", 1)
    shard = tmp_path / "one.parquet"
    pq.write_table(pa.table({"id": ["a"], "text": ["hello world"]}), shard)
    paths = _same_name_in_folders(tmp_path / "data", "part-x.parquet", 20, shard)
    with pytest.raises(InputIdClash, match="would both get the id"):
        run_tokenize(paths, TokenizeOptions(str(tmp_path / "tokens")))
    assert not (tmp_path / "tokens").exists()
