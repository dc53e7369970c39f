"""The opt-in language pre-screen: drops pages clearly in other languages before extraction, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import WARC_DIR

from tamis.annotate.language_prescreen import LanguagePrescreen, Reasons, visible_text
from tamis.batch import DocBatch
from tamis.pipeline.spec import load_pipeline
from tamis.readers.warc import WarcReader
from tamis.stats.counters import StepCounters
from tamis.steps.base import StepContext

REPO = Path(__file__).resolve().parents[1]


def html_batch(name: str) -> DocBatch:
    batches = list(WarcReader().iter_batches(str(WARC_DIR / name), StepCounters()))
    htmls = [html for batch in batches for html in batch["html"] if html]
    return DocBatch({"id": [str(i) for i in range(len(htmls))], "html": htmls, "text": [None] * len(htmls)})


def screen(step: LanguagePrescreen, batch: DocBatch) -> tuple[DocBatch, StepCounters]:
    counters = StepCounters()
    step.setup()
    return step.process(batch, StepContext("language_prescreen", counters)), counters


def test_japanese_pages_are_dropped_for_an_english_pipeline_and_kept_for_japanese() -> None:
    batch = html_batch("clueweb09-ja_resiliparse_excerpt.warc.gz")
    kept, counters = screen(LanguagePrescreen(languages=["en"]), batch)
    assert counters.dropped[Reasons.UNLIKELY_LANGUAGE] >= len(batch) * 0.8
    assert len(kept) + counters.dropped[Reasons.UNLIKELY_LANGUAGE] == len(batch)
    kept_ja, _ = screen(LanguagePrescreen(languages=["ja"]), html_batch("clueweb09-ja_resiliparse_excerpt.warc.gz"))
    assert len(kept_ja) >= len(batch) * 0.8


def test_english_pages_pass() -> None:
    batch = html_batch("dolma_sample-0001.warc.gz")
    kept, counters = screen(LanguagePrescreen(languages=["en"]), batch)
    assert counters.dropped.get(Reasons.UNLIKELY_LANGUAGE, 0) == 0
    assert list(kept["html"]) == list(batch["html"])  # untouched: extraction still runs on them


def test_cheap_text_is_visible_text_only() -> None:
    text = visible_text("<html><head><script>var x = 'hidden';</script></head><body><p>Hello there</p></body></html>")
    assert "Hello there" in text and "hidden" not in text


def test_cheap_text_is_one_line_of_the_same_length() -> None:
    """fastText's predict refuses newlines; replacing them keeps the 2,000-character cut where it was."""
    paragraphs = "".join(f"<p>paragraph number {i} of a long page</p>" for i in range(200))
    html = f"<html><body>{paragraphs}</body></html>"
    text = visible_text(html)
    assert "\n" not in text and "paragraph number 3 of" in text
    assert len(text) == len(visible_text(html, max_chars=None)[:2_000]) == 2_000


def test_bad_parameters_fail_naming_the_field() -> None:
    with pytest.raises(ValueError, match="languages"):
        LanguagePrescreen(languages=[])
    with pytest.raises(ValueError, match="threshold"):
        LanguagePrescreen(languages=["en"], threshold=1.5)


def test_fineweb_fast_pipeline_screens_before_extraction() -> None:
    spec = load_pipeline(REPO / "pipelines" / "fineweb-fast.yaml")
    names = [step.step for step in spec.steps]
    assert names.index("language_prescreen") < names.index("trafilatura")
    assert "language_prescreen" not in [step.step for step in load_pipeline(REPO / "pipelines" / "fineweb.yaml").steps]
