"""Turning the user's input arguments (paths, globs, URLs, Common Crawl paths files) into input files."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import fsspec

from tamis.io.redact import public_url, redact_text
from tamis.io.retry import with_retries
from tamis.io.storage import url_of, url_to_fs

#: where the relative paths of a Common Crawl `warc.paths.gz` file live
COMMON_CRAWL_BASE = "s3://commoncrawl/"


#: size requests in flight at once when the files of a paths file are looked up (HEAD requests on S3 or HTTP)
SIZE_LOOKUPS_AT_ONCE = 32


class MissingInputError(FileNotFoundError):
    pass


def is_paths_file(pattern: str) -> bool:
    """Common Crawl's listings: `warc.paths.gz`, `wet.paths.gz`, or any `*.paths[.gz]` file."""
    name = pattern.rstrip("/").rsplit("/", 1)[-1]
    return name.endswith((".paths", ".paths.gz"))


class PathsFileError(MissingInputError):
    """A paths file that cannot be a listing of input files (a line too long, too many lines, not text);
    like a missing input, it stops the run before any task starts, with this message."""


#: longest line of a paths file; Common Crawl's are about 150 bytes
MAX_PATHS_LINE = 4096
#: most files one paths file may list; Common Crawl's largest listings have about 100,000
MAX_PATHS_ENTRIES = 10_000_000


def read_paths_file(url: str, base: str, max_line: int = MAX_PATHS_LINE,
                    max_entries: int = MAX_PATHS_ENTRIES) -> list[str]:
    """The files listed in a paths file, one per line; relative lines are joined to `base`.

    The listing is streamed (through gzip when it is compressed) a line at a time, each line read with a
    cap, so a hostile listing costs at most its result in memory, never its inflated size.
    """

    def read() -> list[str]:
        with fsspec.open(url, "rb") as handle:
            magic = handle.read(2)
            handle.seek(0)
            stream: IO[bytes] = gzip.GzipFile(fileobj=handle) if magic == b"\x1f\x8b" else handle
            return list(_listed_paths(stream, url, base, max_line, max_entries))

    try:
        paths = with_retries(read, attempts=4)
    except PathsFileError:
        raise
    except FileNotFoundError:
        raise MissingInputError(f"paths file {public_url(url)!r} not found") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise PathsFileError(f"paths file {public_url(url)!r} is not a readable listing: "
                             f"{type(exc).__name__}: {redact_text(str(exc), url)}") from None
    except Exception as exc:  # noqa: BLE001 - the library's message may quote the URL, credentials and all
        raise MissingInputError(f"cannot read paths file {public_url(url)!r}: "
                                f"{type(exc).__name__}: {redact_text(str(exc), url)}") from None
    if not paths:
        raise MissingInputError(f"paths file {public_url(url)!r} lists no files")
    return paths


def _listed_paths(stream: IO[bytes], url: str, base: str, max_line: int, max_entries: int) -> Iterator[str]:
    count = 0
    number = 0
    while True:
        raw = stream.readline(max_line + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_line:
            raise PathsFileError(f"paths file {public_url(url)!r}: line {number} is longer than {max_line} bytes")
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise PathsFileError(f"paths file {public_url(url)!r}: line {number} is not UTF-8 text") from None
        if not line or line.startswith("#"):
            continue
        count += 1
        if count > max_entries:
            raise PathsFileError(f"paths file {public_url(url)!r} lists more than {max_entries} files")
        yield line if "://" in line or line.startswith("/") else base.rstrip("/") + "/" + line


def _literal_file(fs: Any, path: str) -> dict[str, Any] | None:
    """`path`'s listing entry when, taken literally, it names a file: `data [2024]/part*.warc.gz` is that file
    when it exists, not a pattern whose `[2024]` matches one character (which matched nothing)."""
    try:
        info = fs.info(path)
    except Exception:  # noqa: BLE001 - not there, or not readable as one file: it is a pattern
        return None
    return info if info.get("type") == "file" else None


def expand_inputs(patterns: list[str], paths_base: str = COMMON_CRAWL_BASE) -> tuple[list[str], dict[str, int]]:
    """(every input file, sorted and de-duplicated; the sizes known from listing them).

    A pattern that matches nothing is an error: silently processing fewer files than asked is the kind of
    data loss nobody notices. Files named in a paths file are not checked one by one (that would be a
    request per file); a missing one fails its task, which is reported by input.

    Inputs are told apart by their public form (tamis.io.redact): the same file under two signatures of a
    presigned URL is one input. An http(s) URL is never a glob (its `?` starts a query).
    """
    found: dict[str, str] = {}  # public form -> the URL to open
    sizes: dict[str, int] = {}
    for pattern in patterns:
        if is_paths_file(pattern):
            for path in read_paths_file(pattern, paths_base):
                found.setdefault(public_url(path), path)
            continue
        fs, path = url_to_fs(pattern)
        is_web = pattern.lower().startswith(("http://", "https://"))
        if not is_web and any(ch in pattern for ch in "*?["):
            literal = _literal_file(fs, path)
            if literal is not None:
                matches = {path: literal}
            else:
                listing = fs.glob(path, detail=True)
                matches = {name: info for name, info in listing.items() if info.get("type") == "file"}
        else:
            try:
                info = fs.info(path)
            except FileNotFoundError:
                info = None
            except Exception as exc:  # noqa: BLE001 - e.g. HTTP 403; the library's message quotes the URL
                raise MissingInputError(f"cannot read input {public_url(pattern)!r}: "
                                        f"{type(exc).__name__}: {redact_text(str(exc), pattern)}") from None
            matches = {path: info} if info and info.get("type") == "file" else {}
            if info and info.get("type") == "directory":
                raise MissingInputError(f"input {public_url(pattern)!r} is a folder: give its files, e.g. "
                                        f"{public_url(pattern.rstrip('/') + '/*.warc.gz')!r}")
        if not matches:
            raise MissingInputError(f"no input file matches {public_url(pattern)!r}")
        for name, info in matches.items():
            full = url_of(fs, name)
            found.setdefault(public_url(full), full)
            if info.get("size") is not None:
                sizes[found[public_url(full)]] = int(info["size"])
    return [found[key] for key in sorted(found)], sizes


def lookup_sizes(files: list[str], at_once: int = SIZE_LOOKUPS_AT_ONCE) -> dict[str, int | None]:
    """The size of each file, None where it cannot be found out (missing, forbidden, no size given).

    Why: the files a paths file lists come without sizes, and only an input of known size can be split into
    byte ranges (tamis.engine.plan), which is what keeps a Common Crawl WARC (about 1 GiB) from being one
    14-CPU-minute task. One request per file, `at_once` in flight, each retried on transient errors; a file
    that cannot be looked up stays whole, and if it cannot be read either, its task fails and is reported.
    """

    def size_of(path: str) -> int | None:
        try:
            fs, inner = url_to_fs(path)
            info = with_retries(lambda: fs.info(inner), attempts=3)
        except Exception:  # noqa: BLE001 - any failure leaves the file whole; reading it reports the error
            return None
        size = info.get("size")
        return int(size) if size is not None and info.get("type", "file") == "file" else None

    if not files:
        return {}
    with ThreadPoolExecutor(min(at_once, len(files))) as pool:
        return dict(zip(files, pool.map(size_of, files), strict=True))
