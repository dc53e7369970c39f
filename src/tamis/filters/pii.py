"""PII formatter: e-mail addresses and public IPv4 addresses replaced by fixed placeholders (FineWeb).

Same patterns and placeholders as datatrove 0.10.1's PIIFormatter. datatrove hands out the placeholders in
turn across all the documents a worker formats, so which placeholder a document gets depends on which
documents that worker saw before; we pick the placeholder from a hash of the replaced address instead, so
the output is the same whatever the number of workers (and an address always gets the same placeholder).
"""

from __future__ import annotations

import ipaddress
import re
import zlib

from tamis.steps.base import Formatter
from tamis.steps.registry import register_step

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
#: local part @ (dotted host name | [IPv4 or tagged literal])
EMAIL = re.compile(
    rf"\b{_ATOM}(?:\.{_ATOM})*@(?:(?:{_LABEL}\.)+{_LABEL}|\[(?:{_OCTET}\.){{3}}(?:{_OCTET}|[A-Za-z0-9-]*[A-Za-z0-9]:)\])"
)
IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")

EMAIL_PLACEHOLDERS = ("email@example.com", "firstname.lastname@example.org")
# Addresses that did not answer pings when datatrove chose them.
IP_PLACEHOLDERS = (
    "22.214.171.124",
    "126.96.36.199",
    "188.8.131.52",
    "184.108.40.206",
    "220.127.116.11",
    "18.104.22.168",
)


def pick(placeholders: tuple[str, ...], value: str) -> str:
    """A placeholder chosen by a stable hash of the value (the same in every process and run)."""
    return placeholders[zlib.crc32(value.encode("utf-8")) % len(placeholders)]


def replaceable_ip(address: str, public_only: bool) -> bool:
    """A valid address (no leading zeros), and a global one when `public_only`."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_global or not public_only


@register_step("pii")
class PIIFormatter(Formatter):
    """Replaces e-mail addresses and (public, by default) IPv4 addresses in the text."""

    def __init__(
        self,
        remove_emails: bool = True,
        remove_ips: bool = True,
        only_remove_public_ips: bool = True,
        email_replacement: list[str] | None = None,
        ip_replacement: list[str] | None = None,
    ):
        """
        Args:
            remove_emails: replace e-mail addresses.
            remove_ips: replace IPv4 addresses.
            only_remove_public_ips: leave private, loopback, reserved... addresses alone.
            email_replacement: placeholders (one chosen per address by hash); default datatrove's two.
            ip_replacement: placeholders (one chosen per address by hash); default datatrove's six addresses.
        """
        self.remove_emails = remove_emails
        self.remove_ips = remove_ips
        self.only_remove_public_ips = only_remove_public_ips
        self.email_replacement = email_replacement
        self.ip_replacement = ip_replacement

    def setup(self) -> None:
        self._emails = tuple(self.email_replacement or EMAIL_PLACEHOLDERS)
        self._ips = tuple(self.ip_replacement or IP_PLACEHOLDERS)

    def _email(self, match: re.Match[str]) -> str:
        address = match.group(0)
        # a placeholder stays as it is, so that formatting twice changes nothing
        return address if address in self._emails else pick(self._emails, address)

    def _ip(self, match: re.Match[str]) -> str:
        address = match.group(0)
        if address in self._ips or not replaceable_ip(address, self.only_remove_public_ips):
            return address
        return pick(self._ips, address)

    def format(self, text: str) -> str:
        if not hasattr(self, "_emails"):
            self.setup()
        if self.remove_emails and "@" in text:
            text = EMAIL.sub(self._email, text)
        if self.remove_ips and "." in text:
            text = IPV4.sub(self._ip, text)
        return text
