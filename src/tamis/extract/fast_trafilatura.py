"""A faster trafilatura that gives the same text: its own code, with equivalent, cheaper rule objects.

Most of trafilatura's time goes into its XPath rule lists, whose predicates call EXSLT `re:test` back into
Python once per element per rule (and, through lxml.html's class lookup, once more per element proxy).
`install()` changes nothing of trafilatura's logic; inside the extraction child only, it

1. replaces each rule object that uses `re:test` by an XPath with the same meaning in which every
   `re:test` that has a finite pure-XPath form (`tamis.extract.regex_xpath`) is written that way, so that
   libxml2 evaluates it in C; calls without one stay as they are;
2. gives trafilatura's HTML parsers lxml's C-level class lookup, configured to give every element the
   very class lxml.html's Python lookup gives it;
3. hands trafilatura's own `prune_unwanted_nodes` stand-ins for a rule list's objects that answer from one
   Python walk over the tree, for the list or for a run of lists applied to the same tree
   (`tamis.extract.rule_lists`, `rule_pass`, `xpath_predicates`, `prune_chains`);
4. remembers text lengths within each call of readability's scoring (`tamis.extract.readability_memo`).

Rules are read from the installed trafilatura when the child starts (nothing of them is copied into
tamis). It is used only with the trafilatura versions in `VERIFIED_VERSIONS`, those the differential
test (tests/test_fast_trafilatura.py, benchmarks/bench_extraction.py) has shown to give
identical text on every page; any other version runs plain trafilatura, with one warning.
"""

from __future__ import annotations

import re
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

import lxml.html
import trafilatura
from lxml import etree

from tamis.extract import readability_memo
from tamis.extract.prune_chains import PRUNE
from tamis.extract.regex_xpath import Unsupported, test_to_clauses
from tamis.extract.rule_lists import build_pruner

VERIFIED_VERSIONS = frozenset({"2.3.1"})
EXSLT_REGEXP = "http://exslt.org/regular-expressions"

_SUBJECT = re.compile(r"\s*@[\w.-]+(?:\s*\|\s*@[\w.-]+)*\s*")
_CALL = "re:test("
# Past a few clauses, libxml2's repeated attribute lookups cost more than one callback into Python
# (measured on the shared pages), so longer alternations keep `re:test`, guarded.
MAX_CLAUSES = 3


@dataclass
class Rewrite:
    """One rule object and its faster equivalent, with where trafilatura refers to it."""

    original: etree.XPath
    replacement: etree.XPath
    places: list[tuple[Any, Any]] = field(default_factory=list)  # (module or list, attribute name or index)
    converted: int = 0
    kept: int = 0


def _split_call(path: str, start: int) -> tuple[list[str], int]:
    """Arguments of the call whose '(' ends at `start`, split at top-level commas; and the index after ')'."""
    args, depth, quote, begin, i = [], 1, "", start, start
    while i < len(path):
        char = path[i]
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
            if depth == 0:
                args.append(path[begin:i])
                return args, i + 1
        elif char == "," and depth == 1:
            args.append(path[begin:i])
            begin = i + 1
        i += 1
    raise Unsupported("unbalanced call")


def _literal_value(arg: str) -> str:
    arg = arg.strip()
    if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "'\"" and arg[0] not in arg[1:-1]:
        return arg[1:-1]
    raise Unsupported("argument is not a string literal")


def _string_spans(path: str) -> list[tuple[int, int]]:
    spans, i = [], 0
    while i < len(path):
        if path[i] in "'\"":
            end = path.find(path[i], i + 1)
            if end < 0:
                raise Unsupported("unterminated literal")
            spans.append((i, end))
            i = end + 1
        else:
            i += 1
    return spans


