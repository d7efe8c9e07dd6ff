"""AR1* with latent replay, and CWR* as its registry variant (spec ``ar1.md``)."""

from __future__ import annotations

import logging
from typing import Any, Self

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.backbones.split import SplitBackbone
from lifelong.buffers.latent import LatentMemory
from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.methods.ar1_star.config import AR1StarConfig
from lifelong.methods.base import Method, MethodContext, register, register_variant
from lifelong.nn.batch_renorm import BatchRenorm2d, recalibrate
from lifelong.nn.consolidated_head import ConsolidatedHead
from lifelong.nn.synaptic_intelligence import SynapticIntelligence
from lifelong.types import Batch, StepOutput

log = logging.getLogger(__name__)
RANDOM_FROZEN = "%s: the layers below %s are random and stay frozen; pass backbone.pretrained=FILE"


@register
class AR1Star(Method):
    """AR1* with latent replay (Pellegrini et al., IROS 2020; spec ``ar1.md`` §3-§5).

    The backbone is cut at ``latent_layer`` into a lower part and an upper part; the head is a
    CWR* head (:class:`ConsolidatedHead`). The lower part trains in the first experience only
    (``train_lower``: the Caffe original and Avalanche train it, ar1-pytorch freezes it from the
    start, which needs pre-trained weights) and is frozen afterwards, weights and batch-renorm
    statistics (it stays in evaluation mode). From the second experience on, each step takes
    ``n_cur`` new examples and ``n_replay = batch_size − n_cur`` patterns of the memory, with
    ``n_cur = N // ((N + rm_sz) // batch_size)`` for an experience of ``N`` examples
    (:meth:`batch_size`). New examples pass through the lower part; the memory's activations
    join them at the split (``replay="latent"``), or the memory holds inputs that pass through
    the lower part too (``replay="input"``, native replay: the same patterns, the same
    mathematics, more arithmetic). Per step: CE over all classes of ``head(upper([lower(x); a_r]))``
    and one SGD step. Per experience: the activations of the first epoch are collected; at the
    end the head is consolidated, the memory takes ``rm_sz // (i + 1)`` of them
    (:class:`LatentMemory`) and the consolidated head is loaded for evaluation. After the first
    experience the learning rate becomes ``inc_lr`` and batch renorm takes its incremental
    settings, once.

    With ``head_only_after_first`` (the ``cwr_star`` entry: CWR*, Lomonaco et al., CVPR-W 2020,
    which also fixes ``replay="none"``) everything below the head is frozen from the second
    experience on, weights and normalisation statistics; each experience's head rows are still
    consolidated.

    Differences from ar1-pytorch: every example of an experience is used in each epoch (the
    reference skips ``N mod n_cur`` of them and pads the first experience to a multiple of 128);
    a head bias, when the backbone has one, is consolidated as one more weight column;
    the memory fills its free slots before overwriting (see :class:`LatentMemory`);
    ``reg_lambda`` uses the library's Synaptic Intelligence on the trainable conv and linear
    weights above the split (no normalisation layers, no head), ε = 1e-7, importance clipped
    at 0.001 and the penalty halved, as the reference describes; the reference's SI path
    crashes with frozen layers, ours skips parameters without gradients. After the first
    experience the trained parts' norm statistics, averaged while the weights moved at ``lr``
    and kept from then on, are re-estimated for the final weights (not needed from ImageNet).
    """

    name = "ar1_star"
    config_cls = AR1StarConfig
    supported_settings = frozenset({"class-il", "domain-il", "gcil", "general"})
    memory_field = "rm_sz"

    experiences_done: torch.Tensor
    incremental: torch.Tensor

    def __init__(self, cfg: AR1StarConfig, ctx: MethodContext) -> None:
        backbone = ctx.backbone
        if not isinstance(backbone, SplitBackbone):
            raise ConfigError(
                f"{self.name} needs a backbone with split points (mobilenet_v1, resnet18), "
                f"got {type(backbone).__name__}"
            )
        split = cfg.latent_layer or backbone.default_split
        parts = (backbone.lower_part(split), backbone.upper_part(split))
        super().__init__(cfg, ctx)
        self.cfg: AR1StarConfig = cfg
        self.parts = parts  # views of the network's own layers, not registered a second time
        head = self.net.head
        if not cfg.train_lower:
            self.lower.requires_grad_(False)
            if getattr(backbone, "pretrained", None) is None:  # as BI-R's warning
                log.warning(RANDOM_FROZEN, self.name, split)
        has_bias = head.bias is not None
        self.consolidated = ConsolidatedHead(ctx.num_classes, head.in_features, has_bias)
        self.consolidated.to(ctx.device)
        self.memory = LatentMemory(cfg.rm_sz, torch.float16 if cfg.memory_fp16 else torch.float32)
        self.register_buffer("experiences_done", torch.zeros((), dtype=torch.int64))
        self.register_buffer("incremental", torch.zeros((), dtype=torch.bool))
        self.collected: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.collecting = cfg.replay != "none"  # patterns are collected in the first epoch
        self.step_size = 0  # the configured batch size: new + replayed patterns per step
        self.si: SynapticIntelligence | None = None
        if cfg.reg_lambda > 0:
            self.si = SynapticIntelligence(self.regularised(), 1e-7, max_omega=0.001)
        self.optimizer = self.make_optimizer()  # without the frozen parameters

    @property
    def lower(self) -> nn.Sequential:
        """Input → activations at the split (frozen)."""
        return self.parts[0]

    @property
    def upper(self) -> nn.Sequential:
        """Activations at the split → the head's features (trained)."""
        return self.parts[1]

    def regularised(self) -> list[tuple[str, nn.Parameter]]:
        """Conv and linear weights above the split that train (SI's parameters)."""
        norms = (nn.BatchNorm2d, BatchRenorm2d)
        return [
            (f"{prefix}.{name}", param)
            for prefix, module in self.upper.named_modules()
            if not isinstance(module, norms)
            for name, param in module.named_parameters(recurse=False)
            if param.requires_grad
        ]

    def make_optimizer(self) -> torch.optim.Optimizer:
        """SGD over the trainable parameters; the head at ``lr · head_lr_mult``."""
        lr = self.cfg.lr if int(getattr(self, "experiences_done", 0)) == 0 else self.cfg.inc_lr
        head = [p for p in self.net.head.parameters() if p.requires_grad]
        head_ids = {id(p) for p in head}
        body = [p for p in self.net.parameters() if p.requires_grad and id(p) not in head_ids]
        groups = [{"params": body, "lr": lr}, {"params": head, "lr": lr * self.cfg.head_lr_mult}]
        return torch.optim.SGD(
            groups, lr=lr, momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay
        )

    def batch_size(self, experience_size: int, configured: int) -> int:
        """New examples per step: ``N // ((N + rm) // B)`` once the memory holds patterns."""
        self.step_size = configured
        if len(self.memory) == 0 or self.cfg.replay == "none":
            return configured
        rounds = (experience_size + len(self.memory)) // configured
        return max(1, experience_size // rounds) if rounds > 0 else experience_size

    def train(self, mode: bool = True) -> Self:
        """Set the training mode; the frozen lower (and CWR*'s upper) part stays in evaluation."""
        super().train(mode)
        if not self.cfg.train_lower or int(self.experiences_done) > 0:
            self.lower.train(False)
        if self.cfg.head_only_after_first and int(self.experiences_done) > 0:
            self.upper.train(False)
        return self

    def before_experience(self, experience: Experience) -> None:
        """Switch to the incremental settings once; count labels and reset the CWR* head."""
        if int(self.experiences_done) >= 1 and not bool(self.incremental):
            self.start_incremental()
        labels = [experience.train.y.to(self.ctx.device), self.memory.labels.to(self.ctx.device)]
        self.consolidated.begin(self.net.head, torch.cat(labels))
        self.collected = []
        self.memory.restart()
        if self.si is not None:
            self.si.begin_experience()

    def start_incremental(self) -> None:
        """Freeze the lower part, set batch renorm's incremental settings, restart SGD."""
        self.incremental.fill_(True)
        self.lower.requires_grad_(False)
        self.lower.train(False)
        if self.cfg.head_only_after_first:
            self.upper.requires_grad_(False)
            self.upper.train(False)
        else:  # the frozen layers stay in evaluation mode: their settings do not matter
            for module in self.upper.modules():
                if isinstance(module, BatchRenorm2d):
                    module.set_incremental(
                        self.cfg.inc_update_rate, self.cfg.max_r_max, self.cfg.max_d_max
                    )
        self.optimizer = self.make_optimizer()

    def observe(self, batch: Batch) -> StepOutput:
        """CE on ``head(upper([lower(x_new); replayed]))``, one SGD step."""
        with torch.set_grad_enabled(self.cfg.train_lower and int(self.experiences_done) == 0):
            latent = self.lower(batch.x)
        if self.collecting:
            stored = batch.x_clean if self.stores_inputs else latent
            self.collected.append((stored.detach(), batch.y))
        y = batch.y
        n_replay = self.step_size - len(batch)
        if n_replay > 0 and len(self.memory) > 0 and self.cfg.replay != "none":
            patterns, labels = self.memory.next(n_replay)
            if self.cfg.replay == "input":
                with torch.no_grad():
                    patterns = self.lower(self.augment(patterns))
            latent = torch.cat([latent, patterns.to(latent.dtype)])
            y = torch.cat([y, labels])
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.net.head(self.upper(latent)), y)
        terms = {"memory_mb": torch.tensor(self.memory.nbytes / 2**20)}
        if self.si is not None:
            terms["si"] = self.si.penalty()
            loss = loss + 0.5 * self.cfg.reg_lambda * terms["si"]
        loss.backward()
        self.optimizer.step()
        if self.si is not None:
            self.si.after_step()
        return StepOutput(loss.detach(), {k: v.detach() for k, v in terms.items()})

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the optimiser; in the incremental phase (buffers loaded first) rebuild it."""
        if bool(self.incremental):
            self.start_incremental()
        super().set_extra_state(state)

    def after_epoch(self, experience: Experience, epoch: int) -> None:
        """Stop collecting after the first epoch; replay restarts at the first slot."""
        self.collecting = False
        self.memory.restart()

    @property
    def stores_inputs(self) -> bool:
        """Whether inputs are collected: native replay, or a lower part still in training.

        A lower part in training changes its activations every step: its latents are computed
        after training, by one more pass over the inputs (as Caffe for its first batch).
        """
        training_lower = self.cfg.train_lower and int(self.experiences_done) == 0
        return self.cfg.replay == "input" or training_lower

    @torch.no_grad()
    def latents_after_training(self, inputs: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """Activations at the split of clean ``inputs``, with the lower part in evaluation mode."""
        was_training = self.lower.training
        self.lower.train(False)
        out = torch.cat([self.lower(self.augment(part)) for part in inputs.split(chunk)])
        self.lower.train(was_training)
        return out

    def recalibrate(self, patterns: torch.Tensor) -> None:
        """Re-estimate the trained parts' norm statistics for their final weights (see class)."""
        parts = [self.upper, self.lower] if self.cfg.train_lower else [self.upper]
        chunks = patterns.split(self.step_size or 128)  # lazily: run with the norms training
        latents = (self.lower(self.augment(x)) if self.stores_inputs else x for x in chunks)
        recalibrate(parts, self.upper, latents)

    def after_experience(self, experience: Experience) -> None:
        """Consolidate the head, update the memory, load the consolidated head."""
        self.consolidated.consolidate(self.net.head)
        if self.collected:
            patterns = torch.cat([p for p, _ in self.collected])
            labels = torch.cat([y for _, y in self.collected])
            if int(self.experiences_done) == 0:
                self.recalibrate(patterns)
            if self.stores_inputs and self.cfg.replay == "latent":
                patterns = self.latents_after_training(patterns)
            self.memory.update(patterns, labels, int(self.experiences_done), self.ctx.generator)
        self.collected = []
        self.collecting = self.cfg.replay != "none"
        self.consolidated.load(self.net.head)
        self.consolidated.end()
        if self.si is not None:
            self.si.end_experience()
        self.experiences_done += 1


register_variant(
    "cwr_star",
    of="ar1_star",
    summary="no replay, only the head trains after the first experience (CWR*, CVPR-W 2020)",
    defaults={},
    fixed={"replay": "none", "head_only_after_first": True},
)
