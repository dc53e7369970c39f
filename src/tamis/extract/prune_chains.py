"""Runs of rule-list prunes on one tree with nothing in between that could change it, read from the source.

trafilatura applies several rule lists to the same tree one after the other, e.g.

    tree = prune_unwanted_nodes(tree, LIST_A, with_backup=True)
    if <test>:
        tree = prune_unwanted_nodes(tree, LIST_B)

One walk over the tree can serve all of them (`tamis.extract.rule_pass`) if nothing but these calls
touches the tree in between. This module finds such runs ("chains") in the installed trafilatura's own
functions, with Python's `ast` (nothing of trafilatura is copied): consecutive statements of one block
that are either such a call on the same variable, or an `if` whose test only reads names, attributes,
constants and comparisons (no calls) and whose branches hold only such statements; the first must be a
call made whenever the block runs, so that each execution of the run starts a new walk. A chain is known by
its call sites (code object, line): a prune call made from one of them, in the same frame and on the same
tree as the previous call of that chain, with no other call of the chain's function in between, continues
the walk.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any

PRUNE = "prune_unwanted_nodes"
_PURE_TEST = (ast.Name, ast.Attribute, ast.Constant, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Load,
              ast.And, ast.Or, ast.Not, ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is, ast.IsNot,
              ast.Lt, ast.LtE, ast.Gt, ast.GtE)


@dataclass(frozen=True)
class Site:
    """One prune call of a chain: the chain (its function's code and first call line), the call's order
    in it, and the name of the rule list it passes."""

    chain: tuple[Any, int]
    position: int
    list_name: str


def _prune_call(stmt: ast.stmt) -> tuple[str, str, ast.Call] | None:
    """(tree variable, list name, call) of `v = prune_unwanted_nodes(v, NAME[, keyword=constant])`."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
        return None
    call = stmt.value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == PRUNE):
        return None
    if len(call.args) != 2 or not all(isinstance(a, ast.Name) for a in call.args):
        return None
    if any(not isinstance(k.value, ast.Constant) for k in call.keywords):
        return None
    variable, tree, rules = stmt.targets[0].id, call.args[0].id, call.args[1].id  # type: ignore[attr-defined]
    return (variable, rules, call) if variable == tree else None


def _pure(test: ast.expr) -> bool:
    return all(isinstance(node, _PURE_TEST) for node in ast.walk(test))


def _calls_of(stmt: ast.stmt, variable: str | None) -> list[tuple[str, str, ast.Call]] | None:
    """The prune calls a statement consists of (all on one variable), or None if it does anything else."""
    single = _prune_call(stmt)
    if single is not None:
        return [single] if variable in (None, single[0]) else None
    if isinstance(stmt, ast.If) and _pure(stmt.test):
        calls: list[tuple[str, str, ast.Call]] = []
        for inner in [*stmt.body, *stmt.orelse]:
            found = _calls_of(inner, variable or (calls[0][0] if calls else None))
            if found is None:
                return None
            calls += found
        return calls if calls else None
    return None


def _blocks(node: ast.AST) -> list[list[ast.stmt]]:
    blocks = []
    for field in ("body", "orelse", "finalbody"):
        block = getattr(node, field, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
            blocks.append(block)
    for handler in getattr(node, "handlers", []) or []:
        blocks.append(handler.body)
    return blocks


def chains_of(function: Any) -> list[list[tuple[int, int, str]]]:
    """Each chain in `function`: its calls as (first line, last line, rule list name), in source order."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return []
    offset = function.__code__.co_firstlineno - 1
    tree = ast.parse(source)
    chains: list[list[tuple[int, int, str]]] = []

    def visit(node: ast.AST) -> None:
        for block in _blocks(node):
            run: list[tuple[str, str, ast.Call]] = []
            for stmt in block:
                calls = _calls_of(stmt, run[0][0] if run else None)
                if calls is None:
                    close(run)
                    run = []
                    # a run starts with a call made whenever the block runs, so that every execution of
                    # the run starts a new walk (a conditional first call could continue a stale one)
                    single = _prune_call(stmt)
                    if single is None:
                        visit(stmt)
                        continue
                    calls = [single]
                run += calls
            close(run)

    def close(run: list[tuple[str, str, ast.Call]]) -> None:
        if len(run) >= 2:
            chains.append([(c.lineno + offset, (c.end_lineno or c.lineno) + offset, name) for _v, name, c in run])

    for node in tree.body:
        visit(node)
    return chains


def find_sites(functions: list[Any]) -> dict[tuple[Any, int], Site]:
    """(code object, line) of every chain call in `functions` -> its Site."""
    sites: dict[tuple[Any, int], Site] = {}
    for function in functions:
        code = function.__code__
        for chain in chains_of(function):
            key = (code, chain[0][0])
            for position, (first, last, name) in enumerate(chain):
                for line in range(first, last + 1):
                    sites[(code, line)] = Site(key, position, name)
    return sites
