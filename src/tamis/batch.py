"""The unit of work inside a task: a bounded group of documents, stored column-wise.

Inside a process task, filters mostly look at one document at a time in Python, so columns are Python
lists (cheap per-element access); at every boundary (writers, removed-document output, vectorised
filters) a batch becomes an Arrow table. Features derived from the text (words, lines) are computed once
per batch and shared by every step that asks for them, until a step rewrites the text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pyarrow as pa

#: columns a per-language derived feature depends on, and the prefix of those features' keys
_LANGUAGE_COLUMNS = frozenset({"language", "language_script"})
_BY_LANGUAGE = "by_language:"


class DocBatch:
    """Documents of one task, as named columns of equal length."""

    def __init__(self, columns: dict[str, list[Any]], block: int | None = None):
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns have different lengths: { {k: len(v) for k, v in columns.items()} }")
        self.columns = columns
        self._derived: dict[str, list[Any]] = {}
        #: the reader's state block this batch comes from (see Reader.state_block_bytes), None if not blocked
        self.block = block

    def __len__(self) -> int:
        for values in self.columns.values():
            return len(values)
        return 0

    def __getitem__(self, name: str) -> list[Any]:
        return self.columns[name]

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def set_column(self, name: str, values: list[Any]) -> None:
        """Add or replace a column; replacing `text` forgets every feature derived from the old text."""
        if self.columns and len(values) != len(self):
            raise ValueError(f"column {name!r} has {len(values)} values for a batch of {len(self)}")
        self.columns[name] = values
        if name == "text":
            self._derived.clear()
        elif name in _LANGUAGE_COLUMNS:
            for key in [key for key in self._derived if key.startswith(_BY_LANGUAGE)]:
                del self._derived[key]

    def drop_column(self, name: str) -> None:
        self.columns.pop(name, None)

    def derived(self, key: str, compute: Callable[[str], Any]) -> list[Any]:
        """Per-document feature of the text, computed once and shared (e.g. the word split)."""
        values = self._derived.get(key)
        if values is None:
            values = [compute(text) for text in self.columns["text"]]
            self._derived[key] = values
        return values

    def derived_by_language(self, key: str, labels: list[str], compute: Callable[[str, str], Any]) -> list[Any]:
        """Like `derived`, for a feature that also depends on each document's language label (its word split);
        forgotten when the text or a language column is replaced."""
        key = _BY_LANGUAGE + key
        values = self._derived.get(key)
        if values is None:
            values = [compute(text, label) for text, label in zip(self.columns["text"], labels, strict=True)]
            self._derived[key] = values
        return values

    def row(self, i: int) -> dict[str, Any]:
        return {name: values[i] for name, values in self.columns.items()}

    def take(self, indices: Sequence[int]) -> DocBatch:
        """A new batch with the given rows, derived features included."""
        taken = DocBatch({name: [values[i] for i in indices] for name, values in self.columns.items()}, self.block)
        taken._derived = {key: [values[i] for i in indices] for key, values in self._derived.items()}
        return taken

    def split(self, keep: Sequence[bool]) -> tuple[DocBatch, DocBatch]:
        """(kept rows, removed rows) by a boolean mask."""
        kept = [i for i, k in enumerate(keep) if k]
        removed = [i for i, k in enumerate(keep) if not k]
        return self.take(kept), self.take(removed)

    def to_arrow(self, columns: Iterable[str] | None = None, schema: pa.Schema | None = None) -> pa.Table:
        names = list(columns) if columns is not None else list(self.columns)
        if schema is not None:
            return pa.table({name: self.columns[name] for name in schema.names}, schema=schema)
        return pa.table({name: self.columns[name] for name in names})

    @classmethod
    def from_arrow(cls, table: pa.Table) -> DocBatch:
        return cls({name: table.column(name).to_pylist() for name in table.column_names})
