"""What the language pre-screen drops and loses with other cheap texts or thresholds, on every real page.

    python benchmarks/prescreen_variants.py [--pages DIR]

Reference: a page is "kept" when lid.176 on trafilatura's text (FineWeb's settings, no deduplicate cache)
says English above 0.65, as the recipe's language ID would. For each variant of the pre-screen's input (how
much of the visible text fastText scores, and the threshold) it prints how many of the real pages of
../shared/data the pre-screen would drop, how many reference-kept pages are among them ("lost"), and the
CPU seconds of the step's decision over all pages (fastText, mostly). The pre-screen's own visible text
(language_prescreen.visible_text) is taken whole, so that every cut can be tried, and judged by the
step's own `reasons_for_texts`. `--pages DIR` takes the pages of a folder instead (every file in it, e.g.
the output of `mix_pages.py --every-page --extra ...`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mix_pages  # noqa: E402


def _head_and_middle(text: str, head: int = 1000, middle: int = 2000) -> str:
    if len(text) <= head + middle:
        return text
    centre = len(text) // 2
    return text[:head] + " " + text[centre - middle // 2 : centre + middle // 2]


def _longest_lines(text: str, budget: int = 2000) -> str:
    """The page's longest lines, longest first, up to `budget` characters: paragraphs before menus."""
    chosen, size = [], 0
    for line in sorted(text.splitlines(), key=len, reverse=True):
        if size >= budget or not line.strip():
            break
        chosen.append(line)
        size += len(line) + 1
    return " ".join(chosen)[:budget]


def main() -> None:
    from tamis.annotate.language_prescreen import LanguagePrescreen, scored_sample, visible_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=Path, help="a folder of HTML pages (default: every real page of shared/data)")
    args = parser.parse_args()
    model = LanguagePrescreen(["en"])._model()
    if args.pages:
        named = [(path.name, path.read_bytes()) for path in sorted(args.pages.iterdir()) if path.is_file()]
    else:
        named = mix_pages.real_pages()
    names = [name for name, _ in named]
    payloads = [payload for _, payload in named]
    kept = []
    for payload in payloads:
        text = mix_pages.trafilatura_text(payload)
        labels, scores = model.predict(text.replace("\n", " "), k=1) if text else ([""], [0.0])
        kept.append(labels[0] == "__label__en" and scores[0] > 0.65)
    print(f"{len(payloads)} pages; English above 0.65 on trafilatura's text: {sum(kept)}")
    cheap = [visible_text(mix_pages.page_html(payload)) for payload in payloads]

    def variant(name: str, cut: Callable[[str], str], threshold: float = 0.05) -> None:
        texts = [cut(text) for text in cheap]
        started = time.process_time()
        dropped = [reason is not None for reason in LanguagePrescreen(["en"], threshold).reasons_for_texts(texts)]
        seconds = time.process_time() - started
        lost = [names[i] for i, (d, k) in enumerate(zip(dropped, kept, strict=True)) if d and k]
        print(f"{name:<40} threshold {threshold}: dropped {sum(dropped)}, lost {len(lost)} of {sum(kept)}, "
              f"fastText {seconds:.2f} CPU s" + (f"; lost: {', '.join(lost[:5])}" if lost else ""))

    for chars in (20_000, 5_000, 3_000, 2_000, 1_000):
        variant(f"first {chars:,} characters", lambda text, chars=chars: text[:chars])
    variant("1,000 from the start + 2,000 from the middle", _head_and_middle)
    variant("the step's sample (the same, not overlapping)", scored_sample)
    variant("longest lines first, 2,000 characters", _longest_lines)
    for threshold in (0.02, 0.1, 0.3):
        variant("first 2,000 characters", lambda text: text[:2000], threshold)


if __name__ == "__main__":
    main()
