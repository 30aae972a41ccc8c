"""The starter rules shipped with siemgate (enabled in every account unless overridden), in the
native format (`starter/*.yml`, what runs) and in Sigma (`starter/sigma/*.yml`, the same rules
for SIEM teams; tests check both forms fire alike)."""

from __future__ import annotations

import functools
from importlib import resources

from siemgate.alerts.model import Rule, compile_rule, parse_rule
from siemgate.alerts.yaml_text import load_documents


def _folder() -> resources.abc.Traversable:
    return resources.files("siemgate.alerts") / "starter"


@functools.cache
def starter_rules() -> dict[str, Rule]:
    """The native starter rules by id (checked: each compiles)."""
    rules: dict[str, Rule] = {}
    for entry in sorted(_folder().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yml"):
            [data] = load_documents(entry.read_text(encoding="utf-8"))
            rule = parse_rule(data, f"starter rule {entry.name}")
            compile_rule(rule)
            rules[rule.id] = rule
    return rules


def starter_sigma() -> dict[str, str]:
    """The Sigma form of each starter rule: file name -> YAML text."""
    folder = _folder() / "sigma"
    return {
        e.name: e.read_text(encoding="utf-8")
        for e in sorted(folder.iterdir(), key=lambda e: e.name)
        if e.name.endswith(".yml")
    }
