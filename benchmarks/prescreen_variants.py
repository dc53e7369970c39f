"""What the language pre-screen drops and loses with other cheap texts or thresholds, on every real page.

    python benchmarks/prescreen_variants.py

Reference: a page is "kept" when lid.176 on trafilatura's text (FineWeb's settings, no deduplicate cache)
says English above 0.65, as the recipe's language ID would. For each variant of the pre-screen's input (how
much of the visible text fastText scores, and the threshold) it prints how many of the real pages of
../shared/data the pre-screen would drop, how many reference-kept pages are among them ("lost"), and
fastText's CPU seconds over all pages. The pre-screen's own visible text (tamis.annotate.language_prescreen
.visible_text, cut by its MAX_CHARS) is re-read here uncut, so that every prefix can be tried.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mix_pages  # noqa: E402


def _decode(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


def _visible_text(html: str) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    from tamis.annotate.language_prescreen import MAX_HTML_CHARS

    return extract_plain_text(html[:MAX_HTML_CHARS], main_content=False, alt_texts=False).replace("\n", " ")


def _head_and_middle(text: str, head: int = 1000, middle: int = 2000) -> str:
    if len(text) <= head + middle:
        return text
    centre = len(text) // 2
    return text[:head] + " " + text[centre - middle // 2 : centre + middle // 2]


def main() -> None:
    import trafilatura

    from tamis.annotate.language_prescreen import LanguagePrescreen

    model = LanguagePrescreen(["en"])._model()
    htmls = [_decode(payload) for _, payload in mix_pages.real_pages()]
    kept = []
    for html in htmls:
        text = trafilatura.extract(html, favor_precision=True, include_comments=False, deduplicate=False) or ""
        labels, scores = model.predict(text.replace("\n", " "), k=1) if text else ([""], [0.0])
        kept.append(labels[0] == "__label__en" and scores[0] > 0.65)
    print(f"{len(htmls)} pages; English above 0.65 on trafilatura's text: {sum(kept)}")
    cheap = [_visible_text(html) for html in htmls]

    def variant(name: str, cut: Callable[[str], str], threshold: float = 0.05) -> None:
        texts = [cut(text) or " " for text in cheap]
        started = time.process_time()
        labels, scores = model.predict(texts, k=-1, threshold=threshold)
        seconds = time.process_time() - started
        dropped = [bool(text.strip()) and not any(label == "__label__en" and score >= threshold
                                                  for label, score in zip(doc_labels, doc_scores, strict=True))
                   for text, doc_labels, doc_scores in zip(cheap, labels, scores, strict=True)]
        lost = sum(d and k for d, k in zip(dropped, kept, strict=True))
        print(f"{name:<40} threshold {threshold}: dropped {sum(dropped)}, lost {lost} of {sum(kept)}, "
              f"fastText {seconds:.2f} CPU s")

    for chars in (20_000, 5_000, 3_000, 2_000, 1_000):
        variant(f"first {chars:,} characters", lambda text, chars=chars: text[:chars])
    variant("1,000 from the start + 2,000 from the middle", _head_and_middle)
    for threshold in (0.02, 0.1, 0.3):
        variant("first 2,000 characters", lambda text: text[:2000], threshold)


if __name__ == "__main__":
    main()