def rewrite_path(path: str, record: list[tuple[str, str]] | None = None) -> tuple[str, int, int]:
    """The path with every convertible `re:test(...)` replaced; and how many were converted and kept.

    `record`, when given, receives each (original call, replacement) pair, for element-level checks.
    """
    out, i, converted, kept = [], 0, 0, 0
    spans = _string_spans(path)
    while True:
        j = path.find(_CALL, i)
        while j >= 0 and any(a < j < b for a, b in spans):
            j = path.find(_CALL, j + 1)
        if j < 0 or (j > 0 and (path[j - 1].isalnum() or path[j - 1] in "_-:.")):
            if j < 0:
                out.append(path[i:])
                return "".join(out), converted, kept
            out.append(path[i : j + 1])
            i = j + 1
            continue
        args, after = _split_call(path, j + len(_CALL))
        original = path[j:after]
        try:
            if len(args) not in (2, 3) or not _SUBJECT.fullmatch(args[0]):
                raise Unsupported("subject is not a plain attribute union")
            pattern = _literal_value(args[1])
            flags = _literal_value(args[2]) if len(args) == 3 else ""
        except Unsupported:
            out.append(path[i:after])
            kept += 1
            i = after
            continue
        subject, ignore_case = args[0].strip(), "i" in flags
        clauses = None
        # the `i` flag and `\s` always need translate(): not worth deriving (it costs start-up time)
        # and every `|` adds an alternative: more than MAX_CLAUSES of them stay guarded anyway
        if not ignore_case and "\\s" not in pattern and pattern.count("|") < MAX_CLAUSES:
            try:
                clauses = test_to_clauses(subject, pattern, ignore_case)
            except Unsupported:
                clauses = None
        if clauses is not None and len(clauses) <= MAX_CLAUSES and not any("translate(" in c for c in clauses):
            replacement = "(" + " or ".join(clauses) + ")" if clauses else "false()"
            converted += 1
        else:
            replacement = _guarded(subject, pattern, ignore_case, original)
            kept += 1
        if record is not None:
            record.append((original, replacement))
        out.append(path[i:j])
        out.append(replacement)
        i = after


def _guarded(subject: str, pattern: str, ignore_case: bool, call: str) -> str:
    """`call` evaluated only where the attributes exist: on an absent attribute the answer is fixed.

    `re:test` on an empty node-set tests the empty string, so whether the pattern matches "" is the
    answer for every element without the attributes, and libxml2 skips the callback for them.
    """
    if re.search(pattern, "", re.IGNORECASE if ignore_case else 0):
        return f"(not({subject}) or {call})"
    return f"({subject} and {call})"


def _trafilatura_modules() -> list[Any]:
    """trafilatura's modules that `extract` has loaded (importing the others would only cost start-up time).

    A module loaded later still gets the replacements: rule lists are changed in place, and a single rule
    object it imports by name is read from a module already patched.
    """
    return [module for name, module in sorted(sys.modules.items()) if name.startswith("trafilatura.") and module]


def plan_rewrites() -> list[Rewrite]:
    """Every rule object of the installed trafilatura that uses `re:test`, with its equivalent."""
    rewrites: dict[int, Rewrite] = {}
    for module in _trafilatura_modules():
        for name, value in list(vars(module).items()):
            if isinstance(value, etree.XPath):
                candidates = [(module, name, value)]
            elif isinstance(value, list) and value and all(isinstance(v, etree.XPath) for v in value):
                candidates = [(value, index, v) for index, v in enumerate(value)]
            else:
                continue
            for holder, key, rule in candidates:
                if _CALL not in rule.path:
                    continue
                rewrite = rewrites.get(id(rule))
                if rewrite is None:
                    path, converted, kept = rewrite_path(rule.path)
                    # a string result would lose its smart-string parent: rules here return elements
                    replacement = etree.XPath(path, namespaces={"re": EXSLT_REGEXP}, smart_strings=False)
                    rewrite = rewrites[id(rule)] = Rewrite(rule, replacement, converted=converted, kept=kept)
                if (holder, key) not in [(h, k) for h, k in rewrite.places if h is holder]:
                    rewrite.places.append((holder, key))
    return list(rewrites.values())


def html_class_lookup() -> etree.ElementNamespaceClassLookup:
    """A C-level lookup that gives each node the class lxml.html's (Python) HtmlElementClassLookup gives.

    lxml.html chooses by lower-cased tag name (form, input...) and otherwise HtmlElement / HtmlComment /
    HtmlProcessingInstruction / HtmlEntity; elements without a namespace are registered here under every
    ASCII casing of those names (libxml2's HTML parser only produces ASCII names).
    """
    fallback = etree.ElementDefaultClassLookup(
        element=lxml.html.HtmlElement,
        comment=lxml.html.HtmlComment,
        pi=lxml.html.HtmlProcessingInstruction,
        entity=lxml.html.HtmlEntity,
    )
    lookup = etree.ElementNamespaceClassLookup(fallback)
    namespace = lookup.get_namespace(None)
    for name, cls in lxml.html.HtmlElementClassLookup._default_element_classes.items():
        for casing in _casings(name):
            namespace[casing] = cls
    return lookup


def _casings(name: str) -> list[str]:
    options = [(c.lower(), c.upper()) if c.isascii() and c.isalpha() else (c,) for c in name]
    results = [""]
    for choice in options:
        results = [prefix + c for prefix in results for c in choice]
    return results


