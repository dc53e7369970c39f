"""Several extraction children on one file's pages give one child's text (tamis.extract.speculative).

Every comparison is against ExtractionSandbox.extract_many with one child, the path a one-CPU task takes,
itself checked against `trafilatura.extract` in tests/test_extract.py.
"""

from __future__ import annotations

import os
import random
from collections import OrderedDict

import pytest
from conftest import REPO
from test_extract import pages, slow_page
from test_fast_trafilatura import benchmark_pages, warc_pages
from trafilatura.deduplication import LRUCache
from trafilatura.settings import Extractor

from tamis.extract import trafilatura_engine
from tamis.extract.page_dependence import INDEPENDENT, SEQUENTIAL
from tamis.extract.sandbox import ExtractionSandbox, ExtractionTimeout, ExtractorCrashed
from tamis.extract.speculative import SegmentModel, SpeculativeExtraction

ENGINE = "tamis.extract.trafilatura_engine:build"
# FineWeb's settings with the fast path, as the `trafilatura` step runs them by default
PARAMS = {"favor_precision": True, "include_comments": False, "deduplicate": True, "fast_path": True}

pytestmark = pytest.mark.skipif(trafilatura_engine.trafilatura.__version__
                                not in trafilatura_engine.SEGMENT_MODEL_VERIFIED,
                                reason="segment model not verified for this trafilatura")


def outcomes(results: list) -> list:
    """Results with errors as their types (two ExtractionTimeout instances never compare equal)."""
    return [type(result) if isinstance(result, Exception) else result for result in results]


def one_child_and_several(htmls: list[str], processes: int, timeout: float = 60.0,
                          params: dict | None = None, engine: str = ENGINE) -> tuple[list, list, SpeculativeExtraction]:
    got, several = several_children(htmls, processes, timeout, params, engine)
    return one_child(htmls, timeout, params, engine), got, several


def one_child(htmls: list[str], timeout: float = 60.0, params: dict | None = None, engine: str = ENGINE) -> list:
    """What one child gives, page after page: the reference."""
    one = ExtractionSandbox(engine, params or PARAMS, timeout)
    try:
        return outcomes(one.extract_many(htmls))
    finally:
        one.close()


def several_children(htmls: list[str], processes: int, timeout: float = 60.0, params: dict | None = None,
                     engine: str = ENGINE) -> tuple[list, SpeculativeExtraction]:
    several = SpeculativeExtraction(engine, params or PARAMS, timeout, processes=processes)
    try:
        several.start()
        return outcomes(several.extract_many(htmls)), several
    finally:
        several.close()


def repeated_stream(htmls: list[str], copies: int, seed: int) -> list[str]:
    """Each page `copies` times, the copies a few pages apart: what a crawl's repeated pages and shared
    boilerplate look like to trafilatura's segment cache, within the distance children extract ahead."""
    rng = random.Random(seed)
    stream = [(index + rng.random() * 6, html) for index, html in enumerate(htmls) for _ in range(copies)]
    return [html for _, html in sorted(stream, key=lambda pair: pair[0])]


def test_segment_model_counts_and_orders_as_trafilaturas_cache() -> None:
    """The model replays a query log of trafilatura's own LRU cache (small, so eviction happens often) to the
    same counts in the same order, and tells an answer that differs only where it changes the text."""
    rng = random.Random(7)
    cache = LRUCache(maxsize=20)
    model = SegmentModel(maxsize=20, min_length=10, max_repetitions=2)
    words = [f"long segment {i} " * (1 + i % 2) for i in range(30)] + [f"s{i}" for i in range(10)]
    for _ in range(200):
        log = [(key, cache.increment(key)) for key in rng.choices(words, k=rng.randint(1, 12))]
        assert model.replay(log)
        assert model.counts == OrderedDict(cache.cache) and list(model.counts) == list(cache.cache)
    short, long = "s1", "long segment 3 long segment 3 "
    assert model.replay([(short, 99)])  # short segments are never dropped: their count does not matter
    assert model.counts.get(long, -1) <= 2  # so an answer of 'seen 5 times' is one the real cache did not give
    assert not model.replay([(long, 5)])


@pytest.mark.parametrize("checkpoint_every", [1, 3, 64])
def test_a_page_that_does_not_match_leaves_the_model_as_it_was(checkpoint_every: int) -> None:
    """`accept` rolls a mismatching page back to the state before it, same counts in the same order, whether
    the last checkpoint is just before the page or pages back, with evictions in between; the accepted pages
    match trafilatura's own cache throughout."""
    rng = random.Random(11)
    cache = LRUCache(maxsize=15)
    model = SegmentModel(maxsize=15, min_length=10, max_repetitions=2, checkpoint_every=checkpoint_every)
    words = [f"long segment {i} " * (1 + i % 2) for i in range(25)] + [f"s{i}" for i in range(8)]
    rollbacks = 0
    for _ in range(300):
        before = list(model.counts.items())
        keys = rng.choices(words, k=rng.randint(1, 14))
        if rng.random() < 0.3:
            # a guessed page: its child's cache said "seen 9 times" somewhere the real cache did not
            log = [(key, 9 if len(key) > 10 else 0) for key in keys]
            if not model.accept(log):
                rollbacks += 1
                assert list(model.counts.items()) == before
                continue
            for key in keys:  # accepted: the answers happened to match, so the real cache counts them too
                cache.increment(key)
        else:
            assert model.accept([(key, cache.increment(key)) for key in keys])
        assert list(model.counts.items()) == list(cache.cache.items())
    assert rollbacks > 20


