"""Dedup stage: signatures, buckets, connected components, finalize, and the whole stage on Ray."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tamis.dedup.block_file import all_blocks, read_located, write_blocks
from tamis.dedup.buckets import PAIR_COLUMNS, bucket_task, star_edges
from tamis.dedup.components import MEMBER_COLUMNS, large_star_task, scatter_task, small_star_task
from tamis.dedup.options import DedupOptions, DedupOptionsError, validate_dedup_section
from tamis.dedup.partition import signature_task
from tamis.dedup.shingles import normalize
from tamis.dedup.signatures import MinHasher
from tamis.io.storage import filesystem

sys.path.insert(0, str(Path(__file__).parent))
from dedup_corpus import make_corpus  # noqa: E402

TEXTS = [
    "Hello World! The 12,5 quick brown foxes jumped over the lazy dog's back; naïve café. " * 3,
    "Über straße 3.14 «quoted» — dash… and some more words here, don't you think? 42 is 42.",
    "E-mail me at someone@example.com or visit https://example.org/path?x=1 (today: Monday, 5 May).",
    "short text",
    "\tTabs\tand\nnewlines\r\nand   spaces   ÀÉÎÕÜ çñ 一二三 。、「引用」",
]


def test_normalize_matches_datatrove():
    from datatrove.utils.text import simplify_text

    for text in TEXTS:
        assert normalize(text) == simplify_text(text)


def test_punctuation_holds_every_sentence_terminal_of_every_code_point():
    """The set built from all code points at once (in C) is the one a loop over each code point gives."""
    import regex

    from tamis.dedup.shingles import _CONTROLS, _EXTRA_TERMINALS, _MARKS, punctuation

    terminals = [chr(c) for c in range(0x110000)
                 if not 0xD800 <= c < 0xE000 and regex.fullmatch(r"\p{Sentence_Terminal}", chr(c))]
    assert len(terminals) > 100 and "\u3002" in terminals and "\U00011c41" in terminals
    assert punctuation() == frozenset(_MARKS + _CONTROLS + _EXTRA_TERMINALS + "".join(terminals))


def test_signatures_match_datasketch_on_the_same_shingles():
    datasketch = pytest.importorskip("datasketch")
    options = DedupOptions(hash_bits=32, bands=4, rows_per_band=8)
    hasher = MinHasher(options)
    a, b = hasher.parameters
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 2**32, size=n, dtype=np.uint64) for n in (1, 7, 300, 5000)]
    ours = hasher.signatures_of_shingles(docs)
    for doc, sig in zip(docs, ours, strict=True):
        sketch = datasketch.MinHash(num_perm=options.permutations, hashfunc=lambda x: x,
                                    permutations=(a.ravel(), b.ravel()), scheme="legacy")
        sketch.update_batch(doc.tolist())
        assert np.array_equal(sig, sketch.hashvalues.astype(np.uint64))


def test_signatures_64_bit_match_the_formula_and_batching_does_not_change_them():
    hasher = MinHasher(DedupOptions())
    a, b = hasher.parameters
    docs = [hasher.shingles(t) for t in TEXTS if len(hasher.shingles(t))]
    together = hasher.signatures_of_shingles(docs)
    for doc, sig in zip(docs, together, strict=True):
        with np.errstate(over="ignore"):
            expected = ((doc.reshape(-1, 1) * a + b) % np.uint64((1 << 61) - 1)).min(axis=0)
        assert np.array_equal(sig, expected)
        assert np.array_equal(hasher.signatures_of_shingles([doc])[0], sig)
    assert len(hasher.shingles("too few words here")) == 0


def test_options_are_validated_with_the_field_named():
    with pytest.raises(DedupOptionsError, match="dedup.keep"):
        DedupOptions(keep="newest")
    with pytest.raises(DedupOptionsError, match="unknown field 'band'"):
        validate_dedup_section({"band": 3})
    options = validate_dedup_section({"memory_per_task": "64MiB", "keep": "longest"})
    assert options.memory_per_task == 64 * 2**20 and options.keep == "longest"
    assert validate_dedup_section({"enabled": False}) is None
    assert DedupOptions(kind="exact").bands == 1


def test_star_edges_link_equal_keys_to_their_smallest_node():
    h1 = np.array([5, 5, 1, 5, 1, 9], dtype=np.uint64)
    h2 = np.array([2, 2, 3, 2, 3, 9], dtype=np.uint64)
    node = np.array([30, 10, 40, 20, 50, 60], dtype=np.uint64)
    u, v = star_edges(h1, h2, node)
    assert sorted(zip(u.tolist(), v.tolist(), strict=True)) == [(10, 20), (10, 30), (40, 50)]


def _components(edges: list[tuple[int, int]], partitions: int, work: str) -> dict[int, tuple[int, int]]:
    """Run the component rounds in-process (as the driver does on Ray): node -> (representative, size)."""
    fs, _ = filesystem(work)
    u = np.array([e[0] for e in edges], dtype=np.uint64)
    v = np.array([e[1] for e in edges], dtype=np.uint64)
    entry = write_blocks(fs, f"{work}/edges/in.blocks", [{"u": u, "v": v}], PAIR_COLUMNS)
    current = [scatter_task(0, [entry], partitions, work)["file"]]
    for round_no in range(1, 100):
        large = [large_star_task(round_no, p, current, partitions, work) for p in range(partitions)]
        if sum(t["violations"] for t in large) == 0:
            break
        current = [small_star_task(round_no, p, [t["file"] for t in large], partitions, work)["file"]
                   for p in range(partitions)]
    found = {}
    for task in large:
        for arrays in read_located(fs, all_blocks(fs, task["members"], MEMBER_COLUMNS), MEMBER_COLUMNS):
            for node, rep, size in zip(*(arrays[c].tolist() for c in ("node", "rep", "size")), strict=True):
                assert node not in found
                found[node] = (rep, size)
    return found


def _reference(edges: list[tuple[int, int]]) -> dict[int, tuple[int, int]]:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for node in list(parent):
        members.setdefault(find(node), []).append(node)
    return {n: (min(m), len(m)) for m in members.values() for n in m}


@pytest.mark.parametrize("partitions", [1, 3])
def test_components_on_hand_made_graphs(tmp_path, partitions):
    rng = random.Random(1)
    chain = [(i, i + 1) for i in range(1, 400)]  # a long path: label propagation would need 400 rounds
    rng.shuffle(chain)
    star = [(1000, 1000 + i) for i in range(1, 50)]
    cycle = [(2000 + i, 2000 + (i + 1) % 30) for i in range(30)]
    pairs = [(3000 + 2 * i, 3001 + 2 * i) for i in range(20)]
    reversed_chain = [(5000 - i, 5000 - i - 1) for i in range(100)]
    random_graph = [(10_000 + rng.randrange(300), 10_000 + rng.randrange(300)) for _ in range(250)]
    edges = chain + star + cycle + pairs + reversed_chain + [(a, b) for a, b in random_graph if a != b]
    found = _components(edges, partitions, str(tmp_path))
    assert found == _reference(edges)


def test_bucket_spills_to_disk_when_over_memory_and_gives_the_same_pairs(tmp_path):
    paths, _ = make_corpus(tmp_path / "in", originals=150, exact=100, near=0, shards=2)
    options = DedupOptions(memory_per_task=16 * 2**20, ranges_per_band=1, bands=2, rows_per_band=4)
    work = str(tmp_path / "work")
    entries = [signature_task(p, i, 1, options, work)["file"] for i, p in enumerate(paths)]
    whole = bucket_task(0, 0, 1, entries, [], options, work)
    assert whole["pieces"] == 1
    from tamis.dedup import buckets

    small = buckets.BYTES_PER_ROW
    try:
        buckets.BYTES_PER_ROW = options.memory_per_task // 20  # 20 rows fit: forces several pieces
        spilled = bucket_task(0, 0, 1, entries, [], options, str(tmp_path / "work2"))
    finally:
        buckets.BYTES_PER_ROW = small
    assert spilled["pieces"] > 1 and spilled["spilled_rows"] == whole["rows"]

    assert _bucket_pairs(spilled, work) == _bucket_pairs(whole, work) and len(_bucket_pairs(whole, work)) >= 100


def _bucket_pairs(summary: dict, root: str) -> set[tuple[int, int]]:
    """The (u, v) edges a bucket task wrote, whatever pieces it wrote them in."""
    fs, _ = filesystem(root)
    found = set()
    for arrays in read_located(fs, all_blocks(fs, summary["file"], PAIR_COLUMNS), PAIR_COLUMNS):
        found |= set(zip(arrays["u"].tolist(), arrays["v"].tolist(), strict=True))
    return found


def test_bucket_pieces_are_sized_for_a_previous_index_too(tmp_path):
    """A previous index many times larger than the new input: its rows count when the bucket is cut into
    pieces, so no piece sorted in memory holds much more than the task's row limit; same pairs either way."""
    from tamis.dedup import buckets
    from tamis.dedup.buckets import IndexSource

    old, _ = make_corpus(tmp_path / "old", originals=300, exact=60, near=0, shards=2)
    new, _ = make_corpus(tmp_path / "new", originals=10, exact=0, near=0, shards=1, seed=3)
    options = DedupOptions(memory_per_task=16 * 2**20, ranges_per_band=1, bands=1, rows_per_band=4)
    previous = [signature_task(p, i, 2, options, str(tmp_path / "old-work"))["file"] for i, p in enumerate(old)]
    work = str(tmp_path / "work")
    entries = [signature_task(p, i, 1, options, work)["file"] for i, p in enumerate(new)]
    index = [IndexSource(previous, 2, len(new), str(tmp_path / "old-work"))]
    assert index[0].locate(0, 0, 1)[1] == 360
    assert index[0].locate(0, 0, 2)[1] + index[0].locate(0, 1, 2)[1] == 360
    whole = bucket_task(0, 0, 1, entries, index, options, work)
    assert whole["pieces"] == 1 and whole["largest_piece"] == 370

    limit = 20
    rows_per_byte = buckets.BYTES_PER_ROW
    try:
        buckets.BYTES_PER_ROW = options.memory_per_task // limit
        small = bucket_task(0, 0, 1, entries, index, options, str(tmp_path / "work2"))
    finally:
        buckets.BYTES_PER_ROW = rows_per_byte
    assert small["rows"] == 10 and small["index_rows"] == 360 and small["pieces"] == 19
    assert small["spilled_rows"] == 370 and small["largest_piece"] <= 2 * limit
    assert _bucket_pairs(small, work) == _bucket_pairs(whole, work) and len(_bucket_pairs(whole, work)) >= 60


