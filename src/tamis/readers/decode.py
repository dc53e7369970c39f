"""Bytes of a web page to text: UTF-8 first, then the declared charset, then detection.

Most of the web is UTF-8, so trying it strictly first is both the fastest and the most accurate path;
declared charsets are often wrong, so each candidate must decode without error to be accepted.
"""

from __future__ import annotations

import codecs
import re

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


def decode_payload(payload: bytes, content_type: str | None = None) -> str | None:
    """The payload as text, or None when no candidate charset decodes it."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        pass
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
