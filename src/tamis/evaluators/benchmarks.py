"""Multiple-choice benchmarks as (context, continuation) pairs, for zero-shot log-likelihood scoring.

Each item becomes one request per choice; the model's answer is the choice whose continuation has the
highest log-likelihood per token given its context. The formats follow common zero-shot practice
(lm-evaluation-harness, OLMo eval): "Question: …\\nAnswer:" + " choice"; HellaSwag's context + " ending";
WinoGrande's partial scoring (the option goes into the context, the rest of the sentence is scored).
Files are the validation splits as gzip JSONL. Subsets of them ship in the package (`benchmarks_dir:
packaged`, tamis/resources/benchmarks/, with PROVENANCE.md), with 1,000 LAMBADA passages, the default
reference text for bits per byte.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamis.resources import resource_path

#: `benchmarks_dir: packaged` and `reference: lambada` name the files shipped in tamis/resources/benchmarks
PACKAGED = "packaged"
LAMBADA = "lambada"


@dataclass(frozen=True)
class Item:
    requests: tuple[tuple[str, str], ...]  # (context, continuation) per choice
    gold: int


def _letters(row: dict[str, Any], question: str) -> Item:
    labels = list(row["choices"]["label"])
    texts = list(row["choices"]["text"])
    context = f"Question: {question}\nAnswer:"
    return Item(tuple((context, f" {t}") for t in texts), labels.index(row["answerKey"]))


def _hellaswag(row: dict[str, Any]) -> Item:
    context = row["ctx"].strip()
    return Item(tuple((context, f" {e.strip()}") for e in row["endings"]), int(row["label"]))


def _piqa(row: dict[str, Any]) -> Item:
    context = f"Question: {row['goal']}\nAnswer:"
    return Item(((context, f" {row['sol1']}"), (context, f" {row['sol2']}")), int(row["label"]))


def _winogrande(row: dict[str, Any]) -> Item:
    sentence = row["sentence"]
    cut = sentence.index("_")
    rest = " " + sentence[cut + 1:].strip()
    options = (row["option1"], row["option2"])
    return Item(tuple((sentence[:cut] + option, rest) for option in options), int(row["answer"]) - 1)


def _siqa(row: dict[str, Any]) -> Item:
    context = f"Question: {row['context']} {row['question']}\nAnswer:"
    answers = (row["answerA"], row["answerB"], row["answerC"])
    return Item(tuple((context, f" {a}") for a in answers), int(row["label"]) - 1)


def _sciq(row: dict[str, Any]) -> Item:
    # the file lists the answer apart from the distractors: order choices by a hash so its place is arbitrary
    choices = sorted([row["distractor1"], row["distractor2"], row["distractor3"], row["correct_answer"]],
                     key=lambda c: hashlib.sha256(f"{row['question']}\x00{c}".encode()).hexdigest())
    support = f"{row['support'].strip()}\n" if row.get("support") else ""
    context = f"{support}Question: {row['question']}\nAnswer:"
    return Item(tuple((context, f" {c}") for c in choices), choices.index(row["correct_answer"]))


FORMATS: dict[str, tuple[str, Callable[[dict[str, Any]], Item]]] = {
    "hellaswag": ("hellaswag", _hellaswag),
    "arc_easy": ("arc_easy", lambda r: _letters(r, r["question"])),
    "arc_challenge": ("arc_challenge", lambda r: _letters(r, r["question"])),
    "piqa": ("piqa", _piqa),
    "winogrande": ("winogrande", _winogrande),
    "openbookqa": ("openbookqa", lambda r: _letters(r, r["question_stem"])),
    "siqa": ("social_i_qa", _siqa),
    "commonsense_qa": ("commonsense_qa", lambda r: _letters(r, r["question"])),
    "sciq": ("sciq", _sciq),
}
BENCHMARKS = tuple(FORMATS)


def benchmark_file(directory: str | Path, name: str) -> Path:
    """The benchmark's file in `directory`: `<stem>*.jsonl.gz` or `<stem>*.jsonl`."""
    if name not in FORMATS:
        raise ValueError(f"unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
    stem = FORMATS[name][0]
    directory = Path(directory)
    matches = sorted(directory.glob(f"{stem}*.jsonl.gz")) + sorted(directory.glob(f"{stem}*.jsonl"))
    if not matches:
        raise FileNotFoundError(f"benchmark {name!r}: no {stem}*.jsonl[.gz] in {directory}")
    return matches[0]


def load_items(directory: str | Path, name: str, max_items: int | None = None) -> list[Item]:
    """The first `max_items` items of the benchmark (the same items for every variant)."""
    path = benchmark_file(directory, name)
    parse = FORMATS[name][1]
    opener = gzip.open if path.suffix == ".gz" else open
    items = []
    with opener(path, "rt", encoding="utf-8") as handle:
        rows: Iterator[str] = (line for line in handle if line.strip())
        for line in rows:
            items.append(parse(json.loads(line)))
            if max_items is not None and len(items) >= max_items:
                break
    return items


def packaged_dir() -> Path:
    return resource_path("benchmarks")


def benchmarks_directory(value: str, resolve: Callable[[str], str]) -> Path:
    """`packaged` (the shipped subsets) or a folder, relative paths through `resolve`."""
    return packaged_dir() if value == PACKAGED else Path(resolve(value))


def _jsonl_texts(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    texts = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            if "text" in row:
                texts.append(row["text"])
            else:  # an oe-eval loglikelihood request (LAMBADA): the passage is context + continuation
                texts.append(row["request"]["context"] + row["request"]["continuation"])
    return texts


def reference_texts(value: str, resolve: Callable[[str], str], max_docs: int | None = None) -> list[str]:
    """The reference documents for bits per byte: `lambada` (the shipped LAMBADA passages), or a Parquet
    file (its `text` column), a JSONL file (`text` fields) or a plain text file (one document)."""
    if value == LAMBADA:
        path = next(iter(sorted(packaged_dir().glob("lambada*.jsonl.gz"))))
    else:
        path = Path(resolve(value))
        if not path.is_file():
            raise FileNotFoundError(f"reference text {value!r} not found (looked at {path})")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        texts = [t for t in pq.read_table(path, columns=["text"])["text"].to_pylist() if t]
    elif path.name.endswith((".jsonl", ".jsonl.gz")):
        texts = _jsonl_texts(path)
    else:
        texts = [path.read_text(encoding="utf-8")]
    return texts[:max_docs] if max_docs is not None else texts
