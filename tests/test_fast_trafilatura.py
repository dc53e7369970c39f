"""The fast trafilatura path gives plain trafilatura's text, byte for byte (differential tests).

CI runs a large, representative subset (text: every WARC-sample page, every sixth extraction-benchmark
page, the generated pathological pages; rule objects: a third of those pages);
`benchmarks/bench_extraction.py --all-shared` runs every page of ../shared/data and measures the speed.
"""

from __future__ import annotations

import gzip
import random
import re

import pytest
import trafilatura
from conftest import SHARED, WARC_DIR
from lxml import etree
from trafilatura.deduplication import LRU_TEST
from trafilatura.utils import load_html

from tamis.extract import fast_trafilatura, regex_xpath, rule_pass
from tamis.readers.warc import WarcReader
from tamis.stats.counters import StepCounters

pytestmark = pytest.mark.skipif(not fast_trafilatura.is_verified(), reason="trafilatura version not verified")


def warc_pages() -> list[str]:
    htmls = []
    for path in sorted(WARC_DIR.glob("*.warc.gz")):
        for batch in WarcReader().iter_batches(str(path), StepCounters()):
            htmls.extend(html for html in batch["html"] if html)
    return htmls


def benchmark_pages(step: int) -> list[str]:
    htmls = []
    for folder in ("extraction/scrapinghub_aeb/html", "extraction/readability_testpages/html"):
        for path in sorted((SHARED / folder).glob("*.html.gz"))[::step]:
            htmls.append(gzip.decompress(path.read_bytes()).decode("utf-8", "replace"))
    return htmls


def rule_calls() -> list[tuple[str, str]]:
    """Each (original re:test call, replacement) of the installed trafilatura's rules."""
    pairs: list[tuple[str, str]] = []
    for rewrite in fast_trafilatura.plan_rewrites():
        fast_trafilatura.rewrite_path(rewrite.original.path, record=pairs)
    return sorted(set(pairs))


def tricky_values(rng: random.Random) -> list[str]:
    """Attribute values crafted from the rules' own literals: case, Unicode folds, whitespace, edges."""
    words = set()
    for _original, replacement in rule_calls():
        for literal in re.findall(r"'([^']{2,})'", replacement):
            words.update(w for w in re.split(r"[|()?^$\[\]{},*+\\:]+", literal) if 2 <= len(w) <= 40)
    words = sorted(w for w in words if not any(c in w for c in "\t\n"))
    variants = ["", " ", "\n", "x", "K", "\u212a", "\u017f", "\u0130", "\u0131", "\xa0", "\u3000", "\x85"]
    values = []
    for word in words:
        for form in (word, word.upper(), word.lower(), word.swapcase(), word.title()):
            values.extend([form, f" {form}", f"{form} ", f"{form}\n", f"a{form}b", f"{form}\u3000x", f"\xa0{form}"])
        cut = rng.randrange(1, len(word))
        values.append(word[:cut] + rng.choice(variants) + word[cut:])
        values.append(word.replace("k", "\u212a").replace("s", "\u017f").replace("i", "\u0130"))
        values.append(word[:-1])
    return values


def test_every_rewritten_call_equals_re_test_on_crafted_values() -> None:
    """Element by element: the derived predicate and `re:test` agree on values built to hit edge cases."""
    calls = rule_calls()
    assert sum(original != replacement for original, replacement in calls) >= 10
    values = tricky_values(random.Random(11))
    attrs = ("id", "class", "style")
    root = etree.Element("root")
    rng = random.Random(7)
    for value in values:
        for names in (("class",), ("id",), ("id", "class"), ("class", "id"), ("style", "id")):
            element = etree.SubElement(root, "div")
            for name in names:
                element.set(name, value if rng.random() < 0.8 else rng.choice(values))
    etree.SubElement(root, "div")  # no attributes at all
    ns = {"re": fast_trafilatura.EXSLT_REGEXP}
    elements = list(root)
    assert len(elements) > 5000
    discriminating = 0
    for original, replacement in calls:
        if original == replacement:
            continue
        want = etree.XPath(f"./*[{original}]", namespaces=ns)(root)
        got = etree.XPath(f"./*[{replacement}]", namespaces=ns)(root)
        assert want == got, original
        discriminating += 0 < len(want) < len(elements)
    assert discriminating == sum(original != replacement for original, replacement in calls)
    assert {a for e in elements for a in e.attrib} == set(attrs)


def test_regex_forms_follow_python_semantics() -> None:
    """Semantics re:test inherits from Python `re`, checked against the engine on crafted strings."""
    cases = [
        ("(^|\\s)ab|ab(\\s|$)", False, ["ab", "xab", "x ab", "x\u3000ab", "ab\n", "abx", "ab\nx", "\tab"]),
        ("^[Cc]omment(?!ary)|x-?y", False, ["Comment", "commentary", "Commentar", "xy", "x-y", "x--y", "comments"]),
        ("fulltext", True, ["FULLTEXT", "fullte\u212at", "ful\u0131text", "fulltex"]),
        ("a[-_]{0,2}b$", False, ["ab", "a-_b", "a---b", "ab\n", "ab\n\n", "xa_b"]),
    ]
    for pattern, ignore_case, values in cases:
        expression = etree.XPath(f"./*[{regex_xpath.test_to_xpath('@v', pattern, ignore_case)}]")
        root = etree.Element("r")
        for value in values:
            etree.SubElement(root, "e").set("v", value)
        flags = re.IGNORECASE if ignore_case else 0
        assert [e.get("v") for e in expression(root)] == [v for v in values if re.search(pattern, v, flags)]
    with pytest.raises(regex_xpath.Unsupported):
        regex_xpath.test_to_xpath("@v", "a+b", False)


