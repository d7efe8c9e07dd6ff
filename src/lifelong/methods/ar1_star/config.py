"""The settings of AR1* and CWR* (defaults: ar1-pytorch's ``params.cfg``, spec ``ar1.md`` §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lifelong.errors import ConfigError
from lifelong.methods.base import MethodConfig

ReplayLevel = Literal["latent", "input", "none"]


@dataclass(frozen=True)
class AR1StarConfig(MethodConfig):
    """Settings of AR1* (defaults: ar1-pytorch's ``params.cfg``, spec §5)."""

    lr: float = 0.001
    """SGD learning rate in the first experience (the reference's init_lr)."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 0.0005
    """SGD weight decay (the reference's l2), on every trainable parameter."""
    inc_lr: float = 0.00005
    """SGD learning rate from the second experience on (inc_lr); the optimiser restarts once."""
    head_lr_mult: float = 1.0
    """Learning-rate multiplier of the output layer (1 in ar1-pytorch, 10 in the Caffe AR1*)."""
    latent_layer: str | None = None
    """Layer whose output is stored and replayed (None: the backbone's default split)."""
    replay: ReplayLevel = "latent"
    """What the memory stores: activations at latent_layer, the inputs themselves, or nothing."""
    rm_sz: int = 1500
    """Patterns in the replay memory."""
    memory_fp16: bool = False
    """Store latent activations as float16 (half the memory)."""
    train_lower: bool = True
    """Train the layers below the split in the first experience (ar1-pytorch: False)."""
    inc_update_rate: float = 0.00005
    """Batch-renorm momentum from the second experience on."""
    max_r_max: float = 1.25
    """Batch-renorm r_max from the second experience on."""
    max_d_max: float = 0.5
    """Batch-renorm d_max from the second experience on."""
    reg_lambda: float = 0.0
    """SI strength on the trainable conv layers (0: AR1* free, the reference's default)."""
    head_only_after_first: bool = False
    """From the second experience on, train only the head (CWR*, ``cwr_star``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rm_sz <= 0 or self.inc_lr < 0 or self.head_lr_mult < 0 or self.reg_lambda < 0:
            raise ConfigError(
                "method.rm_sz must be positive and inc_lr, head_lr_mult, reg_lambda >= 0"
            )
        if self.replay not in ("latent", "input", "none"):
            raise ConfigError(f"method.replay must be latent, input or none, got {self.replay!r}")
