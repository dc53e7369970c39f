"""Symbol-lines formatter: removes lines made only of given symbols, e.g. the `|` rows trafilatura leaves
where a table was (FineWeb-2's final touch, datatrove 0.10.1's SymbolLinesFormatter semantics).

A line is removed when it is not blank and every character is one of the symbols or a space (a tab or any
other whitespace keeps it). A run of consecutive removed lines becomes one `replace_char` line (none when
it is empty; FineWeb-2 uses `\\n`, so a table becomes a paragraph break). Lines are split with
`str.splitlines` and joined with `\\n`, as datatrove does: other line separators become `\\n` and a final
line break is dropped, in every document the step sees.
"""

from __future__ import annotations

from tamis.steps.base import Formatter
from tamis.steps.registry import register_step


@register_step("symbol_lines")
class SymbolLinesFormatter(Formatter):
    """Removes lines made only of `symbols` (and spaces), each run replaced by `replace_char`."""

    def __init__(self, symbols: str = "|", replace_char: str = "\n"):
        """
        Args:
            symbols: the characters a removed line is made of (FineWeb-2: `|`, trafilatura's table cells).
            replace_char: what a run of removed lines becomes ("" drops them; FineWeb-2: "\\n").
        """
        if not symbols:
            raise ValueError("symbols: give at least one character")
        self.symbols = symbols
        self.replace_char = replace_char
        self._drop = str.maketrans("", "", symbols + " ")

    def is_symbol_line(self, line: str) -> bool:
        return bool(line.strip()) and not line.translate(self._drop)

    def format(self, text: str) -> str:
        lines: list[str] = []
        in_run = False
        for line in text.splitlines():
            if not self.is_symbol_line(line):
                lines.append(line)
                in_run = False
            elif not in_run:
                in_run = True
                if self.replace_char:
                    lines.append(self.replace_char)
        return "\n".join(lines)
