"""Config fields by dotted path (``network.time_steps``): their types, defaults and docs, and
reading and writing a config field by field.

Fields are addressed on the command line by dotted path, e.g. ``--network.time_steps 8`` or
``--learner.learning_rate 6.25e-5``; :func:`apply_overrides` parses the strings by the field's
type, :func:`from_dict` reads a config file or a run's ``config.json`` and :func:`to_dict` /
:func:`to_flags` write one; an unknown field is an error naming the nearest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from typing import Any

from dsqn.config.schema import SECTIONS, Config, ConfigError, SweepConfig

__all__ = [
    "FieldInfo",
    "fields",
    "unknown_field_error",
    "apply_overrides",
    "to_dict",
    "from_dict",
    "to_flags",
    "flag_value",
    "SWEEPABLE",
    "sweep_field",
]


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One config field as the command line and ``dsqn train --help`` show it.

    Attributes:
      path: dotted path, e.g. ``"network.time_steps"``.
      type: its type as written in the dataclass, e.g. ``"int"``, ``"float | None"``.
      default: the dataclass default (the paper's value; presets change some).
      doc: its description from the section's docstring.
    """

    path: str
    type: str
    default: Any
    doc: str


def _section_classes() -> dict[str, type]:
    return {f.name: f.default.__class__ for f in dataclasses.fields(Config) if f.name != "name"}


def _attribute_docs(cls: type) -> dict[str, str]:
    """``name -> text`` of the ``Attributes:`` section of a dataclass docstring (continuation
    lines joined)."""
    docs: dict[str, str] = {}
    lines = (cls.__doc__ or "").split("Attributes:", 1)[-1].splitlines()
    indent, current = None, None
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        name, sep, text = stripped.partition(":")
        if depth == indent and sep and name.isidentifier():
            current = name
            docs[name] = text.strip()
        elif current is not None and depth > indent:
            docs[current] += " " + stripped
    return {name: text.replace("``", "") for name, text in docs.items()}


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        return f"tuple[{_type_name(typing.get_args(tp)[0])}, ...]"
    return tp.__name__


def fields() -> list[FieldInfo]:
    """Every config field (``name`` first, then section by section) with type, default, doc."""
    out = [FieldInfo("name", "str", Config.name, "a label for the run (the preset's name).")]
    for section, cls in _section_classes().items():
        docs = _attribute_docs(cls)
        for f, tp in zip(dataclasses.fields(cls), _field_types(cls).values(), strict=True):
            out.append(FieldInfo(f"{section}.{f.name}", _type_name(tp), f.default, docs[f.name]))
    return out


def unknown_field_error(path: str) -> ConfigError:
    """The error for a field that does not exist, with the nearest valid path(s)."""
    paths = [f.path for f in fields()]
    by_name = [p for p in paths if p.rsplit(".", 1)[-1] == path.rsplit(".", 1)[-1]]
    near = by_name or difflib.get_close_matches(path, paths, n=1)
    hint = f" (did you mean {' or '.join(near)}?)" if near else ""
    section = path.split(".", 1)[0] if "." in path else None
    if section in SECTIONS:
        valid = [p for p in paths if p.startswith(section + ".")]
        return ConfigError(f"unknown config field {path!r}{hint}; fields of {section}: {valid}")
    return ConfigError(
        f"unknown config field {path!r}{hint}; valid sections: {list(SECTIONS)} "
        "(`dsqn train --help` lists every field)"
    )


