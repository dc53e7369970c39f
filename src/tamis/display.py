"""Strings from the data or the user, made safe to print on a terminal.

URLs, paths, paths-listing lines, drop reasons from plugins and page text are data: printed as rich markup,
`[/b]` in a URL raises MarkupError mid-run and `[red]` restyles the terminal; printed raw, an escape sequence
(`\\x1b[2J`) clears the screen or rewrites earlier lines, and a bidi override reorders what is shown. So every
print of such a string goes through `plain`: a rich Text (never parsed as markup) in which control characters
are shown visibly (`\\x1b`, `\\u202e`), never emitted.
"""

from __future__ import annotations

import logging
from typing import Any

from rich.console import Console
from rich.text import Text

#: invisible characters that change how the rest of a line is displayed: bidi embeddings, overrides and
#: isolates, direction marks, line/paragraph separators, the byte-order mark
_FORMAT_CONTROLS = frozenset(
    [0x061C, 0x200E, 0x200F, 0x2028, 0x2029, 0xFEFF, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


def _is_control(code: int) -> bool:
    # lone surrogates too (from JSON or surrogateescape): a terminal cannot encode them
    return code < 0x20 or 0x7F <= code <= 0x9F or code in _FORMAT_CONTROLS or 0xD800 <= code <= 0xDFFF


def visible(value: object, *, multiline: bool = False) -> str:
    """`str(value)` with every control character written as an escape (`\\x1b`, `\\u202e`).

    `multiline` keeps newlines and tabs (page text); otherwise they are escaped too, so one value stays on
    one line and cannot fake another log or table line.
    """
    text = value if isinstance(value, str) else str(value)
    if not any(_is_control(ord(ch)) for ch in text):
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if not _is_control(code) or (multiline and ch in "\n\t"):
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def plain(value: object, style: str = "", *, multiline: bool = False) -> Text:
    """`value` as a rich Text: no markup parsed, control characters visible (see `visible`)."""
    return Text(visible(value, multiline=multiline), style=style)


def line(*parts: Any) -> Text:
    """One printable line from pieces: a str is data (made `plain`), a (str, style) pair is a styled label
    written by tamis itself, a Text is kept as it is."""
    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append(visible(part[0]), style=part[1])
        else:
            out.append(visible(part))
    return out


def stderr_console() -> Console:
    """The console every command reports on (stderr), with `soft_wrap`: where stderr is not a terminal (a log,
    CI, a pipe) rich folds each line at 80 columns, inside a long path or URL, so that the path copied from a
    log is not the path. The terminal still wraps long lines for the eye."""
    return Console(stderr=True, soft_wrap=True)


class VisibleControlsFormatter(logging.Formatter):
    """A log formatter that shows control characters of a record (a path, a URL in a warning) visibly."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record), multiline=True)


def plugins_line(plugins: list[Any]) -> Text:
    """`plugins: filters/a.py (sha256 1234abcd), ...`: which plugin files this process imported, so code
    picked up from the working directory never runs unannounced."""
    if not plugins:
        return line(("plugins:", "bold"), " none imported")
    shown = ", ".join(f"{p.shown()} (sha256 {p.sha256[:12]})" for p in plugins)
    return line(("plugins:", "bold"), f" {shown}")
