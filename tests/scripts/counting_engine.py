"""An extraction engine with state and no `page_dependence`: each page's text is how many pages this child
has extracted, its warm-up page included (tests/test_speculative.py: such an engine must stay in one child)."""

from __future__ import annotations

from collections.abc import Callable


def build() -> Callable[[str], str]:
    seen = 0

    def extract(html: str) -> str:
        nonlocal seen
        seen += 1
        return str(seen)

    return extract
