"""trafilatura's element-filter rules as Python predicates, generated from the installed rules' own text.

A rule such as `.//*[self::div or self::p][re:test(@class, '...') or contains(@id, '...')]` selects the
descendant elements for which every predicate holds. libxml2 evaluates it element by element, looking
each attribute up and copying it once per clause, and calls back into Python for every `re:test`: most of
the cost of trafilatura's rule lists. Almost every predicate in these rules depends only on the element's
tag and attributes, so each rule is parsed (`tamis.extract.xpath_syntax`, from `XPath.path` at run time:
nothing of the rules is copied into tamis) and turned into one Python expression over (tag, attributes);
`tamis.extract.rule_pass` evaluates all rules of a list in one walk over the tree, with one cached answer
per distinct (tag, relevant attributes), and each regular expression's answer cached per attribute value.

Supported, with XPath 1.0's own semantics: `or`, `and`, `not()`, `=`/`!=` between an attribute node-set
and a string (true when some attribute of the set compares so) or between strings, `self::name`,
`@name`, `@*`, unions of attributes (as a string: the first of them in the element's attribute order, as
XPath's `string()` and lxml's `re:test` both take it), string literals, `contains`, `starts-with`,
`translate`, `true`, `false`, and EXSLT `re:test` (run as lxml runs it: Python `re`, `re.UNICODE`,
`re.IGNORECASE` when the flags contain `i`). A predicate that looks into the element's subtree
(`not(.//h1)`) is kept as an lxml XPath of its own, evaluated on the element when the rest of the rule
holds. Anything else (positions, numbers, other axes, other functions) raises `Unsupported`: that rule
keeps its XPath object. Every compiled rule is compared with its XPath object on elements built from
the rule's own literals (`crafted_tree`, `tamis.extract.rule_pass.check`) before it is used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from tamis.extract.xpath_syntax import Node, Unsupported, parse

__all__ = ["Rule", "Unsupported", "compile_rule", "crafted_tree", "clear_memos"]

EXSLT_REGEXP = "http://exslt.org/regular-expressions"
MEMO_LIMIT = 100_000  # attribute values remembered per regular expression before it starts again

# an attribute list as lxml's `items()` gives it: (name, value) pairs in the element's attribute order
Attributes = tuple[tuple[str, str], ...]
LocalFn = Callable[[str, Attributes, dict[str, str]], bool]


class _Memo(dict):  # type: ignore[type-arg]
    """Whether the regular expression finds a match in a value, remembered per value."""

    def __init__(self, search: Callable[[str], Any]):
        super().__init__()
        self.search = search

    def __missing__(self, value: str) -> bool:
        found = self.search(value) is not None
        self[value] = found
        return found


_MEMOS: dict[tuple[str, bool], _Memo] = {}


def _memo(pattern: str, ignore_case: bool) -> _Memo:
    memo = _MEMOS.get((pattern, ignore_case))
    if memo is None:
        flags = re.UNICODE | (re.IGNORECASE if ignore_case else 0)  # as lxml's EXSLT re:test compiles it
        memo = _MEMOS[(pattern, ignore_case)] = _Memo(re.compile(pattern, flags).search)
    return memo


def clear_memos(limit: int = MEMO_LIMIT) -> None:
    """Forget the remembered values of every regular expression that holds more than `limit`."""
    for memo in _MEMOS.values():
        if len(memo) > limit:
            memo.clear()


def _first(attrs: Attributes, names: frozenset[str]) -> str:
    """XPath string() of an attribute union: the value of the first of `names` in attribute order."""
    for name, value in attrs:
        if name in names:
            return value
    return ""


# constants the generated code refers to, shared by all rules (so one function can test several)
_NAMESPACE: dict[str, Any] = {"_first": _first}
_CONSTANT_NAMES: dict[Any, str] = {}


def _constant(value: Any) -> str:
    key = (type(value), value) if isinstance(value, (frozenset, str)) else (type(value), id(value))
    name = _CONSTANT_NAMES.get(key)
    if name is None:
        name = _CONSTANT_NAMES[key] = f"_k{len(_CONSTANT_NAMES)}"
        _NAMESPACE[name] = value
    return name


# -------------------------------------------------------------------------------------------- compiling


@dataclass
class Compiled:
    """A sub-expression as Python code over `tag`, `attrs` (the element's (name, value) pairs, in order)
    and `d` (the same as a dict), or one kept as XPath text (kind xpath)."""

    kind: str  # attrs (a node-set of the element's attributes), str, bool, xpath
    code: str = ""
    names: frozenset[str] | None = frozenset()  # attribute names read; None: all of them (`@*`)
    source: str = ""  # for kind xpath
    tags: frozenset[str] | None = None  # for kind bool: tags outside which it is always false; None: any


def _is_name(test: str) -> bool:
    return test != "*" and not test.endswith("()") and ":" not in test


class PredicateCompiler:
    """Compiles predicates evaluated with the element as context node into Python expressions."""

    def __init__(self, path: str):
        self.path = path

    def constant(self, value: Any) -> str:
        return _constant(value)

    def compile(self, node: Node) -> Compiled:
        kind = node.kind
        if kind == "literal":
            return Compiled("str", repr(node.value))
        if kind in ("or", "and"):
            return self._logical(node)
        if kind in ("eq", "ne"):
            return self._comparison(node)
        if kind == "call":
            return self._call(node)
        if kind == "union":
            parts = [self.compile(child) for child in node.children]
            if all(p.kind == "attrs" for p in parts):
                return Compiled("attrs", names=_union_names(*[p.names for p in parts]))
            return self._structural(node)
        if kind == "path":
            return self._path(node)
        if kind == "filter" and node.value != "predicated":
            return self.compile(node.children[0])
        return self._structural(node)

    def _structural(self, node: Node) -> Compiled:
        text = self.path[node.start : node.end]
        if _uses_context_outside_subtree(node):
            raise Unsupported(f"sub-expression looks outside the element: {text[:60]!r}")
        return Compiled("xpath", source=text)

    def _path(self, node: Node) -> Compiled:
        if node.absolute:
            raise Unsupported("absolute path inside a predicate")
        if len(node.steps) == 1:
            axis, test, predicates = node.steps[0]
            if not predicates and axis == "attribute":
                if test == "*":
                    return Compiled("attrs", names=None)
                if _is_name(test):
                    return Compiled("attrs", names=frozenset({test}))
            if not predicates and axis == "self":
                if test in ("*", "node()"):
                    return Compiled("bool", "True")
                if _is_name(test):
                    return Compiled("bool", f"(tag == {test!r})", tags=frozenset({test}))
        return self._structural(node)

    def to_bool(self, part: Compiled) -> Compiled:
        if part.kind in ("bool", "xpath"):
            return part
        if part.kind == "attrs":
            if part.names is None:
                return Compiled("bool", "bool(attrs)", None)
            code = " or ".join(f"{name!r} in d" for name in sorted(part.names)) or "False"
            return Compiled("bool", f"({code})", part.names)
        if part.kind == "str":
            return Compiled("bool", f"({part.code} != '')", part.names)
        raise Unsupported(f"boolean of {part.kind}")

    def to_str(self, part: Compiled) -> Compiled:
        if part.kind == "str":
            return part
        if part.kind == "attrs":
            if part.names is None:
                return Compiled("str", "(attrs[0][1] if attrs else '')", None)
            if len(part.names) == 1:
                (name,) = part.names
                return Compiled("str", _shared(f"d.get({name!r}, '')"), part.names)
            return Compiled("str", _shared(f"_first(attrs, {self.constant(part.names)})"), part.names)
        raise Unsupported(f"string of {part.kind}")

    def _logical(self, node: Node) -> Compiled:
        left = self.to_bool(self.compile(node.children[0]))
        right = self.to_bool(self.compile(node.children[1]))
        if left.kind == "xpath" or right.kind == "xpath":
            return self._structural(node)
        names = _union_names(left.names, right.names)
        if node.kind == "or":
            tags = None if left.tags is None or right.tags is None else left.tags | right.tags
        else:
            tags = _intersection(left.tags, right.tags)
        return Compiled("bool", f"({left.code} {node.kind} {right.code})", names, tags=tags)

    def _comparison(self, node: Node) -> Compiled:
        left, right = (self.compile(child) for child in node.children)
        if left.kind == "xpath" or right.kind == "xpath":
            return self._structural(node)
        if right.kind == "attrs" and left.kind == "str":
            left, right = right, left
        equal = node.kind == "eq"
        names = _union_names(left.names, right.names)
        if left.kind == "attrs" and right.kind == "str":
            if left.names is None:
                raise Unsupported("comparison with @*")
            # a node-set compares true when some node of it does
            if equal:
                clauses = [f"d.get({name!r}) == {right.code}" for name in sorted(left.names)]
            else:
                clauses = [f"({name!r} in d and d[{name!r}] != {right.code})" for name in sorted(left.names)]
            return Compiled("bool", "(" + (" or ".join(clauses) or "False") + ")", names)
        if left.kind == "str" and right.kind == "str":
            return Compiled("bool", f"({left.code} {'==' if equal else '!='} {right.code})", names)
        raise Unsupported(f"comparison of {left.kind} and {right.kind}")

    def _call(self, node: Node) -> Compiled:
        name, args = node.value, node.children
        if name in ("true", "false") and not args:
            return Compiled("bool", "True" if name == "true" else "False")
        compiled = [self.compile(arg) for arg in args]
        if any(c.kind == "xpath" for c in compiled):
            return self._structural(node)
        names = _union_names(*[c.names for c in compiled])
        if name == "not" and len(compiled) == 1:
            return Compiled("bool", f"(not {self.to_bool(compiled[0]).code})", names)
        if name in ("contains", "starts-with") and len(compiled) == 2:
            a, b = (self.to_str(c).code for c in compiled)
            code = f"({b} in {a})" if name == "contains" else f"{a}.startswith({b})"
            return Compiled("bool", code, names)
        if name == "translate" and len(compiled) == 3:
            subject = self.to_str(compiled[0]).code
            table = _translation_table(_literal_of(args[1]), _literal_of(args[2]))
            return Compiled("str", f"{subject}.translate({self.constant(table)})", names)
        if name == "re:test" and len(compiled) in (2, 3):
            subject = self.to_str(compiled[0]).code
            flags = _literal_of(args[2]) if len(args) == 3 else ""
            memo = _memo(_literal_of(args[1]), "i" in flags)
            return Compiled("bool", f"{self.constant(memo)}[{subject}]", names)
        raise Unsupported(f"function {name}")


def _shared(expression: str) -> str:
    """Mark an attribute's string value, which `classifier` looks up once for all rules. NUL delimits it:
    no literal in the code can hold one (repr() escapes it)."""
    return f"\0{expression}\0"


def _plain(code: str) -> str:
    return code.replace("\0", "")


def _union_names(*names: frozenset[str] | None) -> frozenset[str] | None:
    if any(n is None for n in names):
        return None
    return frozenset().union(*names)  # type: ignore[arg-type]


def _intersection(*sets: frozenset[str] | None) -> frozenset[str] | None:
    """Tags a conjunction can hold for: those every restricted part allows (None: unrestricted)."""
    known = [s for s in sets if s is not None]
    return frozenset.intersection(*known) if known else None


def _literal_of(node: Node) -> str:
    if node.kind != "literal":
        raise Unsupported("argument is not a string literal")
    return node.value


def _translation_table(source: str, target: str) -> dict[int, int | None]:
    """XPath translate(): the first occurrence of a character in `source` decides; no counterpart deletes."""
    table: dict[int, int | None] = {}
    for index, char in enumerate(source):
        if ord(char) not in table:
            table[ord(char)] = ord(target[index]) if index < len(target) else None
    return table


def _uses_context_outside_subtree(node: Node) -> bool:
    """Whether a sub-expression may look at anything but the element and its descendants.

    Such a value could change as other parts of the tree are deleted between rules, so it is not
    supported; one that only looks down is evaluated on the element when the rule is applied.
    """
    if node.kind == "path":
        if node.absolute:
            return True
        downward = ("self", "child", "descendant", "descendant-or-self", "attribute")
        for axis, _test, predicates in node.steps:
            if axis not in downward or any(_uses_context_outside_subtree(p) for p in predicates):
                return True
        return False
    if node.kind == "call" and node.value in ("id", "lang", "current", "document", "key"):
        return True
    return any(_uses_context_outside_subtree(child) for child in node.children)


def _uses_position(node: Node) -> bool:
    if node.kind == "call" and node.value in ("position", "last"):
        return True
    return any(_uses_position(child) for child in node.children)


@dataclass
class Rule:
    """`.//T[p1]...[pn]` (or `descendant::T[...]`): descendant elements of the context with tag T (any for
    `*`) for which every predicate holds; `local(tag, attrs, d)` reads only the tag and attributes (`names`,
    None: any), `structural` the element's subtree; `tags`: the only tags `local` can accept (None: any)."""

    path: str
    tags: frozenset[str] | None
    local: LocalFn
    names: frozenset[str] | None
    structural: list[etree.XPath]
    code: str


def compile_rule(path: str, namespaces: dict[str, str] | None = None) -> Rule:
    """The rule as a `Rule`, or Unsupported."""
    node = parse(path)
    if node.kind != "path" or node.absolute:
        raise Unsupported("not a relative location path")
    steps = node.steps
    if len(steps) == 3 and steps[0] == ("self", "node()", []) and steps[1] == ("descendant-or-self", "node()", []):
        axis, test, predicates = steps[2]
        if axis != "child":
            raise Unsupported(f"axis {axis}")
    elif len(steps) == 1 and steps[0][0] == "descendant":
        axis, test, predicates = steps[0]
    else:
        raise Unsupported("not .//name[...]")
    if test == "*":
        tags: frozenset[str] | None = None
    elif _is_name(test):
        tags = frozenset({test})
    else:
        raise Unsupported(f"node test {test}")
    compiler = PredicateCompiler(path)
    local_parts: list[Compiled] = []
    structural: list[etree.XPath] = []
    for predicate in predicates:
        if _uses_position(predicate):
            raise Unsupported("positional predicate")
        part = compiler.to_bool(compiler.compile(predicate))
        if part.kind == "xpath":
            # boolean() of the predicate's own text, with the element as context node
            structural.append(etree.XPath(f"boolean({part.source})", namespaces=namespaces, smart_strings=False))
        else:
            local_parts.append(part)
            tags = _intersection(tags, part.tags)
    if tags is not None:
        local_parts.insert(0, Compiled("bool", f"(tag in {compiler.constant(tags)})"))
    names = _union_names(*[p.names for p in local_parts])
    code = " and ".join(p.code for p in local_parts) or "True"
    local = eval(f"lambda tag, attrs, d: bool({_plain(code)})", _NAMESPACE)  # noqa: S307 - code built above
    return Rule(path, tags, local, names, structural, code)


_SHARED = re.compile("\0([^\0]*)\0")


def classifier(rules: list[Rule]) -> Callable[[str, Attributes, dict[str, str]], tuple[int, ...]]:
    """One function giving the indexes of the `rules` whose local predicates hold, each attribute's string
    value looked up once for all of them."""
    shared: dict[str, str] = {}

    def name_of(match: re.Match[str]) -> str:
        return shared.setdefault(match.group(1), f"_s{len(shared)}")

    tests = [_SHARED.sub(name_of, rule.code) for rule in rules]
    lines = ["def classify(tag, attrs, d):"]
    lines += [f"    {variable} = {expression}" for expression, variable in shared.items()]
    lines += ["    hits = []"]
    for index, test in enumerate(tests):
        lines += [f"    if {test}:", f"        hits.append({index})"]
    lines += ["    return tuple(hits)"]
    namespace = dict(_NAMESPACE)
    exec("\n".join(lines), namespace)  # noqa: S102 - code built above from the rules' own parse
    return namespace["classify"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------- checking


def _words(path: str) -> list[str]:
    """Strings worth testing for this rule: its literals, and the pieces of its regular expressions."""
    words = set()
    for literal in re.findall(r"'([^']*)'|\"([^\"]*)\"", path):
        text = literal[0] or literal[1]
        words.add(text)
        words.update(w for w in re.split(r"[|()?^$\[\]{},*+\\:!]+", text) if w)
    return sorted(words)


def crafted_tree(path: str, limit: int = 1500) -> etree._Element:
    """Elements built from the rule's literals: every attribute and tag it names, words as whole values,
    inside longer values, in other cases, with spaces; attribute orders both ways; some nested."""
    words = _words(path)
    attributes = sorted(set(re.findall(r"@([\w.\-]+)", path)) | {"class", "id"})
    tags = sorted(set(re.findall(r"self::([\w.\-]+)", path)) | set(re.findall(r"//([\w.\-]+)", path)) | {"div", "x"})
    values = [""]
    for word in words:
        values += [word, word.upper(), word.swapcase(), f" {word} ", f"x{word}y", f"{word}\n", f"{word[:-1]}"]
    root = etree.Element("root")
    count = 0
    for index, value in enumerate(values):
        for attr in attributes:
            tag = tags[(index + len(attr)) % len(tags)]
            element = etree.SubElement(root, tag)
            element.set(attr, value)
            other = values[(index * 7 + 3) % len(values)]
            second = attributes[(index + 1) % len(attributes)]
            if second != attr and index % 2:
                element.set(second, other)
            if index % 5 == 0:
                etree.SubElement(element, tags[index % len(tags)]).set(attr, values[(index * 3) % len(values)])
            count += 1
            if count >= limit:
                break
        if count >= limit:
            break
    for tag in tags:
        etree.SubElement(root, tag)  # no attributes at all
    return root
