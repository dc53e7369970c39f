"""`tamis tokenize`: read back by independent readers, every document exactly once, resumable, deterministic.

The readers here are not tamis's: datatrove 0.10.1's own (`load_doc_ends`/`get_data_reader` of its merger
and `DatatroveFolderDataset`), one written in this file from Megatron-LM's index layout, and plain numpy.
The expected tokens are tiktoken's GPT-2 encoding of each document, plus end-of-text.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO, SHARED

from tamis.annotate.tokens import gpt2_encoding
from tamis.io.parquet import FINEWEB_SCHEMA
from tamis.tokenize.stage import TokenizeConflictError, TokenizeError, TokenizeOptions, run_tokenize
from tamis.tokenize.tokenizers import TokenizerError, load_tokenizer

ARTICLES = SHARED / "extraction" / "scrapinghub_aeb" / "ground-truth.json"
EOS = 50256


def articles() -> list[tuple[str, str]]:
    if not ARTICLES.is_file():
        pytest.skip(f"shared article text not found at {ARTICLES}")
    data = json.loads(ARTICLES.read_text())
    return [(f"<urn:aeb:{key}>", data[key]["articleBody"]) for key in sorted(data) if data[key]["articleBody"]]


def write_shard(path: Path, docs: list[tuple[str | None, str | None]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {name: [None] * len(docs) for name in FINEWEB_SCHEMA.names}
    columns["id"] = [d for d, _ in docs]
    columns["text"] = [t for _, t in docs]
    pq.write_table(pa.table(columns, schema=FINEWEB_SCHEMA), path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[str]]:
    """A run-like folder (data/<dump>/part-*.parquet) of the 181 real articles in 4 shards, plus an empty text."""
    root = tmp_path_factory.mktemp("tok-corpus")
    docs = articles()
    for i in range(4):
        chunk = docs[i::4]
        if i == 3:
            chunk = chunk + [("<urn:empty>", "")]
        write_shard(root / "data" / ("CC-MAIN-2024-10" if i % 2 else "CC-MAIN-2023-50") / f"part-{i}.parquet", chunk)
    (root / "removed").mkdir()
    write_shard(root / "removed" / "step" / "part-x.parquet", [("<urn:removed>", "must not be tokenized")])
    return root, [t for _, t in docs]


def expected(texts: list[str]) -> Counter:
    encoding = gpt2_encoding()
    return Counter(tuple(encoding.encode_ordinary(t)) + (EOS,) for t in texts)


# -- independent readers ----------------------------------------------------------------------------------------


def datatrove_documents(folder: Path) -> list[tuple[int, ...]]:
    """Documents as datatrove 0.10.1's merger reads them (its own functions), shard by shard."""
    from datatrove.pipeline.tokens.merger import get_data_reader, load_doc_ends

    docs = []
    for path in sorted(folder.glob("*.ds")):
        metadata = (path.parent / (path.name + ".metadata")).read_text().splitlines()
        assert metadata[0] == "gpt2|2" and int(metadata[1]) == path.stat().st_size // 2
        ends = load_doc_ends(open(path.parent / (path.name + ".index"), "rb"))
        for raw in get_data_reader(open(path, "rb"), ends, nb_bytes=2):
            docs.append(tuple(np.frombuffer(raw, dtype=np.uint16).tolist()))
    return docs


def megatron_documents(folder: Path) -> list[tuple[int, ...]]:
    """A reader written from Megatron-LM's index layout (megatron/core/datasets/indexed_dataset.py)."""
    docs = []
    for idx in sorted(folder.glob("*.idx")):
        raw = idx.read_bytes()
        assert raw[:9] == b"MMIDIDX\x00\x00"
        version, code, sequences, doc_count = struct.unpack("<QBQQ", raw[9:34])
        assert version == 1 and code == 8  # uint16
        lengths = struct.unpack(f"<{sequences}i", raw[34:34 + 4 * sequences])
        at = 34 + 4 * sequences
        pointers = struct.unpack(f"<{sequences}q", raw[at:at + 8 * sequences])
        at += 8 * sequences
        doc_index = struct.unpack(f"<{doc_count}q", raw[at:at + 8 * doc_count])
        assert at + 8 * doc_count == len(raw)
        assert doc_index[0] == 0 and doc_index[-1] == sequences
        data = idx.with_suffix(".bin").read_bytes()
        for first, last in zip(doc_index[:-1], doc_index[1:], strict=True):
            tokens: list[int] = []
            for s in range(first, last):
                tokens += struct.unpack(f"<{lengths[s]}H", data[pointers[s]:pointers[s] + 2 * lengths[s]])
            docs.append(tuple(tokens))
    return docs


