"""The real multilingual pages of ../shared/data, extracted once per test session with FineWeb's trafilatura settings.

Sources (see ../shared/data/PROVENANCE.md): ClueWeb09's Japanese WARC excerpt, the Common Crawl 2020-34 excerpt
(Chinese, Russian, Dutch... pages), and Mozilla Readability's test pages (mostly English; Spanish, French, Czech,
German, Chinese, Portuguese, Japanese: only those pages, see READABILITY_NON_ENGLISH). Every page of the WARCs is
kept whatever its language: language ID decides.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from conftest import SHARED

WARCS = ("clueweb09-ja_resiliparse_excerpt.warc.gz", "cc-main-2020-34_resiliparse_excerpt.warc.gz")
READABILITY = SHARED / "extraction" / "readability_testpages" / "html"


#: Readability's pages that are not in English (lid.176 on their trafilatura text: Czech, Spanish, Portuguese,
#: Chinese, German, Japanese, French); the others are English or lorem ipsum
READABILITY_NON_ENGLISH = ("aktualne", "cnet-svg-classes", "folha", "gmw", "heise", "hukumusume", "la-nacion",
                           "lemonde-1", "liberation-1", "nytimes-5", "pixnet", "qq", "videos-2", "yahoo-4", "youth")


def _warc_pages(path: Path) -> list[tuple[str, str]]:
    """(url, html) of every HTML response, read by tamis's WARC reader (it copes with ClueWeb09's bad headers)."""
    from tamis.readers.warc import WarcReader
    from tamis.stats.counters import StepCounters

    pages = []
    for batch in WarcReader().iter_batches(str(path), StepCounters()):
        pages += [(url, html) for url, html in zip(batch["url"], batch["html"], strict=True) if html]
    return pages


def _html_pages() -> list[tuple[str, str]]:
    pages = []
    for name in WARCS:
        if (SHARED / "warc" / name).is_file():
            pages += _warc_pages(SHARED / "warc" / name)
    for name in READABILITY_NON_ENGLISH:
        path = READABILITY / f"{name}.html.gz"
        if path.is_file():
            with gzip.open(path) as f:
                pages.append((f"readability/{name}", f.read().decode("utf-8", "replace")))
    return pages


def extracted_texts(cache_dir: Path) -> list[tuple[str, str]]:
    """(source, text) of every page trafilatura extracts text from, cached as JSON in `cache_dir`."""
    import trafilatura

    cache = cache_dir / "multilingual_texts.json"
    if cache.exists():
        return [tuple(pair) for pair in json.loads(cache.read_text())]
    out = []
    for source, html in _html_pages():
        text = trafilatura.extract(html, favor_precision=True, include_comments=False, deduplicate=True)
        if text:
            out.append((source, text))
    cache.write_text(json.dumps(out))
    return out
