"""Options of the dedup stage: one validated dataclass, built from a pipeline file's `dedup:` section or the CLI.

Everything is checked on the driver before Ray starts, with the field named in the message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

KINDS = ("minhash", "exact")
KEEP_RULES = ("lowest_id", "oldest", "longest")
HASH_FUNCTIONS = ("sha1", "xxhash")
MiB = 2**20


#: the dedup stage's work directory under a run's output (signatures, buckets, clusters, summary.json)
DEDUP_DIR = "dedup"
#: pipeline steps that run in the finalize stage, after dedup, when a pipeline deduplicates (FineWeb's order)
FINALIZE_STEPS = frozenset({"pii", "token_count"})


class DedupOptionsError(ValueError):
    """A dedup option is wrong; the message names the field."""


@dataclass(frozen=True)
class DedupOptions:
    """How to deduplicate.

    Args:
        kind: `minhash` (near duplicates, FineWeb) or `exact` (a content hash of the text; much cheaper).
        n_grams: words per shingle (FineWeb: 5).
        bands: LSH bands (FineWeb: 14).
        rows_per_band: hashes per band (FineWeb: 8); bands x rows_per_band permutations in all.
        hash_bits: 64 (FineWeb) or 32 (datasketch's and datatrove's 32-bit variant).
        hash_function: shingle hash: `sha1` (first 8 bytes of SHA-1, FineWeb's) or `xxhash` (needs the package).
        seed: seed of the permutation parameters; must be the same for data deduplicated together.
        ranges_per_band: hash ranges each band is split into; one bucket task per (band, range). 0 = choose
            from the input size and `memory_per_task`.
        memory_per_task: bytes of working memory one task may use (sorting buckets, clustering); a bucket
            bigger than this is split on disk (spilled) and processed in pieces.
        keep: which document of a duplicate cluster is kept: `lowest_id` (first in input order: shards
            sorted by path, then row), `oldest` (earliest `date`), `longest` (most characters); ties go to
            input order. Documents of a previous index always win (they were kept before).
        cluster_columns: add `minhash_cluster_id` and `minhash_cluster_size` to the final shards.
        pii: apply the PII formatter in the finalize stage.
        token_count: recount GPT-2 tokens in the finalize stage.
        per_language: deduplicate within each language only (FineWeb-2): documents of different
            `language` + `language_script` labels are never duplicates, and each document's words are split
            with its language's word tokenizer (tamis.text.languages.split_words_for).
        previous_index: work directories of earlier dedup runs (e.g. earlier dumps); documents matching
            them are removed, and they are never removed themselves.
        partitions: hash partitions of the connected-components rounds (tasks per round); 0 = choose from
            the number of candidate pairs and `memory_per_task`.
        max_in_flight: tasks kept in flight by the driver; 0 = twice the cluster's CPUs.
    """

    kind: str = "minhash"
    n_grams: int = 5
    bands: int = 14
    rows_per_band: int = 8
    hash_bits: int = 64
    hash_function: str = "sha1"
    seed: int = 1
    ranges_per_band: int = 0
    memory_per_task: int = 512 * MiB
    keep: str = "lowest_id"
    cluster_columns: bool = False
    pii: bool = True
    token_count: bool = True
    per_language: bool = False
    previous_index: tuple[str, ...] = field(default_factory=tuple)
    partitions: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        _check(self.kind in KINDS, "kind", f"expected one of {', '.join(KINDS)}, got {self.kind!r}")
        _check(self.keep in KEEP_RULES, "keep", f"expected one of {', '.join(KEEP_RULES)}, got {self.keep!r}")
        _check(self.hash_function in HASH_FUNCTIONS, "hash_function",
               f"expected one of {', '.join(HASH_FUNCTIONS)}, got {self.hash_function!r}")
        _check(self.hash_bits in (32, 64), "hash_bits", f"expected 32 or 64, got {self.hash_bits!r}")
        for name, low, high in (("n_grams", 1, 64), ("bands", 1, 256), ("rows_per_band", 1, 64),
                                ("ranges_per_band", 0, 65536), ("partitions", 0, 1_000_000),
                                ("max_in_flight", 0, 100_000)):
            value = getattr(self, name)
            _check(isinstance(value, int) and not isinstance(value, bool) and low <= value <= high, name,
                   f"expected an integer from {low} to {high}, got {value!r}")
        _check(isinstance(self.seed, int) and 0 <= self.seed < 2**32, "seed", "expected 0 <= seed < 2**32")
        _check(isinstance(self.memory_per_task, int) and self.memory_per_task >= 16 * MiB, "memory_per_task",
               f"expected at least 16 MiB in bytes, got {self.memory_per_task!r}")
        for name in ("cluster_columns", "pii", "token_count", "per_language"):
            _check(isinstance(getattr(self, name), bool), name, f"expected true or false, got {getattr(self, name)!r}")
        if not isinstance(self.previous_index, tuple):
            object.__setattr__(self, "previous_index", tuple(self.previous_index))
        _check(all(isinstance(p, str) and p for p in self.previous_index), "previous_index",
               "expected a list of directories")
        if self.hash_function == "xxhash":
            try:
                import xxhash  # noqa: F401
            except ImportError:
                raise DedupOptionsError("dedup.hash_function: xxhash needs the `xxhash` package") from None
        if self.kind == "exact":
            # one "band" whose key is the content hash: the rest of the machinery is shared
            object.__setattr__(self, "bands", 1)

    @property
    def permutations(self) -> int:
        return self.bands * self.rows_per_band

    def signature_params(self) -> dict[str, Any]:
        """What decides the signatures (an index is only reusable when these are equal)."""
        params = {"kind": self.kind, "n_grams": self.n_grams, "bands": self.bands,
                  "rows_per_band": self.rows_per_band, "hash_bits": self.hash_bits,
                  "hash_function": self.hash_function, "seed": self.seed}
        if self.per_language:  # absent otherwise, so indexes written before this option stay reusable
            params["per_language"] = True
        return params

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["previous_index"] = list(self.previous_index)
        if not self.per_language:  # absent when off, so existing pipelines keep their fingerprints
            data.pop("per_language")
        return data

    def fingerprint(self, *parts: Any) -> str:
        """Hash of the options that change results (not in-flight limits), plus extra parts."""
        data = self.to_dict()
        data.pop("max_in_flight")
        payload = json.dumps([data, *parts], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise DedupOptionsError(f"dedup.{name}: {message}")


def parse_size(value: Any, name: str = "memory_per_task") -> int:
    """Bytes from an int or a string like `512MiB`, `2GB`, `1.5GiB`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        units = (("gib", 2**30), ("mib", 2**20), ("kib", 2**10), ("gb", 10**9), ("mb", 10**6), ("kb", 10**3),
                 ("g", 2**30), ("m", 2**20), ("k", 2**10), ("b", 1))
        for suffix, factor in units:
            if text.endswith(suffix):
                try:
                    return int(float(text[: -len(suffix)]) * factor)
                except ValueError:
                    break
        if text.isdigit():
            return int(text)
    raise DedupOptionsError(f"dedup.{name}: expected a size like 512MiB or a number of bytes, got {value!r}")


def validate_dedup_section(raw: Any, source: str = "<memory>") -> DedupOptions | None:
    """The pipeline file's `dedup:` section as options (None when absent or `enabled: false`).

    Accepts the fields of DedupOptions plus `enabled` (default true); sizes may be strings (`512MiB`).
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise DedupOptionsError(f"{source}: dedup: expected a mapping, got {type(raw).__name__}")
    data = dict(raw)
    enabled = data.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise DedupOptionsError(f"{source}: dedup.enabled: expected true or false, got {enabled!r}")
    known = {f.name for f in dataclasses.fields(DedupOptions)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise DedupOptionsError(f"{source}: dedup: unknown field {unknown[0]!r} (accepted: enabled, "
                                f"{', '.join(sorted(known))})")
    if "memory_per_task" in data:
        data["memory_per_task"] = parse_size(data["memory_per_task"])
    if "previous_index" in data:
        previous = data["previous_index"]
        if isinstance(previous, str):
            previous = [previous]
        if not isinstance(previous, list):
            raise DedupOptionsError(f"{source}: dedup.previous_index: expected a list of directories")
        data["previous_index"] = tuple(previous)
    try:
        options = DedupOptions(**data)
    except DedupOptionsError as exc:
        raise DedupOptionsError(f"{source}: {exc}") from None
    except TypeError as exc:
        raise DedupOptionsError(f"{source}: dedup: {exc}") from None
    return options if enabled else None
