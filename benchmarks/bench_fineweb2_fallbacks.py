"""How much the offline fallback tokenizer moves FineWeb-2's filter decisions, for the languages datatrove gives Stanza.

datatrove 0.10.1 assigns 103 labels a Stanza tokenizer, whose models are downloaded at run time: impossible here, so
tamis splits them with spaCy's multi-language blank tokenizer (`xx`, datatrove's own WhitespaceTokenizer). Stanza
cannot be run to compare with, so this measures the fallback against a second defensible proxy: spaCy's rule-based
tokenizer of a related language (Galician -> Portuguese, Welsh -> Irish, Belarusian -> Ukrainian, ...). For each
such label, every document is filtered twice with that label's FineWeb-2 config (Gopher repetition, FineWeb quality,
Gopher quality in FineWeb-2's order), once with each word split, and we count how often the words differ and how
often the keep/drop decision does. Agreement between two reasonable tokenizers bounds how much the choice matters;
it is not a measurement against Stanza itself.

Documents: the multilingual pages of ../shared/data (as in tests/test_parity_fineweb2.py) and the example sentences
spaCy ships for each of its languages. No native text exists here for most Stanza languages: the documents are in
other languages, so the figures say how sensitive the filters are to the tokenizer on web text, not on Welsh.

    python benchmarks/bench_fineweb2_fallbacks.py [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

#: Stanza-assigned label -> a related spaCy language with a rule-based tokenizer
PROXIES = {
    "glg_Latn": "pt", "cym_Latn": "ga", "gla_Latn": "ga", "bre_Latn": "fr", "mlt_Latn": "it", "bel_Cyrl": "uk",
    "kaz_Cyrl": "tt", "uig_Arab": "fa", "hyw_Armn": "hy", "myv_Cyrl": "ru", "khk_Cyrl": "ky", "sme_Latn": "fi",
    "wol_Latn": "fr", "pcm_Latn": "en", "kmr_Latn": "tr", "hbo_Hebr": "he",
}


def reasons(filters, text: str, words: list[str]) -> list[str | None]:
    """Each filter's reason on its own, then the chain's (the first reason, FineWeb-2's order)."""
    repetition, quality, gopher = filters
    own = [repetition.check(text, words), quality.check(text, words), gopher.check(text, words, text.splitlines())]
    return own + [next((reason for reason in own if reason is not None), None)]


def scrapinghub_texts(cache: Path) -> list[str]:
    """The scrapinghub benchmark's pages (English news and blogs), extracted as FineWeb does."""
    import gzip
    import json

    import trafilatura
    from conftest import SHARED

    path = cache / "scrapinghub_texts.json"
    if path.exists():
        return json.loads(path.read_text())
    texts = []
    for page in sorted((SHARED / "extraction" / "scrapinghub_aeb" / "html").glob("*.html.gz")):
        with gzip.open(page) as f:
            html = f.read().decode("utf-8", "replace")
        text = trafilatura.extract(html, favor_precision=True, include_comments=False, deduplicate=True)
        if text:
            texts.append(text)
    path.write_text(json.dumps(texts))
    return texts


def main() -> None:
    from multilingual_pages import extracted_texts
    from test_parity_fineweb2 import _spacy_examples

    from tamis.filters.fineweb_quality import FineWebQualityFilter
    from tamis.filters.gopher_quality import GopherQualityFilter
    from tamis.filters.gopher_repetition import GopherRepetitionFilter
    from tamis.fineweb2.configs import config_or_default
    from tamis.text.languages import _spacy_splitter, split_words_for, tokenizer_name_for

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="folder for the extracted texts")
    args = parser.parse_args()
    cache = args.cache or Path(tempfile.mkdtemp(prefix="fw2_fallbacks_"))
    texts = [text for _, text in extracted_texts(cache) + _spacy_examples()] + scrapinghub_texts(cache)
    print(f"{len(texts)} documents ({sum(map(len, texts)) / 1e6:.2f} M characters)")
    header = ("label", "proxy", "words differ", "count ±", "rep. differs", "fw q. differs", "gopher q. differs",
              "chain differs", "kept xx/proxy")
    print(("{:10}{:>6}" + "{:>18}" * 7).format(*header))
    total_docs = total_diff = 0
    for label, proxy in PROXIES.items():
        assert "stanza" in tokenizer_name_for(label), label
        config = config_or_default(label)
        filters = [cls(language_config="fineweb2")._build_for_language(config)
                   for cls in (GopherRepetitionFilter, FineWebQualityFilter, GopherQualityFilter)]
        for step in filters:
            step.setup()
        proxy_split = _spacy_splitter(proxy)
        words_differ = kept_xx = kept_proxy = 0
        differ = [0, 0, 0, 0]
        count_change = 0.0
        for text in texts:
            ours, other = split_words_for(text, label), proxy_split(text)
            words_differ += ours != other
            count_change += abs(len(ours) - len(other)) / max(1, len(other))
            a, b = reasons(filters, text, ours), reasons(filters, text, other)
            for i in range(4):
                differ[i] += (a[i] is None) != (b[i] is None)
            kept_xx += a[3] is None
            kept_proxy += b[3] is None
        n = len(texts)
        total_docs += n
        total_diff += differ[3]
        row = [f"{words_differ / n:.1%}", f"{count_change / n:.2%}"] + [f"{d / n:.1%}" for d in differ]
        print(("{:10}{:>6}" + "{:>18}" * 7).format(label, proxy, *row, f"{kept_xx}/{kept_proxy}"))
    print(f"all: the chain's decision differs on {total_diff} of {total_docs} (document, label) pairs "
          f"({total_diff / total_docs:.2%})")


if __name__ == "__main__":
    main()
