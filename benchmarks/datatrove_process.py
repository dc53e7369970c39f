"""The datatrove 0.10.1 side of benchmarks/bench_process.py; run by the datatrove venv's python, offline.

    .bench/dtvenv/bin/python benchmarks/datatrove_process.py --input CORPUS_DIR --workdir DIR \
        --lid-model src/tamis/resources/lid.176.ftz --gpt2-ranks src/tamis/resources/gpt2.tiktoken \
        [--recipe basic|fineweb|fineweb-all]

Runs FineWeb's process steps the datatrove way with LocalPipelineExecutor(tasks=1, workers=1), and prints
one JSON object on stdout: docs in/out per step, per-step seconds from datatrove's own stats.json, wall
seconds and CPU seconds (this process and its children: datatrove's extractor runs in a forked child,
reaped before we read RUSAGE_CHILDREN).

Recipes:
- basic: WarcReader -> Trafilatura(favour_precision, timeout 1 s, deduplicate) -> LanguageFilter(["en"], 0.65)
  -> token count -> ParquetWriter (zstd, as tamis writes);
- fineweb: FineWeb's whole process stage (datatrove's examples/fineweb.py, without exclusion writers):
  WarcReader -> URLFilter -> Trafilatura(favour_precision, timeout 1 s) -> LanguageFilter(["en"], 0.65)
  -> GopherRepetitionFilter -> GopherQualityFilter -> C4QualityFilter(filter_no_terminal_punct=False)
  -> FineWebQualityFilter -> PIIFormatter -> token count -> ParquetWriter (zstd);
- fineweb-all: the same with LanguageFilter(languages=None, 0.65): every language whose best score is
  above 0.65. The Gopher/C4/FineWeb filters keep their default `language="en"` (datatrove 0.10.1 takes
  the word tokenizer from the filter's constructor argument, not from the document's metadata), so
  every document is split into words by the blank English spaCy tokenizer, as tamis does.

Offline substitutions, all reported in the output:
- FT176LID downloads lid.176.bin; here it loads a local fastText model (the compressed lid.176.ftz by
  default, the same model tamis uses).
- TokensCounter loads a HF tokenizer by name (a download); here a small PipelineStep counts GPT-2 tokens
  with tiktoken from the local ranks file (tiktoken's encode_ordinary, one thread, as tamis does).
- URLFilter's TLDExtract() would fetch the public-suffix list from the network (and cache it under
  ~/.cache); here it is TLDExtract(suffix_list_urls=(), cache_dir=None): tldextract's bundled snapshot,
  as tamis uses. Its block lists are extracted from datatrove's assets into HF_HOME/assets (the caller
  points HF_HOME at a scratch folder); --warm-url-lists does only that extraction + parsing and reports
  its cost.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# GPT-2's pre-tokenisation pattern, as in tiktoken's gpt2 definition (and tamis.annotate.tokens).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _cpu() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"self": own.ru_utime + own.ru_stime, "children": children.ru_utime + children.ru_stime}


def offline_url_filter():
    """datatrove's URLFilter with tldextract's bundled public-suffix snapshot (no network, no disk cache)."""
    from datatrove.pipeline.filters import URLFilter
    from tldextract import TLDExtract

    url_filter = URLFilter()
    url_filter.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)
    return url_filter


def warm_url_lists() -> None:
    """Extract (first time, into HF_HOME/assets) and parse URLFilter's block lists; print the cost as JSON."""
    url_filter = offline_url_filter()
    cpu, wall = _cpu(), time.perf_counter()
    url_filter.download_data()
    wall = time.perf_counter() - wall
    after = _cpu()
    print(json.dumps({"wall_seconds": wall, "cpu_seconds": after["self"] - cpu["self"],
                      "domains": len(url_filter.block_listed_domains)}))


def step_rows(stats_path: str) -> list[dict]:
    """Each step of a datatrove stats.json: name, seconds, documents in and out, and its stats' totals."""
    with open(stats_path) as f:
        stats = json.load(f)
    steps = []
    previous_out = 0
    for step in stats:
        values = step.get("stats", {})

        def total(key: str, values: dict = values) -> float:
            item = values.get(key)
            return item.get("total", 0) if isinstance(item, dict) else (item or 0)

        # readers count "documents", filters/extractors "total"/"forwarded"/"dropped"; steps that count nothing
        # (the token counter) pass every document on, and the writer's "total" is what it wrote
        docs_in = total("documents") or total("total") or previous_out
        docs_out = total("documents") or total("forwarded") or (docs_in - total("dropped"))
        previous_out = docs_out
        timing = step.get("time_stats")  # a bare 0 for a step that timed nothing
        steps.append({
            "name": step["name"],
            "seconds": timing.get("total", 0) if isinstance(timing, dict) else 0,
            "docs_in": docs_in,
            "docs_out": docs_out,
            "stats": {k: total(k) for k in values},
        })
    return steps


