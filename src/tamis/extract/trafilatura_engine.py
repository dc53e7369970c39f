"""trafilatura with FineWeb's settings, as the sandbox child builds it."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import trafilatura
from trafilatura.deduplication import LRU_TEST


def build(
    favor_precision: bool, include_comments: bool, deduplicate: bool, fast_path: bool = False
) -> Callable[[str], str | None]:
    """`fast_path` switches this (child) process to tamis.extract.fast_trafilatura's equivalent rules,
    when the installed trafilatura is one it was verified against; otherwise plain trafilatura runs."""
    if fast_path:
        from tamis.extract import fast_trafilatura

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the step warns once in the worker, where it is seen
            fast_trafilatura.install()

    def extract(html: str) -> str | None:
        return trafilatura.extract(
            html, favor_precision=favor_precision, include_comments=include_comments, deduplicate=deduplicate
        )

    return extract


def reset() -> None:
    """Clear the cross-page segment cache behind `deduplicate`, so each input file starts alike."""
    LRU_TEST.clear()
