"""PII formatter: e-mails and public IPv4 addresses replaced, placeholders in turn."""

from tamis.filters.pii import EMAIL_PLACEHOLDERS, IP_PLACEHOLDERS, PIIFormatter


def test_emails_replaced_in_turn():
    f = PIIFormatter()
    out = f.format("write to a.b@c.org, x@y.co.uk or z@z.io")
    assert out == f"write to {EMAIL_PLACEHOLDERS[0]}, {EMAIL_PLACEHOLDERS[1]} or {EMAIL_PLACEHOLDERS[0]}"


def test_only_public_ips():
    f = PIIFormatter()
    text = "lan 192.168.1.1, loopback 127.0.0.1, dns 8.8.8.8"
    assert f.format(text) == f"lan 192.168.1.1, loopback 127.0.0.1, dns {IP_PLACEHOLDERS[0]}"
    assert PIIFormatter(only_remove_public_ips=False).format("lan 192.168.1.1") == f"lan {IP_PLACEHOLDERS[0]}"


def test_not_addresses_stay():
    f = PIIFormatter()
    assert f.format("version 1.2.3 and 01.02.03.04") == "version 1.2.3 and 01.02.03.04"


def test_ip_pattern_has_no_word_boundary_like_datatrove():
    # "999.1.1.1" is not an address, but its tail "99.1.1.1" is a public one: datatrove replaces it too.
    assert PIIFormatter().format("999.1.1.1") == "9" + IP_PLACEHOLDERS[0]
    assert PIIFormatter(remove_emails=False).format("a@b.com") == "a@b.com"
