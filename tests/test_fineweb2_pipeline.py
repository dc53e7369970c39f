"""FineWeb-2's pipeline layer: dedup placement, per-language MinHash, final touches, output, rehydration."""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, SHARED

from tamis.dedup.options import DedupOptions
from tamis.dedup.rehydrate import rehydrate_table, upsampling_weight
from tamis.filters.ftfy_fix import FTFYFormatter
from tamis.filters.symbol_lines import SymbolLinesFormatter
from tamis.io.parquet import FINEWEB_SCHEMA, ParquetWriter
from tamis.pipeline.spec import PipelineError, StepSpec, parse_pipeline
from tamis.pipeline.validation import validate_params

AEB_TRAFILATURA = SHARED / "extraction" / "scrapinghub_aeb" / "output-trafilatura-2.0.0.json"
READABILITY = SHARED / "extraction" / "readability_testpages" / "html"
FW2_COLUMNS = [*FINEWEB_SCHEMA.names, "language_script", "minhash_cluster_size", "top_langs"]


def real_texts() -> list[str]:
    if not AEB_TRAFILATURA.exists():
        pytest.skip(f"shared data not found at {AEB_TRAFILATURA}")
    return [v["articleBody"] for _, v in sorted(json.loads(AEB_TRAFILATURA.read_text())["output"].items())]


# --- final touches: parity with datatrove 0.10.1's formatters on real text -------------------------------------

def _with_tables(text: str, i: int) -> str:
    """A real text with trafilatura-like table rows of `|` inserted between its lines (and other separators)."""
    lines = text.splitlines()
    cut = len(lines) // 2
    table = ["| |", "|", "| | | |", " | "][: 1 + i % 4]
    separators = ["\n", "\r\n", "\u2028"]
    return separators[i % 3].join(lines[:cut] + table + ["|\t|", ""] + lines[cut:] + (["|"] if i % 2 else []))


def test_symbol_lines_matches_datatrove_on_real_text():
    from datatrove.pipeline.formatters import SymbolLinesFormatter as Reference

    texts = real_texts()
    texts += [_with_tables(t, i) for i, t in enumerate(texts)]
    ours, reference = SymbolLinesFormatter(), Reference(symbols_to_remove=["|"], replace_char="\n")
    assert sum(any(ours.is_symbol_line(line) for line in t.splitlines()) for t in texts) > len(texts) // 2
    assert [ours.format(t) for t in texts] == [reference.format(t) for t in texts]
    dropping, reference_dropping = SymbolLinesFormatter(replace_char=""), Reference(symbols_to_remove=["|"])
    assert [dropping.format(t) for t in texts[-20:]] == [reference_dropping.format(t) for t in texts[-20:]]


def test_ftfy_matches_datatrove_on_real_and_mojibake_text():
    from datatrove.pipeline.formatters import FTFYFormatter as Reference

    texts = [t for t in real_texts() if not t.isascii()][:40]
    broken = [t.encode("utf-8").decode("latin-1", errors="replace") for t in texts]  # UTF-8 read as Latin-1
    ours, reference = FTFYFormatter(), Reference()
    ours.setup()
    assert [ours.format(t) for t in texts + broken] == [reference.format(t) for t in texts + broken]
    assert sum(ours.format(b) == t for b, t in zip(broken, texts, strict=True)) > len(texts) // 2


# --- dedup placement in the pipeline file ----------------------------------------------------------------------

def test_dedup_step_places_the_steps_after_it_in_finalize():
    from tamis.engine.runner import split_for_dedup

    spec = parse_pipeline({"steps": [{"step": "ftfy"}, {"step": "dedup", "per_language": True},
                                     {"step": "symbol_lines"}, {"step": "pii", "remove_ips": False}]})
    process, options, after = split_for_dedup(spec)
    assert [s.name for s in process.steps] == ["ftfy"] and options.per_language and spec.dedup_at == 1
    assert [(s.name, s.params["remove_ips"] if s.step == "pii" else None) for s in after] == [
        ("symbol_lines", None), ("pii", False)]
    # FineWeb's top-level section: PII and token count move after dedup, with their own parameters
    fineweb = parse_pipeline({"steps": [{"step": "pii", "remove_emails": False}, {"step": "ftfy"},
                                        {"step": "token_count"}], "dedup": {"kind": "exact"}})
    process, options, after = split_for_dedup(fineweb)
    assert [s.name for s in process.steps] == ["ftfy"] and [s.name for s in after] == ["pii", "token_count"]
    assert after[0].params["remove_emails"] is False and fineweb.dedup_at is None


