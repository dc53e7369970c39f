"""trafilatura's readability port, its candidates' text lengths computed once per scoring.

`readability_lxml.Document.score_paragraphs` scores every candidate by its link density: the text length
of the candidate and of every link inside it (`text_length`, a full `text_content()` each). Nested
candidates share their links, so the same lengths are computed again and again. While scoring runs the
tree does not change, so each element's length can be remembered for the duration of that one call.

That the scoring does not change the tree is checked on the installed source (Python's `ast`): the scoring
method and the functions and methods it calls (`score_node`, `class_weight`, `get_link_density`,
`text_length`) may not call a method that changes an lxml tree, nor assign an element's `text`, `tail`,
`tag` or `attrib`. If the check fails, nothing is changed.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

MUTATORS = {
    "drop_tree", "drop_tag", "remove", "append", "insert", "extend", "set", "clear", "addnext", "addprevious",
    "replace", "strip_tags", "strip_elements", "makeelement", "SubElement", "getroottree", "update", "pop",
}
ELEMENT_FIELDS = {"text", "tail", "tag", "attrib"}
SCORING = ("score_paragraphs", "score_node", "class_weight", "get_link_density")

_installed: tuple[Any, Any] | None = None  # (Document class, its own score_paragraphs)


def _reads_only(function: Any) -> bool:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in MUTATORS:
                return False
        targets: list[ast.expr] = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(isinstance(t, ast.Attribute) and t.attr in ELEMENT_FIELDS for t in targets):
            return False
        if isinstance(node, ast.Delete):
            return False
    return True


def scoring_reads_only(module: Any) -> bool:
    """Whether the installed scoring code only reads the tree (see the module docstring)."""
    document = getattr(module, "Document", None)
    if document is None or not callable(getattr(module, "text_length", None)):
        return False
    functions = [getattr(document, name, None) for name in SCORING] + [module.text_length]
    return all(f is not None and _reads_only(f) for f in functions)


def install(module: Any) -> bool:
    """Remember text lengths within each `score_paragraphs` call of `module` (trafilatura.readability_lxml)."""
    global _installed
    if _installed is not None:
        return True
    if not scoring_reads_only(module):
        return False
    document = module.Document
    score_paragraphs = document.score_paragraphs

    def scoring_with_lengths_remembered(self: Any) -> Any:
        text_length = module.text_length
        lengths: dict[Any, int] = {}  # element -> length; holding the element keeps its identity

        def remembered(element: Any) -> int:
            length = lengths.get(element)
            if length is None:
                length = lengths[element] = text_length(element)
            return length

        module.text_length = remembered
        try:
            return score_paragraphs(self)
        finally:
            module.text_length = text_length

    document.score_paragraphs = scoring_with_lengths_remembered
    _installed = (document, score_paragraphs)
    return True


def uninstall() -> None:
    global _installed
    if _installed is not None:
        document, score_paragraphs = _installed
        document.score_paragraphs = score_paragraphs
        _installed = None
