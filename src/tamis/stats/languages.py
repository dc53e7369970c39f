"""Per-language breakdown of a run: each step's documents in and out and drop reasons, and the documents and
tokens written, by language label (FineWeb-2's `<language>_<language_script>`, or `language` alone).

Only steps that see a `language` column are counted (those after language ID). Like the step counters, a
breakdown is a plain sum, so merging tasks in any order gives the same result.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tamis.batch import DocBatch

UNKNOWN = "unknown"


def language_labels(batch: DocBatch) -> list[str] | None:
    """Each document's language label, or None when the batch has no `language` column yet."""
    if "language" not in batch:
        return None
    languages = batch["language"]
    if "language_script" not in batch:
        return [lang or UNKNOWN for lang in languages]
    return [f"{lang}_{script}" if lang and script else (lang or UNKNOWN)
            for lang, script in zip(languages, batch["language_script"], strict=True)]


@dataclass
class LanguageSteps:
    """What one step did to one language's documents."""

    docs_in: int = 0
    docs_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"docs_in": self.docs_in, "docs_out": self.docs_out, "dropped": dict(sorted(self.dropped.items()))}


@dataclass
class LanguageBreakdown:
    """steps[language][step] and the output's documents and tokens per language."""

    steps: dict[str, dict[str, LanguageSteps]] = field(default_factory=dict)
    docs: Counter[str] = field(default_factory=Counter)
    tokens: Counter[str] = field(default_factory=Counter)

    def _entry(self, language: str, step: str) -> LanguageSteps:
        return self.steps.setdefault(language, {}).setdefault(step, LanguageSteps())

    def step_in(self, step: str, batch: DocBatch) -> None:
        for language, n in Counter(language_labels(batch) or []).items():
            self._entry(language, step).docs_in += n

    def step_out(self, step: str, batch: DocBatch) -> None:
        for language, n in Counter(language_labels(batch) or []).items():
            self._entry(language, step).docs_out += n

    def labelled_by(self, step: str) -> None:
        """For the step that added the labels (language ID): its input per language is what it kept plus
        what it dropped, as the labels did not exist before it."""
        for steps in self.steps.values():
            counts = steps.get(step)
            if counts is not None:
                counts.docs_in = counts.docs_out + sum(counts.dropped.values())

    def dropped(self, step: str, removed: DocBatch, reasons: list[str]) -> None:
        labels = language_labels(removed)
        if labels is None:
            return
        for language, reason in zip(labels, reasons, strict=True):
            self._entry(language, step).dropped[reason] += 1

    def output(self, batch: DocBatch) -> None:
        labels = language_labels(batch)
        if labels is None:
            return
        self.docs.update(labels)
        counts = batch["token_count"] if "token_count" in batch else [None] * len(labels)
        for language, count in zip(labels, counts, strict=True):
            self.tokens[language] += count or 0

    def merge(self, other: LanguageBreakdown, output: bool = True) -> None:
        for language, steps in other.steps.items():
            for step, counts in steps.items():
                mine = self._entry(language, step)
                mine.docs_in += counts.docs_in
                mine.docs_out += counts.docs_out
                mine.dropped.update(counts.dropped)
        if output:
            self.docs.update(other.docs)
            self.tokens.update(other.tokens)

    def replace_output(self, other: LanguageBreakdown) -> None:
        """After dedup: what was written is what finalize wrote."""
        self.docs, self.tokens = Counter(other.docs), Counter(other.tokens)

    def __bool__(self) -> bool:
        return bool(self.steps or self.docs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": {lang: {step: c.to_dict() for step, c in steps.items()}
                      for lang, steps in sorted(self.steps.items())},
            "docs": dict(sorted(self.docs.items())),
            "tokens": dict(sorted(self.tokens.items())),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> LanguageBreakdown:
        data = data or {}
        steps = {lang: {step: LanguageSteps(int(c.get("docs_in", 0)), int(c.get("docs_out", 0)),
                                            Counter(c.get("dropped", {})))
                        for step, c in by_step.items()}
                 for lang, by_step in data.get("steps", {}).items()}
        return cls(steps, Counter(data.get("docs", {})), Counter(data.get("tokens", {})))

    def rows(self, steps_order: list[str]) -> list[dict[str, Any]]:
        """One row per language, most documents first: in at its first counted step, out, tokens, top drops."""
        rows = []
        for language in sorted(set(self.steps) | set(self.docs)):
            by_step = self.steps.get(language, {})
            ordered = [s for s in steps_order if s in by_step] + sorted(s for s in by_step if s not in steps_order)
            first = by_step[ordered[0]].docs_in if ordered else 0
            drops: Counter[str] = Counter()
            for step in ordered:
                for reason, n in by_step[step].dropped.items():
                    drops[f"{step}:{reason}"] += n
            rows.append({"language": language, "docs_in": first, "kept": self.docs.get(language, 0),
                         "tokens": self.tokens.get(language, 0), "dropped": dict(drops.most_common()),
                         "funnel": [(s, by_step[s].docs_in, by_step[s].docs_out) for s in ordered]})
        return sorted(rows, key=lambda r: (-r["docs_in"], r["language"]))