# ----------------------------------------------------------------------------- overrides


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _parse(text: str, tp: Any, path: str) -> Any:
    """Parses a command-line string as a value of type ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and text.lower() in ("none", "null"):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _parse(text, inner, path)
    if origin is tuple:
        (inner, _) = typing.get_args(tp)
        parts = [p for p in text.replace(",", " ").split() if p]
        return tuple(_parse(p, inner, path) for p in parts)
    try:
        if tp is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            return int(float(text)) if "e" in text.lower() else int(text.replace("_", ""))
        if tp is float:
            return float(text)
        return str(text)
    except ValueError:
        raise ConfigError(f"{path}: cannot read {text!r} as {tp.__name__}") from None


def _typed(value: Any, tp: Any, path: str) -> Any:
    """``value`` (from JSON or Python) checked against the field type ``tp``: a list becomes a
    tuple, an int is accepted for a float; anything else of the wrong type is an error."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _typed(value, inner, path)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path} must be a list, got {value!r}")
        (inner, _) = typing.get_args(tp)
        return tuple(_typed(v, inner, path) for v in value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{path} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def apply_overrides(config: Config, overrides: dict[str, Any]) -> Config:
    """Returns ``config`` with dotted-path fields replaced, e.g. ``{"network.time_steps": "8"}``.

    String values are parsed by the field's type; other values are checked against it.
    """
    return _with_fields(config, overrides, parse_strings=True)


def _with_fields(config: Config, overrides: dict[str, Any], *, parse_strings: bool) -> Config:
    sections = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    top = {"name": config.name}
    for path, value in overrides.items():
        if path == "name":
            top["name"] = str(value)
            continue
        section, _, field = path.partition(".")
        types_ = _field_types(type(sections[section])) if section in SECTIONS else {}
        if field not in types_:
            raise unknown_field_error(path)
        if parse_strings and isinstance(value, str):
            value = _parse(value, types_[field], path)
        else:
            value = _typed(value, types_[field], path)
        sections[section] = dataclasses.replace(sections[section], **{field: value})
    sections.update(top)
    return Config(**sections)


SWEEPABLE: tuple[str, ...] = tuple(
    f.name.replace("_", ".", 1) for f in dataclasses.fields(SweepConfig)
)
"""Fields a sweep may vary (``network.tau``, ...): one :class:`SweepConfig` field each
(``sweep.network_tau``); numeric values that no array shape or code path depends on."""


def sweep_field(path: str) -> str:
    """The :class:`SweepConfig` field of a sweepable config field, ``network.tau`` ->
    ``sweep.network_tau``; a field that cannot be swept is an error naming those that can."""
    if path not in SWEEPABLE:
        near = difflib.get_close_matches(path, list(SWEEPABLE), n=1, cutoff=0.8)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ConfigError(
            f"{path} cannot be swept{hint}: a sweep runs all its agents in one program, so it may "
            "only vary numeric values that no array shape or code path depends on (not "
            "network.time_steps, hidden sizes, batch or replay sizes, the neuron, the loss, ...; "
            "sweep those with one run per value, see experiments/); sweepable fields: "
            + ", ".join(SWEEPABLE)
        )
    return "sweep." + path.replace(".", "_", 1)


def to_dict(config: Config) -> dict:
    """A JSON-ready nested dict."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(data: dict) -> Config:
    """Inverse of :func:`to_dict`, for a config file or a run's ``config.json`` (its ``meta``
    is ignored).

    Missing fields keep their defaults (the paper's); unknown fields and values of the wrong type
    are errors naming the field.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - {"name", "meta", *SECTIONS}
    if unknown:
        raise unknown_field_error(sorted(unknown)[0])
    overrides: dict[str, Any] = {}
    for section in SECTIONS:
        values = data.get(section, {})
        if not isinstance(values, dict):
            raise ConfigError(f"config section {section!r} must be an object, got {values!r}")
        overrides.update({f"{section}.{k}": v for k, v in values.items()})
    if "name" in data:
        overrides["name"] = _typed(data["name"], str, "name")
    return _with_fields(Config(name="custom"), overrides, parse_strings=False)


def flag_value(value: Any) -> str:
    """A field's value as the command line writes it (``none``, ``true``, ``0 1 2``)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return str(value)


def to_flags(config: Config) -> list[str]:
    """``config`` as ``--section.field VALUE`` lines (every field but empty value lists, which
    a command line cannot write: such a field, e.g. a sweep field, keeps its default, empty),
    which :func:`apply_overrides` reads back to the same config."""
    lines = [f"--name {config.name}"]
    for info in fields()[1:]:
        section, field = info.path.split(".")
        value = getattr(getattr(config, section), field)
        if value != ():
            lines.append(f"--{info.path} {flag_value(value)}")
    return lines
