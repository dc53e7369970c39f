"""How an extraction engine's pages depend on the pages before them, as the sandbox child reports it.

An engine module may define `page_dependence()`; the parent (tamis.extract.speculative) decides from it
whether a file's pages may be shared out between several children and still give one child's text:

- INDEPENDENT: a page's text depends on its HTML alone (resiliparse, trafilatura without `deduplicate`):
  any child may take any page.
- a SegmentRule (cache size, segment length above which a repeated segment is dropped, repetitions
  allowed): the page depends on the pages before it only through the answers of an LRU cache of text
  segments (trafilatura's `deduplicate`); the engine can then log, load and extend that cache.
- SEQUENTIAL, or no `page_dependence` at all: nothing is known, so one child takes the pages in order.
"""

from __future__ import annotations

from typing import Literal

INDEPENDENT: Literal["independent"] = "independent"
SEQUENTIAL: Literal["sequential"] = "sequential"

SegmentRule = tuple[int, int, int]
PageDependence = Literal["independent", "sequential"] | SegmentRule


def is_segment_rule(dependence: object) -> bool:
    """Whether `dependence` is a well-formed SegmentRule (anything else than the two names is one or junk)."""
    return (isinstance(dependence, tuple) and len(dependence) == 3
            and all(isinstance(value, int) and value >= 0 for value in dependence) and dependence[0] >= 1)
