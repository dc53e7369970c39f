"""resiliparse's main-content extraction, as the sandbox child builds it (the fast option)."""

from __future__ import annotations

from collections.abc import Callable

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from tamis.extract.page_dependence import INDEPENDENT, PageDependence


def build(main_content: bool, alt_texts: bool, preserve_formatting: bool) -> Callable[[str], str | None]:
    def extract(html: str) -> str | None:
        tree = HTMLTree.parse(html)
        return extract_plain_text(
            tree, main_content=main_content, alt_texts=alt_texts, preserve_formatting=preserve_formatting
        )

    return extract


def page_dependence() -> PageDependence:
    """resiliparse keeps nothing between pages: any child may take any page."""
    return INDEPENDENT
