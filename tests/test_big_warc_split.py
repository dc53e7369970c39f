"""Byte-range splitting gives the same documents as one task over the whole file (issue #14, part 2).

The small version of benchmarks/bench_big_warc.py: a multi-MiB WARC of real pages made by
shared/tools/make_warc_corpus.py, run whole and in 1 MiB ranges whose edges fall inside records. Kept and
removed documents must be the same rows (compared sorted by id, every column), and the counts the same.
The reader's state blocks (WarcReader `state_block_bytes`, 1 MiB here, 64 MiB by default) are what make
this hold for trafilatura's `deduplicate`, whose cache carries text from page to page.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import AEB_PAGES, build_corpus, warcio_documents

from tamis.engine.plan import plan_units
from tamis.engine.runner import run_pipeline
from tamis.pipeline.spec import parse_pipeline
from tamis.readers.warc import WarcReader
from tamis.stats.counters import StepCounters

# cheap steps (no trafilatura) that still extract in the sandbox, filter, drop and annotate
PIPELINE = {
    "name": "split-identity",
    "steps": [{"step": "url_filter"}, {"step": "resiliparse"},
              {"step": "language_id", "languages": ["en"], "threshold": 0.65},
              {"step": "gopher_quality"}, {"step": "token_count"}],
    "removed": {"mode": "full"},
}
RANGE = 2**20
PIPELINE["reader"] = {"step": "warc", "state_block_bytes": RANGE}
# FineWeb's extraction, whose deduplicate cache makes a page's text depend on the pages before it
DEDUP_PIPELINE = {
    "name": "split-identity-deduplicate",
    "reader": {"step": "warc", "state_block_bytes": RANGE},
    "steps": [{"step": "trafilatura", "favor_precision": True, "include_comments": False, "deduplicate": True},
              {"step": "language_id", "languages": ["en"], "threshold": 0.65}],
    "removed": {"mode": "full"},
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    (path,) = build_corpus(tmp_path_factory.mktemp("bigwarc"), records=200, files=1, seed=3)
    return path


@pytest.fixture(scope="module")
def repeating_corpus(tmp_path_factory) -> Path:
    """180 records drawn from 36 real pages: each page comes back about 5 times, as boilerplate does on a
    site, so trafilatura's deduplicate cache removes text from later copies."""
    pages = tmp_path_factory.mktemp("pages")
    for page in sorted(AEB_PAGES.glob("*.html*"))[:36]:
        shutil.copy(page, pages / page.name)
    (path,) = build_corpus(tmp_path_factory.mktemp("repeating"), records=180, files=1, seed=5, pages=pages)
    return path


def rows_by_id(files: list[Path]) -> pa.Table:
    return pa.concat_tables([pq.read_table(path) for path in files]).sort_by([("id", "ascending")])


def counts(result) -> dict:
    return {name: (c.docs_in, c.docs_out, dict(c.dropped), dict(c.events)) for name, c in result.counters.steps.items()}


def test_split_ranges_give_the_unsplit_documents(ray_session, corpus: Path, tmp_path: Path) -> None:
    size = corpus.stat().st_size
    units = plan_units([str(corpus)], {str(corpus): size}, RANGE, RANGE)
    assert len(units) >= 4
    # inner edges cut HTML records, so a range must skip the partial record it starts in and finish its last one
    records = [(offset, offset + length) for _, offset, length in warcio_documents(corpus)]
    edges = [unit.start for unit in units[1:]]
    assert any(any(start < edge < end for start, end in records) for edge in edges)

    spec = parse_pipeline(PIPELINE)
    whole = run_pipeline(spec, [str(corpus)], str(tmp_path / "whole"), max_task_bytes=None, show_progress=False)
    split = run_pipeline(spec, [str(corpus)], str(tmp_path / "split"), max_task_bytes=RANGE, show_progress=False)
    assert whole.ok and split.ok
    assert len(whole.completed) == 1 and len(split.completed) == len(units)

    kept_whole = rows_by_id(sorted((tmp_path / "whole").glob("data/**/*.parquet")))
    kept_split = rows_by_id(sorted((tmp_path / "split").glob("data/**/*.parquet")))
    assert kept_whole.num_rows == whole.totals["kept"] > 0
    assert kept_split.schema.equals(kept_whole.schema) and kept_split.equals(kept_whole)
    ids = kept_whole.column("id").to_pylist()
    assert len(set(ids)) == len(ids)

    steps = sorted(p.name for p in (tmp_path / "whole" / "removed").iterdir())
    assert steps == sorted(p.name for p in (tmp_path / "split" / "removed").iterdir())
    assert "language_id" in steps
    for step in steps:
        removed_whole = rows_by_id(sorted((tmp_path / "whole" / "removed" / step).glob("*.parquet")))
        removed_split = rows_by_id(sorted((tmp_path / "split" / "removed" / step).glob("*.parquet")))
        assert removed_split.equals(removed_whole), step

    for key in ("records", "html_docs", "kept", "tokens", "bytes_read"):
        assert split.totals[key] == whole.totals[key], key
    assert whole.totals["html_docs"] == len(records)
    assert counts(split) == counts(whole)


