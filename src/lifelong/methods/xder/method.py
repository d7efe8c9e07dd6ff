"""X-DER: DER++ whose memory is rewritten, with future preparation and logit constraints."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience
from lifelong.losses.xder import (
    future_heads,
    future_preparation_loss,
    head_cross_entropy,
    margin_violation,
    transplant_logits,
)
from lifelong.methods.base import Method, MethodContext, register
from lifelong.methods.rpc import install_polytope_head
from lifelong.methods.xder.config import XDERConfig
from lifelong.methods.xder.memory import LogitMemory
from lifelong.ssl.augment import CommonAugment, SSLAugmentConfig
from lifelong.types import Batch, StepOutput

FEATURE_BATCH = 256
"""Images per forward pass when the memory is filled or rewritten."""
STRONG_AUGMENT = SSLAugmentConfig(jitter=(0.4, 0.4, 0.4, 0.1))
"""mammoth's ``strong_aug``: flip, resized crop (scale 0.2-1), jitter (p 0.8), grey (p 0.2)."""


@register
class XDER(Method):
    """X-DER (Boschini et al., TPAMI 2022): DER++ plus memory rewriting and future preparation.

    Each step (mammoth ``models/xder.py``) minimises, with heads as masks over the output units
    (past classes, current classes, future = not yet seen):

    * CE on the batch over the current head only (``stream_classes: current``);
    * ``alpha`` MSE between the logits of a first buffer sample and its stored logits (all
      units) and ``beta`` CE of a second sample over the past heads (DER++'s two terms);
    * future preparation (``lambd``): the batch and ``simclr_batch_size`` buffer examples, each
      in ``simclr_num_aug`` strongly augmented views, give each future head's normalised outputs
      to a SupCon with label positives (:func:`~lifelong.losses.xder.future_preparation_loss`);
    * future constraint (``constr_eta``, margin ``constr_margin``): on the batch and on the
      replayed examples, the largest future logit stays ``m`` below the largest logit of the
      example's own head; optional past constraint on the batch's softmax (off, as mammoth).

    Memory rewriting (:func:`~lifelong.losses.xder.transplant_logits`, rescaled with ``gamma``
    so the ground truth stays the largest stored logit): during an experience, a replayed
    example of a past class has its current and future units overwritten with the network's
    output, with probability ``1/n`` at its ``n``-th replay in the experience (so the stored
    value is a uniform pick among them). At the end of an experience the memory keeps
    ``buffer_size // |seen classes|`` examples per old class, takes the rest class-balanced from
    the experience (logits of the augmented input; their past units rescaled the same way), and
    every old example has its current and future units overwritten by the final network's.

    Variants (data, :mod:`.variants`): ``xder_rpc`` (polytope head, no SupCon) and ``xder_ce``
    (no SupCon; CE over current and future heads; past constraint; reservoir replay during the
    first experience). Differences from mammoth: heads are masks of seen classes, so labels need
    not follow the experiences (future heads are the unseen units chunked by the current
    experience's size); memory logits are computed in evaluation mode (mammoth: training mode
    without BN statistics); the ``g <= 0`` case of the logit rescaling shifts instead of flipping
    signs; X-DER's SPKD "distance-preserving" term (``dp_weight``, default 0) and BN alignment
    (``align_bn``) are not implemented; the experience's examples are picked from a random
    permutation (mammoth: the first of its shuffled loader). On one-channel images (MNIST) the
    strong augmentation is crop, flip, brightness and contrast only (saturation, hue and grey are
    no-ops); the SupCon still contrasts different examples of a class. Class-IL only.
    """

    name = "xder"
    config_cls = XDERConfig
    supported_settings = frozenset({"class-il"})
    seen_classes: torch.Tensor
    past_classes: torch.Tensor
    class_experience: torch.Tensor
    current_experience: torch.Tensor

    def __init__(self, cfg: XDERConfig, ctx: MethodContext) -> None:
        if cfg.head == "polytope":
            install_polytope_head(ctx.backbone, ctx.num_classes)
        super().__init__(cfg, ctx)
        self.cfg: XDERConfig = cfg
        stored = torch.uint8 if ctx.transform.augments else torch.float32
        k, device = ctx.num_classes, ctx.device
        self.memory = LogitMemory(cfg.buffer_size, ctx.image_shape, k, stored, ctx.generator)
        self.memory.to(device)
        self.register_buffer("seen_classes", torch.zeros(k, dtype=torch.bool, device=device))
        self.register_buffer("past_classes", torch.zeros(k, dtype=torch.bool, device=device))
        self.register_buffer("class_experience", torch.full((k,), -1, device=device))
        self.register_buffer(
            "current_experience", torch.zeros((), dtype=torch.int64, device=device)
        )
        self.views = CommonAugment(ctx.transform.mean, ctx.transform.std, STRONG_AUGMENT)

    def before_experience(self, experience: Experience) -> None:
        """Seen classes become past; the experience's classes form the current head."""
        self.past_classes.copy_(self.seen_classes)
        self.current_experience.fill_(experience.id)
        self.mark_seen(torch.tensor(experience.classes, device=self.seen_classes.device))
        self.memory.counter.zero_()

    def mark_seen(self, labels: torch.Tensor) -> None:
        """Add ``labels`` to the seen classes, new ones to the current experience's head."""
        new = labels[~self.seen_classes[labels]]
        self.class_experience[new] = self.current_experience.to(new.device)
        self.seen_classes[labels] = True

    def observe(self, batch: Batch) -> StepOutput:
        """Every X-DER term on one batch, one SGD step, the memory's in-place logit update."""
        self.mark_seen(batch.y)
        cfg, past, seen = self.cfg, self.past_classes, self.seen_classes
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.net(batch.x)
        stream_units = seen & ~past if cfg.stream_classes == "current" else ~past
        loss = head_cross_entropy(logits, batch.y, stream_units)
        terms = {"ce": loss.detach()}
        replay_out, replay_y = logits[:0], batch.y[:0]
        if len(self.memory) > 0:
            first = self.memory.sample(cfg.minibatch_size, self.ctx.generator)
            out1 = self.net(self.augment(self.memory.x[first]))
            mse = F.mse_loss(out1, self.memory.logits[first])
            second = self.memory.sample(cfg.minibatch_size, self.ctx.generator)
            out2 = self.net(self.augment(self.memory.x[second]))
            replay_units = past if bool(past.any()) else seen
            replay_ce = head_cross_entropy(out2, self.memory.y[second], replay_units)
            loss = loss + cfg.alpha * mse + cfg.beta * replay_ce
            terms.update(logit_mse=mse.detach(), replay_ce=replay_ce.detach())
            index = torch.cat([first, second])
            unique = ~(index[:, None] == index[None, :]).tril(-1).any(dim=1)  # first occurrences
            index, replay_out = index[unique], torch.cat([out1, out2])[unique]
            replay_y = self.memory.y[index]
            self.rewrite_while_training(index, replay_out.detach(), replay_y)
        future = ~seen
        if bool(future.any()) and cfg.lambd > 0:
            supcon = self.future_preparation(batch)
            loss = loss + cfg.lambd * supcon
            terms["future_supcon"] = supcon.detach()
        if bool(future.any()) and cfg.future_constraint:
            all_out, all_y = torch.cat([logits, replay_out]), torch.cat([batch.y, replay_y])
            bad, good = all_out[:, future], self.own_head(all_out, all_y)
            constraint = cfg.constr_eta * margin_violation(bad, good, cfg.constr_margin)
            loss = loss + constraint
            terms["future_constraint"] = constraint.detach()
        if bool(past.any()) and cfg.past_constraint:
            probs = F.softmax(logits[:, seen], dim=1)
            in_seen = past[seen]
            gap = margin_violation(
                probs[:, in_seen].detach(), probs[:, ~in_seen], cfg.constr_margin
            )
            loss = loss + cfg.constr_eta * gap
            terms["past_constraint"] = (cfg.constr_eta * gap).detach()
        loss.backward()
        self.optimizer.step()
        if cfg.first_experience_reservoir and not bool(past.any()):
            self.memory.offer(batch.x_clean, batch.y, logits.detach())
        return StepOutput(loss.detach(), terms)

    def own_head(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Logits with every unit outside the head of each example's class set to ``-inf``."""
        head = self.class_experience[labels][:, None] == self.class_experience[None, :]
        return logits.masked_fill(~head, -torch.inf)

    @torch.no_grad()
    def rewrite_while_training(
        self, index: torch.Tensor, outputs: torch.Tensor, labels: torch.Tensor
    ) -> None:
        """Past-class examples: current and future units ← the network's, with prob. 1/n."""
        chosen = self.past_classes[labels]
        index, outputs, labels = index[chosen], outputs[chosen], labels[chosen]
        self.memory.counter[index] += 1
        draw = torch.rand(len(index), generator=self.ctx.generator).to(index.device)
        take = draw * self.memory.counter[index] < 1
        if bool(take.any()):
            rows = index[take]
            self.memory.logits[rows] = transplant_logits(
                self.memory.logits[rows],
                outputs[take],
                labels[take],
                ~self.past_classes,
                self.cfg.gamma,
            )

    def future_preparation(self, batch: Batch) -> torch.Tensor:
        """SupCon on the future heads of strongly augmented views of batch and buffer examples."""
        clean, labels = batch.x_clean, batch.y
        if len(self.memory) > 0 and self.cfg.simclr_batch_size > 0:
            index = self.memory.sample(self.cfg.simclr_batch_size, self.ctx.generator)
            clean = torch.cat([self.memory.x[index].to(clean.dtype), clean])
            labels = torch.cat([self.memory.y[index], labels])
        views = self.cfg.simclr_num_aug
        with torch.no_grad():
            x = self.views(self.as_uint8(clean).repeat_interleave(views, 0), self.ctx.generator)
        outputs = self.net(x).view(len(labels), views, -1)
        size = int((self.seen_classes & ~self.past_classes).sum())
        heads = future_heads(self.seen_classes, size)
        return future_preparation_loss(outputs, labels, heads, self.cfg.simclr_temp)

    def as_uint8(self, clean: torch.Tensor) -> torch.Tensor:
        """Stored inputs as uint8 images (normalised float inputs are un-normalised)."""
        if not clean.is_floating_point():
            return clean
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.ctx.transform.mean, device=clean.device).view(shape)
        std = torch.tensor(self.ctx.transform.std, device=clean.device).view(shape)
        return ((clean * std + mean) * 255.0).round().clamp(0, 255).to(torch.uint8)

    @torch.no_grad()
    def after_experience(self, experience: Experience) -> None:
        """Shrink old classes, add the experience class-balanced, rewrite old examples' logits."""
        was_training = self.net.training
        self.net.train(False)
        if bool(self.past_classes.any()):
            self.memory.keep_per_class(self.memory.capacity // int(self.seen_classes.sum()))
        else:
            self.memory.clear()  # xder_ce's reservoir sample of experience 0 is replaced
        self.add_experience(experience)
        self.rewrite_old_examples()
        self.memory.counter.zero_()
        self.net.train(was_training)

    def add_experience(self, experience: Experience) -> None:
        """Fill the free slots with the experience's examples, as many per current class."""
        classes = (self.seen_classes & ~self.past_classes).nonzero().flatten().cpu()
        free = self.memory.capacity - len(self.memory)
        if len(classes) == 0 or free <= 0:
            return
        quota = torch.full((len(classes),), free // len(classes))
        quota[
            torch.randperm(len(classes), generator=self.ctx.generator)[: free % len(classes)]
        ] += 1
        order = torch.randperm(len(experience.train), generator=self.ctx.generator)
        labels = experience.train.y[order]
        picked = [
            (labels == c).nonzero().flatten()[:q]
            for c, q in zip(classes.tolist(), quota.tolist(), strict=True)
        ]
        chosen = order[torch.cat(picked).sort().values]
        for start in range(0, len(chosen), FEATURE_BATCH):
            part = chosen[start : start + FEATURE_BATCH]
            clean = experience.train.x[part].to(self.ctx.device)
            y = experience.train.y[part].to(self.ctx.device)
            stored = clean if self.ctx.transform.augments else self.ctx.transform.normalize(clean)
            logits = self.net(self.augment(stored))
            if bool(self.past_classes.any()):
                logits = transplant_logits(logits, logits, y, self.past_classes, self.cfg.gamma)
            self.memory.append(stored, y, logits)

    def rewrite_old_examples(self) -> None:
        """Examples of past classes: current and future units ← the final network's output."""
        if not bool(self.past_classes.any()):
            return
        for start in range(0, len(self.memory), FEATURE_BATCH):
            rows = torch.arange(start, min(start + FEATURE_BATCH, len(self.memory)))
            rows = rows.to(self.memory.y.device)
            rows = rows[self.past_classes[self.memory.y[rows]]]
            if len(rows) == 0:
                continue
            outputs = self.net(self.augment(self.memory.x[rows]))
            self.memory.logits[rows] = transplant_logits(
                self.memory.logits[rows],
                outputs,
                self.memory.y[rows],
                ~self.past_classes,
                self.cfg.gamma,
            )
