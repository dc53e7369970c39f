"""Equivalent pure-XPath forms of EXSLT `re:test(...)` calls, so libxml2 evaluates them without Python.

trafilatura's rule lists filter elements with predicates such as `re:test(@class, 'nav|^share')`: lxml
answers each one by calling back into Python for every candidate element, which is most of the cost of
evaluating the rules. A regular expression that only matches a finite set of strings (alternations,
character classes, optional parts, anchors, whitespace classes) can be written with XPath 1.0's
`contains`, `starts-with`, `substring` and `translate`; this module derives that form from the
expression itself (parsed with Python's own regex parser), so nothing of the rules is copied here.

Exactness, case by case (Python `re` semantics, as lxml's `re:test` uses them):
- a position that accepts a set of characters (a class, `\\s`, a letter under the `i` flag) is matched
  by mapping every member of the set to one representative with `translate`; the sets are computed
  with the real regex engine over every code point, so Unicode case folds (Kelvin sign, long s) count;
- `$` matches at the end and before a final newline; `^` only at the start;
- `@a|@b` is the first attribute in document order, for `re:test` and for XPath's string() alike;
- a negative lookahead is supported only at the end of a start-anchored alternative.
Anything else (repeats, back-references, lookbehind...) raises `Unsupported`, and the caller keeps the
original `re:test`. The derived form is still checked element by element against the original by
`tamis.extract.fast_trafilatura.verify_rules`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cache

from lxml import etree

try:  # Python 3.11+
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

MAX_ALTERNATIVES = 400


class Unsupported(Exception):
    """The expression has no finite pure-XPath form here; keep the original `re:test`."""


@dataclass(frozen=True)
class Alternative:
    """One way for the expression to match: optional start anchor, character sets, optional end anchor.

    `not_followed_by` lists alternatives (positions only) that must not follow (a negative lookahead).
    `end` is "" (anywhere), "$" (end or before a final newline) or "\\Z" (end of string).
    """

    start: bool
    positions: tuple[frozenset[str], ...]
    end: str
    not_followed_by: tuple[tuple[frozenset[str], ...], ...] = ()


@cache
def _storable(char: str) -> bool:
    """Whether lxml can hold `char` in a tree at all.

    lxml refuses to set text containing characters XML forbids (C0 controls but tab, LF, CR; surrogates;
    U+FFFE/U+FFFF), and libxml2's HTML parser drops them from attribute values, so no attribute value
    contains one: a position that needs one can never match, and XPath literals cannot hold them anyway.
    """
    try:
        etree.Element("probe").set("value", char)
    except ValueError:
        return False
    return True


@cache
def _matching_chars(pattern: str, ignore_case: bool) -> frozenset[str]:
    """Every storable code point that the one-character `pattern` matches, found with the regex engine."""
    flags = re.IGNORECASE if ignore_case else 0
    return frozenset(c for c in re.findall(pattern, _code_points(), flags) if _storable(c))


@cache
def _code_points() -> str:
    return "".join(map(chr, range(0x110000)))


def _literal(code: int, ignore_case: bool) -> frozenset[str]:
    # without IGNORECASE a literal matches exactly its own code point
    if ignore_case:
        return _matching_chars(re.escape(chr(code)), True)
    return frozenset(chr(code)) if _storable(chr(code)) else frozenset()


def _set_of(op: object, av: object, ignore_case: bool) -> frozenset[str]:
    if op is sre_constants.LITERAL:
        return _literal(av, ignore_case)  # type: ignore[arg-type]
    if op is sre_constants.IN:
        chars: set[str] = set()
        for item_op, item_av in av:  # type: ignore[attr-defined]
            if item_op is sre_constants.LITERAL:
                chars |= _literal(item_av, ignore_case)
            elif item_op is sre_constants.RANGE:
                low, high = item_av
                if high - low > 256:
                    raise Unsupported("large character range")
                for code in range(low, high + 1):
                    chars |= _literal(code, ignore_case)
            elif item_op is sre_constants.CATEGORY and item_av is sre_constants.CATEGORY_SPACE:
                chars |= _matching_chars(r"\s", ignore_case)
            else:
                raise Unsupported(f"class item {item_op}")
        return frozenset(chars)
    raise Unsupported(f"position {op}")


# A partial match is a tuple of tokens: "^", "$", "\\Z", a frozenset (one position), or ("!", alternatives).
def _expand(items: list[tuple[object, object]], ignore_case: bool) -> list[tuple[object, ...]]:
    results: list[tuple[object, ...]] = [()]
    for op, av in items:
        options = _expand_item(op, av, ignore_case)
        results = [left + right for left in results for right in options]
        if len(results) > MAX_ALTERNATIVES:
            raise Unsupported("too many alternatives")
    return results


def _expand_item(op: object, av: object, ignore_case: bool) -> list[tuple[object, ...]]:
    if op in (sre_constants.LITERAL, sre_constants.IN):
        return [(_set_of(op, av, ignore_case),)]
    if op is sre_constants.BRANCH:
        return [alt for branch in av[1] for alt in _expand(list(branch), ignore_case)]  # type: ignore[index]
    if op is sre_constants.SUBPATTERN:
        _group, add_flags, del_flags, sub = av  # type: ignore[misc]
        if add_flags or del_flags:
            raise Unsupported("inline flags")
        return _expand(list(sub), ignore_case)
    if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
        low, high, sub = av  # type: ignore[misc]
        if high is sre_constants.MAXREPEAT or high > 4:
            raise Unsupported("unbounded or long repeat")
        once = _expand(list(sub), ignore_case)
        options: list[tuple[object, ...]] = []
        for count in range(low, high + 1):
            combos = itertools.product(once, repeat=count)
            options.extend(tuple(itertools.chain.from_iterable(combo)) for combo in combos)
        return options
    if op is sre_constants.AT:
        if av is sre_constants.AT_BEGINNING or av is sre_constants.AT_BEGINNING_STRING:
            return [("^",)]
        if av is sre_constants.AT_END:
            return [("$",)]
        if av is sre_constants.AT_END_STRING:
            return [("\\Z",)]
        raise Unsupported(f"anchor {av}")
    if op is sre_constants.ASSERT_NOT:
        direction, sub = av  # type: ignore[misc]
        if direction != 1:
            raise Unsupported("lookbehind")
        return [(("!", tuple(_expand(list(sub), ignore_case))),)]
    raise Unsupported(f"operator {op}")


def _to_alternative(tokens: tuple[object, ...]) -> Alternative | None:
    """Normalise a token sequence; None when it can never match (e.g. `a^b`)."""
    start = False
    positions: list[frozenset[str]] = []
    end = ""
    lookahead: tuple[tuple[object, ...], ...] | None = None
    for index, token in enumerate(tokens):
        if lookahead is not None:
            raise Unsupported("lookahead not at the end")
        if token == "^":
            if positions:
                return None  # `^` after a character never matches without MULTILINE
            start = True
        elif token in ("$", "\\Z"):
            rest = tokens[index + 1 :]
            if any(isinstance(t, frozenset) or isinstance(t, tuple) for t in rest):
                raise Unsupported("characters after an end anchor")
            if "^" in rest:
                raise Unsupported("start anchor after an end anchor")
            end = "\\Z" if (token == "\\Z" or "\\Z" in rest) else "$"
            break
        elif isinstance(token, frozenset):
            if not token:
                return None  # needs a character no attribute value can hold
            positions.append(token)
        else:
            lookahead = token[1]  # type: ignore[index]
    not_followed: list[tuple[frozenset[str], ...]] = []
    if lookahead is not None:
        if not start or end:
            raise Unsupported("lookahead without a start anchor")
        for sub in lookahead:
            if not all(isinstance(t, frozenset) for t in sub):
                raise Unsupported("anchors inside a lookahead")
            if not sub:
                return None  # `(?!)` never matches
            if any(not chars for chars in sub):
                continue  # can never follow: excludes nothing
            not_followed.append(tuple(sub))  # type: ignore[arg-type]
    return Alternative(start, tuple(positions), end, tuple(not_followed))


def alternatives(pattern: str, ignore_case: bool) -> list[Alternative]:
    """The finite set of ways `pattern` can match, or Unsupported."""
    flags = re.IGNORECASE if ignore_case else 0
    try:
        parsed = sre_parse.parse(pattern, flags)
    except re.error as exc:
        raise Unsupported(f"not a valid pattern: {exc}") from exc
    if parsed.state.flags & ~(re.IGNORECASE | re.UNICODE):
        raise Unsupported("inline global flags")
    found = [_to_alternative(tokens) for tokens in _expand(list(parsed), ignore_case)]
    return [alt for alt in found if alt is not None]


def xpath_literal(text: str) -> str:
    """An XPath 1.0 string literal for any text (XPath literals have no escapes)."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    parts = text.split("'")
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in parts) + ")"


