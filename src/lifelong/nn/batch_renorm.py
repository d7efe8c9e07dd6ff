"""Batch Renormalization (Ioffe, NeurIPS 2017), as used by AR1* with latent replay.

Pellegrini et al., *Latent Replay for Real-Time Continual Learning* (IROS 2020) replace every batch
norm of MobileNetV1 by batch renorm; spec ``ar1.md`` §2.2 (ar1-pytorch ``models/batch_renorm.py``)
gives the variant built here: the running statistics are an EMA of the mean and of the *std*, and
the caps ``r_max``/``d_max`` grow by ``inc_step`` per training sample up to ``max_r_max`` and
``max_d_max``.
"""

from __future__ import annotations

import torch
from torch import nn

from lifelong.errors import ConfigError


class BatchRenorm2d(nn.Module):
    """Batch renorm over the channels of (N, C, H, W) inputs.

    Training, per channel, with μ_B the batch mean over (N, H, W) and σ_B = sqrt(biased var + ε)::

        r = clip(σ_B / σ, 1 / r_max, r_max)        d = clip((μ_B − μ) / σ, −d_max, d_max)
        y = γ ((x − μ_B) / σ_B · r + d) + β        (r and d carry no gradient)

    then μ ← μ + m (μ_B − μ), σ ← σ + m (σ_B − σ) and ``r_max += inc_step · N`` up to ``max_r_max``
    (``d_max`` likewise up to ``max_d_max``). Evaluation: ``y = γ (x − μ) / σ + β`` (no ε).
    With ``r_max = 1`` and ``d_max = 0`` training equals batch norm.

    The running statistics, the caps and the schedule settings (``momentum``, ``inc_step``,
    ``max_r_max``, ``max_d_max``) are 0-d buffers, so a checkpoint restores a layer that has
    been switched by :meth:`set_incremental`. Only γ (``weight``) and β (``bias``) are
    parameters.

    Args:
        num_features: Channels C.
        eps: ε added to the batch variance.
        momentum: EMA rate m of the running mean and std.
        r_max: Initial cap of r (≥ 1).
        d_max: Initial cap of |d| (≥ 0).
        max_r_max: Final cap of r.
        max_d_max: Final cap of |d|.
        inc_step: Growth of ``r_max`` and ``d_max`` per training sample.
    """

    running_mean: torch.Tensor
    running_std: torch.Tensor
    r_max: torch.Tensor
    d_max: torch.Tensor
    max_r_max: torch.Tensor
    max_d_max: torch.Tensor
    inc_step: torch.Tensor
    momentum: torch.Tensor

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.01,
        r_max: float = 1.0,
        d_max: float = 0.0,
        max_r_max: float = 1.25,
        max_d_max: float = 0.5,
        inc_step: float = 4.1e-5,
    ) -> None:
        super().__init__()
        if num_features <= 0 or eps <= 0:
            raise ConfigError(
                f"batch renorm needs num_features > 0 and eps > 0, got {num_features}, {eps}"
            )
        _check_schedule(momentum, r_max, d_max, max_r_max, max_d_max, inc_step)
        self.num_features = num_features
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_std", torch.ones(num_features))
        settings = {
            "r_max": r_max,
            "d_max": d_max,
            "max_r_max": max_r_max,
            "max_d_max": max_d_max,
            "inc_step": inc_step,
            "momentum": momentum,
        }
        for name, value in settings.items():
            self.register_buffer(name, torch.tensor(float(value)))

    @classmethod
    def from_batch_norm(
        cls,
        bn: nn.BatchNorm2d,
        momentum: float = 0.01,
        r_max: float = 1.0,
        d_max: float = 0.0,
        max_r_max: float = 1.25,
        max_d_max: float = 0.5,
        inc_step: float = 4.1e-5,
    ) -> BatchRenorm2d:
        """A batch renorm layer that starts from a trained batch norm.

        γ = ``bn.weight``, β = ``bn.bias``, μ = ``bn.running_mean``, σ = sqrt(``bn.running_var``)
        (without ε, as the reference); ε is ``bn.eps``. A batch norm without affine parameters
        gives γ = 1, β = 0; one without running statistics gives μ = 0, σ = 1. The new layer is
        on the device and in the dtype of ``bn`` and in training mode like ``bn``.
        """
        brn = cls(bn.num_features, bn.eps, momentum, r_max, d_max, max_r_max, max_d_max, inc_step)
        reference = bn.weight if bn.weight is not None else bn.running_mean
        if reference is not None:
            brn.to(device=reference.device, dtype=reference.dtype)
        with torch.no_grad():
            if bn.weight is not None and bn.bias is not None:
                brn.weight.copy_(bn.weight)
                brn.bias.copy_(bn.bias)
            if bn.running_mean is not None and bn.running_var is not None:
                brn.running_mean.copy_(bn.running_mean)
                brn.running_std.copy_(bn.running_var.sqrt())
        brn.train(bn.training)
        return brn

    def set_incremental(
        self, momentum: float = 5e-5, r_max: float = 1.25, d_max: float = 0.5
    ) -> None:
        """Switch to the settings used after the first experience (spec §2.2).

        ar1-pytorch's ``change_brn_pars``: momentum ``m`` (5e-5), ``r_max`` (1.25) and ``d_max``
        (0.5) fixed from now on. The caps are set to the same values and ``inc_step`` to 0, so
        they stay fixed. Difference from the reference: it means to zero the increment too but
        writes a wrongly named attribute, so its increment keeps running; that is harmless there
        only because the caps are reached by then.
        """
        _check_schedule(momentum, r_max, d_max, r_max, d_max, 0.0)
        for name, value in (
            ("momentum", momentum),
            ("r_max", r_max),
            ("d_max", d_max),
            ("max_r_max", r_max),
            ("max_d_max", d_max),
            ("inc_step", 0.0),
        ):
            getattr(self, name).fill_(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Renormalise ``x`` of shape (N, C, H, W); see the class docstring."""
        if x.dim() != 4:
            raise ValueError(f"BatchRenorm2d expects (N, C, H, W) inputs, got shape {x.shape}")
        if not self.training:
            scale = self.weight / self.running_std
            centred = x - self.running_mean[:, None, None]
            return torch.addcmul(self.bias[:, None, None], centred, scale[:, None, None])
        var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
        std = (var + self.eps).sqrt()
        with torch.no_grad():
            r = torch.clamp(std / self.running_std, min=1.0 / self.r_max, max=self.r_max)
            d = torch.clamp(
                (mean - self.running_mean) / self.running_std, min=-self.d_max, max=self.d_max
            )
            self._update(mean, std, x.shape[0])
        # y = γ ((x − μ_B) / σ_B · r + d) + β = (x − μ_B) · γ r / σ_B + (β + γ d); centring first
        # keeps precision for channels whose mean is large against their std
        scale = self.weight * r / std
        shift = self.bias + self.weight * d
        centred = x - mean[:, None, None]
        return torch.addcmul(shift[:, None, None], centred, scale[:, None, None])

    @torch.no_grad()
    def _update(self, mean: torch.Tensor, std: torch.Tensor, batch_size: int) -> None:
        """EMA of the mean and std; the caps grow by ``inc_step`` per sample."""
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
        self.running_std.lerp_(std.to(self.running_std.dtype), self.momentum)
        torch.minimum(self.r_max + self.inc_step * batch_size, self.max_r_max, out=self.r_max)
        torch.minimum(self.d_max + self.inc_step * batch_size, self.max_d_max, out=self.d_max)

    def extra_repr(self) -> str:
        """Channels, ε and the current schedule."""
        return (
            f"{self.num_features}, eps={self.eps}, momentum={float(self.momentum):g}, "
            f"r_max={float(self.r_max):g}/{float(self.max_r_max):g}, "
            f"d_max={float(self.d_max):g}/{float(self.max_d_max):g}, "
            f"inc_step={float(self.inc_step):g}"
        )


def _check_schedule(
    momentum: float,
    r_max: float,
    d_max: float,
    max_r_max: float,
    max_d_max: float,
    inc_step: float,
) -> None:
    """Raise :class:`ConfigError` for settings outside their ranges."""
    if not 0 <= momentum <= 1:
        raise ConfigError(f"batch renorm momentum must be in [0, 1], got {momentum}")
    if not 1 <= r_max <= max_r_max:
        raise ConfigError(f"batch renorm needs 1 <= r_max <= max_r_max, got {r_max}, {max_r_max}")
    if not 0 <= d_max <= max_d_max:
        raise ConfigError(f"batch renorm needs 0 <= d_max <= max_d_max, got {d_max}, {max_d_max}")
    if inc_step < 0:
        raise ConfigError(f"batch renorm inc_step must be >= 0, got {inc_step}")
