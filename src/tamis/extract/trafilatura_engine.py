"""trafilatura with FineWeb's settings, as the sandbox child builds it."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import trafilatura
from trafilatura import deduplication, settings

from tamis.extract.page_dependence import INDEPENDENT, SEQUENTIAL, PageDependence

#: one segment query of `deduplicate`: the segment, and the count the cache held for it (-1: absent)
SegmentQuery = tuple[str, int]

#: trafilatura versions whose `deduplicate` was checked to touch the cross-page state only through
#: `duplicate_test`'s one `increment` per segment, with the rule `segment_rule` reports (read from its source
#: for 2.3.1; the differential tests of tests/test_speculative.py run on every real page). Any other version
#: extracts a file's pages in one child, in order: the same text, without the idle cores' help.
SEGMENT_MODEL_VERIFIED = frozenset({"2.3.1"})


class _RecordingCache(deduplication.LRUCache):
    """trafilatura's own segment cache, which can also log its queries (tamis.extract.speculative).

    Passed as `deduplicate=` (trafilatura 2.3.1 accepts a cache instance there and uses it in place of its
    process-wide one), so the cache behaves exactly as the one `deduplicate=True` uses, with the same size.
    """

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.log: list[SegmentQuery] | None = None

    def increment(self, key: str) -> int:
        previous = super().increment(key)
        if self.log is not None:
            self.log.append((key, previous))
        return previous


_LRU_SIZE: int = getattr(settings, "LRU_SIZE", 4096)
_CACHE = _RecordingCache(_LRU_SIZE)
#: what `extract` passes as `deduplicate`: False, True (trafilatura's process-wide cache) or _CACHE
_dedup_option: bool | _RecordingCache = False


def _takes_our_cache() -> bool:
    """Whether the installed trafilatura counts segments in a cache passed as `deduplicate=` (a behaviour
    probe, not a version check: an older release treats the instance as True and uses its own cache)."""
    probe = _RecordingCache(64)
    text = "A segment long enough for the duplicate test to be asked about it, twice over, on this page. " * 3
    trafilatura.extract(f"<html><body><article><p>{text}</p><p>{text}</p></article></body></html>",
                        deduplicate=probe)
    deduplication.LRU_TEST.clear()
    return bool(probe.cache)


def build(
    favor_precision: bool, include_comments: bool, deduplicate: bool, fast_path: bool = False
) -> Callable[[str], str | None]:
    """`fast_path` switches this (child) process to tamis.extract.fast_trafilatura's equivalent rules,
    when the installed trafilatura is one it was verified against; otherwise plain trafilatura runs."""
    global _dedup_option
    if fast_path:
        from tamis.extract import fast_trafilatura

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the step warns once in the worker, where it is seen
            fast_trafilatura.install()
    if not deduplicate:
        _dedup_option = False
    elif trafilatura.__version__ in SEGMENT_MODEL_VERIFIED and _takes_our_cache():
        _dedup_option = _CACHE
    else:
        _dedup_option = True

    def extract(html: str) -> str | None:
        return trafilatura.extract(
            html, favor_precision=favor_precision, include_comments=include_comments, deduplicate=_dedup_option
        )

    return extract


def reset() -> None:
    """Clear the cross-page segment cache behind `deduplicate`, so each input file starts alike."""
    _CACHE.clear()
    deduplication.LRU_TEST.clear()


def page_dependence() -> PageDependence:
    """How a page's text depends on the pages before it (tamis.extract.page_dependence): not at all without
    `deduplicate`; through the segment cache's answers, with the installed trafilatura's size and
    thresholds, when our recording cache is the one used; otherwise in ways only one child in order gives."""
    if _dedup_option is False:
        return INDEPENDENT
    if _dedup_option is not _CACHE:
        return SEQUENTIAL
    options = settings.Extractor()
    return _CACHE.maxsize, options.min_duplcheck_size, options.max_repetitions


def traced(extract: Callable[[str], str | None], html: str) -> tuple[str | None, list[SegmentQuery]]:
    """The page's text and the segment queries it made, in order. A failure is a page without text, as
    in the sandbox's own loop, so that the queries made before it are still returned."""
    _CACHE.log = log = []
    try:
        text = extract(html)
    except Exception:  # noqa: BLE001 - what the sandbox counts as a page the library cannot parse
        text = None
    finally:
        _CACHE.log = None
    return text, log


def load_segments(entries: list[tuple[str, int]]) -> None:
    """Replace the cache's content with `entries` (oldest first), as another process's model holds it."""
    _CACHE.clear()
    for key, count in entries:
        _CACHE.put(key, count)


def add_segments(keys: list[str]) -> None:
    """Count `keys` as queried, in order, as the pages another child extracted queried them."""
    for key in keys:
        _CACHE.increment(key)


def dump_segments() -> list[tuple[str, int]]:
    """The cache's content, oldest first (tests compare it with the parent's model)."""
    return list(_CACHE.cache.items())
