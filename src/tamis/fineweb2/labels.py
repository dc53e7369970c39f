"""FineWeb-2 language labels (`code_3` + `_` + ISO 15924 script, e.g. `deu_Latn`) and lid.176's ISO codes.

lid.176 answers ISO 639-1 codes (`de`) or, for languages without one, ISO 639-3 (`ceb`), and no script. Its
labels are mapped to FineWeb-2's through datatrove 0.10.1's `assets/tokenizer_assignment.csv` (read from the
installed package): the row whose `code_1` is the label and that is marked the default row for that code and
the default script of its `code_3`; else the default-script row whose `code_3` is the label; else the only
default-script row with that `code_1`. Labels none of these find keep their code and get no script (`None`).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from importlib.resources import files


def tokenizer_assignment_rows() -> list[dict[str, str]]:
    """The rows of datatrove's tokenizer_assignment.csv (code_3, code_1, script, default_code_1, ...)."""
    path = files("datatrove").joinpath("assets", "tokenizer_assignment.csv")
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


@lru_cache(maxsize=1)
def _iso_table() -> dict[str, tuple[str, str]]:
    by_code_1: dict[str, list[dict[str, str]]] = defaultdict(list)
    by_code_3: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in tokenizer_assignment_rows():
        if row["code_1"]:
            by_code_1[row["code_1"]].append(row)
        by_code_3[row["code_3"]].append(row)
    table: dict[str, tuple[str, str]] = {}
    for code in set(by_code_1) | set(by_code_3):
        default_script = [r for r in by_code_1.get(code, []) if r["default_script"] == "TRUE"]
        chosen = [r for r in default_script if r["default_code_1"] == "TRUE"]
        if not chosen:
            chosen = [r for r in by_code_3.get(code, []) if r["default_script"] == "TRUE"]
        if not chosen and len(default_script) == 1:
            chosen = default_script
        if len(chosen) == 1:
            table[code] = (chosen[0]["code_3"], chosen[0]["script"])
    return table


def iso_to_fineweb2(code: str) -> tuple[str, str | None]:
    """(code_3, script) for a lid.176 label, e.g. `de` -> (`deu`, `Latn`); (code, None) when not mapped."""
    return _iso_table().get(code, (code, None))


def split_label(label: str) -> tuple[str, str | None]:
    """`deu_Latn` -> (`deu`, `Latn`); a label without a script (`de`) -> (`de`, None)."""
    code, sep, script = label.partition("_")
    return (code, script) if sep and script else (label, None)


def fineweb2_label(language: str | None, script: str | None) -> str:
    """The label a document's `language` and `language_script` columns make (`deu_Latn`, or `de` alone)."""
    if not language:
        return ""
    return f"{language}_{script}" if script else language


def document_labels(languages: Sequence[str | None], scripts: Sequence[str | None] | None) -> list[str]:
    """Per-document labels from the `language` column and, where present, the `language_script` column."""
    if scripts is None:
        return [language or "" for language in languages]
    return [fineweb2_label(language, script) for language, script in zip(languages, scripts, strict=True)]