def build_pipeline(args: argparse.Namespace) -> list:
    from datatrove.data import DocumentsPipeline
    from datatrove.pipeline.base import PipelineStep
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import ParquetWriter
    from datatrove.utils.lid import FT176LID

    class LocalFT176LID(FT176LID):
        """FT176LID that loads a local model file instead of downloading lid.176.bin."""

        def __init__(self, languages: list[str] | None, model_path: str) -> None:
            super().__init__(languages)
            self.model_path = model_path

        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText

                self._model = _FastText(self.model_path)
            return self._model

    class TiktokenCounter(PipelineStep):
        """GPT-2 token counts with tiktoken from a local ranks file (stands in for datatrove's TokensCounter)."""

        name = "📊 Counter (tiktoken gpt2)"
        type = "🔢 - TOKENIZER"

        def __init__(self, ranks_path: str) -> None:
            super().__init__()
            self.ranks_path = ranks_path
            self._encoding = None

        @property
        def encoding(self):
            if self._encoding is None:
                import tiktoken
                from tiktoken.load import load_tiktoken_bpe

                self._encoding = tiktoken.Encoding(
                    name="gpt2", explicit_n_vocab=50257, pat_str=GPT2_PATTERN,
                    mergeable_ranks=load_tiktoken_bpe(self.ranks_path), special_tokens={"<|endoftext|>": 50256},
                )
            return self._encoding

        def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
            for document in data:
                with self.track_time():
                    count = len(self.encoding.encode_ordinary(document.text))
                document.metadata["token_count"] = count
                self.stat_update("tokens", value=count)
                yield document

    languages = None if args.recipe == "fineweb-all" else ["en"]
    language_filter = LanguageFilter(languages=languages, language_threshold=0.65)
    language_filter.model = LocalFT176LID(languages, args.lid_model)
    reader = WarcReader(args.input, glob_pattern=args.glob)
    extractor = Trafilatura(favour_precision=True, timeout=1.0, deduplicate=True)
    tokens = TiktokenCounter(args.gpt2_ranks)
    writer = ParquetWriter(os.path.join(args.workdir, "output"), compression="zstd")
    if args.recipe == "basic":
        return [reader, extractor, language_filter, tokens, writer]
    return [
        reader,
        offline_url_filter(),
        extractor,
        language_filter,
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        PIIFormatter(),
        tokens,
        writer,
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, help="folder holding the WARC files")
    ap.add_argument("--glob", default="*.warc.gz", help="WARC files in --input to read")
    ap.add_argument("--workdir", required=True, help="fresh folder for datatrove's output and logs")
    ap.add_argument("--lid-model", required=True, help="local fastText lid.176 model (.ftz or .bin)")
    ap.add_argument("--gpt2-ranks", required=True, help="local GPT-2 tiktoken ranks file")
    ap.add_argument("--recipe", choices=("basic", "fineweb", "fineweb-all"), default="basic",
                    help="basic: extraction, English LID, tokens; fineweb: FineWeb's whole process stage; "
                         "fineweb-all: the same keeping every language")
    ap.add_argument("--warm-url-lists", action="store_true",
                    help="only extract and parse URLFilter's block lists (into HF_HOME) and report the cost")
    args = ap.parse_args()
    if args.warm_url_lists:
        warm_url_lists()
        return

    from importlib import metadata

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.utils.logging import logger

    logger.remove()  # keep stdout for the JSON; datatrove's own log goes to its logging_dir
    logger.add(sys.stderr, level="WARNING")

    pipeline = build_pipeline(args)
    logs = os.path.join(args.workdir, "logs")
    executor = LocalPipelineExecutor(pipeline, tasks=1, workers=1, logging_dir=logs, skip_completed=False)
    cpu_before, wall = _cpu(), time.perf_counter()
    executor.run()
    wall = time.perf_counter() - wall
    cpu_after = _cpu()  # the extractor child and multiprocess's manager have been reaped by now

    steps = step_rows(os.path.join(logs, "stats.json"))
    cpu = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
    print(json.dumps({
        "versions": {p: metadata.version(p) for p in ("datatrove", "trafilatura", "lxml", "warcio",
                                                       "fasttext-numpy2-wheel", "tiktoken", "pyarrow")
                     + (("spacy", "tldextract", "pyahocorasick") if args.recipe != "basic" else ())},
        "python": sys.version.split()[0],
        "substitutions": [
            f"FT176LID loads the local model {args.lid_model} (no download of lid.176.bin)",
            "TokensCounter (HF tokenizers, downloads 'gpt2') replaced by a PipelineStep counting GPT-2 tokens "
            f"with tiktoken from {args.gpt2_ranks}",
            "ParquetWriter compression zstd (datatrove's default is snappy; tamis writes zstd)",
            *(["URLFilter's TLDExtract uses tldextract's bundled public-suffix snapshot (suffix_list_urls=(), "
               "no network), as tamis does"] if args.recipe != "basic" else []),
        ],
        "recipe": args.recipe,
        "wall_seconds": wall,
        "cpu_seconds": cpu["self"] + cpu["children"],
        "cpu_seconds_self": cpu["self"],
        "cpu_seconds_children": cpu["children"],
        "steps": steps,
    }))


if __name__ == "__main__":
    main()
