"""trafilatura's element-filter rules as Python predicates, parsed from the installed rules' own text.

A rule such as `.//*[self::div or self::p][re:test(@class, '...') or contains(@id, '...')]` selects the
descendant elements for which every predicate holds. libxml2 evaluates it element by element, looking
each attribute up and copying it once per clause, and calls back into Python for every `re:test`: most of
the cost of trafilatura's rule lists. Almost every predicate in these rules depends only on the element's
tag and attributes, so here each rule is parsed (XPath 1.0, from `XPath.path` at run time: nothing of the
rules is copied into tamis) into a Python function of (tag, attributes); `tamis.extract.rule_pass`
evaluates all rules of a list in one walk over the tree, with one cached answer per distinct
(tag, relevant attributes).

Supported, with XPath 1.0's own semantics: `or`, `and`, `not()`, `=`/`!=` between an attribute node-set
and a string, `self::name`, `@name`, unions of attributes (`@id|@class`: the first of them in the
element's attribute order, as XPath's `string()` and lxml's `re:test` both take it), string literals,
`contains`, `starts-with`, `translate`, `true`, `false`, and EXSLT `re:test` (run as lxml runs it: Python
`re`, `re.UNICODE`, `re.IGNORECASE` when the flags contain `i`). Any other sub-expression that only
looks at the element's subtree (`not(.//h1)`) is kept as an lxml XPath of its own, evaluated on the
element when the rest of the rule holds. Anything else (positions, numbers, other axes at the top, other
functions) raises `Unsupported`: that rule keeps its XPath object. Every compiled rule is then compared
with its XPath object on elements built from the rule's own literals (`check_rule`) before it is used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

EXSLT_REGEXP = "http://exslt.org/regular-expressions"

# an attribute list as lxml's `items()` gives it: (name, value) pairs in the element's attribute order
Attributes = tuple[tuple[str, str], ...]
LocalFn = Callable[[str, Attributes], Any]


class Unsupported(Exception):
    """Outside the subset this module evaluates; the rule keeps its XPath object."""


# ---------------------------------------------------------------------------------------------- parsing

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<literal>"[^"]*"|'[^']*')
    | (?P<number>\d+(?:\.\d*)?|\.\d+)
    | (?P<op>//|::|!=|<=|>=|\.\.|[/|()\[\],=<>@*.+\-])
    | (?P<name>[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)
    )""",
    re.VERBOSE,
)


@dataclass
class Token:
    kind: str
    text: str
    start: int
    end: int


