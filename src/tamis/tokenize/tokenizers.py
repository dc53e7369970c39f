"""The tokenizers `tamis tokenize` can use, behind one small interface; none of them downloads anything.

- `gpt2` (the default): GPT-2's BPE from the ranks file shipped in tamis/resources (tiktoken).
- `gpt2-N` (257 <= N <= 50257): GPT-2's first N - 1 ranks plus end-of-text at N - 1, a complete byte-level
  BPE with a smaller vocabulary (the `tiny-lm` evaluator's `vocab_size`).
- a path to a tiktoken ranks file (`*.tiktoken`, base64 token and rank per line): GPT-2's pre-tokenisation
  pattern, and the end-of-text token appended after the last rank unless the ranks already hold it.
- a path to a Hugging Face `tokenizer.json` (the `tokenizers` library, `pip install 'tamis[tokenize]'`).

Texts are encoded as ordinary text: a document that contains the string `<|endoftext|>` gets it as
ordinary characters, never as the special token, so only tamis places end-of-text tokens (one after every
document).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from tamis.annotate.tokens import END_OF_TEXT, GPT2_PATTERN, gpt2_encoding, parse_ranks, read_ranks

INSTALL_HINT = "a tokenizer.json needs the `tokenizers` library: pip install 'tamis[tokenize]'"


class TokenizerError(ValueError):
    """The tokenizer cannot be loaded or has no end-of-text token (the message says which and why)."""


@dataclass
class Tokenizer:
    """One tokenizer: `encode_batch` gives each text's token ids (no special tokens added)."""

    name: str
    kind: str  # "tiktoken" or "huggingface"
    vocab_size: int
    eos_id: int
    eos_text: str
    source: str
    fingerprint: str
    _impl: Any = field(repr=False, default=None)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        if self.kind == "tiktoken":
            return self._impl.encode_ordinary_batch(texts, num_threads=1)
        return [encoding.ids for encoding in self._impl.encode_batch(texts, add_special_tokens=False)]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "vocab_size": self.vocab_size, "eos_id": self.eos_id,
                "eos": self.eos_text, "source": self.source, "sha256": self.fingerprint}


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tiktoken(path: Path | None, eos: str) -> Tokenizer:
    import tiktoken

    if path is None:
        encoding = gpt2_encoding()
        if eos != END_OF_TEXT:
            raise TokenizerError(f"--eos {eos!r}: the GPT-2 tokenizer's end-of-text token is {END_OF_TEXT!r}")
        from tamis.resources import resource_path

        source = str(resource_path("gpt2.tiktoken"))
        return Tokenizer("gpt2", "tiktoken", encoding.n_vocab, encoding.eot_token, eos, "tamis:gpt2.tiktoken",
                         _file_digest(Path(source)), encoding)
    try:
        data = path.read_bytes()  # once: the digest recorded is that of the ranks used
        ranks = parse_ranks(data, str(path))
    except (OSError, ValueError) as exc:
        raise TokenizerError(f"{path}: not a tiktoken ranks file ({exc})") from None
    eos_id = len(ranks)
    encoding = tiktoken.Encoding(name=path.stem, pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                 special_tokens={eos: eos_id})
    return Tokenizer(path.stem, "tiktoken", encoding.n_vocab, eos_id, eos, str(path),
                     hashlib.sha256(data).hexdigest(), encoding)


def _gpt2_cut(vocab_size: int, eos: str) -> Tokenizer:
    if not 257 <= vocab_size <= 50257:
        raise TokenizerError(f"--tokenizer gpt2-{vocab_size}: expected a vocabulary of 257 to 50257 tokens")
    if eos != END_OF_TEXT:
        raise TokenizerError(f"--eos {eos!r}: the GPT-2 tokenizer's end-of-text token is {END_OF_TEXT!r}")
    if vocab_size == 50257:
        return _tiktoken(None, eos)
    encoding = gpt2_cut_encoding(vocab_size)
    from tamis.resources import resource_path

    digest = _file_digest(Path(str(resource_path("gpt2.tiktoken"))))
    return Tokenizer(f"gpt2-{vocab_size}", "tiktoken", vocab_size, vocab_size - 1, eos,
                     f"tamis:gpt2.tiktoken[:{vocab_size - 1}]", digest, encoding)


@lru_cache(maxsize=4)
def gpt2_cut_encoding(vocab_size: int):
    """GPT-2's BPE cut to its first `vocab_size - 1` ranks plus end-of-text (ranks 0-255 are the bytes, so any
    text still encodes, into more tokens; a smaller output layer makes a tiny model several times cheaper)."""
    import tiktoken

    from tamis.resources import resource_path

    if vocab_size >= 50257:
        return gpt2_encoding()
    ranks = read_ranks(str(resource_path("gpt2.tiktoken")))
    kept = {token: rank for token, rank in ranks.items() if rank < vocab_size - 1}
    return tiktoken.Encoding(name=f"gpt2-{vocab_size}", explicit_n_vocab=vocab_size, pat_str=GPT2_PATTERN,
                             mergeable_ranks=kept, special_tokens={END_OF_TEXT: vocab_size - 1})


def _huggingface(path: Path, eos: str) -> Tokenizer:
    try:
        from tokenizers import Tokenizer as HFTokenizer
    except ImportError:
        raise TokenizerError(INSTALL_HINT) from None
    try:
        impl = HFTokenizer.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad tokenizer file
        raise TokenizerError(f"{path}: not a Hugging Face tokenizer.json ({exc})") from None
    eos_id = impl.token_to_id(eos)
    if eos_id is None:
        raise TokenizerError(f"{path}: no token {eos!r} in its vocabulary; give the end-of-text token with --eos")
    name = path.parent.name if path.name == "tokenizer.json" else path.stem
    return Tokenizer(name, "huggingface", impl.get_vocab_size(with_added_tokens=True), eos_id, eos, str(path),
                     _file_digest(path), impl)


@lru_cache(maxsize=4)
def load_tokenizer(spec: str = "gpt2", eos: str | None = None) -> Tokenizer:
    """`gpt2`, a `*.tiktoken` ranks file or a `tokenizer.json`; `eos` is the end-of-text token's text."""
    eos = eos or END_OF_TEXT
    if spec == "gpt2":
        return _tiktoken(None, eos)
    if spec.startswith("gpt2-") and spec[5:].isdigit():
        return _gpt2_cut(int(spec[5:]), eos)
    path = Path(spec)
    if not path.is_file():
        raise TokenizerError(f"--tokenizer {spec!r}: expected 'gpt2' or a tokenizer file (*.tiktoken, tokenizer.json)")
    if path.suffix == ".json":
        return _huggingface(path, eos)
    return _tiktoken(path, eos)
