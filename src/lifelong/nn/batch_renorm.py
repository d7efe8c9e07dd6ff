"""Batch Renormalization (Ioffe, NeurIPS 2017), as used by AR1* with latent replay.

Pellegrini et al., *Latent Replay for Real-Time Continual Learning* (IROS 2020) replace every batch
norm of MobileNetV1 by batch renorm; spec ``ar1.md`` §2.2 (ar1-pytorch ``models/batch_renorm.py``)
gives the variant built here: the running statistics are an EMA of the mean and of the *std*, and
the caps ``r_max``/``d_max`` grow by ``inc_step`` per training sample up to ``max_r_max`` and
``max_d_max``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from lifelong.errors import ConfigError


class BatchRenorm2d(nn.Module):
    """Batch renorm over the channels of (N, C, H, W) inputs.

    Training, per channel, with μ_B the batch mean over (N, H, W) and σ_B = sqrt(biased var + ε)::

        r = clip(σ_B / σ, 1 / r_max, r_max)        d = clip((μ_B − μ) / σ, −d_max, d_max)
        y = γ ((x − μ_B) / σ_B · r + d) + β        (r and d carry no gradient)

    then μ ← μ + a (μ_B − μ), σ ← σ + a (σ_B − σ) and ``r_max += inc_step · N`` up to ``max_r_max``
    (``d_max`` likewise up to ``max_d_max``). Evaluation: ``y = γ (x − μ) / σ + β`` (no ε).
    With ``r_max = 1`` and ``d_max = 0`` training equals batch norm.

    The rate ``a`` is bias-corrected as in Caffe's batch norm, which the original AR1* code
    uses: the layer keeps the weight ``w`` of the batches behind its statistics
    (``w ← (1 − m) w + 1`` per update) and ``a = 1 / w``. A fresh layer has ``w = 0``: its first
    batch sets μ and σ, later ones average in with a = 1/2, 1/3, ... until ``a`` reaches the
    momentum ``m`` (``w`` tends to 1/m). Statistics loaded from a trained batch norm
    (:meth:`from_batch_norm`, or a weights file) and those fixed by :meth:`set_incremental`
    count as ``w = 1/m``: they move at rate ``m`` from the start. Difference from ar1-pytorch:
    its plain EMA starts from μ = 0, σ = 1 and, with m = 0.01 and then 5e-5, keeps those
    placeholders for hundreds of steps (for ever after the first experience) unless ImageNet
    statistics replace them; the training path normalises with batch statistics and hides it,
    while evaluation divides by σ ≈ 1 activations whose spread is 1e-3 of that and predicts
    one class (measured on CORe50-format data without pre-trained weights).

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

    couples_examples = True
    """Training normalises each example with its batch's statistics (see ``nn.joint_forward``)."""

    running_mean: torch.Tensor
    running_std: torch.Tensor
    r_max: torch.Tensor
    d_max: torch.Tensor
    max_r_max: torch.Tensor
    max_d_max: torch.Tensor
    inc_step: torch.Tensor
    momentum: torch.Tensor
    stats_weight: torch.Tensor

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
            "stats_weight": 0.0,
        }
        for name, value in settings.items():
            self.register_buffer(name, torch.tensor(float(value)))

    def mark_estimated(self) -> None:
        """Treat the running statistics as estimated: they move at the momentum's rate from now.

        Sets the weight behind them to its steady state 1 / m (m = 0: they are fixed).
        """
        m = float(self.momentum)
        self.stats_weight.fill_(1.0 / m if m > 0 else float("inf"))

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
                brn.mark_estimated()
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
        self.mark_estimated()

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
        """Bias-corrected EMA of the mean and std; the caps grow by ``inc_step`` per sample."""
        self.stats_weight.mul_(1.0 - self.momentum).add_(1.0)
        rate = self.stats_weight.reciprocal()  # 1 for a fresh layer, then down to the momentum
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), rate)
        self.running_std.lerp_(std.to(self.running_std.dtype), rate)
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


class WarmStartBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose running statistics use the bias-corrected rate of :class:`BatchRenorm2d`.

    ``nn.BatchNorm2d`` starts its running statistics at mean 0 and variance 1 and moves them at
    the momentum m per step, so under short schedules with a small m evaluation uses those
    placeholders. Here the weight ``w`` behind the statistics grows as ``w ← (1 − m) w + 1``
    and each step moves them at rate 1/w: the first training batch sets them, and the rate
    falls to m. :meth:`mark_estimated` (for loaded statistics) starts at ``w = 1/m``.

    Args:
        num_features: Channels C.
        eps: ε added to the variance.
        momentum: Steady-state EMA rate m of the running statistics.
    """

    stats_weight: torch.Tensor

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__(num_features, eps, momentum)
        self.register_buffer("stats_weight", torch.zeros(()))
        self._warming = True  # re-checked once after loading; avoids a host sync per step

    def mark_estimated(self) -> None:
        """Treat the running statistics as estimated: they move at the momentum's rate."""
        m = float(self.momentum or 0.0)
        self.stats_weight.fill_(1.0 / m if m > 0 else float("inf"))
        self._warming = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Batch norm; while warming up, the running statistics move at rate 1/w."""
        m = float(self.momentum or 0.0)
        if not (self.training and self.track_running_stats and self._warming):
            return super().forward(x)
        with torch.no_grad():
            self.stats_weight.mul_(1.0 - m).add_(1.0)
        rate = 1.0 / float(self.stats_weight)
        self._warming = rate > m * (1.0 + 1e-3)
        self.momentum = rate
        try:
            return super().forward(x)
        finally:
            self.momentum = m


@torch.no_grad()
def recalibrate(
    modules: Sequence[nn.Module],
    forward: Callable[[torch.Tensor], object],
    batches: Iterable[torch.Tensor],
) -> None:
    """Re-estimate the running statistics of the norms in ``modules`` for their current weights.

    Each norm's statistics become the plain average of its batch statistics over ``batches``
    (one pass of ``forward`` with those norms in training mode; caps and momentum are restored
    afterwards and the statistics count as estimated). Statistics averaged while the weights
    were still moving quickly, as in a short first experience, do not describe the final
    weights; frozen layers keep them for ever.
    """
    norms = [n for m in modules for n in m.modules() if isinstance(n, _WARM_START)]
    saved = [(n, n.training, _schedule(n)) for n in norms]
    for norm in norms:
        norm.train(True)
        norm.stats_weight.zero_()  # with momentum 0, w counts the batches: rate 1/w averages
        if isinstance(norm, BatchRenorm2d):
            norm.momentum.zero_()
        else:
            norm.momentum, norm._warming = 0.0, True
    for batch in batches:
        forward(batch)
    for norm, training, schedule in saved:
        for name, value in schedule.items():
            if isinstance(norm, BatchRenorm2d):
                getattr(norm, name).fill_(value)
            else:
                norm.momentum = value
        norm.mark_estimated()
        norm.train(training)


_WARM_START = (BatchRenorm2d, WarmStartBatchNorm2d)


def _schedule(norm: BatchRenorm2d | WarmStartBatchNorm2d) -> dict[str, float]:
    """The settings a training-mode pass changes: momentum (and batch renorm's caps)."""
    if isinstance(norm, WarmStartBatchNorm2d):
        return {"momentum": float(norm.momentum or 0.0)}
    return {k: float(getattr(norm, k)) for k in ("momentum", "r_max", "d_max")}