def numpy_documents(folder: Path) -> list[tuple[int, ...]]:
    docs = []
    for path in sorted(folder.glob("*.bin")):
        sidecar = json.loads(path.with_suffix(".json").read_text())
        stream = np.memmap(path, dtype=np.dtype(sidecar["dtype"]), mode="r")
        assert len(stream) == sidecar["tokens"] and sidecar["eos_id"] == EOS
        ends = np.flatnonzero(stream == EOS) + 1
        assert ends[-1] == len(stream) and len(ends) == sidecar["documents"]
        docs += [tuple(part.tolist()) for part in np.split(np.asarray(stream), ends[:-1])]
    return docs


READERS = {"datatrove": datatrove_documents, "megatron": megatron_documents, "numpy": numpy_documents}


# -- tests ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "shuffle", "workers"), [("datatrove", True, 2), ("megatron", False, 1),
                                                         ("numpy", True, 1)])
def test_every_document_once_exactly_as_tiktoken_encodes_it(ray_session, corpus, tmp_path, fmt, shuffle,
                                                            workers) -> None:
    root, texts = corpus
    out = tmp_path / fmt
    result = run_tokenize([str(root)], TokenizeOptions(str(out), format=fmt, shuffle=shuffle, seed=3),
                          workers=workers, show_progress=False)
    assert result.ok and result.totals["input_shards"] == 4 and result.totals["output_shards"] == 4
    docs = READERS[fmt](out)
    assert Counter(docs) == expected(texts)  # none lost, none doubled, token for token
    assert result.totals["documents"] == len(texts) and result.totals["skipped_empty"] == 1
    assert result.totals["tokens"] == sum(map(len, docs))
    assert result.totals["bytes"] == sum(p.stat().st_size for p in out.iterdir() if p.is_file()
                                         and p.name != "manifest.json")
    assert not (out / "_work").exists()
    encoding = gpt2_encoding()
    in_order = [tuple(encoding.encode_ordinary(t)) + (EOS,) for t in
                [t for path in sorted((root / "data").glob("*/*.parquet"))
                 for t in pq.read_table(path)["text"].to_pylist() if t]]
    assert (docs == in_order) is (not shuffle)


