"""The opt-in language pre-screen: drops pages clearly in other languages before extraction, nothing else."""

from __future__ import annotations

from html import escape
from pathlib import Path

import pytest
from conftest import WARC_DIR

from tamis.annotate.language_prescreen import (
    HEAD_CHARS,
    MIDDLE_CHARS,
    LanguagePrescreen,
    Reasons,
    scored_sample,
    visible_text,
)
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


def test_cheap_text_is_one_line() -> None:
    """fastText's predict refuses newlines."""
    paragraphs = "".join(f"<p>paragraph number {i} of a long page</p>" for i in range(200))
    text = visible_text(f"<html><body>{paragraphs}</body></html>")
    assert "\n" not in text and "paragraph number 3 of" in text and "paragraph number 199 of" in text


def test_the_sample_is_the_start_and_the_middle_of_the_text() -> None:
    short = "word " * ((HEAD_CHARS + MIDDLE_CHARS) // 5)
    assert scored_sample(short) == short
    text = "".join(f"{i:07d} " for i in range(2_000))  # 16,000 characters, each position readable
    sample = scored_sample(text)
    head, middle = sample[:HEAD_CHARS], sample[HEAD_CHARS + 1 :]
    assert head == text[:HEAD_CHARS] and len(middle) == MIDDLE_CHARS
    assert text.index(middle) == len(text) // 2 - MIDDLE_CHARS // 2
    just_longer = text[: HEAD_CHARS + MIDDLE_CHARS + 10]  # its centre is inside the head: no character twice
    assert scored_sample(just_longer) == just_longer[:HEAD_CHARS] + " " + just_longer[HEAD_CHARS:][:MIDDLE_CHARS]


def test_an_english_article_under_menus_in_another_language_passes() -> None:
    """A page whose visible text starts with 2,500 characters of a wiki's menus (Aragonese; lid.176 says
    Spanish) and goes on with English text passes for English. Scoring its first 2,000 characters (the
    step's sample before 2026-12-07) drops it, as it dropped a German weekly's English interview
    (docs/extraction.md)."""
    spanish_screen = LanguagePrescreen(languages=["es"])
    spanish = [text for text in map(visible_text, html_batch("cc-main-2024-22_whirlwind.warc.gz")["html"])
               if len(text) > 2_500 and spanish_screen.reasons_for_texts([text[:2_500]]) == [None]]
    english = [visible_text(html) for html in html_batch("dolma_sample-0001.warc.gz")["html"]]
    header = spanish[0][:2_500]
    article = " ".join(english)[:10_000]
    html = f"<html><body><div>{escape(header)}</div><article><p>{escape(article)}</p></article></body></html>"
    step = LanguagePrescreen(languages=["en"])
    kept, counters = screen(step, DocBatch({"id": ["0"], "html": [html], "text": [None]}))
    assert len(kept) == 1 and not counters.dropped
    assert step.reasons_for_texts([visible_text(html)[:2_000]]) == [Reasons.UNLIKELY_LANGUAGE]


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
