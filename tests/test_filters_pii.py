"""PII formatter: e-mails and public IPv4 addresses replaced by placeholders chosen by a hash of the address."""

import zlib

from tamis.filters.pii import EMAIL_PLACEHOLDERS, IP_PLACEHOLDERS, PIIFormatter


def expected(placeholders: tuple[str, ...], value: str) -> str:
    return placeholders[zlib.crc32(value.encode()) % len(placeholders)]


def test_emails_replaced():
    f = PIIFormatter()
    out = f.format("write to a.b@c.org, x@y.co.uk or z@z.io")
    email = [expected(EMAIL_PLACEHOLDERS, v) for v in ("a.b@c.org", "x@y.co.uk", "z@z.io")]
    assert out == f"write to {email[0]}, {email[1]} or {email[2]}"
    assert "@c.org" not in out and "z.io" not in out


def test_placeholder_does_not_depend_on_earlier_documents():
    """Same text, same output, whatever the formatter saw before (worker-count independence)."""
    fresh = PIIFormatter().format("mail me at z@z.io from 8.8.8.8")
    used = PIIFormatter()
    for i in range(7):
        used.format(f"noise{i}@example.net at 9.9.9.{i + 1}")
    assert used.format("mail me at z@z.io from 8.8.8.8") == fresh


def test_only_public_ips():
    f = PIIFormatter()
    text = "lan 192.168.1.1, loopback 127.0.0.1, dns 8.8.8.8"
    assert f.format(text) == f"lan 192.168.1.1, loopback 127.0.0.1, dns {expected(IP_PLACEHOLDERS, '8.8.8.8')}"
    assert PIIFormatter(only_remove_public_ips=False).format("lan 192.168.1.1") == (
        f"lan {expected(IP_PLACEHOLDERS, '192.168.1.1')}"
    )


def test_not_addresses_stay():
    f = PIIFormatter()
    assert f.format("version 1.2.3 and 01.02.03.04") == "version 1.2.3 and 01.02.03.04"


def test_ip_pattern_has_no_word_boundary_like_datatrove():
    # "999.1.1.1" is not an address, but its tail "99.1.1.1" is a public one: datatrove replaces it too.
    assert PIIFormatter().format("999.1.1.1") == "9" + expected(IP_PLACEHOLDERS, "99.1.1.1")
    assert PIIFormatter(remove_emails=False).format("a@b.com") == "a@b.com"


def test_formatting_twice_changes_nothing():
    f = PIIFormatter()
    once = f.format("mail z@z.io, a.b@c.org from 8.8.8.8 and 1.2.3.4")
    assert f.format(once) == once
