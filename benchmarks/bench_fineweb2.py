"""FineWeb-2's per-document work, tamis against datatrove 0.10.1, on a multilingual WARC corpus, in one run.

    python benchmarks/bench_fineweb2.py [--repeat 1] [--json]

Corpus: the multilingual pages of ../shared/data: ClueWeb09's Japanese excerpt, the CC-MAIN-2020-34 excerpt
(Chinese, Russian, Dutch...) and readability's test pages wrapped into a WARC (English ones are there for the
English exclusion to drop), each file listed `--repeat` times.

Both sides run in this process, one core, no Ray, the same installed trafilatura, fastText lid.176.ftz and
word tokenizers:
- tamis: `pipelines/fineweb-2.yaml` without its dedup entry (every step in the process stage:
  tamis.engine.task.process_input per file), writing Parquet;
- datatrove: a warcio reader (datatrove's WarcReader needs cchardet and libmagic, absent here) -> URLFilter
  -> Trafilatura(favour_precision, timeout 1 s, deduplicate) ->
  LanguageFilter(label_only, keep_top_pairs_threshold=0.01) -> FineWeb-2's language step (lid.176 labels
  mapped to code_3 + script with tamis.fineweb2.labels, English above 0.65 out, the config's language_score)
  -> per language, as fineweb-2-pipeline.py builds them: GopherRepetitionFilter / FineWebQualityFilter /
  GopherQualityFilter(language=<label>, the config's values) -> FTFYFormatter -> PIIFormatter ->
  SymbolLinesFormatter(["|"], "\\n") -> GPT-2 token count -> a pyarrow Parquet writer of FineWeb-2's columns
  (datatrove's ParquetWriter fails on the per-document `top_language_*` metadata keys, and its JsonlWriter,
  FineWeb-2's, needs orjson, absent here).
Dedup is not part of this comparison (benchmarks/bench_dedup.py measures it). Timings are wall and CPU
seconds of each side; the machine may be shared, so compare the ratio of one run.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAMIS_SHARED_DATA", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def readability_warc(path: Path) -> Path:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for page in sorted((SHARED / "extraction" / "readability_testpages" / "html").glob("*.html.gz")):
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            url = f"https://readability.example/{page.name.split('.html')[0]}"
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(
                gzip.decompress(page.read_bytes())), http_headers=http,
                warc_headers_dict={"WARC-Date": "2024-05-20T10:00:00Z"}))
    return path


def corpus(directory: Path, repeat: int) -> list[Path]:
    sources = [SHARED / "warc" / "clueweb09-ja_resiliparse_excerpt.warc.gz",
               SHARED / "warc" / "cc-main-2020-34_resiliparse_excerpt.warc.gz",
               readability_warc(directory / "readability.warc.gz")]
    files = []
    for k in range(repeat):
        for source in sources:
            target = directory / "corpus" / f"r{k}-{source.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            files.append(target)
    return files


def run_tamis(files: list[Path], out: Path) -> dict:
    from tamis.engine.plan import plan_units
    from tamis.engine.task import TaskOptions, process_input
    from tamis.pipeline.spec import parse_pipeline

    data = yaml.safe_load((REPO / "pipelines" / "fineweb-2.yaml").read_text())
    data["steps"] = [s for s in data["steps"] if s.get("step") != "dedup"]
    data["removed"] = {"mode": "none"}
    spec = parse_pipeline(data, str(REPO / "pipelines" / "fineweb-2.yaml"))
    units = plan_units([str(f) for f in files], {str(f): f.stat().st_size for f in files}, None)
    started, cpu0 = time.perf_counter(), cpu()
    summaries = [process_input(spec, unit, TaskOptions(output=str(out), fingerprint="bench")) for unit in units]
    # the tasks' own CPU figure: it includes trafilatura's sandbox process, still alive (not yet reaped) here
    return {"wall_seconds": time.perf_counter() - started, "cpu_seconds": sum(s["cpu_seconds"] for s in summaries),
            "cpu_seconds_reaped_only": cpu() - cpu0,
            "docs_in": sum(s["docs_read"] for s in summaries), "docs_out": sum(s["docs_kept"] for s in summaries)}


def datatrove_pipeline(files: list[Path], out: Path) -> list:
    from datatrove.data import Document
    from datatrove.pipeline.base import PipelineStep
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter, SymbolLinesFormatter
    from datatrove.utils.lid import FT176LID
    from datatrove_process import offline_url_filter

    from tamis.annotate.tokens import count_tokens
    from tamis.fineweb2.configs import config_or_default
    from tamis.fineweb2.labels import iso_to_fineweb2
    from tamis.resources import resource_path

    class WarcioReader(PipelineStep):
        """HTML responses as datatrove Documents, read with warcio and decoded as tamis decodes them
        (datatrove's WarcReader needs cchardet and libmagic, which this environment does not have)."""

        name = "warcio reader"

        def run(self, data, rank=0, world_size=1):
            from warcio.archiveiterator import ArchiveIterator

            from tamis.readers.decode import decode_payload

            for path in files:
                with open(path, "rb") as handle:
                    for record in ArchiveIterator(handle):
                        if record.rec_type != "response" or record.http_headers is None:
                            continue
                        content_type = record.http_headers.get_header("Content-Type") or ""
                        if "html" not in content_type:
                            continue
                        html = decode_payload(record.content_stream().read(), content_type)
                        if not html:
                            continue
                        yield Document(text=html, id=record.rec_headers.get_header("WARC-Record-ID"),
                                       metadata={"url": record.rec_headers.get_header("WARC-Target-URI")})

    class LocalFT176LID(FT176LID):
        """FT176LID on the local lid.176.ftz (it would download lid.176.bin)."""

        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText

                self._model = _FastText(str(resource_path("lid.176.ftz")))
            return self._model

    class FineWeb2Language(PipelineStep):
        """FineWeb-2's language stage: code_3 + script labels, English out, the config's minimum score."""

        name = "FineWeb-2 language"

        def run(self, data, rank=0, world_size=1):
            for doc in data:
                with self.track_time():
                    iso = doc.metadata["language"]
                    if doc.metadata.get("top_language_en_score", 0.0) > 0.65:  # FineWeb English's documents
                        continue
                    code, script = iso_to_fineweb2(iso)
                    label = f"{code}_{script}" if script else code
                    if doc.metadata["language_score"] < config_or_default(label).language_score:
                        continue
                    doc.metadata["language"], doc.metadata["language_script"] = code, script
                yield doc

    class PerLanguageFilters(PipelineStep):
        """FineWeb-2's three filters, built per language with its config, as fineweb-2-pipeline.py does."""

        name = "FineWeb-2 per-language filters"

        def __init__(self):
            super().__init__()
            self.filters: dict[str, list] = {}

        def built(self, label: str) -> list:
            if label not in self.filters:
                c = config_or_default(label)
                self.filters[label] = [
                    GopherRepetitionFilter(language=label, dup_para_frac=0, dup_line_char_frac=0,
                                           dup_para_char_frac=0, dup_line_frac=c.dup_line_frac,
                                           top_n_grams=c.top_n_grams, dup_n_grams=c.dup_n_grams),
                    FineWebQualityFilter(language=label, short_line_thr=999, char_duplicates_ratio=0.1,
                                         line_punct_thr=c.line_punct_thr, new_line_ratio=c.new_line_ratio),
                    GopherQualityFilter(language=label, max_avg_word_length=c.max_avg_word_length,
                                        min_avg_word_length=c.min_avg_word_length, stop_words=list(c.stopwords),
                                        max_non_alpha_words_ratio=c.max_non_alpha_words_ratio, min_stop_words=2),
                ]
            return self.filters[label]

        def run(self, data, rank=0, world_size=1):
            for doc in data:
                with self.track_time():
                    script = doc.metadata.get("language_script")
                    label = f"{doc.metadata['language']}_{script}" if script else doc.metadata["language"]
                    kept = True
                    for step in self.built(label):
                        verdict = step.filter(doc)
                        if not (verdict[0] if isinstance(verdict, tuple) else verdict):
                            kept = False
                            break
                if kept:
                    yield doc

    class Tokens(PipelineStep):
        name = "GPT-2 tokens"

        def run(self, data, rank=0, world_size=1):
            for doc in data:
                doc.metadata["token_count"] = count_tokens([doc.text])[0]
                yield doc

    class Writer(PipelineStep):
        """FineWeb-2's columns as one zstd Parquet file."""

        name = "parquet"

        def run(self, data, rank=0, world_size=1):
            import pyarrow as pa
            import pyarrow.parquet as pq

            rows = []
            for doc in data:
                m = doc.metadata
                rows.append({"text": doc.text, "id": doc.id, "url": m.get("url"), "language": m["language"],
                             "language_score": m["language_score"], "token_count": m["token_count"],
                             "language_script": m.get("language_script"),
                             "top_langs": json.dumps({k[13:]: v for k, v in m.items()
                                                      if k.startswith("top_language_")})})
                yield doc
            out.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows), out / "part-0.parquet", compression="zstd")

    language = LanguageFilter(languages=None, label_only=True, keep_top_pairs_threshold=0.01)
    language.model = LocalFT176LID(None)
    return [
        WarcioReader(),
        offline_url_filter(),
        Trafilatura(favour_precision=True, timeout=1.0, deduplicate=True),
        language,
        FineWeb2Language(),
        PerLanguageFilters(),
        FTFYFormatter(),
        PIIFormatter(),
        SymbolLinesFormatter(symbols_to_remove=["|"], replace_char="\n"),
        Tokens(),
        Writer(),
    ]


