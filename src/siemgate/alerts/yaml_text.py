"""Rule files as YAML documents, with each mapping's keys unique.

YAML says a mapping's keys are unique, but PyYAML (and so pySigma) keeps the last of two values of
one key without a word: `match: {category: credentials_failed}` followed by `match: {category:
success}` made a rule about successes, while a reviewer reading the file, yamllint, or a Go tool
(yaml.v3 refuses the text) saw another rule. A key twice is refused, naming it and its line.
Merge keys (`<<: *base`) are not repeats: the mapping's own keys override the merged ones, as YAML
defines, and every parser that knows merge keys agrees.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

_MERGE = "tag:yaml.org,2002:merge"


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader refusing a mapping with a key twice (ConstructorError, a yaml.YAMLError)."""

    def flatten_mapping(self, node: MappingNode) -> None:
        # Before merged keys join the node's own (flatten_mapping rewrites node.value in place).
        self._refuse_repeats(node)
        super().flatten_mapping(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        self._refuse_repeats(node)
        return super().construct_mapping(node, deep=deep)

    def _refuse_repeats(self, node: MappingNode) -> None:
        checked: dict[int, MappingNode] = self.__dict__.setdefault("_checked", {})  # kept: ids stay unique
        if id(node) in checked:
            return
        checked[id(node)] = node
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # PyYAML refuses it itself
            if key in seen:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice (parsers differ on which value they keep; write it once)",
                    key_node.start_mark,
                )
            seen.add(key)


def load_documents(text: str) -> list[Any]:
    """The YAML documents of `text`, empty ones left out. Raises yaml.YAMLError (a key twice
    included) and RecursionError (nesting too deep)."""
    return [d for d in yaml.load_all(text, Loader=UniqueKeyLoader) if d is not None]
