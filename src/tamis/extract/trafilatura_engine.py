"""trafilatura with FineWeb's settings, as the sandbox child builds it."""

from __future__ import annotations

from collections.abc import Callable

import trafilatura
from trafilatura.deduplication import LRU_TEST


def build(favor_precision: bool, include_comments: bool, deduplicate: bool) -> Callable[[str], str | None]:
    def extract(html: str) -> str | None:
        return trafilatura.extract(
            html, favor_precision=favor_precision, include_comments=include_comments, deduplicate=deduplicate
        )

    return extract


def reset() -> None:
    """Clear the cross-page segment cache behind `deduplicate`, so each input file starts alike."""
    LRU_TEST.clear()
