"""Input URLs without their secrets, for everything tamis writes down or prints.

A presigned or basic-auth URL (`https://user:pw@host/f.warc.gz?X-Amz-Signature=...`) is a credential. The worker
needs it whole to open the file, so the whole form lives only in the in-memory work unit sent to the task;
everything persisted or shown (the `file_path` column, unit ids and so file names, the manifest, stats, commit
markers, error messages, log lines) uses the public form: scheme, host, port and path, no user info, no query,
no fragment. Exception texts from storage libraries quote the URL they failed on, so they are redacted too.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

#: a URL inside free text: scheme://, then anything up to whitespace or a quote
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
#: what replaces a secret found outside a URL
REDACTED = "<redacted>"
#: query values shorter than this are not hunted for in free text (they would match ordinary words)
_MIN_SECRET = 6


def public_url(url: str) -> str:
    """`url` with user info, query and fragment removed; a local path (no `scheme://`) unchanged."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # an unparsable netloc: keep only the scheme, there is nothing safe to show
        return url.split("://", 1)[0] + "://" + REDACTED
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def has_secrets(url: str) -> bool:
    return public_url(url) != url


def secrets_of(url: str) -> list[str]:
    """The secret pieces of `url` (password, user, query values, the query itself), longest first, so they
    can also be removed where they appear outside the URL (quoted, split up or re-encoded by a library)."""
    if "://" not in url:
        return []
    try:
        parts = urlsplit(url)
        pieces = [parts.password or "", parts.username or "", parts.query, parts.fragment]
    except ValueError:
        return [url]
    for pair in parts.query.split("&"):
        pieces.append(pair.partition("=")[2])
    found = set()
    for piece in pieces:
        for form in (piece, unquote(piece)):
            if len(form) >= _MIN_SECRET:
                found.add(form)
    return sorted(found, key=len, reverse=True)


def redact_text(text: str, *urls: str) -> str:
    """`text` with every URL in it made public, and every secret piece of `urls` removed wherever it appears."""
    for url in urls:
        if url and has_secrets(url):
            text = text.replace(url, public_url(url))
    text = _URL_IN_TEXT.sub(lambda match: public_url(match.group(0)), text)
    for url in urls:
        for secret in secrets_of(url):
            text = text.replace(secret, REDACTED)
    return text
