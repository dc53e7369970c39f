"""FineWeb's quality filters, with the decisions of datatrove 0.10.1.

One module per filter; every threshold is a constructor argument defaulting to the FineWeb recipe, and
every drop reason is a class constant whose value is datatrove's reason string, so counters and the
parity test compare like with like. Words and lines come from `tamis.text`, computed once per document.
"""