def test_the_engine_reports_trafilaturas_own_rule_and_its_cache_replays() -> None:
    """The child's rule is the installed trafilatura's (cache size and thresholds), and a child whose cache was
    loaded from the model holds, after a page, what the model holds after replaying that page's queries."""
    sandbox = ExtractionSandbox(ENGINE, PARAMS, 60.0)
    try:
        sandbox.extract("<html><body><p>ready</p></body></html>")
        options = Extractor()
        from trafilatura.settings import LRU_SIZE

        assert sandbox.page_dependence == (LRU_SIZE, options.min_duplcheck_size, options.max_repetitions)
        plain = ExtractionSandbox(ENGINE, {**PARAMS, "deduplicate": False}, 60.0)
        plain.extract("<html></html>")
        assert plain.page_dependence == INDEPENDENT
        plain.close()
        model = SegmentModel(*sandbox.page_dependence)
        to_child, from_child = sandbox.ready_pipes()
        from tamis.extract.sandbox import read_message, write_message

        def ask(command: str, payload) -> object:
            write_message(to_child, (command, payload))
            return read_message(from_child, None)[1]

        for html in pages("dolma_sample-0000.warc.gz")[:6] * 2:
            write_message(to_child, ("load", model.entries()))
            text, queries = ask("traced", html)
            assert queries and model.replay(queries)
            assert ask("dump", None) == model.entries()
    finally:
        sandbox.close()


@pytest.mark.slow
def test_two_children_give_one_childs_text_on_every_real_page() -> None:
    """Every HTML page of ../shared/data (the WARC samples and both extraction sets), as one file."""
    htmls = warc_pages() + benchmark_pages(1)
    assert len(htmls) > 500
    expected, got, several = one_child_and_several(htmls, processes=2)
    assert got == expected
    assert sum(isinstance(text, str) for text in expected) > 300


@pytest.mark.slow
def test_repeated_pages_where_guesses_go_wrong_are_extracted_again_to_the_same_text() -> None:
    """Pages and site boilerplate repeated close together: the cache drops segments on later copies, the
    children's guessed caches miss some of that, and those pages are extracted again from the model."""
    site = pages("ia-2008-heritrix_archive-org_sample.warc.gz")[:40]  # one site's pages share boilerplate
    htmls = repeated_stream(pages("dolma_sample-0000.warc.gz") + site, copies=4, seed=3)
    expected = one_child(htmls)  # once: the reference for both
    for processes in (2, 3):
        got, several = several_children(htmls, processes=processes)
        assert got == expected
        assert several.rerun_pages > 0  # the exact re-extraction was needed, and gave the one child's text
    first_text: dict[str, object] = {}
    changed = 0
    for html, text in zip(htmls, expected, strict=True):
        changed += html in first_text and first_text[html] != text
        first_text.setdefault(html, text)
    assert changed > 10  # the cache really shaped the text: later copies lost segments


def test_timeouts_among_guessed_pages_give_one_childs_results() -> None:
    """A page over the limit ends the one child, whose replacement starts with an empty cache: the several
    children give the same timeouts and the same text after them."""
    monster = slow_page()  # ~1.8 CPU s against a 0.2 s limit
    real = pages("dolma_sample-0001.warc.gz")  # 4-37 ms each
    htmls = repeated_stream(real, copies=3, seed=5)
    htmls[10:10] = [monster]
    htmls[30:30] = [monster]
    expected, got, _ = one_child_and_several(htmls, processes=2, timeout=0.2)
    assert got == expected
    assert got.count(ExtractionTimeout) == 2 and ExtractorCrashed not in got


def test_independent_and_sequential_engines(monkeypatch) -> None:
    """resiliparse's pages are shared out as they come; an engine that says nothing of its pages keeps to
    one child (the others closed), so its state carries from page to page as in one child."""
    htmls = pages("dolma_sample-0000.warc.gz")
    params = {"main_content": True, "alt_texts": False, "preserve_formatting": True}
    expected, got, several = one_child_and_several(htmls, 2, params=params,
                                                   engine="tamis.extract.resiliparse_engine:build")
    assert got == expected and several.dependence == INDEPENDENT

    # a counter with no page_dependence: each page's answer is the number of pages before it in the child
    scripts = str(REPO / "tests" / "scripts")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([scripts, os.environ.get("PYTHONPATH", "")]))
    counter = SpeculativeExtraction("counting_engine:build", {}, 10.0, processes=2)
    try:
        assert counter.extract_many(["a", "b", "c", "d"]) == ["2", "3", "4", "5"]  # after the warm-up page
        assert counter.dependence == SEQUENTIAL
        assert counter.children[1].sandbox.pipes() is None
    finally:
        counter.close()


def test_children_that_die_on_pages_give_one_childs_results(monkeypatch) -> None:
    """Pages that kill their child, alone, back to back, and while the other child has replies waiting in
    its pipe: each is ExtractorCrashed, as with one child, and every other page has its text."""
    scripts = str(REPO / "tests" / "scripts")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([scripts, os.environ.get("PYTHONPATH", "")]))
    htmls = [f"<p>page {i}</p>" for i in range(40)]
    for i in (3, 4, 17, 39):
        htmls[i] = f"<p>CRASH {i}</p>"
    expected, got, several = one_child_and_several(htmls, processes=2, timeout=10.0, engine="crashing_engine:build")
    assert several.dependence == INDEPENDENT
    assert got == expected
    assert [i for i, result in enumerate(got) if result is ExtractorCrashed] == [3, 4, 17, 39]


def test_an_engine_that_fails_to_start_is_a_clear_error_with_several_children() -> None:
    several = SpeculativeExtraction("time:sleep", {}, 0.5, processes=2)  # sleep(**{}) fails in the child
    try:
        with pytest.raises(RuntimeError, match="failed to start"):
            several.extract_many(["<html></html>"])
    finally:
        several.close()
