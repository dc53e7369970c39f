"""An extraction engine whose pages are independent and which dies (no reply, no cleanup) on any page that
contains CRASH: tests/test_speculative.py checks that several children then give one child's results."""

from __future__ import annotations

import os
from collections.abc import Callable

from tamis.extract.page_dependence import INDEPENDENT, PageDependence


def page_dependence() -> PageDependence:
    return INDEPENDENT


def build(**_options: object) -> Callable[[str], str]:
    def extract(html: str) -> str:
        if "CRASH" in html:
            os._exit(3)
        return html.upper()

    return extract
