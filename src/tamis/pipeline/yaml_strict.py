"""YAML for the files people write (pipelines, ablations): the same as `yaml.safe_load`, except that a key
given twice in one mapping is an error.

PyYAML keeps the last of two equal keys without a word, so a pipeline step with `timeout: fast` and, a few
lines below, `timeout: 1.0` ran with 1.0, and a typo in the first went unnoticed. The error names the key
and both lines, before any work starts.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.YAMLError):
    """A mapping gives the same key twice; the message names the key and both lines (1-based)."""

    def __init__(self, key: Any, line: int, first_line: int):
        super().__init__(f"line {line}: key {key!r} is given twice (first on line {first_line}); only one value "
                         "can hold")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader whose mappings refuse a repeated key (merge keys `<<` still merge as usual)."""


def _mapping_without_repeats(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            seen = first_line.get(key)
        except TypeError:  # an unhashable key: construct_mapping says so
            break
        if seen is not None:
            raise DuplicateKeyError(key, key_node.start_mark.line + 1, seen)
        first_line[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_repeats)


def load_yaml(text: str) -> Any:
    """Parse `text` like `yaml.safe_load`; a repeated key raises yaml.YAMLError naming it and its lines."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
