"""The SARL_Optim variants and SARL-online: registry entries of the one SARL, not subclasses.

Each sets options of :class:`~lifelong.methods.sarl.config.SARLConfig` and, for the GELU forms,
the scenario backbone's dense GELU variant; the algorithm stays in :mod:`.method`.
"""

from __future__ import annotations

import lifelong.methods.sarl.method  # noqa: F401  (registers "sarl" before its variants)
from lifelong.methods.base import register_variant

GELU_BACKBONES = {"mlp": "gelu_mlp", "resnet18": "gelu_resnet18"}
"""Dense GELU forms of the scenario backbones (tanh-approximated GELU, ReLU stem, no k-WTA)."""

register_variant(
    "sarl_enhanced",
    of="sarl",
    summary="a learned semantic similarity (SARL_Optim sarl_enhanced, spec §2.1)",
    defaults={"similarity": "learned"},
)
register_variant(
    "sarl_enhanced_gelu",
    of="sarl",
    summary="a learned similarity on dense GELU backbones (SARL_Optim, spec §2.2)",
    defaults={"similarity": "learned"},
    backbone_variants=GELU_BACKBONES,
)
register_variant(
    "sarl_enhanced_gelu_balanced",
    of="sarl",
    summary="a learned similarity, GELU backbones, importance replay (adasarl, spec §2.3)",
    defaults={"similarity": "learned", "use_balanced_sampling": True},
    backbone_variants=GELU_BACKBONES,
)
register_variant(
    "sarl_online",
    of="sarl",
    summary="warm-up in steps, running prototypes, constant rate (SARL-online, spec §1.8)",
    defaults={"online": True, "warmup_epochs": 0, "lr_steps": ()},
    supported_settings=frozenset({"class-il", "gcil", "general"}),
)
