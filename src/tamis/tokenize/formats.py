"""Token file formats that trainers read, each written by tamis's own code from the published layouts.

`datatrove` (read by datatrove's `DatatroveFolderDataset` and nanotron), as datatrove 0.10.1's
`DocumentTokenizer` writes it: `NAME.ds`, the tokens, little-endian uint16 (vocabularies of at most
65,536 tokens) or uint32; `NAME.ds.index`, the end of each document in tokens (exclusive), uint64;
`NAME.ds.metadata`, three text lines: `<tokenizer>|<bytes per token>`, the token count, and the count in
words (`1.23 MT`, datatrove's own `humanize.metric` rendering).

`megatron`, Megatron-LM's indexed dataset (megatron/core/datasets/indexed_dataset.py): `NAME.bin`, the
tokens (uint16 below 65,500 tokens of vocabulary, else int32, as its `DType.optimal_dtype`); `NAME.idx`:
the 9 bytes `MMIDIDX\\0\\0`, version 1 (uint64), the dtype code (uint8: 8 uint16, 4 int32), the sequence
count and the document-index count (uint64 each), then each sequence's length (int32), each sequence's
byte offset in `.bin` (int64), and the document indices (int64: 0, then the sequence count after each
document). tamis writes one sequence per document, so the document indices are 0, 1, ..., n.

`numpy`, nanoGPT-style: `NAME.bin`, one flat token array (uint16 or uint32, no header: `np.memmap(path,
dtype)` reads it), and `NAME.json`: dtype, tokens, documents, tokenizer, eos id.

Every file is written under a temporary name and renamed into place by `commit()`.
"""

from __future__ import annotations

import json
import posixpath
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fsspec import AbstractFileSystem

from tamis.io.storage import filesystem, temporary_name
from tamis.tokenize.tokenizers import Tokenizer

FORMATS = ("datatrove", "megatron", "numpy")
#: files of one output shard, per format (the first holds the tokens)
EXTENSIONS = {"datatrove": (".ds", ".ds.index", ".ds.metadata"), "megatron": (".bin", ".idx"),
              "numpy": (".bin", ".json")}
MEGATRON_HEADER = b"MMIDIDX\x00\x00"
MEGATRON_CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}
_FLUSH_TOKENS = 1 << 20


def token_dtype(format_name: str, vocab_size: int) -> np.dtype:
    """The token dtype each format's readers expect for this vocabulary."""
    if format_name == "megatron":
        return np.dtype(np.uint16 if vocab_size < 65500 else np.int32)
    return np.dtype(np.uint16 if vocab_size <= 65536 else np.uint32)


def metric_words(count: int) -> str:
    """The token count as datatrove's metadata line three writes it."""
    import humanize

    return humanize.metric(count, unit="T")