def _translation(positions: tuple[frozenset[str], ...]) -> tuple[dict[str, str], str]:
    """A character map and literal such that the literal occurs in map(S) exactly where S matches.

    Raises Unsupported when the sets overlap in a way one map cannot express.
    """
    multi = {s for s in positions if len(s) > 1}
    mapping: dict[str, str] = {}
    for chars in multi:
        representative = min(chars)
        for char in chars:
            if mapping.get(char, representative) != representative:
                raise Unsupported("overlapping character sets")
            mapping[char] = representative
    literal = []
    for chars in positions:
        if len(chars) == 1:
            (char,) = chars
            if char in mapping:
                raise Unsupported("a single character inside a character set")
            literal.append(char)
        elif not chars:
            raise Unsupported("empty character set")
        else:
            literal.append(min(chars))
    return mapping, "".join(literal)


def _mapped(subject: str, mapping: dict[str, str]) -> str:
    if not mapping:
        return subject
    sources = "".join(sorted(mapping))
    targets = "".join(mapping[c] for c in sorted(mapping))
    return f"translate({subject}, {xpath_literal(sources)}, {xpath_literal(targets)})"


def _clause(subject: str, start: bool, positions: tuple[frozenset[str], ...], end: str) -> str:
    mapping, literal = _translation(positions)
    if end == "$" and chr(10) in mapping:
        raise Unsupported("a newline inside a character set before `$`")
    text = _mapped(subject, mapping)
    lit = xpath_literal(literal)
    if start and end:
        exact = f"{text} = {lit}"
        return exact if end == "\\Z" else f"({exact} or {text} = {xpath_literal(literal + chr(10))})"
    if start:
        return f"starts-with({text}, {lit})"
    if end:
        length = len(literal)
        tail = f"substring({text}, string-length({text}) - {length - 1})" if length else "''"
        clause = f"{tail} = {lit}" if length else "true()"
        if end == "$":
            with_newline = xpath_literal(literal + chr(10))
            clause = f"({clause} or substring({text}, string-length({text}) - {length}) = {with_newline})"
        return clause
    return f"contains({text}, {lit})"


def test_to_clauses(subject: str, pattern: str, ignore_case: bool) -> list[str]:
    """Pure XPath 1.0 boolean clauses whose disjunction equals `re:test(subject, pattern, flags)`."""
    clauses = []
    for alt in alternatives(pattern, ignore_case):
        clause = _clause(subject, alt.start, alt.positions, alt.end)
        if alt.not_followed_by:
            excluded = " or ".join(_clause(subject, True, alt.positions + sub, "") for sub in alt.not_followed_by)
            clause = f"({clause} and not({excluded}))"
        clauses.append(clause)
    return clauses


def test_to_xpath(subject: str, pattern: str, ignore_case: bool) -> str:
    """A pure XPath 1.0 boolean expression equal to `re:test(subject, pattern, flags)` on every node."""
    clauses = test_to_clauses(subject, pattern, ignore_case)
    if not clauses:
        return "false()"
    if any(clause == "true()" for clause in clauses):
        return "true()"
    return "(" + " or ".join(clauses) + ")"