def test_bytes_read_grows_while_a_range_is_read(corpus: Path) -> None:
    """The progress line's MB/s comes from bytes_read: it must grow batch by batch, not only at the end of a
    task (over a 1 GiB file it read 0.0 MB/s for the whole task), and still total the range's size."""
    size = corpus.stat().st_size
    for byte_range in (None, (RANGE, 3 * RANGE)):
        counters = StepCounters()
        seen = [counters.events["bytes_read"] for _ in WarcReader(batch_size=16).iter_batches(
            str(corpus), counters, byte_range=byte_range)]
        start, end = byte_range or (0, size)
        assert len(seen) >= 4 and 0 < seen[0] < seen[len(seen) // 2] < end - start
        assert seen == sorted(seen)
        assert counters.events["bytes_read"] == end - start


@pytest.mark.slow
def test_deduplicate_cache_gives_the_same_documents_whole_or_split(ray_session, repeating_corpus: Path,
                                                                   tmp_path: Path) -> None:
    size = repeating_corpus.stat().st_size
    assert size > 3 * RANGE, "the corpus must span several state blocks"

    def run(name: str, pipeline: dict, max_task_bytes: int | None):
        result = run_pipeline(parse_pipeline(pipeline), [str(repeating_corpus)], str(tmp_path / name),
                              max_task_bytes=max_task_bytes, show_progress=False)
        assert result.ok
        kept = rows_by_id(sorted((tmp_path / name).glob("data/**/*.parquet")))
        removed = rows_by_id(sorted((tmp_path / name).glob("removed/**/*.parquet")))
        return result, kept, removed

    whole, kept_whole, removed_whole = run("whole", DEDUP_PIPELINE, None)
    assert len(whole.completed) == 1 and kept_whole.num_rows > 0
    for name, limit in (("one-block", RANGE), ("two-blocks", 2 * RANGE)):
        split, kept, removed = run(name, DEDUP_PIPELINE, limit)
        planned = plan_units([str(repeating_corpus)], {str(repeating_corpus): size}, limit, RANGE)
        assert len(split.completed) == len(planned) > 1
        assert kept.equals(kept_whole), name
        assert removed.equals(removed_whole), name
        assert counts(split) == counts(whole), name

    # the control: without block resets the cache sees the whole file, and the text of later copies differs,
    # so the identity above is the blocks' doing and not a corpus on which deduplicate never acts
    unblocked = {**DEDUP_PIPELINE, "reader": {"step": "warc", "state_block_bytes": 2**40}}
    _, kept_unblocked, _ = run("unblocked", unblocked, None)
    texts = dict(zip(kept_whole.column("id").to_pylist(), kept_whole.column("text").to_pylist(), strict=True))
    other = dict(zip(kept_unblocked.column("id").to_pylist(), kept_unblocked.column("text").to_pylist(),
                     strict=True))
    assert texts != other


def test_plan_cuts_ranges_on_state_block_edges() -> None:
    block = RANGE
    size = 11 * block - 5  # 11 blocks, the last one short
    units = plan_units(["f"], {"f": size}, 3 * block, block)
    assert [(u.start, u.end) for u in units] == [(0, 2 * block), (2 * block, 5 * block), (5 * block, 8 * block),
                                                 (8 * block, size)]
    assert all(u.start % block == 0 for u in units)
    # a limit under one block still gives whole blocks, one per range
    small = plan_units(["f"], {"f": size}, block // 2, block)
    assert [u.start for u in small] == [k * block for k in range(11)] and small[-1].end == size
    # a file under one block is never split, whatever the limit
    assert [u.part for u in plan_units(["f"], {"f": block - 1}, block // 4, block)] == [None]
    # without blocks, ranges are equal and no larger than the limit
    plain = plan_units(["f"], {"f": size}, 3 * block)
    assert len(plain) == 4 and all(u.end - u.start <= 3 * block for u in plain)


def test_a_paths_files_inputs_are_looked_up_and_split_and_a_resume_keeps_their_plan(ray_session, corpus: Path,
                                                                                    tmp_path: Path) -> None:
    """The files a Common Crawl paths file lists come without sizes: they are looked up, so a large one is
    split as the same file given by name is (same ranges, same documents as one task over it). The rerun
    takes the sizes from the manifest without looking them up: a file that could not be looked up (it was
    not there yet) stays whole, so the units already committed keep their ids and nothing is done twice."""
    from rich.console import Console

    base = tmp_path / "base"
    base.mkdir()
    shutil.copy(corpus, base / "big.warc.gz")
    listing = tmp_path / "warc.paths"
    listing.write_text("big.warc.gz\nlate.warc.gz\n")
    spec = parse_pipeline(PIPELINE)
    out = tmp_path / "out"

    def run(said: Console):
        return run_pipeline(spec, [str(listing)], str(out), paths_base=str(base), max_task_bytes=RANGE,
                            console=said, show_progress=False)

    said = Console(record=True, width=300)
    first = run(said)
    ranges = plan_units([str(base / "big.warc.gz")], {str(base / "big.warc.gz"): corpus.stat().st_size}, RANGE, RANGE)
    assert len(ranges) >= 4 and sorted(first.completed) == sorted(unit.label() for unit in ranges)
    assert list(first.failed) == [str(base / "late.warc.gz")]
    text = said.export_text()
    assert "looking up the sizes of 2 listed input file(s)" in text and "sizes: 1 found, 1 unknown (run whole)" in text
    whole = run_pipeline(spec, [str(corpus)], str(tmp_path / "whole"), max_task_bytes=None, show_progress=False)
    same = ["id", "text", "url", "token_count"]  # file_path names each run's own copy
    assert rows_by_id(sorted(out.glob("data/**/*.parquet"))).select(same).equals(
        rows_by_id(sorted((tmp_path / "whole").glob("data/**/*.parquet"))).select(same))
    assert whole.totals["kept"] > 0

    shutil.copy(corpus, base / "late.warc.gz")  # it arrives, larger than the limit
    said = Console(record=True, width=300)
    second = run(said)
    assert "looking up" not in said.export_text()
    assert second.ok and second.completed == [str(base / "late.warc.gz")]  # whole, as planned the first time
    assert sorted(second.skipped) == sorted(unit.label() for unit in ranges)