_installed: list[Rewrite] | None = None
_patched_prune: list[tuple[Any, Any]] = []  # (module, trafilatura's own prune_unwanted_nodes)
_plan: tuple[list[Rewrite], Any] | None = None  # planned once per process: install() may be called again


def is_verified() -> bool:
    return getattr(trafilatura, "__version__", "unknown") in VERIFIED_VERSIONS


def warn_if_unverified() -> bool:
    """Warn (once per process: Python's warning registry) when the fast path cannot be used; True then."""
    if is_verified():
        return False
    warnings.warn(
        f"tamis fast trafilatura path not verified for trafilatura {getattr(trafilatura, '__version__', '?')} "
        f"(verified: {', '.join(sorted(VERIFIED_VERSIONS))}); running plain trafilatura",
        stacklevel=2,
    )
    return True


def install() -> bool:
    """Switch this process's trafilatura to the equivalent rules; False (and one warning) if not verified.

    Only ever called inside the extraction child: the Ray worker's own trafilatura stays untouched.
    """
    global _installed
    if _installed is not None:
        return True
    if warn_if_unverified():
        return False
    rewrites, pruner = _planned()
    lookup = html_class_lookup()
    from trafilatura import utils as trafilatura_utils

    for parser in (trafilatura_utils.HTML_PARSER, lxml.html.html_parser):
        parser.set_element_class_lookup(lookup)
    for rewrite in rewrites:
        _put(rewrite, rewrite.replacement)
    for module in _trafilatura_modules():
        if getattr(module, PRUNE, None) is pruner.prune:
            setattr(module, PRUNE, pruner)
            _patched_prune.append((module, pruner.prune))
    from trafilatura import readability_lxml

    readability_memo.install(readability_lxml)
    _installed = rewrites
    return True


def _planned() -> tuple[list[Rewrite], Any]:
    """The rule rewrites and the one-walk pruner, planned on the first install of this process."""
    global _plan
    if _plan is None:
        from trafilatura import htmlprocessing

        rewrites = plan_rewrites()
        originals = {id(r.replacement): r.original for r in rewrites}
        for rewrite in rewrites:  # the lists hold the replacements while the pruner is built
            _put(rewrite, rewrite.replacement)
        try:
            pruner, _notes = build_pruner(htmlprocessing.prune_unwanted_nodes, _trafilatura_modules(), originals)
        finally:
            for rewrite in rewrites:
                _put(rewrite, rewrite.original)
        _plan = (rewrites, pruner)
    return _plan


def _put(rewrite: Rewrite, rule: Any) -> None:
    """Make every place that held the rewritten rule (a list slot or a module attribute) hold `rule`."""
    for holder, key in rewrite.places:
        if isinstance(holder, list):
            holder[key] = rule
        else:
            setattr(holder, key, rule)


def forget_caches() -> None:
    """Empty the fast path's caches of rule answers (for benchmarks that reuse pages)."""
    if _plan is not None:
        _plan[1].forget()


def uninstall() -> None:
    """Put the original rule objects and lxml.html's lookup back (tests compare both in one process)."""
    global _installed
    if _installed is None:
        return
    from trafilatura import utils as trafilatura_utils

    for parser in (trafilatura_utils.HTML_PARSER, lxml.html.html_parser):
        parser.set_element_class_lookup(lxml.html.HtmlElementClassLookup())
    for rewrite in _installed:
        _put(rewrite, rewrite.original)
    for module, prune in _patched_prune:
        setattr(module, PRUNE, prune)
    _patched_prune.clear()
    readability_memo.uninstall()
    if _plan is not None:
        _plan[1].close()
    _installed = None


def verify_rules(trees: list[Any], rewrites: list[Rewrite] | None = None, contexts: int = 8) -> list[str]:
    """Differences between each original rule and its replacement on `trees`.

    Each rule is evaluated from the root and from `contexts` elements spread over the tree as context
    node (relative rules are applied to subtrees too); results must be the same nodes in the same order.
    """
    problems = []
    for rewrite in rewrites if rewrites is not None else plan_rewrites():
        for tree_index, tree in enumerate(trees):
            elements = [e for e in tree.iter() if isinstance(e.tag, str)]
            step = max(1, len(elements) // contexts)
            for context in [tree, *elements[1::step]]:
                want = rewrite.original(context)
                got = rewrite.replacement(context)
                if len(want) != len(got) or any(a is not b for a, b in zip(want, got, strict=True)):
                    problems.append(f"{rewrite.original.path[:80]!r} differs on tree {tree_index} at {context.tag}")
                    break
    return problems