def run_datatrove(files: list[Path], out: Path) -> dict:
    pipeline = datatrove_pipeline(files, out)
    counted = {"in": 0, "out": 0}

    def count(data, key):
        for doc in data:
            counted[key] += 1
            yield doc

    started, cpu0 = time.perf_counter(), cpu()
    data = count(pipeline[0](None, 0, 1), "in")
    for step in pipeline[1:-1]:
        data = step(data, 0, 1)
    for _ in pipeline[-1](count(data, "out"), 0, 1):
        pass
    return {"wall_seconds": time.perf_counter() - started, "cpu_seconds": cpu() - cpu0,
            "docs_in": counted["in"], "docs_out": counted["out"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="times each corpus file is listed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="bench-fw2-hf-"))
    with tempfile.TemporaryDirectory(prefix="bench-fw2-") as tmp:
        files = corpus(Path(tmp), args.repeat)
        results = {"files": len(files), "bytes": sum(f.stat().st_size for f in files),
                   "tamis": run_tamis(files, Path(tmp) / "tamis"),
                   "datatrove": run_datatrove(files, Path(tmp) / "datatrove")}
    t, d = results["tamis"], results["datatrove"]
    results["ratio_wall"] = round(d["wall_seconds"] / t["wall_seconds"], 2)
    results["ratio_cpu"] = round(d["cpu_seconds"] / t["cpu_seconds"], 2)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"{results['files']} files, {results['bytes'] / 1e6:.1f} MB of WARC")
    for side in ("tamis", "datatrove"):
        r = results[side]
        print(f"{side:10s} docs {r['docs_in']:5d} -> {r['docs_out']:5d}   wall {r['wall_seconds']:7.2f} s   "
              f"CPU {r['cpu_seconds']:7.2f} s")
    print(f"datatrove / tamis: wall x{results['ratio_wall']}, CPU x{results['ratio_cpu']}")


if __name__ == "__main__":
    main()
