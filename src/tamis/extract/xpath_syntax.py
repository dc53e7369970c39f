"""A parser for the XPath 1.0 that trafilatura's rules are written in: tokens, then a syntax tree.

Only what the rules need to be read is covered (expressions, location paths with axes and predicates,
function calls, unions, string literals); anything else raises `Unsupported`, and whoever asked keeps
the rule's XPath object. Each node keeps the span of its source text, so that a sub-expression can be
handed back to lxml as an XPath of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field


class Unsupported(Exception):
    """Outside the subset handled here; the rule keeps its XPath object."""


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
