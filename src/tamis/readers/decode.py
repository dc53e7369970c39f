"""Bytes of a web page to text, two ways.

`fineweb` (the default) decodes as FineWeb did (datatrove 0.10.1's WARC reader): strict UTF-8, else the one
charset uchardet guesses from the whole payload, and the page is dropped when there is no guess, the guess is
UTF-8 again, or the guessed codec fails. The text of a non-UTF-8 page is then byte for byte FineWeb's, mistakes
included (uchardet calls some Latin-1 German pages IBM865, which turns "ü" into "³").

`declared` is more careful: strict UTF-8, then the charsets the HTTP header and the page's `<meta>` declare,
decoded with the supersets browsers use (WHATWG), then charset-normalizer. Its text differs from FineWeb's on
some non-UTF-8 pages, so it is a choice against identity.
"""

from __future__ import annotations

import codecs
import re

import cchardet
import charset_normalizer

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _HEADER_CHARSET.search(content_type)
    return match.group(1) if match else None


# Browsers decode these labels with a superset (WHATWG Encoding Standard); so must we, or pages that
# use the superset's extra characters would fail to decode.
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "latin-1": "cp1252", "iso8859-1": "cp1252",
              "ascii": "cp1252", "euc_kr": "cp949", "shift_jis": "cp932", "iso8859-9": "cp1254",
              "tis-620": "cp874", "iso8859-11": "cp874"}


def _known(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        name = codecs.lookup(charset).name
    except LookupError:
        return None
    return _SUPERSETS.get(name, name)


CHARSET_DETECTION = ("fineweb", "declared")


def decode_payload(payload: bytes, content_type: str | None = None, detection: str = "fineweb") -> str | None:
    """The payload as text, or None when it cannot be decoded (the reader counts it as `undecodable`)."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if detection == "fineweb":
        return _decode_detected(payload)
    return _decode_declared(payload, content_type)


def _decode_detected(payload: bytes) -> str | None:
    """FineWeb's fallback: uchardet over the whole payload, the guess taken as is (no superset, no second try)."""
    guess = cchardet.detect(payload)["encoding"]
    if not guess or guess == "UTF-8":
        return None
    try:
        return payload.decode(guess)
    except (UnicodeDecodeError, LookupError):
        return None


def _decode_declared(payload: bytes, content_type: str | None) -> str | None:
    candidates = [charset_from_content_type(content_type)]
    meta = _META_CHARSET.search(payload[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    tried = {"utf-8"}
    for candidate in candidates:
        charset = _known(candidate)
        if charset is None or charset in tried:
            continue
        tried.add(charset)
        try:
            return payload.decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
    best = charset_normalizer.from_bytes(payload[:65536]).best()
    charset = _known(best.encoding) if best is not None else None
    if charset is None or charset in tried:
        return None
    try:
        return payload.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return None
