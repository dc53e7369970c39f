"""Custom filters: the three examples in filters/, discovery, validation, and a run on Ray."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import REPO, SAMPLE_DIR, SHARED

from tamis.batch import DocBatch
from tamis.engine.runner import run_pipeline
from tamis.pipeline.spec import PipelineError, parse_pipeline
from tamis.stats.counters import StepCounters
from tamis.steps.base import StepContext
from tamis.steps.registry import get_step_class, load_plugin_dir

PLUGINS = REPO / "filters"
load_plugin_dir(PLUGINS)


def run_filter(step, texts: list[str], urls: list[str] | None = None) -> tuple[DocBatch, StepCounters]:
    counters = StepCounters()
    urls = urls or [f"https://example.org/{i}" for i in range(len(texts))]
    batch = DocBatch({"id": [str(i) for i in range(len(texts))], "url": urls, "text": list(texts)})
    step.setup()
    return step.process(batch, StepContext("f", counters)), counters


def test_examples_are_discovered() -> None:
    for name in ("domain_filter", "keyword_filter", "min_words", "fasttext_quality"):
        assert get_step_class(name).kind == "filter"


def test_domain_filter_matches_subdomains() -> None:
    step = get_step_class("domain_filter")(deny=["spam.com"], allow=None)
    urls = ["https://spam.com/a", "http://www.spam.com/b", "https://notspam.com/c", "https://spam.com.evil.org/"]
    out, counters = run_filter(step, ["t"] * 4, urls)
    assert out["url"] == ["https://notspam.com/c", "https://spam.com.evil.org/"]
    assert counters.dropped == {"denied_domain": 2}
    allow = get_step_class("domain_filter")(deny=None, allow=["example.org"])
    out, counters = run_filter(allow, ["t"] * 3, ["https://a.example.org/", "https://example.org/", "https://b.net/"])
    assert len(out) == 2 and counters.dropped == {"not_allowed_domain": 1}


def test_keyword_filter_is_vectorised_regex() -> None:
    step = get_step_class("keyword_filter")(patterns=["casino", r"buy\s+now"], ignore_case=True)
    texts = ["Best CASINO bonus", "please buy   now", "a quiet essay about buying", "nothing here"]
    out, counters = run_filter(step, texts)
    assert out["text"] == ["a quiet essay about buying", "nothing here"]
    assert counters.dropped == {"matched_keyword": 2}


def test_function_filter_parameters_are_validated() -> None:
    spec = parse_pipeline({"steps": [{"step": "min_words", "minimum": 3}]})
    assert spec.steps[0].params == {"minimum": 3}
    with pytest.raises(PipelineError, match=r"min_words\)\.minimum: expected int"):
        parse_pipeline({"steps": [{"step": "min_words", "minimum": "three"}]})
    with pytest.raises(PipelineError, match=r"min_words\)\.minimun: unknown parameter. Did you mean 'minimum'"):
        parse_pipeline({"steps": [{"step": "min_words", "minimun": 3}]})
    with pytest.raises(PipelineError, match=r"keyword_filter\)\.patterns: required parameter is missing"):
        parse_pipeline({"steps": [{"step": "keyword_filter"}]})
    step = spec.steps[0].build()
    out, counters = run_filter(step, ["one two three", "one two"])
    assert out["text"] == ["one two three"] and counters.dropped == {"too_few_words": 1}


def _real_paragraphs() -> list[str]:
    truth = json.loads((SHARED / "extraction" / "scrapinghub_aeb" / "ground-truth.json").read_text())
    paragraphs = []
    for item in truth.values():
        paragraphs += [p for p in re.split(r"\n+", item["articleBody"]) if len(p.split()) >= 25]
    return paragraphs


def test_fasttext_quality_filter_with_a_model_trained_here(tmp_path: Path) -> None:
    rng = random.Random(0)
    paragraphs = _real_paragraphs()
    rng.shuffle(paragraphs)
    train, held_out = paragraphs[:-100], paragraphs[-100:]

    def shuffled(text: str) -> str:
        words = text.split()
        rng.shuffle(words)
        return " ".join(words)

    lines = [f"__label__hq {p}" for p in train] + [f"__label__lq {shuffled(p)}" for p in train]
    rng.shuffle(lines)
    train_file = tmp_path / "train.txt"
    train_file.write_text("\n".join(line.replace("\n", " ") for line in lines))
    model_path = tmp_path / "quality.bin"
    # Trained in a fresh interpreter: inside a long pytest process, another library's floating-point state
    # made fastText's training diverge ("Encountered NaN") although the same call succeeds on its own.
    train = (
        "import fasttext, sys\n"
        "m = fasttext.train_supervised(sys.argv[1], wordNgrams=2, epoch=20, lr=0.2, dim=16, minCount=1,"
        " bucket=200_000, thread=1, seed=0)\n"
        "m.save_model(sys.argv[2])\n"
    )
    subprocess.run([sys.executable, "-c", train, str(train_file), str(model_path)], check=True,
                   capture_output=True, timeout=300)

    step = get_step_class("fasttext_quality")(model_path=str(model_path), threshold=0.5)
    texts = held_out + [shuffled(p) for p in held_out]
    out, counters = run_filter(step, texts)
    kept = set(out["text"])
    real_kept = sum(p in kept for p in held_out)
    shuffled_kept = len(out) - real_kept
    print(f"real kept {real_kept}/100, shuffled kept {shuffled_kept}/100")
    assert real_kept >= 80, real_kept
    assert shuffled_kept <= 20, shuffled_kept
    assert counters.dropped["low_quality"] == len(texts) - len(out)


def test_plugin_filter_runs_on_ray_and_writes_removed_documents(ray_session, tmp_path: Path) -> None:
    pipeline = {
        "plugins": [str(PLUGINS)],
        "steps": [
            {"step": "trafilatura"},
            {"step": "keyword_filter", "patterns": ["creative commons"]},
            {"step": "min_words", "minimum": 100},
            {"step": "token_count"},
        ],
        "removed": {"mode": "full"},
    }
    output = tmp_path / "out"
    result = run_pipeline(parse_pipeline(pipeline), [str(SAMPLE_DIR / "dolma_sample-0001.warc.gz")], str(output),
                          show_progress=False)
    assert result.ok
    kept = pq.read_table(next(output.glob("data/*/*.parquet"))).to_pylist()
    assert kept and not any("creative commons" in row["text"].lower() for row in kept)
    removed = pq.read_table(next(output.glob("removed/keyword_filter/*.parquet"))).to_pylist()
    assert removed and all("creative commons" in row["text"].lower() for row in removed)
    assert {row["reason"] for row in removed} == {"matched_keyword"}
    counters = result.counters.steps
    assert counters["keyword_filter"].dropped["matched_keyword"] == len(removed)
    assert counters["min_words"].docs_out == len(kept)



def test_a_plugin_that_raises_on_import_is_a_clear_error_before_anything_starts(tmp_path: Path) -> None:
    """The user's file and line and the exception, exit 2 (a bad pipeline: nothing started), no output."""
    from click.testing import CliRunner

    from tamis.cli.main import cli

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text("import math\n\nx = 1\nvalue = math.sqrt(-x)\n")
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("steps:\n  - step: min_words\n    minimum: 3\n")
    out = tmp_path / "out"
    sample = str(next(SAMPLE_DIR.glob("*.warc.gz")))
    result = CliRunner().invoke(cli, ["run", str(pipeline), "--input", sample, "--output", str(out),
                                      "--plugins", str(PLUGINS), "--plugins", str(plugins)], terminal_width=400)
    assert result.exit_code == 2, result.output
    flat = "".join(result.output.split())  # the console wraps long paths
    assert f"plugin{(plugins / 'broken.py').resolve()},line4:importingitraisedValueError:mathdomainerror" in flat
    assert "Traceback" not in result.output
    assert not out.exists()
    result = CliRunner().invoke(cli, ["steps", "--plugins", str(plugins)], terminal_width=400)
    assert result.exit_code == 2 and "line4" in "".join(result.output.split()), result.output
    (plugins / "broken.py").write_text("def f(:\n")
    result = CliRunner().invoke(cli, ["steps", "--plugins", str(plugins)], terminal_width=400)
    assert result.exit_code == 2, result.output
    assert "line1:importingitraisedSyntaxError" in "".join(result.output.split()), result.output
    # named by module in the pipeline's `plugins:`
    (plugins / "broken.py").unlink()
    (tmp_path / "boom_plugin.py").write_text("raise RuntimeError('no key set')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(PipelineError, match="importing 'boom_plugin' raised RuntimeError: no key set"):
            parse_pipeline({"plugins": ["boom_plugin"], "steps": []}, str(tmp_path / "q.yaml"))
    finally:
        sys.path.remove(str(tmp_path))
