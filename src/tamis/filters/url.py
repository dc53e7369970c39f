"""URL filter (FineWeb, after RefinedWeb): block lists of domains and URLs, banned words in the URL.

The domain list has 4.5 million entries. Each worker loads it once (module-level cache per list
directory) as a sorted array of the entries' string hashes: about 36 MB instead of ~400 MB for a Python
set of strings, and a lookup is one `searchsorted`. Python's string hash is salted per process, which is
fine: the array is built and queried in the same process. A false match needs a 64-bit collision.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import tldextract

from tamis.batch import DocBatch
from tamis.cache import private_cache_folder
from tamis.steps.base import Filter
from tamis.steps.registry import register_step

BLOCKLIST_ARCHIVE = "url_filterblacklistsv0_3_0.tar.gz"
BANNED_WORDS = "banned_words.txt"
SOFT_BANNED_WORDS = "soft_banned_words.txt"
BANNED_SUBWORDS = "banned_subwords.txt"

_NON_ALNUM = re.compile(r"[^a-zA-Z0-9]+")


class Reasons:
    DOMAIN = "domain"
    SUBDOMAIN = "subdomain"
    URL = "url"
    HARD_BLACKLISTED = "hard_blacklisted"
    SOFT_BLACKLISTED = "soft_blacklisted"
    BLACKLISTED_SUBWORD = "blacklisted_subword"


def datatrove_assets() -> Path | None:
    """The lists shipped in the datatrove wheel, found without importing datatrove."""
    spec = importlib.util.find_spec("datatrove")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "assets"


def normalize(word: str) -> str:
    """Lowercase letters and digits only (how word lists and URLs are compared)."""
    return _NON_ALNUM.sub("", word).lower()


def stable_hash(item: str) -> int:
    """64-bit hash that is the same in every process (Python's str hash is salted per process)."""
    return int.from_bytes(hashlib.blake2b(item.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


class HashSet:
    """Membership in a large, fixed set of strings, stored as a sorted array of their stable hashes.

    4.5 million domains take 36 MB this way instead of ~400 MB as a Python set, and the array can be cached
    on disk, so that a worker loads it in milliseconds instead of re-reading the 18 MB archive.
    """

    def __init__(self, hashes: np.ndarray):
        self._hashes = hashes

    @classmethod
    def of(cls, items: list[str]) -> HashSet:
        return cls(np.unique(np.fromiter(map(stable_hash, items), dtype=np.int64, count=len(items))))

    def __contains__(self, item: str) -> bool:
        h = stable_hash(item)
        i = int(np.searchsorted(self._hashes, h))
        return i < len(self._hashes) and int(self._hashes[i]) == h

    def __len__(self) -> int:
        return len(self._hashes)

    @property
    def hashes(self) -> np.ndarray:
        return self._hashes


@dataclass(frozen=True)
class BlockLists:
    domains: HashSet
    urls: frozenset[str]
    banned_words: frozenset[str]
    soft_banned_words: frozenset[str]
    banned_subwords: re.Pattern[str] | None


def _read_list(lines: list[str], normalized: bool) -> set[str]:
    """Entries of a list file; `#` starts a comment line. Word lists are compared normalised."""
    return {normalize(line) if normalized else line.strip() for line in lines if line and line[0] != "#"}


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _cache_file(archive: Path) -> Path:
    """Where the parsed domain hashes of `archive` are cached: keyed by the archive's content.

    Why the content (about 30 ms for datatrove's 18 MB archive) and not its path and mtime: every virtual
    environment has its own copy of the archive, so a path key left another 36 MB entry in the cache for each
    new environment (and each test run's own small archive another file), never removed.
    """
    key = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    # an owner-only folder of ours (tamis.cache): a shared cache folder would let another user choose the domains
    return private_cache_folder("url-domains") / f"{key}.npy"


def _load_domains(archive_path: Path) -> tuple[HashSet, set[str]]:
    cache = _cache_file(archive_path)
    urls_cache = cache.with_suffix(".urls.txt")
    if cache.exists() and urls_cache.exists():
        try:
            return HashSet(np.load(cache)), set(urls_cache.read_text(encoding="utf-8").split("\n")) - {""}
        except (OSError, ValueError):
            pass  # a damaged cache is rebuilt below
    domains, urls = _read_archive(archive_path)
    hash_set = HashSet.of(domains)
    try:
        for target, write in ((cache, lambda f: np.save(f, hash_set.hashes)),
                              (urls_cache, lambda f: f.write("\n".join(sorted(urls)).encode("utf-8")))):
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as handle:
                write(handle)
            os.replace(tmp, target)
    except OSError:
        pass  # no writable cache directory: every process parses the archive itself
    return hash_set, urls


@lru_cache(maxsize=2)
def load_block_lists(lists_path: str) -> BlockLists:
    """Read (once per process; the domains once per machine, then from a cache) the lists in `lists_path`."""
    root = Path(lists_path)
    domains, urls = _load_domains(root / BLOCKLIST_ARCHIVE)
    subwords = sorted(_read_list(_lines(root / BANNED_SUBWORDS), normalized=True), key=len)
    return BlockLists(
        domains=domains,
        urls=frozenset(urls),
        banned_words=frozenset(_read_list(_lines(root / BANNED_WORDS), normalized=True)),
        soft_banned_words=frozenset(_read_list(_lines(root / SOFT_BANNED_WORDS), normalized=True)),
        banned_subwords=re.compile("|".join(map(re.escape, subwords))) if subwords else None,
    )


def _read_archive(archive_path: Path) -> tuple[list[str], set[str]]:
    domains: list[str] = []
    urls: set[str] = set()
    with tarfile.open(archive_path, "r:gz") as archive:
        for member in archive.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if name not in ("domains", "urls"):
                continue
            extracted = archive.extractfile(member)
            if extracted is None:
                continue
            lines = extracted.read().decode("utf-8").splitlines(keepends=True)
            if name == "domains":
                domains = list(_read_list(lines, normalized=False))
            else:
                urls = _read_list(lines, normalized=False)
            del lines
    return domains, urls


@lru_cache(maxsize=1)
def _domain_splitter() -> Any:
    """Registered domain / host splitting with the public-suffix list bundled in tldextract (no network)."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@register_step("url_filter")
class URLFilter(Filter):
    """Drops documents whose `url` is block-listed or contains banned words.

    In order: registered domain in the domain list, full host in the domain list, exact URL in the URL
    list, any hard-banned word among the URL's alphanumeric runs, `soft_word_threshold` or more distinct
    soft-banned words, any banned subword inside the normalised URL.
    """

    def __init__(self, soft_word_threshold: int = 2, lists_path: str | None = None):
        """
        Args:
            soft_word_threshold: number of distinct soft-banned words that drop a URL.
            lists_path: directory with the block-list archive and word lists; default the assets of the
                installed datatrove package.
        """
        self.soft_word_threshold = soft_word_threshold
        self.lists_path = lists_path

    def setup(self) -> None:
        path = self.lists_path or datatrove_assets()
        if path is None:
            raise FileNotFoundError(
                "url_filter: no lists_path given, and datatrove (which ships the lists) is not installed"
            )
        self._lists = load_block_lists(str(path))
        self._split_domain = _domain_splitter()

    def check(self, url: str) -> str | None:
        """The reason to drop a document with this URL, or None to keep it."""
        if not hasattr(self, "_lists"):
            self.setup()
        lists = self._lists
        parts = self._split_domain(url)
        registered = f"{parts.domain}.{parts.suffix}" if parts.domain and parts.suffix else ""
        if registered in lists.domains:
            return Reasons.DOMAIN
        if parts.fqdn in lists.domains:
            return Reasons.SUBDOMAIN
        if url in lists.urls:
            return Reasons.URL
        words = set(_NON_ALNUM.split(url))
        if not lists.banned_words.isdisjoint(words):
            return Reasons.HARD_BLACKLISTED
        if len(lists.soft_banned_words.intersection(words)) >= self.soft_word_threshold:
            return Reasons.SOFT_BLACKLISTED
        if lists.banned_subwords is not None and lists.banned_subwords.search(normalize(url)):
            return Reasons.BLACKLISTED_SUBWORD
        return None

    def filter(self, text: str, metadata: dict[str, Any]) -> bool | tuple[bool, str]:
        reason = self.check(metadata["url"])
        return True if reason is None else (False, reason)

    def filter_batch(self, batch: DocBatch) -> list[str | None]:
        if "url" not in batch:
            raise KeyError("url_filter: the batch has no `url` column")
        return [self.check(url) for url in batch["url"]]