def _kept(output: Path) -> list[dict]:
    return pq.read_table(str(output / "data")).to_pylist()


def test_dedup_stage_end_to_end_on_ray(ray_session, tmp_path):
    from tamis.dedup.stage import run_dedup

    paths, origin = make_corpus(tmp_path / "in", originals=80, exact=30, near=30, words=300, shards=3)
    options = DedupOptions(cluster_columns=True, memory_per_task=16 * 2**20, ranges_per_band=2)
    said: list[tuple[str, int, int]] = []
    summary = run_dedup(paths, str(tmp_path / "work"), str(tmp_path / "out"), options,
                        progress=lambda *call: said.append(call))
    kept = _kept(tmp_path / "out")
    # each batch of tasks is named in the progress lines: the components' rounds apart, not one name twice
    ended = [stage for stage, done, total in said if done == total]
    assert ended[:3] == ["signatures", "buckets", "components (scatter)"] and ended[-1] == "finalize", ended
    assert "components (round 1, large-star)" in ended and len(ended) == len(set(ended)), ended
    origins = [origin[r["id"]] for r in kept]
    assert summary["docs"] == 140 and summary["kept"] == len(kept)
    assert len(set(origins)) == 80  # nothing wrongly removed: every origin survives
    assert len(kept) <= 82  # near copies changing 3 of 300 words are caught (allow 2 misses by chance)
    # the kept document of each cluster is the first in input order, and cluster columns are consistent
    for row in kept:
        assert row["minhash_cluster_size"] >= 1 and row["token_count"] > 0
    assert sum(1 for r in kept if r["minhash_cluster_size"] > 1) >= 30

    # no commit marker (what the driver reads back and holds) has a record per block of a file
    markers = list((tmp_path / "work" / "_commits").rglob("*.json"))
    assert len(markers) > 30 and not any('"groups"' in m.read_text() for m in markers)

    # a rerun reuses every committed task
    again = run_dedup(paths, str(tmp_path / "work"), str(tmp_path / "out"), options)
    assert again["tasks"] == [] and again["kept"] == summary["kept"]

    # a corrupted intermediate is detected and recomputed, and the output is the same
    edge_file = next((tmp_path / "work" / "edges").glob("*.blocks"))
    sig_file = sorted((tmp_path / "work" / "signatures").glob("*.blocks"))[0]
    data = bytearray(sig_file.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 256] = bytes(256)  # same size, damaged content: only the checksums can tell
    sig_file.write_bytes(bytes(data))
    for marker in (tmp_path / "work" / "_commits" / "buckets").glob("*.json"):
        marker.unlink()
    edge_file.write_bytes(edge_file.read_bytes()[:100])  # a partial file: its size gives it away
    redo = run_dedup(paths, str(tmp_path / "work"), str(tmp_path / "out"), options)
    assert any(t["stage"] == "signatures" for t in redo["tasks"])
    assert sorted(r["id"] for r in _kept(tmp_path / "out")) == sorted(r["id"] for r in kept)