@pytest.mark.parametrize("steps, message", [
    ([{"step": "dedup"}, {"step": "dedup"}], "dedup appears twice"),
    ([{"step": "dedup", "bandz": 3}], "steps[0] (dedup): unknown field 'bandz'"),
    ([{"step": "dedup", "bands": 0}], "steps[0] (dedup).bands"),
])
def test_dedup_step_errors_name_the_entry(steps, message):
    with pytest.raises(PipelineError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse_pipeline({"steps": steps})
    with pytest.raises(PipelineError, match="both a step and a top-level"):
        parse_pipeline({"steps": [{"step": "dedup"}], "dedup": {"kind": "exact"}})


# --- per-language MinHash ----------------------------------------------------------------------------------------

def test_xxhash_shingles_match_datatrove():
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    from tamis.dedup.signatures import MinHasher

    ours = MinHasher(DedupOptions(hash_function="xxhash"))
    reference = MinhashDedupSignature("/tmp/unused", config=MinhashConfig(hash_config=HashConfig(64, "xxhash")))
    for text in real_texts()[:15]:
        assert np.array_equal(ours.shingles(text), reference.get_shingles(text).reshape(-1))


def _shard(path: Path, rows: list[tuple[str, str, str, str]]) -> str:
    """A FineWeb-2-schema shard of (id, text, language, script) rows."""
    n = len(rows)
    table = pa.table({
        "text": [r[1] for r in rows], "id": [r[0] for r in rows], "dump": ["CC-MAIN-2024-10"] * n,
        "url": [f"https://example.org/{r[0]}" for r in rows], "date": ["2024-03-01T00:00:00Z"] * n,
        "file_path": ["test"] * n, "language": [r[2] for r in rows], "language_score": [0.9] * n,
        "token_count": [None] * n, "language_script": [r[3] for r in rows],
        "minhash_cluster_size": [None] * n, "top_langs": ["{}"] * n,
    }, schema=ParquetWriter(extra_columns=FW2_COLUMNS[9:]).schema())
    pq.write_table(table, path)
    return str(path)


def _rows(root: Path) -> dict[str, dict]:
    rows = {}
    for path in sorted(root.glob("data/*/*.parquet")):
        for row in pq.read_table(path).to_pylist():
            rows[row["id"]] = {**row, "folder": path.parent.name}
    return rows


def test_per_language_dedup_across_runs(ray_session, tmp_path):
    from tamis.dedup.stage import run_dedup

    texts = [t for t in real_texts() if len(t.split()) > 200][:8]
    writer_params = validate_params(ParquetWriter, {"extra_columns": FW2_COLUMNS[9:], "partition_by": "language"})
    writer = StepSpec("parquet", "parquet", writer_params, ParquetWriter)
    first = [
        _shard(tmp_path / "a.parquet", [("a0", texts[0], "ita", "Latn"), ("a1", texts[1], "fra", "Latn"),
                                        ("a2", texts[2], "fra", "Latn"), ("a3", texts[1], "fra", "Latn")]),
        _shard(tmp_path / "b.parquet", [("b0", texts[0], "spa", "Latn"), ("b1", texts[1], "fra", "Latn"),
                                        ("b2", texts[3], "deu", "Latn")]),
    ]
    options = DedupOptions(per_language=True, hash_function="xxhash")
    summary = run_dedup(first, str(tmp_path / "work"), str(tmp_path / "out"), options, steps=(), writer=writer)
    kept = _rows(tmp_path / "out")
    # the same text in two languages is kept twice; three copies in one language are one document of cluster 3
    assert sorted(kept) == ["a0", "a1", "a2", "b0", "b2"] and summary["removed"] == 2
    assert {k: v["minhash_cluster_size"] for k, v in kept.items()} == {"a0": 1, "a1": 3, "a2": 1, "b0": 1, "b2": 1}
    assert {v["folder"] for v in kept.values()} == {"ita_Latn", "spa_Latn", "fra_Latn", "deu_Latn"}
    assert kept["a0"]["folder"] == "ita_Latn" and kept["b0"]["folder"] == "spa_Latn"

    # a later dump, deduplicated against the first run's index: only same-language copies go
    later = [_shard(tmp_path / "c.parquet", [("c0", texts[1], "fra", "Latn"), ("c1", texts[3], "nld", "Latn"),
                                             ("c2", texts[4], "fra", "Latn")])]
    again = DedupOptions(per_language=True, hash_function="xxhash", previous_index=(str(tmp_path / "work"),))
    summary = run_dedup(later, str(tmp_path / "work2"), str(tmp_path / "out2"), again, steps=(), writer=writer)
    assert sorted(_rows(tmp_path / "out2")) == ["c1", "c2"] and summary["removed"] == 1

    # an index built without per-language keys cannot be mixed with per-language signatures
    from tamis.dedup.stage import DedupError

    with pytest.raises(DedupError, match="not comparable"):
        run_dedup(later, str(tmp_path / "work3"), str(tmp_path / "out3"),
                  DedupOptions(hash_function="xxhash", previous_index=(str(tmp_path / "work"),)))


# --- rehydration -------------------------------------------------------------------------------------------------

def test_upsampling_weights_are_fineweb2s():
    # huggingface/fineweb-2 README: {1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}, by the largest key <= N
    expected = {1: 1, 2: 2, 3: 3, 4: 3, 5: 5, 99: 5, 100: 8, 999: 8, 1000: 1, 50_000: 1}
    assert {n: upsampling_weight(n) for n in expected} == expected
    assert upsampling_weight(None) == 1


def test_rehydrate_table_is_deterministic():
    sizes = [1, 2, 4, 7, 150, 3000, None]
    table = pa.table({"id": [f"d{i}" for i in range(len(sizes))], "text": ["x"] * len(sizes),
                      "minhash_cluster_size": pa.array(sizes, pa.int64())})
    plain = rehydrate_table(table)
    assert plain["id"].to_pylist() == ["d0", "d1", "d1", "d2", "d2", "d2", *["d3"] * 5, *["d4"] * 8, "d5", "d6"]
    shuffled = rehydrate_table(table, seed=5)
    assert sorted(shuffled["id"].to_pylist()) == sorted(plain["id"].to_pylist())
    assert shuffled["id"].to_pylist() != plain["id"].to_pylist()
    assert rehydrate_table(table, seed=5)["id"].to_pylist() == shuffled["id"].to_pylist()
    with pytest.raises(ValueError, match="minhash_cluster_size"):
        rehydrate_table(table.drop_columns(["minhash_cluster_size"]))


# --- the recipe end to end ---------------------------------------------------------------------------------------

EMAIL = "redaction-tamis@lemonde.fr"
INJECTED = "videos-2"
COPIES = 3


def multilingual_warc(path: Path) -> Path:
    """Every page of readability's test set in a WARC (English ones are for the recipe to drop), one of them
    (a French article) with an e-mail address added and repeated under COPIES URLs in all."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    pages = sorted(READABILITY.glob("*.html.gz"))
    if not pages:
        pytest.skip(f"shared data not found at {READABILITY}")
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for page in pages:
            name = page.name.split(".html")[0]
            html = gzip.decompress(page.read_bytes())
            copies = 1
            if name == INJECTED:
                # after each review's signature, in the article's main text
                html = html.replace(b"(A.H.)</strong>", f"(A.H.)</strong> Contact : {EMAIL}.".encode())
                copies = COPIES
            for copy in range(copies):
                url = f"https://readability.example/{name}" + (f"?copy={copy}" if copy else "")
                http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
                record = writer.create_warc_record(url, "response", payload=io.BytesIO(html), http_headers=http,
                                                   warc_headers_dict={"WARC-Date": "2024-05-20T10:00:00Z"})
                writer.write_record(record)
    return path


def test_fineweb2_recipe_end_to_end(ray_session, tmp_path):
    from tamis.engine.runner import run_pipeline

    warcs = [SHARED / "warc" / "clueweb09-ja_resiliparse_excerpt.warc.gz",
             SHARED / "warc" / "cc-main-2020-34_resiliparse_excerpt.warc.gz"]
    if not all(w.exists() for w in warcs):
        pytest.skip("shared WARC data not found")
    inputs = [str(w) for w in warcs] + [str(multilingual_warc(tmp_path / "readability.warc.gz"))]
    data = yaml.safe_load((REPO / "pipelines" / "fineweb-2.yaml").read_text())
    for step in data["steps"]:
        if step["step"] == "pii":  # a non-default parameter, to be honoured after dedup
            step["email_replacement"] = ["someone@tamis.invalid"]
    spec = parse_pipeline(data, str(REPO / "pipelines" / "fineweb-2.yaml"))
    result = run_pipeline(spec, inputs, str(tmp_path / "out"), show_progress=False)
    assert result.ok
    out = tmp_path / "out"
    shards = sorted(out.glob("data/*/*.parquet"))
    assert shards
    for shard in shards:
        table = pq.read_table(shard)
        assert table.schema.names == FW2_COLUMNS
        assert table.schema.field("minhash_cluster_size").type == pa.int64()
        assert table.schema.field("language_score").type == pa.float64()
        rows = table.to_pylist()
        # partitioned by language: every document of a folder is of that folder's language
        assert {r["language"] + (f"_{r['language_script']}" if r["language_script"] else "") for r in rows} == {
            shard.parent.name}
        assert all(r["minhash_cluster_size"] >= 1 and r["token_count"] > 0 for r in rows)
        assert all(isinstance(json.loads(r["top_langs"] or "{}"), dict) for r in rows)
    rows = [r for s in shards for r in pq.read_table(s).to_pylist()]
    assert not any(r["language"] in ("en", "eng") for r in rows)  # FineWeb-2 leaves English out

    stats = json.loads((out / "stats.json").read_text())
    steps = stats["steps"]
    assert steps["language_id"]["dropped"]["excluded_language"] > 50  # the English test pages
    order = stats["steps_order"]
    assert order.index("dedup") < order.index("gopher_repetition") < order.index("pii") < order.index("token_count")
    # the steps after dedup count like any step, on what dedup kept
    assert steps["gopher_repetition"]["docs_in"] == steps["dedup"]["docs_out"]
    assert steps["token_count"]["docs_out"] == len(rows) == result.totals["kept"]

    # per language: what was written, and the dedup drops of the injected copies under French
    by_language = stats["by_language"]
    assert sum(by_language["docs"].values()) == len(rows)
    assert by_language["docs"] == dict(sorted(Counter(f"{r['language']}_{r['language_script']}" for r in rows).items()))
    assert by_language["steps"]["fra_Latn"]["dedup"]["dropped"]["duplicate"] >= COPIES - 1
    assert sum(by_language["tokens"].values()) == sum(r["token_count"] for r in rows)

    from tamis.stats.load import load_run
    from tamis.stats.report_html import render

    loaded = load_run(str(out))
    by_row = {row["language"]: row for row in loaded.stats.by_language.rows(loaded.steps_order)}
    assert by_row["fra_Latn"]["kept"] == by_language["docs"]["fra_Latn"]
    assert by_row["eng_Latn"]["kept"] == 0 and "language_id:excluded_language" in by_row["eng_Latn"]["dropped"]
    assert "<h2>Per language</h2>" in render(loaded) and "fra_Latn" in render(loaded)

    injected = [r for r in rows if r["url"].startswith(f"https://readability.example/{INJECTED}")]
    assert len(injected) == 1 and injected[0]["minhash_cluster_size"] == COPIES
    assert steps["dedup"]["dropped"]["duplicate"] >= COPIES - 1
    assert EMAIL not in injected[0]["text"]
    assert "someone@tamis.invalid" in injected[0]["text"]  # the pipeline's own pii parameter, after dedup
    removed = [r for path in out.glob("removed/dedup/*.parquet") for r in pq.read_table(path).to_pylist()]
    assert sum(r["url"].startswith(f"https://readability.example/{INJECTED}") for r in removed) == COPIES - 1

    # `tamis sample --rehydrate`: every document repeated by its cluster's weight, the same files on a rerun
    from click.testing import CliRunner

    from tamis.cli.sample import sample

    copies = []
    for target in ("rehydrated", "again"):
        where = tmp_path / target
        outcome = CliRunner().invoke(sample, [str(out), "-o", str(where), "--rehydrate", "--seed", "1"])
        assert outcome.exit_code == 0, outcome.output
        copies.append({p.relative_to(where): pq.read_table(p) for p in where.glob("data/*/*")})
    assert copies[0].keys() == {p.relative_to(out) for p in shards}
    assert all(copies[0][k].equals(copies[1][k]) for k in copies[0])
    expected = sum(upsampling_weight(r["minhash_cluster_size"]) for r in rows)
    assert sum(t.num_rows for t in copies[0].values()) == expected > len(rows)
    assert not (tmp_path / "rehydrated" / "_lock.json").exists()  # held while it wrote, then let go
    # a copy into the run's own output (or its data/) would overwrite the shards it reads: refused
    before = {path: path.read_bytes() for path in shards}
    for inside in (out, out / "data"):
        refused = CliRunner().invoke(sample, [str(out), "-o", str(inside), "--fraction", "0.5"], env={"COLUMNS": "300"})
        assert refused.exit_code == 2 and "would overwrite or mix with the shards it reads" in refused.output
    assert {path: path.read_bytes() for path in shards} == before
