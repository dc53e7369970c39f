"""Filter-chain throughput, ours vs datatrove 0.10.1, on the same extracted texts, in one run.

Builds a 2,000-record Common-Crawl-shaped WARC from the scrapinghub pages, extracts texts once with
trafilatura (FineWeb's settings), then times only the filter chain (Gopher repetition, Gopher quality,
C4 with FineWeb's settings, FineWeb quality) in this process and prints documents per CPU-second.

The synthetic corpus repeats 181 pages, which favours our per-process word memo; the "no memo" row
clears the memo before every document, i.e. no chunk is ever reused across documents (a lower bound).

    python benchmarks/bench_filters.py [--records 2000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAMIS_SHARED_DATA", REPO.parent / "shared" / "data"))
PAGES = str(SHARED / "extraction" / "scrapinghub_aeb" / "html")
MAKE_CORPUS = str(SHARED.parent / "tools" / "make_warc_corpus.py")


def _extract(html: str) -> str | None:
    import trafilatura

    return trafilatura.extract(html, favor_precision=True, include_comments=False, deduplicate=True)


def extracted_texts(corpus: Path) -> list[str]:
    from warcio.archiveiterator import ArchiveIterator

    pages = []
    for path in sorted(corpus.parent.glob(corpus.name.replace(".warc.gz", "*.warc.gz"))):
        with open(path, "rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type == "response" and record.http_headers is not None:
                    pages.append(record.content_stream().read().decode("utf-8", "replace"))
    with ProcessPoolExecutor() as pool:
        return [t for t in pool.map(_extract, pages, chunksize=16) if t]


def run_ours(texts: list[str], batch_size: int = 1000, memo: bool = True) -> tuple[float, list[str | None]]:
    from tamis.batch import DocBatch
    from tamis.filters.c4 import C4QualityFilter
    from tamis.filters.fineweb_quality import FineWebQualityFilter
    from tamis.filters.gopher_quality import GopherQualityFilter
    from tamis.filters.gopher_repetition import GopherRepetitionFilter
    from tamis.text import words

    chain = [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(), FineWebQualityFilter()]
    for step in chain:
        step.setup()
    words._CHUNK_TOKENS.clear()
    words.english_nlp()  # model construction is set-up, not per-document work
    size = batch_size if memo else 1
    outcome: list[str | None] = []
    start = time.process_time()
    for lo in range(0, len(texts), size):
        if not memo:
            words._CHUNK_TOKENS.clear()
        chunk = texts[lo : lo + size]
        batch = DocBatch({"text": chunk, "i": list(range(len(chunk)))})
        dropped: dict[int, str] = {}
        for step in chain:
            reasons = step.filter_batch(batch)
            dropped.update((i, r) for i, r in zip(batch["i"], reasons, strict=True) if r is not None)
            batch, _ = batch.split([r is None for r in reasons])
        outcome += [dropped.get(i) for i in range(len(chunk))]
    return time.process_time() - start, outcome


def run_datatrove(texts: list[str]) -> tuple[float, list[str | None]]:
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    chain = [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(filter_no_terminal_punct=False)]
    chain.append(FineWebQualityFilter())
    load_word_tokenizer("en").tokenizer  # noqa: B018  (load spaCy before timing)
    outcome: list[str | None] = []
    start = time.process_time()
    for i, text in enumerate(texts):
        doc = Document(text=text, id=str(i))
        reason = None
        for step in chain:
            verdict = step.filter(doc)
            if verdict is not True:
                reason = verdict[1] if isinstance(verdict, tuple) else "filtered"
                break
        outcome.append(reason)
    return time.process_time() - start, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_filters_"))
    corpus = workdir / "corpus.warc.gz"
    if not corpus.exists():
        cmd = [sys.executable, MAKE_CORPUS, "--pages", PAGES, "--out", str(corpus), "--records", str(args.records)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    texts = extracted_texts(corpus)
    print(f"{len(texts)} extracted documents ({sum(map(len, texts)) / 1e6:.1f} M characters)")

    theirs_s, theirs = run_datatrove(texts)
    ours_s, ours = run_ours(texts)
    cold_s, cold = run_ours(texts, memo=False)
    agree = sum((a is None) == (b is None) for a, b in zip(theirs, ours, strict=True)) / len(texts)
    print(f"decision agreement with datatrove: {agree:.2%}; kept {ours.count(None)} of {len(texts)}")
    assert ours == cold, "the word memo must not change decisions"
    print(f"{'':28}{'CPU s':>8}{'docs/CPU-s':>12}{'vs datatrove':>14}")
    for name, seconds in (("datatrove 0.10.1", theirs_s), ("tamis", ours_s), ("tamis, no word memo", cold_s)):
        print(f"{name:28}{seconds:8.2f}{len(texts) / seconds:12.1f}{theirs_s / seconds:13.1f}x")


if __name__ == "__main__":
    main()
