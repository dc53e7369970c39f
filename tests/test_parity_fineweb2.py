"""FineWeb-2 decision parity with datatrove 0.10.1's own filters, per language, on real multilingual text.

Documents: every page of ../shared/data that trafilatura extracts text from (ClueWeb09's Japanese pages, the Common
Crawl 2020-34 excerpt's Chinese/Russian/Dutch... pages, Mozilla Readability's test pages), plus the example
sentences spaCy ships for each of its languages (`spacy.lang.<code>.examples`, MIT), one document per language.

Two sets of (document, label) cases:
  - native: every document under the FineWeb-2 label tamis's language_id gives it (lid.176 mapped to code_3+script);
  - cross: a fixed sample of 20 documents (cut to 1,000 characters at a line end) under one label per tokenizer
    kind (sudachipy, jieba, kiwipiepy, pythainlp, khmer-nltk, laonlp, pyidaungsu, indic-nlp, pyvi, spaCy rules
    per code, spaCy proxies, datatrove's whitespace tokenizer), so every tokenizer meets at least 20 documents.
For each case datatrove's GopherRepetitionFilter, FineWebQualityFilter and GopherQualityFilter are built with the
config's values and FineWeb-2's global changes, exactly as fineweb-2-pipeline.py does, with `language=<label>`;
tamis's filters run with `language_config: fineweb2`. Words must be identical, and so must every filter's decision
and reason. Labels whose tokenizer is a tamis fallback (Stanza, botok) cannot run datatrove's tokenizer offline
and are not in this test (their divergence is measured in benchmarks/bench_fineweb2_fallbacks.py).
"""

from __future__ import annotations

import importlib
import random
from collections import defaultdict

import pytest
import yaml
from conftest import SHARED
from multilingual_pages import extracted_texts

pytest.importorskip("datatrove", reason="datatrove==0.10.1 (the parity oracle) is not installed")
for _module in ("sudachipy", "jieba", "kiwipiepy", "pythainlp", "khmernltk", "laonlp", "pyidaungsu", "indicnlp",
                "pyvi"):
    pytest.importorskip(_module, reason="the multilingual tokenizers are missing: pip install -e '.[multilingual]'")

from datatrove.data import Document  # noqa: E402
from datatrove.utils.text import split_into_words  # noqa: E402

from tamis.annotate.language import LanguageFilter  # noqa: E402
from tamis.batch import DocBatch  # noqa: E402
from tamis.filters.fineweb_quality import FineWebQualityFilter  # noqa: E402
from tamis.filters.gopher_quality import GopherQualityFilter  # noqa: E402
from tamis.filters.gopher_repetition import GopherRepetitionFilter  # noqa: E402
from tamis.fineweb2.configs import config_path  # noqa: E402
from tamis.fineweb2.labels import iso_to_fineweb2, split_label  # noqa: E402
from tamis.text.languages import is_fallback  # noqa: E402

pytestmark = pytest.mark.skipif(not (SHARED / "warc").is_dir(), reason=f"shared data not found at {SHARED}")

MIN_AGREEMENT = 0.995
#: one label per tokenizer kind datatrove assigns (each has a FineWeb-2 config except eng_Latn: defaults)
CROSS_LABELS = ("jpn_Jpan", "cmn_Hani", "kor_Hang", "tha_Thai", "khm_Khmr", "lao_Laoo", "mya_Mymr", "hin_Deva",
                "vie_Latn", "deu_Latn", "rus_Cyrl", "arb_Arab", "aai_Latn", "ace_Arab", "eng_Latn")
CROSS_DOCS = 20
CROSS_CHARS = 1_000
#: the documented defaults of a language without a FineWeb-2 config (docs/fineweb2.md, "Per-language configs")
DEFAULTS = {
    "language_score": 0.65, "dup_line_frac": 0.3, "top_n_grams": [[2, 0.2], [3, 0.18], [4, 0.16]],
    "dup_n_grams": [[5, 0.15], [6, 0.14], [7, 0.13], [8, 0.12], [9, 0.11], [10, 0.10]], "line_punct_thr": 0.12,
    "new_line_ratio": 0.3, "max_avg_word_length": 10, "min_avg_word_length": 3, "max_non_alpha_words_ratio": 0.8,
}


def _spacy_examples() -> list[tuple[str, str]]:
    """(source, text): each spaCy language's example sentences as one document."""
    import pkgutil

    import spacy.lang

    docs = []
    for module in sorted(m.name for m in pkgutil.iter_modules(spacy.lang.__path__)):
        try:
            sentences = importlib.import_module(f"spacy.lang.{module}.examples").sentences
        except (ImportError, AttributeError):
            continue
        docs.append((f"spacy.lang.{module}.examples", "\n".join(sentences)))
    return docs


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> list[tuple[str, str]]:
    docs = extracted_texts(tmp_path_factory.getbasetemp()) + _spacy_examples()
    assert len(docs) > 90, "too few multilingual documents for a meaningful parity check"
    return docs


