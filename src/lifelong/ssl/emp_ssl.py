"""EMP-SSL (Tong et al., *EMP-SSL: Towards Self-Supervised Learning in One Training Epoch*, 2023).

Spec ``cssl.md`` §1: the n augmented views ("patches") go through the encoder and the common
projector in one concatenated pass, the projections are split back per view, and
L = λ_inv L_inv + λ_tcr L_tcr with the invariance term pulling each view toward the mean over
views and the total-coding-rate term expanding each view's batch
(:func:`~lifelong.ssl.losses.emp_ssl_loss`; λ_inv 200, λ_tcr 1, ε 0.2).

Differences from the reference:

* z is L2-normalised before the loss (``normalize=True``), as in the EMP-SSL paper and code,
  whose coding rate R(Z) = ½ logdet(I + d/(Bε) ZᵀZ) assumes unit-norm rows (the d/(Bε) scaling
  is calibrated for them). The reference feeds the BN'd projector output unnormalised; set
  ``normalize=False`` for that behaviour. The returned z are the vectors the loss saw.
* The number of views defaults to 20 (the paper's count; spec §9.15); the reference's command
  line defaults to 2.

EMP-SSL has no two-argument criterion, so ``alignment`` is None.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.backbones import Backbone
from lifelong.errors import ConfigError
from lifelong.ssl.heads import projector_mlp
from lifelong.ssl.losses import emp_ssl_loss
from lifelong.ssl.model import (
    SSL_MODELS,
    ProjectorConfig,
    SSLModel,
    SSLModelSpec,
    SSLOutput,
    check_positive,
)


@dataclass(frozen=True)
class EMPSSLConfig(ProjectorConfig):
    """Configuration of :class:`EMPSSL`."""

    num_views: int = 20
    """Number n of augmented views (patches) per image (the reference's CLI default is 2)."""
    lambda_inv: float = 200.0
    """Weight λ_inv of the invariance term."""
    lambda_tcr: float = 1.0
    """Weight λ_tcr of the total-coding-rate term."""
    eps: float = 0.2
    """Distortion ε of the coding rate."""
    normalize: bool = True
    """L2-normalise z before the loss, as the EMP-SSL paper (the reference does not)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_views < 2:
            raise ConfigError(f"ssl.num_views must be at least 2, got {self.num_views}")
        if self.lambda_inv < 0 or self.lambda_tcr < 0:
            raise ConfigError("ssl.lambda_inv and ssl.lambda_tcr must be >= 0")
        check_positive("eps", self.eps)


class EMPSSL(SSLModel):
    """Many views per image, one concatenated forward pass, invariance plus coding rate."""

    name = "emp_ssl"

    def __init__(
        self, cfg: EMPSSLConfig, encoder: Backbone, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(encoder, num_views=cfg.num_views)
        self.cfg = cfg
        self.projector = projector_mlp(self.embedding_dim, cfg.dim_proj)

    @property
    def projector_dim(self) -> int:
        """d_p."""
        return self.cfg.dim_proj

    def forward(self, views: list[torch.Tensor]) -> SSLOutput:
        """EMP-SSL loss of ``num_views`` views (B, C, H, W) of the same B images."""
        self.check_views(views)
        batch = views[0].shape[0]
        e_all = self.encode(torch.cat(views))
        z_all = self.projector(e_all)
        if self.cfg.normalize:
            z_all = F.normalize(z_all, dim=1)
        e = list(e_all.split(batch))
        z = list(z_all.split(batch))
        loss = emp_ssl_loss(z, self.cfg.lambda_inv, self.cfg.lambda_tcr, self.cfg.eps)
        return SSLOutput(loss, z, e)


SSL_MODELS.add(
    "emp_ssl",
    SSLModelSpec(EMPSSLConfig, EMPSSL, "EMP-SSL: many views, invariance + total coding rate"),
)