def tokenize(path: str) -> list[Token]:
    tokens, i = [], 0
    while True:
        while i < len(path) and path[i].isspace():
            i += 1
        if i == len(path):
            return tokens
        match = _TOKEN.match(path, i)
        if match is None or match.end() == i:
            raise Unsupported(f"cannot tokenize at {path[i:i + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append(Token(kind, match.group(kind), match.start(kind), match.end()))
        i = match.end()


@dataclass
class Node:
    """An XPath syntax node; `start`/`end` delimit its source text (for sub-expressions kept as XPath)."""

    kind: str  # or, and, eq, ne, union, literal, call, path, filter
    start: int
    end: int
    children: list[Node] = field(default_factory=list)
    value: str = ""  # literal text, function name, operator
    steps: list[tuple[str, str, list[Node]]] = field(default_factory=list)  # (axis, node test, predicates)
    absolute: bool = False


_AXES = {
    "ancestor", "ancestor-or-self", "attribute", "child", "descendant", "descendant-or-self",
    "following", "following-sibling", "namespace", "parent", "preceding", "preceding-sibling", "self",
}
_NODE_TYPES = {"node", "text", "comment", "processing-instruction"}


class _Parser:
    def __init__(self, path: str):
        self.path = path
        self.tokens = tokenize(path)
        self.i = 0

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def is_op(self, text: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token.kind == "op" and token.text == text

    def is_word(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "name" and token.text == text

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise Unsupported("unexpected end")
        self.i += 1
        return token

    def expect(self, text: str) -> Token:
        if not self.is_op(text):
            raise Unsupported(f"expected {text!r}")
        return self.take()

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() is not None:
            raise Unsupported(f"trailing {self.peek().text!r}")  # type: ignore[union-attr]
        return node

    def expr(self) -> Node:
        return self.binary("or", self.and_expr)

    def and_expr(self) -> Node:
        return self.binary("and", self.eq_expr)

    def binary(self, word: str, operand: Callable[[], Node]) -> Node:
        node = operand()
        while self.is_word(word):
            self.take()
            right = operand()
            node = Node(word, node.start, right.end, [node, right])
        return node

    def eq_expr(self) -> Node:
        node = self.union_expr()
        while self.is_op("=") or self.is_op("!="):
            op = self.take().text
            right = self.union_expr()
            node = Node("eq" if op == "=" else "ne", node.start, right.end, [node, right])
        token = self.peek()
        if token is not None and token.kind == "op" and token.text in ("<", ">", "<=", ">=", "+", "-", "*"):
            raise Unsupported(f"operator {token.text}")
        if token is not None and token.kind == "name" and token.text in ("div", "mod"):
            raise Unsupported(f"operator {token.text}")
        return node

    def union_expr(self) -> Node:
        node = self.path_expr()
        parts = [node]
        while self.is_op("|"):
            self.take()
            parts.append(self.path_expr())
        if len(parts) == 1:
            return node
        return Node("union", parts[0].start, parts[-1].end, parts)

    def path_expr(self) -> Node:
        token = self.peek()
        if token is None:
            raise Unsupported("unexpected end")
        if token.kind == "literal":
            self.take()
            return Node("literal", token.start, token.end, value=token.text[1:-1])
        if token.kind == "number":
            raise Unsupported("numbers")
        if token.kind == "op" and token.text == "(":
            self.take()
            inner = self.expr()
            close = self.expect(")")
            return self.filter_rest(Node("filter", token.start, close.end, [inner]))
        if token.kind == "name" and self.is_op("(", 1) and token.text not in _NODE_TYPES:
            self.take()
            self.take()
            args = []
            if not self.is_op(")"):
                args.append(self.expr())
                while self.is_op(","):
                    self.take()
                    args.append(self.expr())
            close = self.expect(")")
            return self.filter_rest(Node("call", token.start, close.end, args, value=token.text))
        return self.location_path()

    def filter_rest(self, node: Node) -> Node:
        predicates = []
        while self.is_op("["):
            predicates.append(self.predicate())
        if self.is_op("/") or self.is_op("//"):
            raise Unsupported("path after a filter expression")
        if not predicates:
            return node  # a parenthesised expression keeps its parentheses' span
        last = self.tokens[self.i - 1]
        return Node("filter", node.start, last.end, [node, *predicates], value="predicated")

    def predicate(self) -> Node:
        self.expect("[")
        node = self.expr()
        self.expect("]")
        return node

    def location_path(self) -> Node:
        first = self.peek()
        assert first is not None
        steps: list[tuple[str, str, list[Node]]] = []
        absolute = False
        if self.is_op("/") or self.is_op("//"):
            absolute = True
            if self.take().text == "//":
                steps.append(("descendant-or-self", "node()", []))
        steps.append(self.step())
        while self.is_op("/") or self.is_op("//"):
            if self.take().text == "//":
                steps.append(("descendant-or-self", "node()", []))
            steps.append(self.step())
        last = self.tokens[self.i - 1]
        return Node("path", first.start, last.end, steps=steps, absolute=absolute)

    def step(self) -> tuple[str, str, list[Node]]:
        if self.is_op("."):
            self.take()
            return ("self", "node()", [])
        if self.is_op(".."):
            self.take()
            return ("parent", "node()", [])
        axis = "child"
        if self.is_op("@"):
            self.take()
            axis = "attribute"
        else:
            token = self.peek()
            if token is not None and token.kind == "name" and self.is_op("::", 1):
                if token.text not in _AXES:
                    raise Unsupported(f"axis {token.text}")
                axis = token.text
                self.take()
                self.take()
        token = self.take()
        if token.kind == "op" and token.text == "*":
            test = "*"
        elif token.kind == "name":
            test = token.text
            if test in _NODE_TYPES and self.is_op("("):
                self.take()
                self.expect(")")
                test += "()"
        else:
            raise Unsupported(f"node test {token.text!r}")
        predicates = []
        while self.is_op("["):
            predicates.append(self.predicate())
        return (axis, test, predicates)


def parse(path: str) -> Node:
    return _Parser(path).parse()


# -------------------------------------------------------------------------------------------- compiling


@dataclass
class Compiled:
    """A sub-expression as a function of (tag, attributes), or a structural one kept as XPath text."""

    kind: str  # attrs (a node-set of the element's attributes), str, bool, xpath (kept as lxml XPath)
    fn: LocalFn | None = None
    names: frozenset[str] | None = None  # attribute names read; None: all of them (`@*`)
    source: str = ""  # for kind == xpath
    tags: frozenset[str] | None = None  # for kind == bool: tags outside which it is always false; None: any


def _is_name(test: str) -> bool:
    return test not in ("*",) and not test.endswith("()") and ":" not in test


class PredicateCompiler:
    """Compiles predicates evaluated with the element as context node."""

    def __init__(self, path: str):
        self.path = path

    def compile(self, node: Node) -> Compiled:
        kind = node.kind
        if kind == "literal":
            value = node.value
            return Compiled("str", lambda tag, attrs: value, frozenset())
        if kind in ("or", "and"):
            return self._logical(node)
        if kind in ("eq", "ne"):
            return self._comparison(node)
        if kind == "call":
            return self._call(node)
        if kind == "union":
            parts = [self.compile(child) for child in node.children]
            if all(p.kind == "attrs" for p in parts):
                names = None if any(p.names is None for p in parts) else frozenset().union(*[p.names for p in parts])  # type: ignore[misc]
                return _attribute_set(names)
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
        steps = node.steps
        if len(steps) == 1:
            axis, test, predicates = steps[0]
            if not predicates and axis == "attribute":
                if test == "*":
                    return _attribute_set(None)
                if _is_name(test):
                    return _attribute_set(frozenset({test}))
            if not predicates and axis == "self":
                if test in ("*", "node()"):
                    return Compiled("bool", lambda tag, attrs: True, frozenset())
                if _is_name(test):
                    only = frozenset({test})
                    return Compiled("bool", lambda tag, attrs, name=test: tag == name, frozenset(), tags=only)
        return self._structural(node)

    def to_bool(self, part: Compiled) -> Compiled:
        if part.kind == "bool" or part.kind == "xpath":
            return part
        fn = part.fn
        assert fn is not None
        if part.kind == "attrs":
            names = part.names
            if names is None:
                return Compiled("bool", lambda tag, attrs: bool(attrs), None)
            return Compiled("bool", lambda tag, attrs: any(n in names for n, _ in attrs), names)
        if part.kind == "str":
            return Compiled("bool", lambda tag, attrs: fn(tag, attrs) != "", part.names)
        raise Unsupported(f"boolean of {part.kind}")

    def to_str(self, part: Compiled) -> Compiled:
        if part.kind == "str":
            return part
        if part.kind == "attrs":
            names = part.names
            if names is None:
                return Compiled("str", lambda tag, attrs: attrs[0][1] if attrs else "", None)
            return Compiled("str", lambda tag, attrs: next((v for n, v in attrs if n in names), ""), names)
        raise Unsupported(f"string of {part.kind}")

    def _logical(self, node: Node) -> Compiled:
        left = self.to_bool(self.compile(node.children[0]))
        right = self.to_bool(self.compile(node.children[1]))
        if left.kind == "xpath" or right.kind == "xpath":
            return self._structural(node)
        lf, rf = left.fn, right.fn
        assert lf is not None and rf is not None
        names = _union_names(left.names, right.names)
        if node.kind == "or":
            tags = None if left.tags is None or right.tags is None else left.tags | right.tags
            return Compiled("bool", lambda tag, attrs: lf(tag, attrs) or rf(tag, attrs), names, tags=tags)
        tags = _intersection(left.tags, right.tags)
        return Compiled("bool", lambda tag, attrs: lf(tag, attrs) and rf(tag, attrs), names, tags=tags)

    def _comparison(self, node: Node) -> Compiled:
        left, right = (self.compile(child) for child in node.children)
        if left.kind == "xpath" or right.kind == "xpath":
            return self._structural(node)
        if right.kind == "attrs" and left.kind == "str":
            left, right = right, left
        equal = node.kind == "eq"
        names = _union_names(left.names, right.names)
        if left.kind == "attrs" and right.kind == "str":
            rf, wanted = right.fn, left.names
            assert rf is not None
            if wanted is None:
                raise Unsupported("comparison with @*")
            if equal:
                return Compiled("bool", lambda tag, attrs: _any_equal(attrs, wanted, rf(tag, attrs)), names)
            return Compiled("bool", lambda tag, attrs: _any_unequal(attrs, wanted, rf(tag, attrs)), names)
        if left.kind == "str" and right.kind == "str":
            lf, rf = left.fn, right.fn
            assert lf is not None and rf is not None
            if equal:
                return Compiled("bool", lambda tag, attrs: lf(tag, attrs) == rf(tag, attrs), names)
            return Compiled("bool", lambda tag, attrs: lf(tag, attrs) != rf(tag, attrs), names)
        raise Unsupported(f"comparison of {left.kind} and {right.kind}")

    def _call(self, node: Node) -> Compiled:
        name, args = node.value, node.children
        if name in ("true", "false") and not args:
            value = name == "true"
            return Compiled("bool", lambda tag, attrs: value, frozenset())
        compiled = [self.compile(arg) for arg in args]
        if any(c.kind == "xpath" for c in compiled):
            return self._structural(node)
        names = _union_names(*[c.names for c in compiled]) if compiled else frozenset()
        if name == "not" and len(compiled) == 1:
            inner = self.to_bool(compiled[0]).fn
            assert inner is not None
            return Compiled("bool", lambda tag, attrs: not inner(tag, attrs), names)
        if name in ("contains", "starts-with") and len(compiled) == 2:
            a, b = (self.to_str(c).fn for c in compiled)
            assert a is not None and b is not None
            if name == "contains":
                return Compiled("bool", lambda tag, attrs: b(tag, attrs) in a(tag, attrs), names)
            return Compiled("bool", lambda tag, attrs: a(tag, attrs).startswith(b(tag, attrs)), names)
        if name == "translate" and len(compiled) == 3:
            subject = self.to_str(compiled[0]).fn
            assert subject is not None
            source, target = (_literal_of(arg) for arg in args[1:])
            table = _translation_table(source, target)
            return Compiled("str", lambda tag, attrs: subject(tag, attrs).translate(table), names)
        if name.endswith(":test") and len(compiled) in (2, 3):
            subject = self.to_str(compiled[0]).fn
            assert subject is not None
            pattern = _literal_of(args[1])
            flags = _literal_of(args[2]) if len(args) == 3 else ""
            regex = re.compile(pattern, re.UNICODE | (re.IGNORECASE if "i" in flags else 0))
            search = regex.search
            return Compiled("bool", lambda tag, attrs: search(subject(tag, attrs)) is not None, names)
        raise Unsupported(f"function {name}")


def _attribute_set(names: frozenset[str] | None) -> Compiled:
    return Compiled("attrs", lambda tag, attrs: attrs, names)


def _any_equal(attrs: Attributes, names: frozenset[str], wanted: str) -> bool:
    return any(n in names and v == wanted for n, v in attrs)


def _any_unequal(attrs: Attributes, names: frozenset[str], wanted: str) -> bool:
    return any(n in names and v != wanted for n, v in attrs)


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
    `*`) for which every predicate holds; `local` reads only (tag, attributes), `structural` the subtree."""

    path: str
    tags: frozenset[str] | None
    local: LocalFn
    names: frozenset[str] | None  # attributes `local` reads; None: any
    structural: list[etree.XPath]


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
        wanted = tags
        local_parts.insert(0, Compiled("bool", lambda tag, attrs: tag in wanted, frozenset()))
    fns = [p.fn for p in local_parts if p.fn is not None]
    names = _union_names(*[p.names for p in local_parts]) if local_parts else frozenset()

    def local(tag: str, attrs: Attributes) -> bool:
        return all(fn(tag, attrs) for fn in fns)

    return Rule(path, tags, local, names, structural)


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
