"""trafilatura's rule lists in one walk over the tree, each rule giving XPath's own answer.

trafilatura applies a rule list (`prune_unwanted_nodes(tree, LIST)`) by evaluating each rule's XPath on the
tree, one after another, deleting what the earlier ones matched before the next is evaluated (or, with
its guard, evaluating all of them first). Each evaluation walks the whole tree in libxml2. Here one walk
serves a whole list, or a run of lists applied one after the other to the same tree (`prune_chains`):
every element's (tag, relevant attributes) is looked up in a cache of which rules' local predicates hold
(`tamis.extract.xpath_predicates`), and the elements each rule matches are kept in document order.

A rule asked for after others of the same walk gets the elements of that walk still under the tree: its
local predicates read only the element's tag and attributes, which deleting other elements (the only
change made to the tree between the rules of a walk) does not alter, and deleting keeps the others'
document order, so the answer is the one XPath would give on the tree as it is then. Predicates that
read the element's subtree (`not(.//h1)`) are evaluated, with their own XPath, when the rule is asked
for. A rule that could not be compiled keeps its XPath object, evaluated then too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from lxml import etree

from tamis.extract.xpath_predicates import Rule, Unsupported, classifier, clear_memos, compile_rule, crafted_tree

CACHE_LIMIT = 200_000  # distinct (tag, relevant attributes) kept per walker before its cache starts again

Answer = Callable[[Any], list[Any]]


class RuleList:
    """One of trafilatura's rule lists (`source`, recognised by identity): its rule objects and, for each
    rule that compiled and passed its check, a `Rule`."""

    def __init__(self, source: list[Any], paths: Sequence[str], namespaces: dict[str, str]):
        self.source = source
        self.objects = list(source)
        self.rules: list[Rule | None] = []
        self.problems: list[str] = []
        for path in paths:
            try:
                self.rules.append(compile_rule(path, namespaces))
            except Unsupported as exc:
                self.rules.append(None)
                self.problems.append(f"{' '.join(path.split())[:70]!r}: {exc}")

    @property
    def compiled(self) -> int:
        return sum(rule is not None for rule in self.rules)

    def unchanged(self) -> bool:
        """Whether the list still holds the rule objects it was built from (user code may edit it)."""
        source = self.source
        return len(source) == len(self.objects) and all(a is b for a, b in zip(source, self.objects, strict=True))


class Walker:
    """One walk over a tree for the compiled rules of one or more rule lists."""

    def __init__(self, lists: Sequence[RuleList]):
        self.lists = tuple(lists)
        self.active: list[Rule] = []
        self.slots: dict[tuple[int, int], int] = {}  # (list position, rule index) -> slot in `active`
        for position, rule_list in enumerate(self.lists):
            for index, rule in enumerate(rule_list.rules):
                if rule is not None:
                    self.slots[(position, index)] = len(self.active)
                    self.active.append(rule)
        names: set[str] | None = set()
        tags: set[str] | None = set()
        for rule in self.active:
            names = None if names is None or rule.names is None else names | rule.names
            tags = None if tags is None or rule.tags is None else tags | rule.tags
        self.names = frozenset(names) if names is not None else None
        self.tags = tuple(sorted(tags)) if tags is not None else None
        self._cache: dict[Any, tuple[int, ...]] = {}
        self._classify = classifier(self.active)

    def walk(self, tree: Any) -> list[list[Any]]:
        """For each slot, the descendants of `tree` the rule's local predicates accept, in document order."""
        found: list[list[Any]] = [[] for _ in self.active]
        cache, names, classify = self._cache, self.names, self._classify
        if len(cache) > CACHE_LIMIT:
            cache.clear()
            clear_memos()
        get = cache.get
        elements = tree.iterdescendants(*self.tags) if self.tags is not None else tree.iterdescendants(etree.Element)
        for element in elements:
            tag = element.tag
            items = element.items()
            if not items:
                key: Any = tag
                attrs: tuple[tuple[str, str], ...] = ()
            else:
                attrs = tuple(items) if names is None else tuple([item for item in items if item[0] in names])
                key = (tag, attrs)
            hits = get(key)
            if hits is None:
                hits = cache[key] = classify(tag, attrs, dict(attrs))
            for slot in hits:
                found[slot].append(element)
        return found


