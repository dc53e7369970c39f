"""FineWeb-2's language layer: packaged configs and their defaults, labels, word tokenizers, language_id options,
and the quality filters' `language_config: fineweb2` (parameters, shared words, counters)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import SHARED

from tamis.annotate.language import LanguageFilter, Reasons
from tamis.batch import DocBatch
from tamis.filters.fineweb_quality import FineWebQualityFilter
from tamis.filters.gopher_quality import GopherQualityFilter
from tamis.filters.gopher_repetition import GopherRepetitionFilter
from tamis.fineweb2.configs import (
    CONFIG_KEYS,
    check_config_dir,
    config_or_default,
    default_config,
    language_config,
    packaged_config_dir,
)
from tamis.fineweb2.labels import iso_to_fineweb2, split_label
from tamis.fineweb2.per_language import Events
from tamis.pipeline.spec import PipelineError, parse_pipeline
from tamis.stats.counters import StepCounters
from tamis.steps.base import StepContext
from tamis.text.languages import is_fallback, split_words_for, tokenizer_name_for
from tamis.text.words import split_words

GERMAN = (
    "Die Stadt liegt am Ufer des Flusses und ist für ihre alte Brücke bekannt.\n"
    "Im Sommer kommen viele Besucher, die durch die engen Gassen der Altstadt laufen.\n"
    "Der Markt wurde im Mittelalter gegründet und ist bis heute das Zentrum des Lebens.\n"
) * 2


def test_packaged_configs_are_fineweb2s_files():
    files = sorted(packaged_config_dir().glob("*.yml"))
    assert len(files) == 1929
    assert (packaged_config_dir().parent / "LICENSE").is_file()
    source = SHARED / "fineweb2" / "configs" / "deu_Latn.yml"
    german = language_config("deu_Latn")
    if source.is_file():
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
        assert german.language_score == raw["language_score"]
        assert german.stopwords == tuple(raw["stopwords"])
        assert german.dup_n_grams == tuple((n, f) for n, f in raw["dup_n_grams"])
    assert not german.is_default
    assert language_config("xyz_Zzzz") is None
    assert language_config("../deu_Latn") is None


def test_defaults_and_override_dir(tmp_path):
    default = config_or_default("xyz_Latn")
    assert default.is_default and default == default_config("xyz_Latn")
    assert default.language_score == 0.65 and default.stopwords == ()
    assert config_or_default("eng_Latn").stopwords == ("the", "be", "to", "of", "and", "that", "have", "with")
    raw = yaml.safe_load((packaged_config_dir() / "deu_Latn.yml").read_text(encoding="utf-8"))
    (tmp_path / "deu_Latn.yml").write_text(yaml.safe_dump({**raw, "language_score": 0.5}))
    (tmp_path / "xyz_Latn.yml").write_text(yaml.safe_dump({**raw, "stopwords": ["a"]}))
    assert language_config("deu_Latn", str(tmp_path)).language_score == 0.5
    assert language_config("deu_Latn").language_score == raw["language_score"]
    assert language_config("xyz_Latn", str(tmp_path)).stopwords == ("a",)
    check_config_dir(str(tmp_path))
    (tmp_path / "bad_Latn.yml").write_text(yaml.safe_dump({k: raw[k] for k in CONFIG_KEYS if k != "dup_line_frac"}))
    with pytest.raises(ValueError, match="bad_Latn.yml: missing dup_line_frac"):
        check_config_dir(str(tmp_path))
    with pytest.raises(ValueError, match="not a folder"):
        check_config_dir(str(tmp_path / "nowhere"))


def test_labels():
    assert iso_to_fineweb2("de") == ("deu", "Latn")
    assert iso_to_fineweb2("zh") == ("cmn", "Hani")
    assert iso_to_fineweb2("sr") == ("srp", "Cyrl")
    assert iso_to_fineweb2("ceb") == ("ceb", "Latn")
    assert iso_to_fineweb2("tl") == ("tl", None)
    assert split_label("deu_Latn") == ("deu", "Latn") and split_label("de") == ("de", None)


def test_word_tokenizers():
    pytest.importorskip("pythainlp", reason="the multilingual tokenizers are missing: pip install -e '.[multilingual]'")
    pytest.importorskip("indicnlp", reason="the multilingual tokenizers are missing: pip install -e '.[multilingual]'")
    text = "Hello, world! It's 3.5 km (or so)."
    for english in ("en", "eng", "eng_Latn"):
        assert split_words_for(text, english) == split_words(text)
    assert tokenizer_name_for("deu_Latn") == tokenizer_name_for("deu") == tokenizer_name_for("de") == "spacy:de"
    assert tokenizer_name_for("tha_Thai") == "pythainlp"
    assert tokenizer_name_for("hin_Deva") == "indicnlp:hi"
    assert is_fallback("cym_Latn") and "stanza" in tokenizer_name_for("cym_Latn")
    assert is_fallback("bod_Tibt")
    assert is_fallback("xyz_Zzzz") and not is_fallback("deu_Latn")
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    for label, sample in (("deu_Latn", "Das ist's, z.B. (gut)."), ("rus_Cyrl", "Это т.е. тест, да?")):
        assert split_words_for(sample, label) == load_word_tokenizer(label).word_tokenize(sample)


def test_language_id_defaults_unchanged():
    texts = [GERMAN, "This is an English sentence about the weather in London today."]
    plain, batch = LanguageFilter(), DocBatch({"text": list(texts)})
    plain.setup()
    assert plain.filter_batch(batch) == [None, None]
    assert batch["language"] == ["de", "en"]
    assert "language_script" not in batch and "top_langs" not in batch
    english = LanguageFilter(languages=["en"])
    english.setup()
    assert english.filter_batch(DocBatch({"text": list(texts)})) == [Reasons.OTHER_LANGUAGE, None]


def test_language_id_fineweb2_options():
    texts = [GERMAN, "This is an English sentence about the weather in London today.", "Hallo hello Welt world ok"]
    step = LanguageFilter(labels="fineweb2", top_langs=True, min_score="per_language", exclude_languages=["en"])
    step.setup()
    batch = DocBatch({"text": list(texts)})
    ctx = StepContext("language_id", StepCounters())
    kept = step.process(batch, ctx)
    assert kept["language"] == ["deu"] and kept["language_script"] == ["Latn"]
    tops = json.loads(kept["top_langs"][0])
    assert list(tops)[0] == "deu_Latn_score" and all(score > 0.01 for score in tops.values())
    assert ctx.counters.dropped[Reasons.EXCLUDED_LANGUAGE] == 1
    assert sum(ctx.counters.dropped.values()) == 2
    # the per-language minimum: German's FineWeb-2 language_score, inclusive
    assert kept["language_score"][0] >= language_config("deu_Latn").language_score


def test_language_id_per_language_counts_defaults(tmp_path):
    step = LanguageFilter(labels="fineweb2", min_score="per_language", config_dir=str(tmp_path))
    step.setup()
    ctx = StepContext("language_id", StepCounters())
    step.process(DocBatch({"text": ["This is an English sentence about the weather in London today."]}), ctx)
    assert ctx.counters.events == {Events.DEFAULT_CONFIG: 1, f"{Events.DEFAULT_CONFIG}.eng_Latn": 1}


def test_language_id_any_fasttext_model_with_scripts(tmp_path):
    """A GlotLID-style model (`__label__xxx_Scrp`) by path gives language and script directly."""
    import fasttext

    train = tmp_path / "train.txt"
    lines = []
    for line in GERMAN.splitlines():
        lines.append(f"__label__deu_Latn {line}")
    for line in ("Москва является столицей России и крупнейшим городом страны.",
                 "Летом в городе проходит много фестивалей и концертов.",
                 "Река протекает через центр города с севера на юг."):
        lines.append(f"__label__rus_Cyrl {line}")
    train.write_text("\n".join(lines * 20) + "\n", encoding="utf-8")
    model = fasttext.train_supervised(str(train), epoch=10, minn=2, maxn=4, dim=16, thread=1, verbose=0)
    path = tmp_path / "glot_like.bin"
    model.save_model(str(path))
    step = LanguageFilter(model_path=str(path), labels="fineweb2", top_langs=True, label_only=True)
    step.setup()
    batch = DocBatch({"text": ["Die Brücke über den Fluss ist alt.", "Город стоит на реке."]})
    step.filter_batch(batch)
    assert batch["language"] == ["deu", "rus"]
    assert batch["language_script"] == ["Latn", "Cyrl"]
    assert "deu_Latn_score" in json.loads(batch["top_langs"][0])


def _fineweb2_batch(texts: list[str], language: str, script: str | None) -> DocBatch:
    n = len(texts)
    return DocBatch({"text": list(texts), "language": [language] * n, "language_script": [script] * n})


def test_filters_share_words_and_count(monkeypatch):
    import tamis.fineweb2.per_language as per_language

    calls = []
    real = per_language._split
    monkeypatch.setattr(per_language, "_split", lambda text, label: calls.append(label) or real(text, label))
    batch = _fineweb2_batch([GERMAN, GERMAN.upper()], "deu", "Latn")
    batch.columns["language"][1] = "cym"
    counters = {}
    for cls in (GopherRepetitionFilter, FineWebQualityFilter, GopherQualityFilter):
        step = cls(language_config="fineweb2")
        step.setup()
        ctx = StepContext(cls.step_name, StepCounters())
        batch = step.process(batch, ctx)
        counters[cls.step_name] = ctx.counters.events
    assert sorted(calls) == ["cym_Latn", "deu_Latn"], "each document split once, shared by the three filters"
    # cym_Latn has a config but a fallback tokenizer (Stanza); counted by every filter that used it
    assert counters["gopher_repetition"].get(f"{Events.FALLBACK_TOKENIZER}.cym_Latn") == 1
    assert Events.DEFAULT_CONFIG not in counters["gopher_repetition"]


def test_filters_use_the_language_config():
    german = language_config("deu_Latn")
    step = GopherQualityFilter(language_config="fineweb2")
    step.setup()
    configured = step._per_language().for_labels(["deu_Latn"])[0]
    assert configured.stop_words == list(german.stopwords) and configured.min_stop_words == 2
    assert configured.min_avg_word_length is None  # German's 0: datatrove skips the check
    assert configured.min_alpha_words_ratio == german.max_non_alpha_words_ratio
    unknown = step._per_language().for_labels(["xyz_Latn"])[0]
    assert unknown.min_stop_words is None  # no stop words for a language without a config
    repetition = GopherRepetitionFilter(language_config="fineweb2")._per_language().for_labels(["deu_Latn"])[0]
    assert repetition.dup_para_frac is None and repetition.dup_n_grams == german.dup_n_grams
    quality = FineWebQualityFilter(language_config="fineweb2")._per_language().for_labels(["deu_Latn"])[0]
    assert (quality.short_line_thr, quality.char_duplicates_ratio) == (999, 0.1)
    assert quality.line_punct_thr == german.line_punct_thr
    # English without language_config: unchanged
    assert GopherQualityFilter().check(GERMAN, split_words(GERMAN), GERMAN.splitlines()) is not None


def test_filters_need_language_column():
    step = FineWebQualityFilter(language_config="fineweb2")
    with pytest.raises(ValueError, match="language_id"):
        step.filter_batch(DocBatch({"text": [GERMAN]}))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"language_config": "fineweb3"}, "language_config"),
        ({"language_config": "fineweb2", "char_duplicates_ratio": 0.05}, "char_duplicates_ratio"),
        ({"config_dir": "/nowhere"}, "config_dir"),
        ({"language_config": "fineweb2", "config_dir": "/nowhere"}, "config_dir"),
    ],
)
def test_bad_parameters_fail_at_load(params, field):
    with pytest.raises(PipelineError, match=field):
        parse_pipeline({"steps": [{"step": "fineweb_quality", **params}]})


def test_language_id_bad_parameters_fail_at_load():
    with pytest.raises(PipelineError, match="labels"):
        parse_pipeline({"steps": [{"step": "language_id", "labels": "glot"}]})
    with pytest.raises(PipelineError, match="config_dir"):
        parse_pipeline({"steps": [{"step": "language_id", "config_dir": str(Path("/nowhere"))}]})
