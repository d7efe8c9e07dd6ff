"""LUCIR: cosine classifier, less-forget constraint, margin ranking, herding exemplars."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.losses.lucir import less_forget_loss, less_forget_weight, margin_ranking_loss
from lifelong.methods.base import MethodContext, register
from lifelong.methods.icarl import ICaRL, ICaRLConfig
from lifelong.nn.cosine_linear import CosineLinear
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class LUCIRConfig(ICaRLConfig):
    """Settings of LUCIR (``minibatch_size`` is also the class-balanced finetuning batch)."""

    lambda_base: float = 5.0
    """Base weight of the less-forget constraint, scaled by sqrt(|C_old| / |C_new|)."""
    lambda_mr: float = 1.0
    """Weight of the margin ranking loss."""
    margin: float = 0.5
    """Margin m between the true old-class score and the hardest new-class scores."""
    top_k: int = 2
    """K: number of hardest new classes ranked below each old-class example."""
    imprint: bool = True
    """Initialise new classes' weights from their normalised mean features (weight imprinting)."""
    finetune_epochs: int = 0
    """Epochs of class-balanced finetuning of the classifier on the exemplars (0: none)."""
    finetune_lr: float = 0.01
    """SGD learning rate of the class-balanced finetuning."""
    classifier: Literal["cnn", "nme"] = "cnn"
    """``cnn``: predict with sigma·cos; ``nme``: iCaRL's nearest mean of exemplars."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("lambda_base", "lambda_mr", "margin"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"method.{name} must be >= 0, got {getattr(self, name)}")
        if self.top_k < 1:
            raise ConfigError(f"method.top_k must be >= 1, got {self.top_k}")
        if self.finetune_epochs < 0:
            raise ConfigError(f"method.finetune_epochs must be >= 0, got {self.finetune_epochs}")
        if not self.finetune_lr > 0:
            raise ConfigError(f"method.finetune_lr must be positive, got {self.finetune_lr}")
        if self.classifier not in ("cnn", "nme"):
            raise ConfigError(f"method.classifier must be 'cnn' or 'nme', got {self.classifier!r}")


@register
class LUCIR(ICaRL):
    """LUCIR (Hou et al., CVPR 2019): a unified cosine classifier trained with rebalancing.

    The network's linear head is replaced by :class:`~lifelong.nn.cosine_linear.CosineLinear`
    (``sigma * cos(w_k, f)``, learnable ``sigma``). Each step trains on the batch plus the
    exemplars due (iCaRL's union replay and herding exemplar sets, inherited from
    :class:`~lifelong.methods.icarl.ICaRL`) with

    ``CE(sigma cos) + lambda L_dis^G + lambda_mr L_mr``,

    the CE over the classes seen so far; from the second experience on
    ``lambda = lambda_base sqrt(|C_old| / |C_new|)`` weights the less-forget constraint
    ``1 - cos(f*(x), f(x))`` between the previous and the current network's features (every
    example of the step), and the margin ranking loss asks each old-class example's true cosine
    to beat its ``top_k`` highest new-class cosines by ``margin``
    (:mod:`lifelong.losses.lucir`). Before each later experience the new classes' weights are
    imprinted (normalised mean of their normalised features, times the old rows' mean norm),
    and during it the old classes' weight rows get no gradient, as in the authors' code and
    mammoth (momentum and weight decay still touch them; a row's norm does not change its
    cosine). With ``finetune_epochs > 0`` the classifier alone is then trained on the
    class-balanced exemplar sets (CBF, the paper's optional step) from the second experience
    on. :meth:`predict` is ``sigma cos`` over the seen classes (the paper's CNN output; unseen
    classes score the lowest finite value) or, with ``classifier: nme``, iCaRL's nearest mean.

    Differences: the paper's ResNets drop the last ReLU before the classifier; our backbones'
    features are what they are (the MLP's pass a ReLU). The margin loss is a mean over pairs
    and the less-forget term a batch mean, as in the authors' code and mammoth. Our CBF
    minimises CE only, over ``finetune_epochs`` passes in batches of ``minibatch_size`` at a
    constant rate (mammoth runs its full loss with a step decay; the authors' code differs per
    dataset). mammoth's classifier keeps future classes' rows in the softmax; here, as in the
    authors' growing classifier, only seen classes take part. Class-IL only.
    """

    name = "lucir"
    config_cls = LUCIRConfig

    def __init__(self, cfg: LUCIRConfig, ctx: MethodContext) -> None:
        in_features = int(ctx.backbone.head.in_features)
        ctx.backbone.add_module("head", CosineLinear(in_features, ctx.num_classes))
        super().__init__(cfg, ctx)
        self.cfg: LUCIRConfig = cfg

    @property
    def classifier(self) -> CosineLinear:
        """The network's cosine head."""
        head = self.net.head
        assert isinstance(head, CosineLinear)
        return head

    def before_experience(self, experience: Experience) -> None:
        """Bookkeeping as iCaRL, then imprint the new classes' weights (later experiences)."""
        super().before_experience(experience)
        if bool(self.has_old_net) and self.cfg.imprint:
            self.imprint(experience)

    @torch.no_grad()
    def imprint(self, experience: Experience) -> None:
        """New rows: normalised mean of normalised features, times the old rows' mean norm."""
        weight = self.classifier.weight
        scale = weight[self.old_classes].norm(dim=1).mean()
        for label in sorted(
            set(experience.classes) - set(self.old_classes.nonzero().flatten().tolist())
        ):
            clean = experience.train.x[experience.train.y == label].to(self.ctx.device)
            if len(clean) == 0:
                continue
            features = self.normalised_features(self.ctx.transform.normalize(clean))
            weight[label] = F.normalize(features.mean(0), dim=0) * scale

    def observe(self, batch: Batch) -> StepOutput:
        """CE(sigma cos) + lambda (1 - cos(f*, f)) + lambda_mr L_mr on batch ∪ due exemplars."""
        self.seen_classes[batch.y] = True
        x, y = self.with_exemplars(batch.x, batch.y, len(batch.y))
        self.optimizer.zero_grad(set_to_none=True)
        features = self.net.features(x)
        incremental = bool(self.has_old_net)
        cosines = self.classifier.cosine(features, self.old_classes if incremental else None)
        ce = seen_cross_entropy(self.classifier.sigma * cosines, y, self.seen_classes)
        loss, terms = ce, {"ce": ce.detach()}
        if incremental:
            with torch.no_grad():
                old_features = self.old_net.features(x)
            new = self.seen_classes & ~self.old_classes
            weight = less_forget_weight(
                self.cfg.lambda_base, int(self.old_classes.sum()), max(int(new.sum()), 1)
            )
            lf = less_forget_loss(features, old_features)
            mr = margin_ranking_loss(
                cosines, y, self.old_classes, new, self.cfg.top_k, self.cfg.margin
            )
            loss = loss + weight * lf + self.cfg.lambda_mr * mr
            terms.update(less_forget=lf.detach(), margin_ranking=mr.detach())
        loss.backward()
        self.optimizer.step()
        return StepOutput(loss.detach(), terms)

    def after_experience(self, experience: Experience) -> None:
        """The exemplar update of iCaRL, then class-balanced finetuning (later experiences)."""
        incremental = bool(self.has_old_net)
        super().after_experience(experience)
        if incremental and self.cfg.finetune_epochs > 0:
            self.balanced_finetune()

    def balanced_finetune(self) -> None:
        """Train the classifier alone with CE on the (class-balanced) exemplar sets."""
        filled = (self.exemplar_y >= 0).nonzero().flatten()
        head = self.classifier
        optimizer = torch.optim.SGD(
            head.parameters(), lr=self.cfg.finetune_lr, momentum=self.cfg.momentum
        )
        for _ in range(self.cfg.finetune_epochs):
            order = filled[
                torch.randperm(len(filled), generator=self.ctx.generator).to(filled.device)
            ]
            for chunk in order.split(self.cfg.minibatch_size):
                with torch.no_grad():
                    features = self.net.features(self.augment(self.exemplar_x[chunk]))
                optimizer.zero_grad(set_to_none=True)
                loss = seen_cross_entropy(head(features), self.exemplar_y[chunk], self.seen_classes)
                loss.backward()
                optimizer.step()

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """``sigma cos`` (B, K), unseen classes lowest; iCaRL's scores with ``classifier: nme``."""
        if self.cfg.classifier == "nme":
            return super().predict(x)
        logits: torch.Tensor = self.net(x)
        return logits.masked_fill(~self.seen_classes, torch.finfo(logits.dtype).min)


def seen_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, seen: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of ``logits`` (B, K) restricted to the classes of bool mask ``seen`` (K,)."""
    index = seen.nonzero().flatten()
    position = torch.full_like(seen, -1, dtype=torch.long)
    position[index] = torch.arange(len(index), device=seen.device)
    return F.cross_entropy(logits[:, index], position[labels])
