"""Feature exaggeration on BI-R's replay batch: repulsion, attraction and contrastive learning.

Millichamp & Chen, *Brain-inspired feature exaggeration in generative replay for continual
learning* (arXiv 2110.15056, 2021), spec ``bir.md`` §6. The losses themselves are the pure
functions of :mod:`lifelong.losses.repulsion` and :mod:`lifelong.losses.supcon`; this module
holds their settings (the fork's flags, one field each), picks their inputs from one replay batch
and owns the contrastive projection head with its optimiser.

All terms act on replayed data only, from the second experience on (§6.4). Differences from the
fork, each a defect the spec lists:

- ``--repulsion`` crashes at the fork's HEAD; here it is the intended inverse-divergence loss
  (§6.3) between a sample's posterior and its competitor's.
- The fork's second contrastive view decodes replayed features with a transposed-conv decoder
  that is never trained. Here the second view is a random augmentation of the replayed input
  itself (:meth:`ContrastiveReplay.second_view`). Images get random shifts, and colour images
  also get flips, channel shuffles and grayscale, as the fork's kornia pipeline. Internal replay
  has no pixels to augment, so its features get dropout-style masking.
- The fork calls ``torch.manual_seed(1)`` every iteration. Here all randomness comes from the
  run's generator.
- In the fork, the contrastive gradient also reaches the main Adam step through un-zeroed
  gradients. Here the contrastive gradient only drives its own Adam (``c_lr``), the optimiser
  the paper describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.data.transforms import random_crop, random_hflip
from lifelong.errors import ConfigError
from lifelong.generative.vae_classifier import seeded_linear
from lifelong.losses.repulsion import (
    ReconstructionLoss,
    class_means,
    competitors,
    distribution_repulsion,
    reconstruction_attraction,
    reconstruction_repulsion,
)
from lifelong.losses.supcon import label_positives, score_positives, supervised_contrastive

PROJECTION_DIM = 100
"""Width of the contrastive projection head (the fork's ``h_dim → 100``)."""


@dataclass(frozen=True)
class ExaggerationConfig:
    """The fork's extension flags (defaults: its tuned values, spec §6.1)."""

    repulsion: bool = False
    """Distribution-based repulsion of a replayed posterior from its competitor's (--repulsion)."""
    lamda_rep: float = 1e-6
    """Weight of the distribution repulsion (--lamda-rep)."""
    kl_js: Literal["kl", "js"] = "js"
    """Divergence of the distribution repulsion (--kl-js)."""
    use_rep_f: bool = False
    """Only confusable samples (p_top1 < rep_f · p_top2) are repelled (--use-rep-f)."""
    rep_f: float = 20.0
    """Confusion factor f of use_rep_f (--rep-f)."""
    recon_repulsion: bool = False
    """Push reconstructions away from the competing class's replayed inputs (--recon-repulsion)."""
    recon_attraction: bool = False
    """Pull reconstructions towards their own class's replayed inputs (--recon-attraction)."""
    recon_rep_aver: bool = False
    """Class-averaged targets for reconstruction repulsion/attraction (--recon-rep-aver)."""
    lamda_recon_rep: float = 1e-6
    """Weight of the reconstruction repulsion (--lamda-recon-rep)."""
    lamda_recon_atr: float = 1e-6
    """Weight of the reconstruction attraction (--lamda-recon-atr)."""
    contrastive: bool = False
    """Supervised contrastive loss between two views of the replayed samples (--contrastive)."""
    c_scores: bool = False
    """Soft positives from the teacher's predictions instead of its labels (--c-scores)."""
    c_hard: bool = False
    """Hard-negative re-weighting of the contrastive denominator (--c-hard)."""
    c_temp: float = 1.0
    """Contrastive temperature (--c-temp; the base temperature is 0.07)."""
    c_lr: float = 1e-8
    """Learning rate of the contrastive Adam over the encoder and projection head (--c-lr)."""
    c_drop: float = 0.5
    """Dropout before the projection head, active in training (--c-drop)."""
    not_hidden: bool = False
    """Compute the second view without the contrastive loss: the baseline of --not-hidden."""

    def check_exaggeration(self) -> None:
        """Raise :class:`ConfigError` on weights, factors or rates out of range."""
        for name in ("lamda_rep", "lamda_recon_rep", "lamda_recon_atr", "c_lr"):
            if getattr(self, name) < 0:
                raise ConfigError(f"method.{name} must be >= 0, got {getattr(self, name)}")
        if self.kl_js not in ("kl", "js"):
            raise ConfigError(f"method.kl_js must be 'kl' or 'js', got {self.kl_js!r}")
        if not self.rep_f >= 1.0:
            raise ConfigError(f"method.rep_f must be >= 1 (p1 < f·p2), got {self.rep_f}")
        if not self.c_temp > 0 or not 0.0 <= self.c_drop < 1.0:
            raise ConfigError("method.c_temp must be positive and method.c_drop in [0, 1)")

    @property
    def needs_competitors(self) -> bool:
        """Whether any repulsion or attraction term is on."""
        return self.repulsion or self.recon_repulsion or self.recon_attraction


def exaggeration_terms(
    cfg: ExaggerationConfig,
    teacher: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    reconstruction: torch.Tensor,
    replayed: torch.Tensor,
    loss: ReconstructionLoss,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """The unweighted repulsion/attraction terms that are on, for one replay batch (§6.2-§6.4).

    Args:
        cfg: Which terms are on and the confusion criterion.
        teacher: The previous model's logits on the replayed samples, ``-inf`` outside the
            previous classes, shape (B, C).
        mu: The current encoder's posterior means of the replayed samples, (B, Z).
        logvar: Their log-variances, (B, Z).
        reconstruction: The current model's reconstructions of the replayed samples.
        replayed: The replayed samples in the reconstruction's space (pixels or features).
        loss: Per-sample reconstruction loss, ``"bce"`` (pixels) or ``"mse"`` (features).
        generator: Draws each class's in-batch representative.

    Returns:
        ``{"repulsion", "recon_repulsion", "recon_attraction"}``, the ones that are on.
    """
    terms: dict[str, torch.Tensor] = {}
    if not cfg.needs_competitors:
        return terms
    chosen = competitors(teacher, cfg.use_rep_f, cfg.rep_f, generator)
    if cfg.repulsion:
        terms["repulsion"] = distribution_repulsion(mu, logvar, chosen.rival_index, cfg.kl_js)
    if cfg.recon_rep_aver:
        means, _ = class_means(replayed, chosen.own, teacher.shape[1])
        rival_targets = means[chosen.rival].view_as(replayed)
        own_targets = means[chosen.own].view_as(replayed)
    else:
        rival_targets = replayed[chosen.rival_index.clamp_min(0)]  # rows outside active unused
        own_targets = replayed[chosen.own_index]
    if cfg.recon_repulsion:
        terms["recon_repulsion"] = reconstruction_repulsion(
            reconstruction, rival_targets, loss, mask=chosen.active
        )
    if cfg.recon_attraction:
        terms["recon_attraction"] = reconstruction_attraction(reconstruction, own_targets, loss)
    return terms


def weighted_sum(cfg: ExaggerationConfig, terms: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """``λ_rep L_rep + λ_rr L_rr + λ_ra L_ra`` over the terms present (None when none is)."""
    weights = {
        "repulsion": cfg.lamda_rep,
        "recon_repulsion": cfg.lamda_recon_rep,
        "recon_attraction": cfg.lamda_recon_atr,
    }
    parts = [weights[name] * value for name, value in terms.items() if name in weights]
    return torch.stack(parts).sum() if parts else None


class ContrastiveReplay(nn.Module):
    """Projection head, second view and contrastive optimiser of ``--contrastive`` (§6.5).

    ``project(h) = normalize(W dropout(h))`` with ``W`` a ``Linear(h_dim → 100)`` with bias and
    no non-linearity, as the fork. Its own Adam (``c_lr``) covers the encoder trunk and the
    head; the head is not in the main optimiser. The Adam state is saved with the module.

    Args:
        cfg: Contrastive settings (``c_drop``, ``c_lr``, ``c_temp``, ``c_scores``, ``c_hard``).
        h_dim: Width of the encoder's last hidden layer.
        encoder: The trunk whose parameters the contrastive optimiser also updates.
        generator: Draws the head's initial weights.
    """

    def __init__(
        self,
        cfg: ExaggerationConfig,
        h_dim: int,
        encoder: nn.Module,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.projection = seeded_linear(h_dim, PROJECTION_DIM, generator)
        self.trained = [*encoder.parameters(), *self.projection.parameters()]
        self.optimizer = torch.optim.Adam(self.trained, lr=cfg.c_lr)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """L2-normalised projections (B, 100) of hidden features (B, h_dim)."""
        dropped = F.dropout(features, self.cfg.c_drop, training=True)  # always on, as the fork
        return F.normalize(self.projection(dropped), dim=1)

    def second_view(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A random augmentation of replayed inputs (B, C, H, W), drawn per sample.

        Images: a shift of up to 1/8 of the side (zero padding), and for colour images a
        horizontal flip (p ½), a channel shuffle (p ¾) and grayscale (p ¼). Feature vectors
        (H = W = 1, internal replay): each feature zeroed with probability 0.2.
        """
        b, channels, height, _ = x.shape
        if height == 1:
            return x * (torch.rand(x.shape, generator=generator).to(x.device) >= 0.2)
        view = random_crop(x, max(1, height // 8), generator)
        if channels == 3:
            view = random_hflip(view, generator)
            draws = torch.rand(b, 2, generator=generator).to(x.device)
            order = torch.argsort(torch.rand(b, 3, generator=generator), dim=1).to(x.device)
            shuffled = view.gather(1, order[:, :, None, None].expand_as(view))
            view = torch.where(draws[:, 0, None, None, None] < 0.75, shuffled, view)
            gray = view.mean(dim=1, keepdim=True).expand_as(view)
            view = torch.where(draws[:, 1, None, None, None] < 0.25, gray, view)
        return view

    def loss(
        self, view_one: torch.Tensor, view_two: torch.Tensor, teacher: torch.Tensor
    ) -> torch.Tensor:
        """SupCon over both views' projections; positives from the teacher (B, C) logits."""
        projections = torch.cat([self.project(view_one), self.project(view_two)])
        scores = torch.cat([teacher, teacher])
        if self.cfg.c_scores:
            positives = score_positives(scores)
        else:
            positives = label_positives(scores.argmax(dim=1))
        return supervised_contrastive(
            projections, positives, self.cfg.c_temp, hard_negatives=self.cfg.c_hard
        )

    def gradients(self, loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Gradients of ``loss`` for the contrastive parameters, keeping the graph.

        Call it before the main backward pass, which frees the graph.
        """
        return torch.autograd.grad(loss, self.trained, retain_graph=True, allow_unused=True)

    def step(self, gradients: tuple[torch.Tensor | None, ...]) -> None:
        """One contrastive Adam step on ``gradients``; the main gradients are left in place."""
        main = [param.grad for param in self.trained]
        for param, grad in zip(self.trained, gradients, strict=True):
            param.grad = grad
        self.optimizer.step()
        for param, grad in zip(self.trained, main, strict=True):
            param.grad = grad

    def get_extra_state(self) -> dict[str, object]:
        """The contrastive Adam's state, for checkpoints."""
        return {"optimizer": self.optimizer.state_dict()}

    def set_extra_state(self, state: dict[str, object]) -> None:
        """Restore the contrastive Adam's state."""
        self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
