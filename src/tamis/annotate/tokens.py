"""GPT-2 BPE token counts (FineWeb's `token_count`), from the ranks file shipped with tamis."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import tiktoken

from tamis.batch import DocBatch
from tamis.resources import resource_path
from tamis.steps.base import Annotator, StepContext
from tamis.steps.registry import register_step

# GPT-2's pre-tokenisation pattern (Radford et al. 2019), as in tiktoken's own gpt2 definition.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
END_OF_TEXT = "<|endoftext|>"


def parse_ranks(data: bytes, source: str) -> dict[bytes, int]:
    """The ranks of a tiktoken ranks file's bytes: one `<base64 token> <rank>` per line, blank lines skipped.

    Why not tiktoken's `load_tiktoken_bpe`: it keeps a copy of every file it reads in the system temp folder
    (`data-gym-cache`, named after the file's path) and reads that copy instead of the file from then on,
    without a check unless given a digest. On a shared machine any other user can write that copy first and
    so choose tamis's token counts and the tokens of `tamis tokenize`. This reads only the file given.
    """
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(data.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            token, rank = fields
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error):
            raise ValueError(f"{source}, line {number}: expected a base64 token and a rank, got "
                             f"{line[:80]!r}") from None
    return ranks


def read_ranks(path: str) -> dict[bytes, int]:
    """`parse_ranks` of the file at `path`."""
    return parse_ranks(Path(path).read_bytes(), path)


@lru_cache(maxsize=2)
def gpt2_encoding(ranks_path: str | None = None) -> tiktoken.Encoding:
    """The GPT-2 encoding, loaded offline (tiktoken.get_encoding("gpt2") would download the ranks)."""
    ranks = read_ranks(ranks_path or str(resource_path("gpt2.tiktoken")))
    return tiktoken.Encoding(
        name="gpt2",
        explicit_n_vocab=50257,
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={END_OF_TEXT: 50256},
    )


def count_tokens(texts: list[str], ranks_path: str | None = None) -> list[int]:
    """Tokens per text, no end-of-text token (FineWeb's count); special-token text is ordinary text."""
    encoding = gpt2_encoding(ranks_path)
    return [len(tokens) for tokens in encoding.encode_ordinary_batch(texts, num_threads=1)]


@register_step("token_count")
class TokenCounter(Annotator):
    """Adds `token_count`: the GPT-2 BPE length of the text."""

    default_resources: ClassVar[dict[str, str]] = {"ranks_path": "gpt2.tiktoken"}

    def __init__(self, ranks_path: str | None = None):
        """
        Args:
            ranks_path: a tiktoken ranks file; default the GPT-2 ranks shipped with tamis.
        """
        self.ranks_path = ranks_path

    def setup(self) -> None:
        gpt2_encoding(self.ranks_path)

    def process(self, batch: DocBatch, ctx: StepContext) -> DocBatch:
        batch.set_column("token_count", count_tokens(batch["text"], self.ranks_path))
        return batch
