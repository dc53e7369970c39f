"""`tamis inspect --where`: a small expression language over a document's columns, not `eval`.

The expression is parsed with `ast` and walked by this module's own evaluator, which knows only comparisons,
boolean and arithmetic operators, constants, tuples/lists/sets of them, conditional expressions, column and
feature names, and the functions in FUNCTIONS. Attribute access, subscripts, lambdas, comprehensions, keyword
arguments, starred arguments and names starting with `_` are refused when the expression is parsed, so an
expression can read a document and nothing else (`eval` with empty builtins still reaches `os` through any
module or object attribute). Sizes are bounded: a string or list built by `*` or `+` longer than
MAX_BUILT_LENGTH is an error, and `**` takes exponents up to MAX_EXPONENT.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class WhereError(ValueError):
    """The expression is not in the --where language, or cannot be evaluated as one."""


MAX_BUILT_LENGTH = 1_000_000
MAX_EXPONENT = 64
MAX_NODES = 500


def _regex(name: str) -> Callable[..., Any]:
    def call(pattern: str, text: Any, ignore_case: bool = False) -> bool:
        if not isinstance(pattern, str):
            raise WhereError(f"{name}: the pattern must be a string")
        if text is None:
            return False
        try:
            compiled = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            raise WhereError(f"{name}: bad regular expression {pattern!r}: {exc}") from None
        return bool(getattr(compiled, name.removeprefix("re_"))(str(text)))

    return call


def _string(method: str) -> Callable[..., Any]:
    def call(text: Any, *args: Any) -> Any:
        if not isinstance(text, str):
            raise WhereError(f"{method}: expected a string, got {type(text).__name__}")
        if not all(isinstance(a, str | tuple) for a in args):
            raise WhereError(f"{method}: expected string arguments")
        return getattr(text, method)(*args)

    return call


#: the functions an expression may call: name -> (function, the numbers of arguments it takes)
FUNCTIONS: dict[str, tuple[Callable[..., Any], tuple[int, ...]]] = {
    "len": (len, (1,)),
    "abs": (abs, (1,)),
    "min": (min, (1, 2, 3, 4)),
    "max": (max, (1, 2, 3, 4)),
    "round": (round, (1, 2)),
    "any": (any, (1,)),
    "all": (all, (1,)),
    "lower": (_string("lower"), (1,)),
    "upper": (_string("upper"), (1,)),
    "startswith": (_string("startswith"), (2,)),
    "endswith": (_string("endswith"), (2,)),
    "re_search": (_regex("re_search"), (2, 3)),
    "re_match": (_regex("re_match"), (2, 3)),
    "re_fullmatch": (_regex("re_fullmatch"), (2, 3)),
}
#: `re.search(p, text)` is accepted as another spelling of `re_search(p, text)` (no other attribute is)
_RE_ALIASES = {"search": "re_search", "match": "re_match", "fullmatch": "re_fullmatch"}

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
            ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not}
_ALLOWED_CONSTANTS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Where:
    """A parsed, checked --where expression."""

    source: str
    tree: ast.Expression

    def names(self) -> set[str]:
        return {node.id for node in ast.walk(self.tree) if isinstance(node, ast.Name) and node.id != "re"}

    def __call__(self, names: dict[str, Any]) -> bool:
        return bool(_Evaluator(names, self.source).visit(self.tree.body))


def compile_where(expression: str) -> Where:
    """Parse and check `expression`; a WhereError names what is not allowed and where."""
    try:
        tree = ast.parse(expression.strip(), "--where", mode="eval")
    except SyntaxError as exc:
        raise WhereError(f"not an expression: {exc.msg} in {expression!r}") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise WhereError(f"expression too long ({len(nodes)} parts, at most {MAX_NODES})")
    callees = {id(node.func) for node in nodes if isinstance(node, ast.Call)}
    for node in nodes:
        if isinstance(node, ast.Attribute) and id(node) not in callees:
            raise _refuse(node, expression, "attribute access")
        _check(node, expression)
    return Where(expression, tree)


def _refuse(node: ast.AST, expression: str, what: str) -> WhereError:
    shown = ast.get_source_segment(expression.strip(), node) or type(node).__name__
    return WhereError(f"{what} is not allowed in --where: {shown!r} (allowed: comparisons, and/or/not, + - * / // "
                      f"% **, constants, column and feature names, and the functions {', '.join(FUNCTIONS)})")


def _check(node: ast.AST, expression: str) -> None:
    if isinstance(node, ast.Expression | ast.BoolOp | ast.And | ast.Or | ast.Compare | ast.IfExp | ast.Load):
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise _refuse(node, expression, f"the operator {type(node.op).__name__}")
        return
    if isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise _refuse(node, expression, f"the operator {type(node.op).__name__}")
        return
    if isinstance(node, ast.operator | ast.unaryop | ast.cmpop):
        return  # checked with their BinOp / UnaryOp; every comparison operator is allowed
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, _ALLOWED_CONSTANTS):
            raise _refuse(node, expression, "this constant")
        return
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise _refuse(node, expression, "a name starting with '_'")
        return
    if isinstance(node, ast.Call):
        if node.keywords:
            raise _refuse(node, expression, "a keyword argument")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise _refuse(node, expression, "a starred argument")
        name = _function_name(node.func)
        if name is None:
            raise _refuse(node, expression, "calling this")
        if name not in FUNCTIONS:
            raise _refuse(node, expression, f"the function {name!r}")
        if len(node.args) not in FUNCTIONS[name][1]:
            raise _refuse(node, expression, f"{name} with {len(node.args)} argument(s)")
        return
    if isinstance(node, ast.Attribute):
        # only as the callee `re.search(...)`, which _function_name resolved; any other attribute is refused
        if isinstance(node.value, ast.Name) and node.value.id == "re" and node.attr in _RE_ALIASES:
            return
        raise _refuse(node, expression, "attribute access")
    kinds = {ast.Subscript: "a subscript", ast.Lambda: "a lambda", ast.NamedExpr: "an assignment (:=)",
             ast.ListComp: "a comprehension", ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
             ast.GeneratorExp: "a comprehension", ast.Dict: "a dict", ast.JoinedStr: "an f-string",
             ast.Starred: "a starred expression", ast.Await: "await", ast.Yield: "yield"}
    raise _refuse(node, expression, kinds.get(type(node), type(node).__name__))


def _function_name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "re"
            and func.attr in _RE_ALIASES):
        return _RE_ALIASES[func.attr]
    return None


class UnknownNameError(WhereError):
    def __init__(self, name: str):
        super().__init__(f"name {name!r} is not defined")
        self.name = name


class _Evaluator:
    """Walks a checked tree; only the node kinds _check lets through are handled."""

    def __init__(self, names: dict[str, Any], source: str):
        self.names = names
        self.source = source

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in self.names:
                raise UnknownNameError(node.id)
            return self.names[node.id]
        if isinstance(node, ast.BoolOp):
            value: Any = None
            for operand in node.values:
                value = self.visit(operand)
                if isinstance(node.op, ast.And) and not value:
                    return value
                if isinstance(node.op, ast.Or) and value:
                    return value
            return value
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self.visit(node.operand))
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Compare):
            left = self.visit(node.left)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self.visit(comparator)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)
        if isinstance(node, ast.Tuple | ast.List):
            return tuple(self.visit(e) for e in node.elts)
        if isinstance(node, ast.Set):
            return frozenset(self.visit(e) for e in node.elts)
        if isinstance(node, ast.Call):
            name = _function_name(node.func)
            function = FUNCTIONS[name][0]  # type: ignore[index] - checked at parse time
            return function(*(self.visit(arg) for arg in node.args))
        raise WhereError(f"cannot evaluate {type(node).__name__}")  # unreachable after _check

    def _binary(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, int | float):
            if abs(right) > MAX_EXPONENT:
                raise WhereError(f"exponent {right} too large (at most {MAX_EXPONENT})")
            if isinstance(left, int) and left.bit_length() * abs(right) > 64 * MAX_EXPONENT * 64:
                raise WhereError("a power too large to compute")
        if isinstance(node.op, ast.Mult):
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | tuple) and isinstance(times, int) and len(seq) * times > MAX_BUILT_LENGTH:
                    raise WhereError(f"a value of more than {MAX_BUILT_LENGTH:,} items would be built")
        result = _BINARY[type(node.op)](left, right)
        if isinstance(result, str | tuple) and len(result) > MAX_BUILT_LENGTH:
            raise WhereError(f"a value of more than {MAX_BUILT_LENGTH:,} items would be built")
        return result