def test_exact_dedup_and_previous_index(ray_session, tmp_path):
    from tamis.dedup.stage import run_dedup

    paths, origin = make_corpus(tmp_path / "in", originals=40, exact=20, near=10, words=200, shards=2)
    options = DedupOptions(kind="exact", pii=False, token_count=False)
    run_dedup(paths, str(tmp_path / "work"), str(tmp_path / "out"), options)
    kept = _kept(tmp_path / "out")
    assert len(kept) == 40 + 10 and len({origin[r["id"]] for r in kept}) == 40

    # a second "dump" deduplicated against the first run's index: its copies of the first are removed
    later, later_origin = make_corpus(tmp_path / "later", originals=40, exact=0, near=0, words=200, shards=1)
    fresh, _ = make_corpus(tmp_path / "fresh", originals=10, exact=0, near=0, words=200, shards=1, seed=7)
    with_index = DedupOptions(kind="exact", pii=False, token_count=False, previous_index=(str(tmp_path / "work"),))
    summary = run_dedup(later + fresh, str(tmp_path / "work2"), str(tmp_path / "out2"), with_index)
    assert summary["removed"] == 40 and summary["kept"] == 10


def test_a_task_that_meets_a_network_error_is_run_again_and_a_bug_is_not(ray_session, tmp_path):
    """Storage and network errors (after the filesystem's own retries) are retried by Ray, as node losses
    are; other errors fail the stage at once, naming the task."""
    from tamis.dedup.stage import DedupError, _Driver, _Task

    def _fails_first(counter: str, error: str) -> dict:
        """Raises `error` the first time it runs (counted in a file), then succeeds. Defined here so that Ray
        ships it by value (the tests folder is not importable on the workers)."""
        path = Path(counter)
        runs = int(path.read_text()) + 1 if path.exists() else 1
        path.write_text(str(runs))
        if runs == 1:
            raise {"network": ConnectionError("connection reset by peer"), "bug": ValueError("a bug")}[error]
        return {"file": None, "runs": runs}

    fs, root = filesystem(str(tmp_path / "work"))
    driver = _Driver(fs, root, "fingerprint", 2, None)
    [done] = driver.run([_Task("t", "net", _fails_first, (str(tmp_path / "net"), "network"), files=lambda s: [])])
    assert done["runs"] == 2
    with pytest.raises(DedupError, match=r"(?s)dedup task t/bug failed: .*ValueError: a bug"):
        driver.run([_Task("t", "bug", _fails_first, (str(tmp_path / "bug"), "bug"), files=lambda s: [])])
    assert (tmp_path / "bug").read_text() == "1"


def test_dedup_progress_is_one_line_per_stage_in_a_log_and_rewritten_on_a_terminal() -> None:
    """Before, a log (CI, a cluster's job log) got every count joined by carriage returns into one line."""
    import io

    from rich.console import Console

    from tamis.cli.dedup import _progress_printer

    calls = [("signatures", 0, 2), ("signatures", 1, 2), ("signatures", 2, 2), ("buckets", 14, 14)]
    log = io.StringIO()
    progress = _progress_printer(Console(file=log, force_terminal=False))
    for call in calls:
        progress(*call)
    assert log.getvalue() == "signatures: 2/2\nbuckets: 14/14\n"
    log = io.StringIO()
    progress = _progress_printer(Console(file=log, force_terminal=False), every=0)
    for call in calls:
        progress(*call)
    assert log.getvalue().splitlines() == [f"{stage}: {done}/{total}" for stage, done, total in calls]
    screen = io.StringIO()
    progress = _progress_printer(Console(file=screen, force_terminal=True, color_system=None))
    for call in calls:
        progress(*call)
    assert screen.getvalue() == "".join(f"{stage}: {done}/{total}\r" for stage, done, total in calls)
