"""FTFY formatter: repairs mojibake and broken encodings (FineWeb-2's final touches), nothing stricter.

The defaults are those of datatrove 0.10.1's FTFYFormatter, which FineWeb-2 used: every encoding-related
fix of ftfy is on, and the fixes that impose one format (ligatures, character width, curly quotes, line
breaks, Unicode normalisation) are off, so models still see text as the web writes it (full-width CJK
punctuation, curly quotes). HTML entities are unescaped only when the text does not look like HTML (`auto`).
"""

from __future__ import annotations

from typing import Any, Literal

from tamis.steps.base import Formatter
from tamis.steps.registry import register_step


@register_step("ftfy")
class FTFYFormatter(Formatter):
    """Fixes broken encodings with ftfy (e.g. `Ã©` -> `é`); each parameter is ftfy's TextFixerConfig field."""

    def __init__(
        self,
        unescape_html: bool | Literal["auto"] = "auto",
        remove_terminal_escapes: bool = True,
        fix_encoding: bool = True,
        restore_byte_a0: bool = True,
        replace_lossy_sequences: bool = True,
        decode_inconsistent_utf8: bool = True,
        fix_c1_controls: bool = True,
        fix_latin_ligatures: bool = False,
        fix_character_width: bool = False,
        uncurl_quotes: bool = False,
        fix_line_breaks: bool = False,
        fix_surrogates: bool = True,
        remove_control_chars: bool = True,
        normalization: Literal["NFC", "NFD", "NFKC", "NFKD"] | None = None,
    ):
        """
        Args:
            unescape_html: decode HTML entities (`auto`: unless the text contains HTML tags).
            remove_terminal_escapes: drop ANSI terminal escape sequences.
            fix_encoding: undo mojibake (UTF-8 decoded as Latin-1 / Windows-1252...), the main job.
            restore_byte_a0: part of fix_encoding: accept a space where byte A0 was lost.
            replace_lossy_sequences: part of fix_encoding: replace unrecoverable sequences with U+FFFD.
            decode_inconsistent_utf8: fix UTF-8 mojibake inside otherwise correct text.
            fix_c1_controls: C1 control characters read as Windows-1252.
            fix_latin_ligatures: `ﬁ` -> `fi` (off: imposes a format).
            fix_character_width: full-width -> half-width (off: wrong for CJK punctuation).
            uncurl_quotes: curly -> straight quotes (off).
            fix_line_breaks: every line break -> `\\n` (off).
            fix_surrogates: UTF-16 surrogate pairs -> the character they encode.
            remove_control_chars: drop useless control characters.
            normalization: a Unicode normal form, or null for none (FineWeb-2: none).
        """
        self.unescape_html = unescape_html
        self.remove_terminal_escapes = remove_terminal_escapes
        self.fix_encoding = fix_encoding
        self.restore_byte_a0 = restore_byte_a0
        self.replace_lossy_sequences = replace_lossy_sequences
        self.decode_inconsistent_utf8 = decode_inconsistent_utf8
        self.fix_c1_controls = fix_c1_controls
        self.fix_latin_ligatures = fix_latin_ligatures
        self.fix_character_width = fix_character_width
        self.uncurl_quotes = uncurl_quotes
        self.fix_line_breaks = fix_line_breaks
        self.fix_surrogates = fix_surrogates
        self.remove_control_chars = remove_control_chars
        self.normalization = normalization
        self._config: Any = None

    def setup(self) -> None:
        from ftfy import TextFixerConfig

        self._config = TextFixerConfig(**self.get_params())

    def format(self, text: str) -> str:
        import ftfy

        if self._config is None:
            self.setup()
        return ftfy.fix_text(text, config=self._config)
