"""Finds trafilatura's rule lists and chains of prunes in the installed package, and builds the `Pruner`.

Everything is read from the loaded trafilatura modules at run time: the module-level lists of XPath rule
objects (compiled by `tamis.extract.xpath_predicates`, each checked against its original object), and,
from the source of the functions that call `prune_unwanted_nodes`, the runs of calls one walk can serve
(`tamis.extract.prune_chains`).
"""

from __future__ import annotations

import inspect
from typing import Any

from lxml import etree

from tamis.extract.prune_chains import PRUNE, Site, find_sites
from tamis.extract.rule_pass import Pruner, RuleList, Walker, check
from tamis.extract.xpath_predicates import EXSLT_REGEXP


def plan_rule_lists(modules: list[Any], originals: dict[int, Any]) -> tuple[dict[int, RuleList], list[str]]:
    """Each module-level list of XPath rule objects, keyed by identity, its rules compiled from the
    original objects' text (`originals` maps a replacement object's id to the object it replaced) and
    checked against them; and notes on the rules left to XPath (not compiled, or compiled but different)."""
    lists: dict[int, RuleList] = {}
    notes: list[str] = []
    for module in modules:
        for value in vars(module).values():
            if not (isinstance(value, list) and value and all(isinstance(v, etree.XPath) for v in value)):
                continue
            if id(value) in lists:
                continue
            objects = [originals.get(id(v), v) for v in value]
            rule_list = RuleList(value, [o.path for o in objects], {"re": EXSLT_REGEXP})
            notes += rule_list.problems
            notes += check(rule_list, objects)
            if rule_list.compiled:
                lists[id(value)] = rule_list
    return lists, notes


def plan_chains(modules: list[Any], lists: dict[int, RuleList]) -> dict[tuple[Any, int], tuple[Any, int, Walker, int]]:
    """Call site (code, line) -> (chain, position, the chain's walker, the list's place in the walker), for
    every chain of prunes in the modules' functions with at least two compiled lists."""
    functions = [
        value
        for module in modules
        for value in vars(module).values()
        if inspect.isfunction(value) and value.__module__ == module.__name__ and PRUNE in value.__code__.co_names
    ]
    by_chain: dict[Any, list[tuple[tuple[Any, int], Site]]] = {}
    for key, site in find_sites(functions).items():
        by_chain.setdefault(site.chain, []).append((key, site))
    plan: dict[tuple[Any, int], tuple[Any, int, Walker, int]] = {}
    for chain, members in by_chain.items():
        function = next(f for f in functions if f.__code__ is chain[0])

        def resolve(name: str, function: Any = function) -> RuleList | None:
            return lists.get(id(function.__globals__.get(name)))

        ordered = sorted({(site.position, site.list_name) for _key, site in members})
        chain_lists: list[RuleList] = []
        for _position, name in ordered:
            rule_list = resolve(name)
            if rule_list is not None and rule_list not in chain_lists:
                chain_lists.append(rule_list)
        if len(chain_lists) < 2:
            continue
        walker = Walker(chain_lists)
        for key, site in members:
            rule_list = resolve(site.list_name)
            if rule_list is not None:
                plan[key] = (chain, site.position, walker, chain_lists.index(rule_list))
    return plan


def build_pruner(prune: Any, modules: list[Any], originals: dict[int, Any]) -> tuple[Pruner, list[str]]:
    """A `Pruner` around trafilatura's own `prune` for the installed rule lists; and the notes."""
    lists, notes = plan_rule_lists(modules, originals)
    return Pruner(prune, lists, plan_chains(modules, lists)), notes