def test_rewritten_rules_select_the_same_nodes_on_real_pages() -> None:
    trees = [load_html(html) for html in warc_pages()[::3] + benchmark_pages(12)]
    problems = fast_trafilatura.verify_rules([t for t in trees if t is not None], contexts=2)
    assert problems == []


def pathological_pages(rng: random.Random) -> list[str]:
    values = tricky_values(rng)
    deep = "".join(f"<div class='{rng.choice(values)}'>" for _ in range(400)) + "<p>deep text " * 30
    many = "".join(
        f"<{rng.choice(['div', 'p', 'span', 'section', 'li'])} class='{rng.choice(values)}' id='{rng.choice(values)}'>"
        f"word {i} of a long enough sentence that counts as text.</p>"
        for i in range(3000)
    )
    huge = f"<div class='{'a' * 200_000} nav'><p>{'text ' * 200}</p></div><div id='{'comment' * 5000}'>x</div>"
    crafted = "".join(
        f"<div class=\"{html_escape(v)}\"><p>Paragraph under {i} with enough words to be kept.</p></div>"
        for i, v in enumerate(values[:800])
    )
    odd = "<html><head><meta charset='windows-1252'></head><body><article><p>caf\xe9 \x85 \u212a\u017f</p>" * 20
    controls = "<div class='nav\x0bbar\x1cx'><p>" + "control chars in attributes. " * 20 + "</p></div>"
    pages = [deep, many, huge, crafted, odd, controls]
    return [f"<html><body><article>{page}</article></body></html>" for page in pages]


def html_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def extract_all(htmls: list[str]) -> list[str | None]:
    LRU_TEST.clear()  # deduplicate=True keeps a process-wide cache: same order, same start, both sides
    return [trafilatura.extract(h, favor_precision=True, include_comments=False, deduplicate=True) for h in htmls]


@pytest.mark.slow
def test_fast_path_text_is_identical_to_plain_trafilatura() -> None:
    htmls = warc_pages() + benchmark_pages(6) + pathological_pages(random.Random(3))
    assert len(htmls) > 250
    plain = extract_all(htmls)
    assert fast_trafilatura.install()
    try:
        fast = extract_all(htmls)
    finally:
        fast_trafilatura.uninstall()
    assert sum(1 for text in plain if text) > 150
    mismatches = [i for i, (a, b) in enumerate(zip(plain, fast, strict=True)) if a != b]
    assert mismatches == []


def test_unverified_version_runs_plain_trafilatura_with_one_warning(monkeypatch) -> None:
    monkeypatch.setattr(fast_trafilatura, "VERIFIED_VERSIONS", frozenset({"0.0.0"}))
    with pytest.warns(UserWarning, match="not verified"):
        assert fast_trafilatura.install() is False
    assert fast_trafilatura._installed is None


def test_rule_lists_compile_and_select_what_their_xpath_selects_on_real_pages() -> None:
    """The one-walk rules: most of the pruning lists compile, the chains are found in trafilatura's source,
    and on real pages every compiled rule selects exactly its XPath object's elements, in order."""
    from tamis.extract import rule_lists

    rewrites = fast_trafilatura.plan_rewrites()
    originals = {id(r.replacement): r.original for r in rewrites}
    modules = fast_trafilatura._trafilatura_modules()
    lists, _notes = rule_lists.plan_rule_lists(modules, originals)
    assert sum(rule_list.compiled for rule_list in lists.values()) >= 12
    chains = rule_lists.plan_chains(modules, lists)
    assert len({site[0] for site in chains.values()}) >= 2
    trees = [t for t in (load_html(html) for html in warc_pages()[::4] + benchmark_pages(15)) if t is not None]
    for rule_list in lists.values():
        objects = [originals.get(id(o), o) for o in rule_list.objects]
        assert rule_pass.check(rule_list, objects, trees) == []


def test_a_compiled_rule_that_differs_from_its_xpath_is_not_used() -> None:
    root = etree.fromstring("<r><div class='nav'/><div class='x'/><p class='nav'/></r>")
    rule_list = rule_pass.RuleList([etree.XPath(".//*[self::div][contains(@class, 'nav')]")],
                                   [".//*[self::div][contains(@class, 'nav')]"], {})
    assert rule_list.compiled == 1
    wrong = etree.XPath(".//*[contains(@class, 'nav')]")  # also selects the <p>
    assert rule_pass.check(rule_list, [wrong], [root]) != []
    assert rule_list.compiled == 0


def _chain_example(tree, a, b, flag, prune_unwanted_nodes=None):  # noqa: ANN001, ANN202 - parsed, never run
    tree = prune_unwanted_nodes(tree, a)
    if flag and not a:
        tree = prune_unwanted_nodes(tree, b)
    tree.set("x", "y")
    tree = prune_unwanted_nodes(tree, a)
    if flag:
        tree = prune_unwanted_nodes(tree, b)
    tree = prune_unwanted_nodes(tree, len(a))
    return tree


def test_prune_chains_stop_at_anything_that_may_change_the_tree() -> None:
    from tamis.extract.prune_chains import chains_of

    chains = chains_of(_chain_example)
    assert [[name for _first, _last, name in chain] for chain in chains] == [["a", "b"], ["a", "b"]]


def test_readability_memo_only_for_scoring_code_that_reads_the_tree() -> None:
    import trafilatura.readability_lxml as readability

    from tamis.extract import readability_memo

    assert readability_memo.scoring_reads_only(readability)
    assert not readability_memo._reads_only(readability.Document.sanitize)  # drops elements
    assert not readability_memo._reads_only(readability.Document.transform_misused_divs_into_paragraphs)
