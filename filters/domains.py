"""Keep or drop documents by the domain of their URL (allow and deny lists, subdomains included)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tamis.steps import Filter, register_step


def _suffixes(host: str) -> list[str]:
    """www.news.example.com -> [www.news.example.com, news.example.com, example.com, com]."""
    parts = host.split(".")
    return [".".join(parts[i:]) for i in range(len(parts))]


@register_step("domain_filter")
class DomainFilter(Filter):
    """Drops documents whose domain (or a parent domain) is denied, or, with an allow list, not allowed."""

    def __init__(self, deny: list[str] | None = None, allow: list[str] | None = None):
        """
        Args:
            deny: domains to drop, e.g. [example.com] also drops news.example.com.
            allow: if given, only these domains (and their subdomains) are kept.
        """
        self.deny = deny
        self.allow = allow

    def setup(self) -> None:
        self._deny = {d.lower().strip(".") for d in self.deny or []}
        self._allow = {d.lower().strip(".") for d in self.allow or []} if self.allow is not None else None

    def filter(self, text: str, metadata: dict[str, Any]) -> bool | tuple[bool, str]:
        host = (urlsplit(metadata.get("url") or "").hostname or "").lower()
        suffixes = _suffixes(host) if host else []
        if any(s in self._deny for s in suffixes):
            return False, "denied_domain"
        if self._allow is not None and not any(s in self._allow for s in suffixes):
            return False, "not_allowed_domain"
        return True