@dataclass
class ShardTokenWriter:
    """One output shard of one format: documents (tokens ending with end-of-text) appended in order."""

    fs: AbstractFileSystem
    base: str  # path without extension
    format_name: str
    tokenizer: Tokenizer
    dtype: np.dtype = field(init=False)
    documents: int = 0
    tokens: int = 0
    _ends: list[int] = field(default_factory=list, repr=False)
    _buffer: list[np.ndarray] = field(default_factory=list, repr=False)
    _buffered: int = 0

    def __post_init__(self) -> None:
        self.dtype = token_dtype(self.format_name, self.tokenizer.vocab_size)
        self.paths = [self.base + ext for ext in EXTENSIONS[self.format_name]]
        self._tmp = [temporary_name(p) for p in self.paths]
        self.fs.makedirs(posixpath.dirname(self.base), exist_ok=True)
        self._handle = self.fs.open(self._tmp[0], "wb")

    def add(self, tokens: np.ndarray) -> None:
        """Append one document (its tokens, end-of-text included)."""
        self._buffer.append(tokens)
        self._buffered += len(tokens)
        self.tokens += len(tokens)
        self.documents += 1
        self._ends.append(self.tokens)
        if self._buffered >= _FLUSH_TOKENS:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._handle.write(np.concatenate(self._buffer).astype(self.dtype.newbyteorder("<")).tobytes())
        self._buffer, self._buffered = [], 0

    def _side_files(self) -> list[bytes]:
        ends = np.asarray(self._ends, dtype=np.int64)
        if self.format_name == "datatrove":
            metadata = "\n".join([f"{self.tokenizer.name}|{self.dtype.itemsize}", str(self.tokens),
                                  metric_words(self.tokens)])
            return [ends.astype("<u8").tobytes(), metadata.encode()]
        if self.format_name == "megatron":
            lengths = np.diff(ends, prepend=0)
            pointers = (ends - lengths) * self.dtype.itemsize
            header = MEGATRON_HEADER + struct.pack("<QB", 1, MEGATRON_CODES[self.dtype])
            header += struct.pack("<QQ", self.documents, self.documents + 1)
            doc_index = np.arange(self.documents + 1, dtype="<i8")
            return [header + lengths.astype("<i4").tobytes() + pointers.astype("<i8").tobytes() + doc_index.tobytes()]
        sidecar = {"format": "numpy", "dtype": self.dtype.name, "tokens": self.tokens, "documents": self.documents,
                   "tokenizer": self.tokenizer.describe(), "eos_id": self.tokenizer.eos_id,
                   "tokens_file": posixpath.basename(self.paths[0])}
        return [json.dumps(sidecar, indent=1).encode()]

    def commit(self) -> dict[str, Any]:
        """Finish every file and move them into place (under their final names only once all are written)."""
        self._flush()
        self._handle.close()
        for tmp, payload in zip(self._tmp[1:], self._side_files(), strict=True):
            with self.fs.open(tmp, "wb") as handle:
                handle.write(payload)
        for tmp, path in zip(self._tmp, self.paths, strict=True):
            self.fs.mv(tmp, path)
        return {"files": self.paths, "documents": self.documents, "tokens": self.tokens,
                "bytes": sum(int(self.fs.size(p) or 0) for p in self.paths), "dtype": self.dtype.name}

    def abort(self) -> None:
        try:
            self._handle.close()
            for tmp in self._tmp:
                if self.fs.exists(tmp):
                    self.fs.rm(tmp)
        except Exception:  # noqa: BLE001 - cleanup after a failure must not hide it
            pass


# -- reading back (tamis's own readers, for tiny-lm and the example trainer) ------------------------------------


def token_files(directory: str, format_name: str) -> list[str]:
    """The token files of a `tamis tokenize` output, in shard order."""
    fs, root = filesystem(directory)
    pattern = "*.ds" if format_name == "datatrove" else "*.bin"
    return sorted(p for p in fs.glob(posixpath.join(root, pattern)))


def _numpy_dtype(path: str) -> np.dtype:
    with open(path[: -len(".bin")] + ".json") as handle:
        return np.dtype(json.load(handle)["dtype"])


def _datatrove_dtype(path: str) -> np.dtype:
    with open(path + ".metadata") as handle:
        size = int(handle.readline().strip().rsplit("|", 1)[1])
    return np.dtype("<u2" if size == 2 else "<u4")


def _megatron_index(path: str) -> tuple[np.dtype, np.ndarray, np.ndarray]:
    with open(path[: -len(".bin")] + ".idx", "rb") as handle:
        data = handle.read()
    code = data[17]
    count = struct.unpack_from("<Q", data, 18)[0]
    dtype = np.dtype("<u2" if code == 8 else "<i4")
    lengths = np.frombuffer(data, "<i4", count, 34)
    pointers = np.frombuffer(data, "<i8", count, 34 + 4 * count)
    return dtype, lengths, pointers


def read_stream(path: str, format_name: str) -> np.ndarray:
    """All tokens of one shard's token file, as a read-only memory map."""
    if format_name == "numpy":
        dtype = _numpy_dtype(path)
    elif format_name == "datatrove":
        dtype = _datatrove_dtype(path)
    else:
        dtype = _megatron_index(path)[0]
    return np.memmap(path, dtype=dtype, mode="r")


def read_documents_tokens(path: str, format_name: str) -> Iterator[np.ndarray]:
    """Each document's tokens (end-of-text included) of one shard, where the format records documents."""
    stream = read_stream(path, format_name)
    if format_name == "datatrove":
        ends = np.fromfile(path + ".index", dtype="<u8").astype(np.int64)
        starts = np.concatenate([[0], ends[:-1]])
        for start, end in zip(starts, ends, strict=True):
            yield stream[start:end]
    elif format_name == "megatron":
        dtype, lengths, pointers = _megatron_index(path)
        for length, pointer in zip(lengths, pointers, strict=True):
            yield stream[pointer // dtype.itemsize: pointer // dtype.itemsize + length]
    else:
        raise ValueError("the numpy format keeps no document boundaries: split its stream on the eos id")
