"""A folder of real HTML pages with a Common-Crawl-like language mix (about 45% English), for the pre-screen.

    python benchmarks/mix_pages.py OUT_DIR [--english-share 0.45] [--seed 0] [--extra DIR ...] [--every-page]

Every HTML page of ../shared/data (the HTML responses of the WARC samples, extraction/scrapinghub_aeb and
extraction/readability_testpages) is labelled English or not by lid.176 on trafilatura's text (FineWeb's
settings, no deduplicate cache), then all non-English pages and as many English ones, drawn at random, as
give `--english-share` are written to OUT_DIR as they came (bytes untouched). The result feeds
`shared/tools/make_warc_corpus.py --pages OUT_DIR` or `bench_process.py --pages OUT_DIR` (docs/extraction.md,
"The language pre-screen").

`--extra DIR` adds the *.html / *.html.gz files under DIR (searched recursively) to the real pages, for
measurements that need more pages than ../shared/data holds (docs/extraction.md names the ones used);
`--every-page` writes every page, English or not, with no selection. With `--extra`, a page byte-identical to
an earlier one is written once.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import random
from pathlib import Path

import fasttext
import trafilatura
from warcio.archiveiterator import ArchiveIterator

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAMIS_SHARED_DATA", REPO.parent / "shared" / "data"))
MODEL = REPO / "src" / "tamis" / "resources" / "lid.176.ftz"


def real_pages() -> list[tuple[str, bytes]]:
    """(file name, HTML bytes) of every real page in ../shared/data."""
    pages = []
    for path in sorted((SHARED / "warc").glob("*.warc.gz")):
        with open(path, "rb") as handle:
            for record in ArchiveIterator(handle, arc2warc=True):
                if record.rec_type != "response" or record.http_headers is None:
                    continue
                if "html" not in (record.http_headers.get_header("Content-Type") or "").lower():
                    continue
                payload = record.content_stream().read()
                if payload.strip():
                    pages.append((f"{path.name.split('.')[0]}-{len(pages)}.html", payload))
    for folder in ("scrapinghub_aeb", "readability_testpages"):
        for path in sorted((SHARED / "extraction" / folder / "html").glob("*.html*")):
            raw = path.read_bytes()
            html = gzip.decompress(raw) if path.suffix == ".gz" else raw
            pages.append((path.name.split(".html")[0] + ".html", html))
    return pages


def extra_pages(folder: Path) -> list[tuple[str, bytes]]:
    """(file name, HTML bytes) of every *.html / *.html.gz file under `folder`, in a stable order.

    Names are made unique and plain ASCII (a running number and the file's stem, other characters replaced), so
    that pages from several folders can share OUT_DIR and make_warc_corpus.py can make each name a URL of its
    own in an ASCII-only WARC header.
    """
    pages = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or ".html" not in path.name:
            continue
        raw = path.read_bytes()
        html = gzip.decompress(raw) if path.name.endswith(".gz") else raw
        stem = "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "_"
                       for c in path.name.split(".html")[0])[:80]
        pages.append((f"{folder.name}-{len(pages):05d}-{stem}.html", html))
    return pages


def page_html(payload: bytes) -> str:
    """A page's HTML as text: UTF-8 when it decodes, else Latin-1 (every byte a character)."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


def trafilatura_text(payload: bytes) -> str:
    """trafilatura's text of a page with FineWeb's settings, without the cross-page deduplicate cache."""
    return trafilatura.extract(page_html(payload), favor_precision=True, include_comments=False,
                               deduplicate=False) or ""


def is_english(model: fasttext.FastText._FastText, payload: bytes) -> bool:
    labels, _ = model.predict(trafilatura_text(payload).replace("\n", " ")[:20000] or " ", k=1)
    return labels[0] == "__label__en"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--english-share", type=float, default=0.45)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra", type=Path, action="append", default=[],
                        help="a folder of more real HTML pages (searched recursively); repeatable")
    parser.add_argument("--every-page", action="store_true", help="write every page, with no selection")
    args = parser.parse_args()
    pages = real_pages()
    for folder in args.extra:
        found = extra_pages(folder)
        if not found:
            raise SystemExit(f"--extra {folder}: no *.html or *.html.gz file under it")
        pages.extend(found)
    if args.extra:
        # Test sets copy pages from one another: keep each distinct page once, so that none counts twice.
        seen: set[bytes] = set()
        distinct = []
        for name, payload in pages:
            digest = hashlib.sha1(payload).digest()
            if digest not in seen:
                seen.add(digest)
                distinct.append((name, payload))
        print(f"{len(pages)} pages, {len(distinct)} distinct")
        pages = distinct
    chosen, summary = (pages, f"all {len(pages)} pages") if args.every_page else _english_mix(pages, args)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, payload in chosen:
        (args.out / name).write_bytes(payload)
    print(f"wrote {summary} to {args.out}")


def _english_mix(pages: list[tuple[str, bytes]], args: argparse.Namespace) -> tuple[list[tuple[str, bytes]], str]:
    """Every non-English page and as many English ones, drawn at random, as give `--english-share`."""
    model = fasttext.load_model(str(MODEL))
    english, other = [], []
    for name, payload in pages:
        (english if is_english(model, payload) else other).append((name, payload))
    random.Random(args.seed).shuffle(english)
    wanted = round(args.english_share * len(other) / (1 - args.english_share))
    chosen = english[:wanted] + other
    share = min(wanted, len(english)) / len(chosen)
    return chosen, (f"{len(chosen)} ({share:.1%} English) of {len(english)} English and {len(other)} other "
                    "pages")


if __name__ == "__main__":
    main()
