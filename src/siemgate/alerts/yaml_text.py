"""Rule files as YAML documents, with each mapping's keys unique.

YAML says a mapping's keys are unique, but PyYAML (and so pySigma) keeps the last of two values of
one key without a word: `match: {category: credentials_failed}` followed by `match: {category:
success}` made a rule about successes, while a reviewer reading the file, yamllint, or a Go tool
(yaml.v3 refuses the text) saw another rule. A key twice is refused, naming it and its line.
Merge keys (`<<: *base`) are not repeats: the mapping's own keys override the merged ones, as YAML
defines, and every parser that knows merge keys agrees.

Plain scalars that YAML 1.1 (PyYAML, pySigma) and YAML 1.2 (most other parsers, Go's yaml.v3)
read differently are refused too, asking for quotes: `country: NO` was the boolean false (a rule
that never matched Norway), `region: ON` true, `0777` the number 511, `1:30` the number 90,
`1_000` the number 1000. `true` and `false` (any case) and plain decimal numbers read alike.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode

_MERGE = "tag:yaml.org,2002:merge"
_BOOLEANS = ("true", "false")


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


def _ambiguous(node: ScalarNode, reading: str) -> ConstructorError:
    return ConstructorError(
        None,
        None,
        f"the plain value {node.value!r} is read as {reading} by YAML 1.1 parsers (PyYAML, pySigma) and otherwise"
        f" by YAML 1.2 ones: quote it ('{node.value}') for text",
        node.start_mark,
    )


def _construct_bool(loader: UniqueKeyLoader, node: ScalarNode) -> bool:
    if node.value.lower() not in _BOOLEANS:
        raise _ambiguous(node, "a boolean")
    return bool(yaml.SafeLoader.construct_yaml_bool(loader, node))


def _construct_int(loader: UniqueKeyLoader, node: ScalarNode) -> int:
    digits = node.value.lstrip("+-")
    if "_" in digits or ":" in digits or (len(digits) > 1 and digits[0] == "0" and digits[1] not in "xX"):
        raise _ambiguous(node, f"the number {yaml.SafeLoader.construct_yaml_int(loader, node)}")
    return int(yaml.SafeLoader.construct_yaml_int(loader, node))


def _construct_float(loader: UniqueKeyLoader, node: ScalarNode) -> float:
    if "_" in node.value or ":" in node.value:
        raise _ambiguous(node, f"the number {yaml.SafeLoader.construct_yaml_float(loader, node)}")
    return float(yaml.SafeLoader.construct_yaml_float(loader, node))


UniqueKeyLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
UniqueKeyLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def load_documents(text: str) -> list[Any]:
    """The YAML documents of `text`, empty ones left out. Raises yaml.YAMLError (a key twice
    included) and RecursionError (nesting too deep)."""
    return [d for d in yaml.load_all(text, Loader=UniqueKeyLoader) if d is not None]