class Pass:
    """The results of one walk of `walker` over `tree`, handed out rule by rule."""

    def __init__(self, walker: Walker, tree: Any):
        self.walker = walker
        self.tree = tree
        self.found: list[list[Any]] | None = None
        self.answered = False  # after the first answer, elements may have been deleted

    def answers(self, position: int) -> list[Answer]:
        """Stand-ins for the rule objects of list `position`, for one `prune_unwanted_nodes` call."""
        rule_list = self.walker.lists[position]
        out: list[Answer] = []
        for index, obj in enumerate(rule_list.objects):
            slot = self.walker.slots.get((position, index))
            out.append(self._kept(obj) if slot is None else self._compiled(slot, obj))
        return out

    def _kept(self, obj: Any) -> Answer:
        def evaluate(tree: Any) -> list[Any]:
            self.answered = True
            return obj(tree)

        return evaluate

    def _compiled(self, slot: int, obj: Any) -> Answer:
        rule = self.walker.active[slot]

        def evaluate(tree: Any) -> list[Any]:
            if tree is not self.tree:
                return obj(tree)
            if self.found is None:
                self.found = self.walker.walk(tree)
            candidates = self.found[slot]
            if self.answered:
                candidates = [e for e in candidates if _under(e, tree)]
            self.answered = True
            if rule.structural:
                candidates = [e for e in candidates if all(test(e) for test in rule.structural)]
            return candidates

        return evaluate


def _under(element: Any, tree: Any) -> bool:
    parent = element.getparent()
    while parent is not None:
        if parent is tree:
            return True
        parent = parent.getparent()
    return False


def check(rule_list: RuleList, originals: Sequence[Any], trees: Sequence[Any] = ()) -> list[str]:
    """Where a compiled rule and its original XPath object select different elements, on a tree built
    from the rule's literals and on `trees`; a rule that differs keeps its XPath object."""
    problems = []
    for index, rule in enumerate(rule_list.rules):
        if rule is None:
            continue
        single = RuleList([originals[index]], [], {})
        single.rules = [rule]
        walker = Walker([single])
        for tree in [crafted_tree(rule.path), *trees]:
            got = walker.walk(tree)[0]
            if rule.structural:
                got = [e for e in got if all(test(e) for test in rule.structural)]
            want = originals[index](tree)
            if len(got) != len(want) or any(a is not b for a, b in zip(got, want, strict=True)):
                problems.append(f"{' '.join(rule.path.split())[:70]!r} differs from its XPath")
                rule_list.rules[index] = None
                break
    return problems


class Pruner:
    """trafilatura's `prune_unwanted_nodes`, unchanged, handed stand-ins for a list's rule objects that
    answer from one walk: of that list alone, or of the chain of lists the call belongs to.

    `chains` maps a call site (code object, line) to (chain key, position in the chain, walker, walker
    position of the call's list). A call continues the open walk only when it comes from the same frame,
    on the same tree, from a later position of the same chain (see `tamis.extract.prune_chains`).
    """

    def __init__(self, prune: Callable[..., Any], lists: dict[int, RuleList],
                 chains: dict[tuple[Any, int], tuple[Any, int, Walker, int]]):
        self.prune = prune
        self.lists = lists
        self.chains = chains
        self.walkers = {key: Walker([rule_list]) for key, rule_list in lists.items()}
        self._open: tuple[Any, Any, Any, int, Pass] | None = None  # frame, tree, chain, position, pass

    def __call__(self, tree: Any, nodelist: Any, *args: Any, **kwargs: Any) -> Any:
        rule_list = self.lists.get(id(nodelist))
        if rule_list is None or rule_list.source is not nodelist or not rule_list.unchanged():
            return self.prune(tree, nodelist, *args, **kwargs)
        frame = sys._getframe(1)
        site = self.chains.get((frame.f_code, frame.f_lineno))
        if site is not None and site[2].lists[site[3]] is rule_list:
            chain, position, walker, at = site
            state = self._open
            same = state is not None and state[0] is frame and state[1] is tree and state[2] == chain
            if same and state[3] < position:  # type: ignore[index]
                walk = state[4]  # type: ignore[index]
            else:
                walk = Pass(walker, tree)
            self._open = (frame, tree, chain, position, walk)
            answers = walk.answers(at)
        else:
            self._open = None
            answers = Pass(self.walkers[id(nodelist)], tree).answers(0)
        del frame
        return self.prune(tree, answers, *args, **kwargs)

    def close(self) -> None:
        self._open = None

    def forget(self) -> None:
        """Empty every cache (a benchmark that passes over the same pages again measures cold ones)."""
        self._open = None
        for walker in [*self.walkers.values(), *(site[2] for site in self.chains.values())]:
            walker._cache.clear()
        clear_memos(0)
