"""Turning the user's input arguments (paths, globs, URLs, Common Crawl paths files) into input files."""

from __future__ import annotations

import gzip
import io

import fsspec

from tamis.io.retry import with_retries
from tamis.io.storage import url_of

#: where the relative paths of a Common Crawl `warc.paths.gz` file live
COMMON_CRAWL_BASE = "s3://commoncrawl/"


class MissingInputError(FileNotFoundError):
    pass


def is_paths_file(pattern: str) -> bool:
    """Common Crawl's listings: `warc.paths.gz`, `wet.paths.gz`, or any `*.paths[.gz]` file."""
    name = pattern.rstrip("/").rsplit("/", 1)[-1]
    return name.endswith((".paths", ".paths.gz"))


def read_paths_file(url: str, base: str) -> list[str]:
    """The files listed in a paths file, one per line; relative lines are joined to `base`."""

    def read() -> bytes:
        with fsspec.open(url, "rb") as handle:
            return handle.read()

    try:
        data = with_retries(read, attempts=4)
    except FileNotFoundError:
        raise MissingInputError(f"paths file {url!r} not found") from None
    if data[:2] == b"\x1f\x8b":
        data = gzip.GzipFile(fileobj=io.BytesIO(data)).read()
    lines = [line.strip() for line in data.decode("utf-8").splitlines()]
    paths = []
    for line in lines:
        if not line or line.startswith("#"):
            continue
        paths.append(line if "://" in line or line.startswith("/") else base.rstrip("/") + "/" + line)
    if not paths:
        raise MissingInputError(f"paths file {url!r} lists no files")
    return paths


def expand_inputs(patterns: list[str], paths_base: str = COMMON_CRAWL_BASE) -> tuple[list[str], dict[str, int]]:
    """(every input file, sorted and de-duplicated; the sizes known from listing them).

    A pattern that matches nothing is an error: silently processing fewer files than asked is the kind of
    data loss nobody notices. Files named in a paths file are not checked one by one (that would be a
    request per file); a missing one fails its task, which is reported by input.
    """
    found: set[str] = set()
    sizes: dict[str, int] = {}
    for pattern in patterns:
        if is_paths_file(pattern):
            found.update(read_paths_file(pattern, paths_base))
            continue
        fs, path = fsspec.core.url_to_fs(pattern)
        if any(ch in pattern for ch in "*?["):
            listing = fs.glob(path, detail=True)
            matches = {name: info for name, info in listing.items() if info.get("type") == "file"}
        else:
            try:
                info = fs.info(path)
            except FileNotFoundError:
                info = None
            matches = {path: info} if info and info.get("type") == "file" else {}
        if not matches:
            raise MissingInputError(f"no input file matches {pattern!r}")
        for name, info in matches.items():
            full = url_of(fs, name)
            found.add(full)
            if info.get("size") is not None:
                sizes[full] = int(info["size"])
    return sorted(found), sizes
