"""Loads a CloudFormation/SAM template, turning short-form tags (`!Ref X`) into their long form (`{"Ref": "X"}`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

# Every intrinsic the short form can spell; `!GetAtt A.B` is the one whose scalar form needs splitting.
_INTRINSICS: tuple[str, ...] = ("Ref", "Condition", "GetAtt", "Sub", "Join", "Select", "Split", "If", "Not", "Equals")
_INTRINSICS += ("And", "Or", "FindInMap", "GetAZs", "ImportValue", "Base64", "Cidr", "ToJsonString", "Length")


# libyaml's loader when PyYAML has it (about 10x faster); the pure-Python one otherwise. Both are safe loaders.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TemplateLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    pass


def _long_form(name: str) -> Any:
    key = name if name in ("Ref", "Condition") else f"Fn::{name}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        elif isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        else:
            raise yaml.constructor.ConstructorError(None, None, f"!{name} on a {type(node).__name__}", node.start_mark)
        return {key: value}

    return construct


for _name in _INTRINSICS:
    _TemplateLoader.add_constructor(f"!{_name}", _long_form(_name))


# Parsed templates by (path, mtime, size): every test that provisions moto reads the same template.
_PARSED: dict[tuple[str, int, int], dict[str, Any]] = {}


def load_template(path: Path) -> dict[str, Any]:
    """The template as a dict, parsed once per file version; each caller gets its own copy to change."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _PARSED:
        loaded = yaml.load(path.read_text(), Loader=_TemplateLoader)  # noqa: S506 - SafeLoader subclass
        if not isinstance(loaded, dict) or "Resources" not in loaded:
            raise ValueError(f"{path} is not a CloudFormation template")
        _PARSED[key] = loaded
    return copy.deepcopy(_PARSED[key])
