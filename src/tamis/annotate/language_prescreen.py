"""An opt-in language pre-screen before the extractor: skip trafilatura on pages clearly in other languages.

Extraction is most of a job's cost, and with an English-only recipe most Common Crawl pages are thrown away
by language ID right after it. This step scores a cheap text of the raw HTML (resiliparse's plain-text
extraction when installed, else lxml's visible text; its first 1,000 characters and 2,000 from its middle)
with the same fastText lid.176 model, and drops pages whose best score for the pipeline's languages is
below `threshold`, before they are extracted. The cheap text is not trafilatura's, so a low threshold is
used: a page is dropped only when even boilerplate-laden text shows hardly any trace of the wanted
languages. The trade-off (pages the full recipe would have kept and the pre-screen loses, against the
speed-up) is measured in docs/extraction.md. Never on by default.
"""

from __future__ import annotations

from typing import Any

from tamis.annotate.language import load_model
from tamis.batch import DocBatch
from tamis.resources import resource_path
from tamis.steps.base import Filter
from tamis.steps.registry import register_step

#: HTML characters the cheap text is taken from (pages are cut here before parsing)
MAX_HTML_CHARS = 320_000
#: characters of the cheap text scored by fastText, from its start and from its middle. fastText's cost grows
#: with the text (2 ms a page at 5,000 characters on the 2-core machine, as much as the text itself). The
#: start alone misses English articles under menus in another language (a German weekly's English interview),
#: where the middle of the visible text falls in the article. On 2,342 real pages this sample lost one page
#: fewer than the first 2,000 characters and dropped 21 more (docs/extraction.md).
HEAD_CHARS = 1_000
MIDDLE_CHARS = 2_000


class Reasons:
    UNLIKELY_LANGUAGE = "unlikely_language"


def visible_text(html: str) -> str:
    """Cheap page text for language ID, on one line (fastText's predict refuses newlines): resiliparse if
    available, else lxml's text without scripts and styles; of the first MAX_HTML_CHARS characters of HTML."""
    try:
        from resiliparse.extract.html2text import extract_plain_text
    except ImportError:
        extract_plain_text = None
    if extract_plain_text is not None:
        return extract_plain_text(html[:MAX_HTML_CHARS], main_content=False, alt_texts=False).replace("\n", " ")
    import lxml.html
    from lxml import etree

    try:
        tree = lxml.html.document_fromstring(html[:MAX_HTML_CHARS])
    except (etree.ParserError, ValueError):
        return ""
    for element in tree.iter("script", "style", "noscript"):
        element.text = ""
    return " ".join(tree.text_content().split())


def scored_sample(text: str, head: int = HEAD_CHARS, middle: int = MIDDLE_CHARS) -> str:
    """What fastText scores: the text's first `head` characters and the `middle` ones around its centre (not
    overlapping the head), or the whole text when it is no longer than the two."""
    if len(text) <= head + middle:
        return text
    start = max(head, len(text) // 2 - middle // 2)
    return text[:head] + " " + text[start : start + middle]


@register_step("language_prescreen")
class LanguagePrescreen(Filter):
    """Drops pages (before extraction) whose cheap text scores below `threshold` for every wanted language."""

    def __init__(self, languages: list[str], threshold: float = 0.05, model_path: str | None = None):
        """
        Args:
            languages: ISO codes the pipeline keeps, e.g. [en]; the same as language_id's.
            threshold: a page is dropped when each of `languages` scores below it on the cheap text
                (default 0.05: see docs/extraction.md for what it loses and gains).
            model_path: a fastText LID model; default the lid.176.ftz shipped with tamis.
        """
        if not languages:
            raise ValueError("language_prescreen: `languages` must name at least one language")
        if not 0.0 <= float(threshold) < 1.0:
            raise ValueError("language_prescreen: `threshold` must be in [0, 1)")
        self.languages = list(languages)
        self.threshold = float(threshold)
        self.model_path = model_path

    def setup(self) -> None:
        self._model()

    def _model(self) -> Any:
        return load_model(self.model_path or str(resource_path("lid.176.ftz")))

    def filter_batch(self, batch: DocBatch) -> list[str | None]:
        htmls = batch["html"] if "html" in batch else [None] * len(batch)
        return self.reasons_for_texts([scored_sample(visible_text(html)) if html else "" for html in htmls])

    def reasons_for_texts(self, texts: list[str]) -> list[str | None]:
        """The drop reason (or None) for each page's cheap text; a blank text is never dropped."""
        reasons: list[str | None] = [None] * len(texts)
        todo = [(i, text) for i, text in enumerate(texts) if text.strip()]
        if not todo:
            return reasons
        labels, scores = self._model().predict([text for _, text in todo], k=-1, threshold=self.threshold)
        wanted = {f"__label__{lang}" for lang in self.languages}
        for (i, _), doc_labels, doc_scores in zip(todo, labels, scores, strict=True):
            if not any(label in wanted and score >= self.threshold for label, score in zip(doc_labels, doc_scores,
                                                                                          strict=True)):
                reasons[i] = Reasons.UNLIKELY_LANGUAGE
        return reasons
