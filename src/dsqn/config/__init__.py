"""Run configuration: what a config is, its presets, its fields by path, and its validation.

- ``schema``: the sections as frozen dataclasses, with the paper's values as defaults;
- ``presets``: the named configs, with the sources of their values;
- ``overrides``: fields by dotted path, reading and writing configs (flags, JSON), unknown fields;
- ``validation``: :func:`validate`, which rejects impossible values before anything runs;
- ``sweep``: the agents of a run (sweep points x seeds) and their values;
- ``games``: the Atari games' reference scores and the MinAtar games.

This package re-exports the public names of the first four (``from dsqn.config import Config``)
and defines nothing itself.
"""

from dsqn.config.overrides import (
    SWEEPABLE,
    FieldInfo,
    apply_overrides,
    fields,
    flag_value,
    from_dict,
    sweep_field,
    to_dict,
    to_flags,
    unknown_field_error,
)
from dsqn.config.presets import PRESETS, Cited, preset, preset_descriptions, preset_sources
from dsqn.config.schema import (
    PRIORITY_FIELD_PREFIX,
    SECTIONS,
    STEPPINGS,
    Config,
    ConfigError,
    EnvConfig,
    EvalConfig,
    LearnerConfig,
    NetworkConfig,
    RunConfig,
    SweepConfig,
)
from dsqn.config.validation import SUITES, validate

__all__ = [
    "NetworkConfig",
    "EnvConfig",
    "LearnerConfig",
    "EvalConfig",
    "RunConfig",
    "SweepConfig",
    "Config",
    "ConfigError",
    "PRESETS",
    "preset",
    "preset_descriptions",
    "preset_sources",
    "FieldInfo",
    "fields",
    "unknown_field_error",
    "apply_overrides",
    "validate",
    "to_dict",
    "from_dict",
    "to_flags",
    "flag_value",
    "Cited",
    "SECTIONS",
    "STEPPINGS",
    "PRIORITY_FIELD_PREFIX",
    "SUITES",
    "SWEEPABLE",
    "sweep_field",
]
