"""Bytes become the text FineWeb had: the reader's `fineweb` charset detection against datatrove 0.10.1's own
WARC reader (`datatrove.pipeline.readers.warc.process_record`, the oracle, run from the installed package).

Every real HTML page we have goes into one WARC file as a Common Crawl response record (payload type
text/html): the HTML responses of the WARC samples in ../shared/data/warc and every page of
extraction/scrapinghub_aeb and extraction/readability_testpages, each as it is and re-encoded in legacy
charsets (Latin-1, windows-1251, Shift_JIS, GB18030, EUC-KR, KOI8-R), plus bytes that are no text at all. Both
readers read that file; the documents they keep and their text must be identical, and the pages they drop the
same ones.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tamis.readers.decode import decode_payload
from tamis.readers.warc import WarcReader
from tamis.stats.counters import StepCounters

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from mix_pages import real_pages as shared_html_pages  # noqa: E402

pytest.importorskip("cchardet")
pytest.importorskip("magic")
LEGACY = ("latin-1", "cp1251", "shift_jis", "gb18030", "euc_kr", "koi8_r")


def real_pages() -> list[bytes]:
    """Every real HTML page's bytes, as benchmarks/mix_pages.py collects them."""
    return [payload for _, payload in shared_html_pages() if payload.strip()]


def variants(pages: list[bytes]) -> list[bytes]:
    """Each page as it is, and re-encoded in each legacy charset its characters allow (the text that does not
    fit becomes character references, as a server would send it)."""
    out = list(pages)
    for k, page in enumerate(pages):
        try:
            text = page.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text.isascii():
            continue
        charset = LEGACY[k % len(LEGACY)]
        out.append(text.encode(charset, "xmlcharrefreplace"))
    # not text at all: random-looking bytes, and UTF-8 cut in the middle of a character
    out.append(bytes(range(128, 256)) * 40)
    out.append("<html><body>\u00e9t\u00e9 \u4e2d\u6587</body></html>".encode()[:-16] + b"\xe4\xb8")
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[bytes]]:
    payloads = variants(real_pages())
    path = tmp_path_factory.mktemp("decode") / "pages.warc.gz"
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for k, payload in enumerate(payloads):
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            record = writer.create_warc_record(
                f"https://example.org/page/{k}", "response", payload=io.BytesIO(payload), http_headers=http,
                warc_headers_dict={"WARC-Identified-Payload-Type": "text/html",
                                   "WARC-Record-ID": f"<urn:uuid:00000000-0000-0000-0000-{k:012d}>"})
            writer.write_record(record)
    return path, payloads


def is_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_fineweb_detection_gives_datatrove_text_on_every_page(corpus: tuple[Path, list[bytes]]) -> None:
    from datatrove.pipeline.readers.warc import process_record

    path, payloads = corpus
    total = len(payloads)
    expected = {}
    with open(path, "rb") as handle:
        for record in ArchiveIterator(handle):
            document = process_record(record)
            if document:
                expected[document["id"]] = document["text"]
    counters = StepCounters()
    got = {}
    for batch in WarcReader(charset_detection="fineweb").iter_batches(str(path), counters):
        got.update(zip(batch["id"], batch["html"], strict=True))
    # the fallback is exercised: hundreds of pages are not UTF-8, and datatrove drops some of them
    assert total > 800 and sum(not is_utf8(payload) for payload in payloads) > 200
    assert len(expected) < total
    assert set(got) == set(expected)
    differing = [doc_id for doc_id in expected if got[doc_id] != expected[doc_id]]
    assert not differing, f"{len(differing)} of {len(expected)} pages decoded differently, e.g. {differing[:3]}"
    assert counters.dropped["undecodable"] == total - len(expected)


def test_declared_detection_follows_the_declared_charset() -> None:
    """The other mode: a Latin-1 German page that uchardet calls IBM865 keeps its "ü" when the header says so."""
    page = "<html><body><p>Gr\u00fc\u00dfe aus M\u00fcnchen, sch\u00f6ne T\u00fcren.</p></body></html>"
    payload = page.encode("latin-1")
    assert decode_payload(payload, "text/html; charset=iso-8859-1", "declared") == page
    assert decode_payload(payload, "text/html; charset=iso-8859-1", "fineweb") == payload.decode(
        __import__("cchardet").detect(payload)["encoding"])
    assert decode_payload(page.encode(), None, "fineweb") == page  # UTF-8 is UTF-8 either way


def test_unknown_charset_detection_is_refused() -> None:
    with pytest.raises(ValueError, match="charset_detection"):
        WarcReader(charset_detection="guess")
