"""X-DER's variants from mammoth: registry entries of the one X-DER, not subclasses.

``xder_rpc`` (mammoth ``models/xder_rpc.py``) and ``xder_ce`` (``models/xder_ce.py``) fix
options of :class:`~lifelong.methods.xder.config.XDERConfig`; the algorithm stays in
:mod:`.method`.
"""

from __future__ import annotations

import lifelong.methods.xder.method  # noqa: F401  (registers "xder" before its variants)
from lifelong.methods.base import register_variant

register_variant(
    "xder_rpc",
    of="xder",
    summary="a fixed regular-simplex (RPC) classifier and no future-preparation SupCon",
    defaults={},
    fixed={"head": "polytope", "lambd": 0.0, "past_constraint": False},
)
register_variant(
    "xder_ce",
    of="xder",
    summary=(
        "cross-entropy over the current and future heads instead of SupCon, a past "
        "constraint and reservoir replay in the first experience"
    ),
    defaults={},
    fixed={
        "lambd": 0.0,
        "stream_classes": "current_and_future",
        "past_constraint": True,
        "first_experience_reservoir": True,
    },
)
