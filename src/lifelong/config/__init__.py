"""Run configuration: the typed schema and the layering rules every entry point uses.

* :mod:`lifelong.config.schema`: the frozen :class:`RunConfig`, raw-dict merging and validation;
* :mod:`lifelong.config.layers`: :func:`layered_config`, the one function that turns a request
  (fields, preset, config file, overrides) into a resolved config and the layer of each field.
"""

from lifelong.config.layers import REQUEST_KEYS, Layered, layered_config
from lifelong.config.schema import (
    SECTIONS,
    TOP_LEVEL,
    Raw,
    RunConfig,
    build_section,
    coerce,
    flatten,
    merge,
    qualify,
    resolve,
    section_classes,
    set_key,
)

__all__ = [
    "REQUEST_KEYS",
    "SECTIONS",
    "TOP_LEVEL",
    "Layered",
    "Raw",
    "RunConfig",
    "build_section",
    "coerce",
    "flatten",
    "layered_config",
    "merge",
    "qualify",
    "resolve",
    "section_classes",
    "set_key",
]