def test_datatrove_folder_dataset_reads_the_windows(ray_session, corpus, tmp_path) -> None:
    pytest.importorskip("torch")
    from datatrove.utils.dataset import DatatroveFolderDataset

    root, texts = corpus
    run_tokenize([str(root)], TokenizeOptions(str(tmp_path), format="datatrove"), show_progress=False)
    dataset = DatatroveFolderDataset(str(tmp_path), seq_len=64, token_size=2)
    streams = [np.fromfile(p, dtype=np.uint16) for p in sorted(tmp_path.glob("*.ds"))]
    assert len(dataset.files) == 4 and len(dataset) == sum(len(s) // 65 for s in streams)
    windows = [dataset[i]["input_ids"].numpy() for i in range(len(dataset))]
    expected_windows = [s[i * 65:(i + 1) * 65] for s in streams for i in range(len(s) // 65)]
    assert all(np.array_equal(a, b) for a, b in zip(windows, expected_windows, strict=True))


def test_shuffle_is_global_and_the_same_whatever_the_workers(ray_session, corpus, tmp_path) -> None:
    root, _ = corpus
    runs = {}
    for name, workers, seed, shards in (("w1", 1, 7, 2), ("w2", 2, 7, 2), ("seed8", 2, 8, 2)):
        run_tokenize([str(root)], TokenizeOptions(str(tmp_path / name), format="numpy", shuffle=True, seed=seed,
                                                  shards=shards), workers=workers, show_progress=False)
        runs[name] = [np.fromfile(p, dtype=np.uint16) for p in sorted((tmp_path / name).glob("*.bin"))]
    assert len(runs["w1"]) == 2
    assert all(np.array_equal(a, b) for a, b in zip(runs["w1"], runs["w2"], strict=True))
    assert not np.array_equal(np.concatenate(runs["w1"]), np.concatenate(runs["seed8"]))
    # global: the first output shard mixes documents of every input shard
    first = Counter(tuple(d) for d in np.split(runs["w1"][0], np.flatnonzero(runs["w1"][0] == EOS)[:-1] + 1))
    encoding = gpt2_encoding()
    sources = {i for i, path in enumerate(sorted((root / "data").glob("*/*.parquet")))
               for t in pq.read_table(path)["text"].to_pylist() if t
               and tuple(encoding.encode_ordinary(t)) + (EOS,) in first}
    assert sources == {0, 1, 2, 3}


def sorted_reference(root: Path, seed: int, budget: int | None, shards: int) -> list[list[tuple[int, ...]]]:
    """The documents of each output shard, from a sort of every document held in this process: keys are the
    first 8 bytes (big-endian) of SHA-256 of "<seed>\\0<id>", ties broken by input path then row; the budget
    and the shards' cut points follow docs/tokenize.md."""
    import hashlib

    encoding = gpt2_encoding()
    rows = []
    for source, path in enumerate(sorted((root / "data").glob("*/*.parquet"))):
        table = pq.read_table(path)
        for row, (doc_id, text) in enumerate(zip(table["id"].to_pylist(), table["text"].to_pylist(), strict=True)):
            if text:
                key = int.from_bytes(hashlib.sha256(f"{seed}\x00{doc_id}".encode()).digest()[:8], "big")
                rows.append((key, source, row, tuple(encoding.encode_ordinary(text)) + (EOS,)))
    docs = [tokens for *_, tokens in sorted(rows)]
    if budget is not None and sum(map(len, docs)) > budget:
        kept, written = [], 0
        for doc in docs:
            if written + len(doc) > budget:
                if budget > written:
                    kept.append(doc[:budget - written - 1] + (EOS,))
                break
            kept.append(doc)
            written += len(doc)
        docs = kept
    ends = np.cumsum([len(d) for d in docs])
    cuts = [0] + [min(int(np.sum(ends < ends[-1] * j / shards)) + 1, len(docs)) for j in range(1, shards)]
    cuts.append(len(docs))
    return [docs[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


@pytest.mark.parametrize(("bucket_bytes", "budget", "shards"), [(1 << 40, None, 3), (20_000, 30_001, 5),
                                                                 (1, 12_345, 9)])
def test_shuffled_shards_hold_what_a_sort_of_every_document_gives(ray_session, corpus, tmp_path, monkeypatch,
                                                                  bucket_bytes, budget, shards) -> None:
    """The driver sees only bucket totals (1, 32 and 65,536 buckets here); the shards are still exactly those of
    a sort of all documents, budget and cut points included."""
    from tamis.tokenize import stage

    monkeypatch.setattr(stage, "SHUFFLE_BUCKET_BYTES", bucket_bytes)
    root, _ = corpus
    result = run_tokenize([str(root)], TokenizeOptions(str(tmp_path), format="numpy", shuffle=True, seed=11,
                                                       max_tokens=budget, shards=shards), show_progress=False)
    got = [[tuple(d) for d in np.split(stream, np.flatnonzero(stream == EOS)[:-1] + 1)]
           for stream in (np.fromfile(p, dtype=np.uint16) for p in sorted(tmp_path.glob("*.bin")))]
    assert got == sorted_reference(root, 11, budget, shards)
    buckets = json.loads((tmp_path / "manifest.json").read_text())["buckets"]
    assert buckets == min(65_536, 1 << (-(-sum(p.stat().st_size for p in root.glob("data/*/*.parquet")) //
                                        bucket_bytes) - 1).bit_length())
    assert result.totals["tokens"] == sum(len(d) for shard in got for d in shard)


@pytest.mark.parametrize("damage", ["key block", "tokens cut short", "bucket totals missing", "lengths garbled"])
def test_damaged_work_files_are_encoded_again(ray_session, corpus, tmp_path, monkeypatch, damage) -> None:
    """A run stopped after encoding, a work file damaged, the rerun: the damaged input is encoded again and
    the output is the same bytes as a clean run's."""
    from tamis.tokenize import stage

    monkeypatch.setattr(stage, "SHUFFLE_BUCKET_BYTES", 20_000)
    root, _ = corpus
    shuffle = damage != "lengths garbled"  # a shuffled run reads lengths from its key files instead

    def options(name: str) -> TokenizeOptions:
        return TokenizeOptions(str(tmp_path / name), format="numpy", shuffle=shuffle, seed=2, shards=3)

    assert run_tokenize([str(root)], options("clean"), show_progress=False).ok
    write_shard = stage.write_shard

    def stop(*args, **kwargs):
        raise RuntimeError("stopped after encoding")

    monkeypatch.setattr(stage, "write_shard", stop)
    assert not run_tokenize([str(root)], options("out"), show_progress=False).ok
    monkeypatch.setattr(stage, "write_shard", write_shard)
    encoded = tmp_path / "out" / "_work" / "encoded"
    if damage == "key block":
        victim = sorted(encoded.glob("*.keys"))[1]
        with open(victim, "r+b") as handle:
            handle.seek(victim.stat().st_size - 40)
            handle.write(b"\xff" * 8)
    elif damage == "tokens cut short":
        victim = sorted(encoded.glob("*.tokens"))[2]
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    elif damage == "bucket totals missing":
        victim = sorted(encoded.glob("*.hist"))[0]
        victim.unlink()
    else:
        victim = sorted(encoded.glob("*.npz"))[1]
        victim.write_bytes(b"not an npz file")
    again = run_tokenize([str(root)], options("out"), show_progress=False)
    assert again.ok, again.failed
    clean = {p.name: p.read_bytes() for p in (tmp_path / "clean").glob("part-*")}
    assert len(clean) == 6 and {p.name: p.read_bytes() for p in (tmp_path / "out").glob("part-*")} == clean


@pytest.mark.parametrize("budget", [5_000, 5_001])
def test_budget_is_token_exact(ray_session, corpus, tmp_path, budget) -> None:
    root, texts = corpus
    result = run_tokenize([str(root)], TokenizeOptions(str(tmp_path), format="datatrove", shuffle=True,
                                                       max_tokens=budget), show_progress=False)
    docs = datatrove_documents(tmp_path)
    assert sum(map(len, docs)) == budget == result.totals["tokens"]
    full = expected(texts)
    assert all(d in full for d in docs[:-1]) and docs[-1][-1] == EOS
    assert result.totals["truncated_documents"] == (0 if docs[-1] in full else 1)
    if result.totals["truncated_documents"]:  # the cut one is a prefix of a real document, then end-of-text
        assert any(d[:len(docs[-1]) - 1] == docs[-1][:-1] for d in full)


def test_rerun_skips_committed_work_and_other_options_are_refused(ray_session, corpus, tmp_path) -> None:
    root, _ = corpus
    options = TokenizeOptions(str(tmp_path), format="megatron")
    first = run_tokenize([str(root)], options, show_progress=False)
    marker = tmp_path / "_commits" / "write" / "part-00001.json"
    # a lost output shard (its marker removed) is rewritten alone; the others are kept
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("part-*")}
    marker.unlink()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    # the encoded work is gone once complete, so the rerun encodes again and rewrites part-00001 only
    second = run_tokenize([str(root)], options, show_progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("part-*")}
    assert second.totals["tokens"] == first.totals["tokens"]
    assert [n for n in sorted(before) if before[n] != after[n]] == ["part-00001.bin", "part-00001.idx"]
    assert run_tokenize([str(root)], options, show_progress=False).skipped == 4
    with pytest.raises(TokenizeConflictError, match="other options"):
        run_tokenize([str(root)], TokenizeOptions(str(tmp_path), format="megatron", shuffle=True), show_progress=False)
    third = run_tokenize([str(root)], TokenizeOptions(str(tmp_path), format="numpy"), overwrite=True,
                         show_progress=False)
    assert third.ok and not list(tmp_path.glob("*.idx"))


def test_bad_inputs_and_options_are_named(ray_session, corpus, tmp_path) -> None:
    root, _ = corpus
    with pytest.raises(TokenizeError, match="--format 'arrow'"):
        run_tokenize([str(root)], TokenizeOptions(str(tmp_path / "a"), format="arrow"))
    with pytest.raises(TokenizeError, match="no Parquet shards"):
        run_tokenize([str(tmp_path)], TokenizeOptions(str(tmp_path / "b")))
    with pytest.raises(TokenizeError, match="input 'memory://host/nothing/x.parquet': no such file") as missing:
        run_tokenize(["memory://user:SECRET@host/nothing/x.parquet"], TokenizeOptions(str(tmp_path / "d")))
    assert "SECRET" not in str(missing.value)  # an input's credentials are never printed
    with pytest.raises(TokenizerError, match="expected 'gpt2' or a tokenizer file"):
        load_tokenizer("llama-3")
    bad = tmp_path / "in" / "no-text.parquet"
    bad.parent.mkdir()
    pq.write_table(pa.table({"content": ["x"]}), bad)
    good = tmp_path / "in" / "good.parquet"
    write_shard(good, [("a", "Hello world.")])
    result = run_tokenize([str(tmp_path / "in")], TokenizeOptions(str(tmp_path / "c")), show_progress=False)
    assert list(result.failed) == [str(bad)] and "no `text` column" in result.failed[str(bad)]
    assert result.totals["encoded_shards"] == 1 and not list((tmp_path / "c").glob("part-*"))


def test_huggingface_tokenizer_json_and_a_tiktoken_ranks_file(ray_session, corpus, tmp_path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    root, texts = corpus
    # a small byte-level BPE trained here on the real articles, saved as tokenizer.json
    hf = tokenizers.Tokenizer(tokenizers.models.BPE())
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = tokenizers.decoders.ByteLevel()
    hf.train_from_iterator(texts, tokenizers.trainers.BpeTrainer(vocab_size=2000, special_tokens=["</s>"]))
    hf.save(str(tmp_path / "tokenizer.json"))
    result = run_tokenize([str(root)], TokenizeOptions(str(tmp_path / "hf"), format="datatrove",
                                                       tokenizer=str(tmp_path / "tokenizer.json"), eos="</s>"),
                          show_progress=False)
    assert result.ok
    eos = hf.token_to_id("</s>")
    from datatrove.pipeline.tokens.merger import get_data_reader, load_doc_ends

    got = Counter()
    for path in sorted((tmp_path / "hf").glob("*.ds")):
        ends = load_doc_ends(open(str(path) + ".index", "rb"))
        got.update(tuple(np.frombuffer(raw, np.uint16).tolist()) for raw in get_data_reader(open(path, "rb"), ends, 2))
    assert got == Counter(tuple(e.ids) + (eos,) for e in hf.encode_batch(texts, add_special_tokens=False))
    with pytest.raises(TokenizerError, match="no token '<eos>'"):
        load_tokenizer(str(tmp_path / "tokenizer.json"), "<eos>")
    # the shipped GPT-2 ranks, given by path, are the default tokenizer (eos after the last rank)
    ranks = REPO / "src" / "tamis" / "resources" / "gpt2.tiktoken"
    by_path = load_tokenizer(str(ranks))
    assert by_path.eos_id == EOS and by_path.encode_batch(texts[:3]) == load_tokenizer("gpt2").encode_batch(texts[:3])


def test_cli_tokenizes_and_prints_the_summary(ray_session, corpus, tmp_path) -> None:
    from click.testing import CliRunner

    from tamis.cli.main import cli

    root, _ = corpus
    out = tmp_path / "cli"
    args = ["tokenize", str(root), "--output", str(out), "--format", "numpy", "--shuffle", "--seed", "1",
            "--max-tokens", "20000", "--workers", "1", "--no-progress"]
    completed = CliRunner().invoke(cli, args)
    assert completed.exit_code == 0, completed.output[-2000:]
    assert "20,000" in completed.output and "budget: 20,000 tokens exactly" in completed.output
    assert sum(len(np.fromfile(p, np.uint16)) for p in out.glob("*.bin")) == 20_000
    bad = CliRunner().invoke(cli, ["tokenize", str(root), "--output", str(out), "--format", "arrow"])
    assert bad.exit_code == 2 and "arrow" in bad.output
    conflict = CliRunner().invoke(cli, args[:9] + args[11:])  # no budget: other options
    assert conflict.exit_code == 2 and "--overwrite" in conflict.output


def test_a_failed_input_whose_name_looks_like_markup_is_reported_as_it_is(ray_session, corpus, tmp_path) -> None:
    """An input shard's path is data: printed as it is, never read as console markup. A folder `sub[` holding
    `bold]bad.parquet` is the path `.../sub[/bold]bad.parquet`, whose `[/bold]` made the report of its failure
    raise rich's MarkupError (a traceback) instead."""
    from click.testing import CliRunner

    from tamis.cli.main import cli

    root, _ = corpus
    folder = tmp_path / "inputs"
    (folder / "ok").mkdir(parents=True)
    (folder / "sub[").mkdir()
    shutil.copy(next((root / "data").rglob("part-0.parquet")), folder / "ok" / "good.parquet")
    bad = folder / "sub[" / "bold]bad.parquet"
    assert "[/bold]" in str(bad)
    bad.write_bytes(b"PAR1" + bytes(range(256)) * 8 + b"PAR1")  # a Parquet file's magic around garbage
    completed = CliRunner().invoke(cli, ["tokenize", str(folder / "*" / "*.parquet"), "--output", str(tmp_path / "out"),
                                         "--workers", "1", "--no-progress"])
    assert isinstance(completed.exception, SystemExit) and completed.exit_code == 3, completed.output[-3000:]
    # compared without whitespace: the console folds long paths over lines
    assert "".join(f"failed {bad}:".split()) in "".join(completed.output.split()), completed.output[-3000:]


def test_the_output_of_a_run_that_has_not_finished_is_refused_unless_allowed(ray_session, tmp_path) -> None:
    """A run with one of its two inputs missing stops "incomplete": its data/ holds part of the dataset, and
    tokens made from it would silently miss documents. `tamis tokenize` (the output, or a glob of its data/)
    and `tamis sample` refuse it, saying why and what to do, before any work; `allow_incomplete` reads what
    was written, with a warning. Once the same run is finished, the output is read without a word."""
    from click.testing import CliRunner
    from conftest import WARC_DIR
    from rich.console import Console

    from tamis.cli.main import cli
    from tamis.engine.runner import run_pipeline
    from tamis.pipeline.spec import parse_pipeline

    base = tmp_path / "warcs"
    base.mkdir()
    real = WARC_DIR / "cc-main-2024-22_whirlwind.warc.gz"
    shutil.copy(real, base / "a.warc.gz")
    listing = tmp_path / "warc.paths"
    listing.write_text("a.warc.gz\nb.warc.gz\n")  # b arrives late
    out = tmp_path / "run"
    spec = parse_pipeline({"steps": [{"step": "trafilatura"}]})

    def run() -> object:
        return run_pipeline(spec, [str(listing)], str(out), paths_base=str(base), show_progress=False)

    assert len(run().failed) == 1
    for given in (str(out), f"{out}/data/**/*.parquet"):
        with pytest.raises(TokenizeError, match=r"its run stopped with 1 failed input\(s\); 1 of 2 unit\(s\) "
                           r"committed, so its data/ holds part of the dataset only\. Run the same `tamis run` "
                           r"command again to finish it, or pass --allow-incomplete"):
            run_tokenize([given], TokenizeOptions(str(tmp_path / "refused")), show_progress=False)
    assert not (tmp_path / "refused").exists()
    sampled = CliRunner().invoke(cli, ["sample", str(out), "--output", str(tmp_path / "sample")],
                                 env={"COLUMNS": "400"})
    assert sampled.exit_code == 2 and "its run stopped with 1 failed input(s)" in sampled.output, sampled.output
    assert not (tmp_path / "sample").exists()

    said = Console(record=True, width=400)
    partial = run_tokenize([str(out)], TokenizeOptions(str(tmp_path / "partial")), show_progress=False,
                           console=said, allow_incomplete=True)
    assert not partial.failed and partial.totals["documents"] > 0
    assert "warning: " + str(out) + ": its run stopped with 1 failed input(s)" in said.export_text()

    shutil.copy(real, base / "b.warc.gz")
    assert not run().failed
    whole = run_tokenize([str(out)], TokenizeOptions(str(tmp_path / "whole")), show_progress=False)
    assert whole.totals["documents"] == 2 * partial.totals["documents"]