def _cut(text: str) -> str:
    """The text's first lines up to CROSS_CHARS characters (whole lines; at least one)."""
    if len(text) <= CROSS_CHARS:
        return text
    end = text.rfind("\n", 0, CROSS_CHARS)
    return text[: end if end > 0 else CROSS_CHARS]


@pytest.fixture(scope="module")
def cases(documents) -> dict[str, list[str]]:
    """label -> the texts checked under it."""
    lid = LanguageFilter(labels="fineweb2", label_only=True)
    lid.setup()
    batch = DocBatch({"text": [text for _, text in documents]})
    lid.filter_batch(batch)
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, code, script in zip(batch["text"], batch["language"], batch["language_script"], strict=True):
        label = f"{code}_{script}" if script else code
        if not is_fallback(label):
            by_label[label].append(text)
    sample = random.Random(12).sample([text for _, text in documents], CROSS_DOCS)
    for label in CROSS_LABELS:
        by_label[label] = by_label.get(label, []) + [_cut(text) for text in sample]
    return dict(by_label)


def _config(label: str) -> dict:
    path = config_path(label)
    if path is None:
        english = label == "eng_Latn"
        return {**DEFAULTS, "stopwords": ["the", "be", "to", "of", "and", "that", "have", "with"] if english else [],
                "min_stop_words": 2 if english else 0}
    with open(path, encoding="utf-8") as f:
        return {**yaml.safe_load(f), "min_stop_words": 2}


def _datatrove_filters(label: str) -> list:
    """FineWeb-2's three filters as fineweb-2-pipeline.py builds them."""
    from datatrove.pipeline.filters import FineWebQualityFilter as FW
    from datatrove.pipeline.filters import GopherQualityFilter as GQ
    from datatrove.pipeline.filters import GopherRepetitionFilter as GR

    c = _config(label)
    return [
        GR(language=label, dup_para_frac=0, dup_line_char_frac=0, dup_para_char_frac=0,
           dup_line_frac=c["dup_line_frac"], top_n_grams=c["top_n_grams"], dup_n_grams=c["dup_n_grams"]),
        FW(language=label, short_line_thr=999, char_duplicates_ratio=0.1, line_punct_thr=c["line_punct_thr"],
           new_line_ratio=c["new_line_ratio"]),
        GQ(language=label, max_avg_word_length=c["max_avg_word_length"],
           min_avg_word_length=c["min_avg_word_length"], stop_words=c["stopwords"],
           max_non_alpha_words_ratio=c["max_non_alpha_words_ratio"], min_stop_words=c["min_stop_words"]),
    ]


def _datatrove_reason(dt_filter, text: str) -> str | None:
    try:
        verdict = dt_filter.filter(Document(text=text, id="0"))
    except ZeroDivisionError:
        return "datatrove: ZeroDivisionError"
    keep, reason = verdict if isinstance(verdict, tuple) else (verdict, None)
    return None if keep else (reason or "filtered")


@pytest.mark.slow
def test_words_and_decisions_match_datatrove(cases):
    summary = []
    failures = []
    for label, texts in sorted(cases.items()):
        code, script = split_label(label)
        n = len(texts)
        batch = DocBatch({"text": list(texts), "language": [code] * n, "language_script": [script] * n})
        ours_filters = [cls(language_config="fineweb2")
                        for cls in (GopherRepetitionFilter, FineWebQualityFilter, GopherQualityFilter)]
        ours = []
        for step in ours_filters:
            step.setup()
            ours.append(step.filter_batch(batch))
        our_words = batch.derived_by_language("words_by_language", [label] * len(texts), lambda *_: None)
        theirs_filters = _datatrove_filters(label)
        differing_docs = 0
        for i, text in enumerate(texts):
            their_words = split_into_words(text, label)
            if their_words != our_words[i]:
                failures.append((label, i, "words differ", text[:80]))
            doc_differs = False
            for f, (dt_filter, reasons) in enumerate(zip(theirs_filters, ours, strict=True)):
                theirs = _datatrove_reason(dt_filter, text)
                if theirs != reasons[i]:
                    doc_differs = True
                    failures.append((label, i, type(ours_filters[f]).__name__, theirs, reasons[i]))
            differing_docs += doc_differs
        agreement = 1 - differing_docs / len(texts)
        summary.append(f"{label}: {len(texts)} docs, agreement {agreement:.1%}")
        if len(texts) >= 20:
            assert agreement >= MIN_AGREEMENT, f"{label}: {failures[:5]}"
    print("\n".join(summary))
    assert sum(len(texts) >= 20 for texts in cases.values()) >= len(CROSS_LABELS)
    # no label here uses a fallback tokenizer, so every word list, decision and reason must be identical
    assert not failures, failures[:10]


def test_lid176_labels_have_configs_or_defaults():
    """Every lid.176 label used above maps to a code_3+script label (tl and bh are the documented exceptions)."""
    import fasttext

    from tamis.resources import resource_path

    model = fasttext.load_model(str(resource_path("lid.176.ftz")))
    unmapped = sorted(label[9:] for label in model.get_labels() if iso_to_fineweb2(label[9:])[1] is None)
    assert unmapped == ["bh", "tl"]
