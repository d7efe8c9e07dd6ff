"""Replay buffers of continual self-supervised learning: FIFO, FIFO-last, reservoir, MinRed.

Spec ``cssl.md`` §3. Every buffer stores pairs (x, f): a raw uint8 image (C, H, W) and a feature
vector (the projector output the strategy hands in). All share one interface
(:class:`StreamBuffer`): ``add(x, f)``, ``sample(n) -> Replay(x, features, slots)`` uniform
without replacement (FIFO-last: the newest ``n``), ``update_features(slots, f)`` (an EMA with
``feature_ema``: 1 freezes, 0 replaces), ``len()``, and a ``state_dict`` round trip (storage as
module buffers; positions and generators as extra state, like
:class:`~lifelong.buffers.tensor_buffer.TensorBuffer`). Slots from ``sample`` stay valid until the
next ``add``. The hybrid MinRed-FIFO buffer is in :mod:`lifelong.buffers.hybrid_buffer`.

* **FIFO** keeps the newest ``size`` items; **FIFO-last** samples the newest ``n`` of them.
* **Reservoir** (Vitter, 1985) keeps a uniform sample of the stream, with the slot rule of
  :class:`~lifelong.buffers.reservoir.Reservoir`.
* **MinRed** (Purushwalkam, Morgado & Gupta, *The Challenges of Continuous Self-Supervised
  Learning*, ECCV 2022): when full, remove the stored item whose feature has the highest cosine
  similarity to its nearest stored neighbour, one at a time (a removed item stops being a
  neighbour); the incoming items are exempt.

Differences from the reference code (``giacomo-cgn/ocl-self-supervised``):

* MinRed, as in the paper and its code: only items trained on at least ``min_replays`` times
  (their features refreshed by :meth:`StreamBuffer.update_features`) may be removed, and when
  fewer than twice the items to remove are eligible, the oldest items go instead. The reference
  lets every stored item be removed (``min_replays = 0`` reproduces it). Unlike the paper's code,
  items not yet trained on still count as neighbours: here they carry a feature from insertion.
* The FIFO buffers are tensors here, not Python lists; all buffers live on the module's device.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.buffers.reservoir import Reservoir
from lifelong.buffers.storage_bounds import check_storage_fits
from lifelong.errors import ConfigError
from lifelong.registry import Registry

STREAM_BUFFERS: Registry[type[StreamBuffer]] = Registry("buffer")
"""Continual-SSL replay buffers by the reference's ``--buffer-type`` names (filled below)."""


class Replay(NamedTuple):
    """Items drawn from a buffer: images, stored features and the slots they came from."""

    x: torch.Tensor
    features: torch.Tensor
    slots: torch.Tensor


@dataclass(frozen=True)
class StreamBufferConfig:
    """Configuration of the continual-SSL replay buffers (spec ``cssl.md`` §3)."""

    kind: str = "reservoir"
    """fifo, fifo_last, reservoir, minred or hybrid_minred_fifo (the reference's names)."""
    size: int = 2000
    """Items held at most (the reference's ``--mem-size``)."""
    feature_ema: float = 0.5
    """α of ``update_features``: f ← α f + (1 − α) f_new (``--features-buffer-ema``)."""
    min_replays: int = 1
    """MinRed: times an item must have been trained on before it may be removed (0: reference)."""
    fifo_ratio: float = 0.25
    """Hybrid: share of ``size`` held by the FIFO part (``--fifo-buffer-ratio``)."""

    def __post_init__(self) -> None:
        STREAM_BUFFERS.get(self.kind)  # names the choices when unknown
        if self.size <= 0:
            raise ConfigError(f"buffer.size must be positive, got {self.size}")
        if not 0.0 <= self.feature_ema <= 1.0:
            raise ConfigError(f"buffer.feature_ema must be in [0, 1], got {self.feature_ema}")
        if self.min_replays < 0:
            raise ConfigError(f"buffer.min_replays must be >= 0, got {self.min_replays}")
        if not 0.0 < self.fifo_ratio < 1.0:
            raise ConfigError(f"buffer.fifo_ratio must be in (0, 1), got {self.fifo_ratio}")


def _check_draw(n: int, available: int) -> None:
    """Fail clearly on a non-positive sample size or an empty (part of a) buffer."""
    if n <= 0:
        raise ValueError(f"sample() needs a positive number of items, got {n}")
    if available == 0:
        raise RuntimeError("sample() on an empty buffer")


class StreamBuffer(nn.Module):
    """Preallocated slots of (image, feature, replay count, insertion stamp); a policy places items.

    Slots ``0 .. len(self) - 1`` are occupied. ``stamp`` is an item's position in the stream (its
    age), ``replays`` how often it was trained on (counted by :meth:`update_features`).
    Subclasses implement :meth:`_place`.

    Args:
        cfg: Buffer configuration.
        image_shape: (C, H, W) of the stored uint8 images.
        feature_dim: Width of the stored features.
        generator: Source of the seed of the buffer's own sampling generator.
    """

    x: torch.Tensor
    features: torch.Tensor
    replays: torch.Tensor
    stamp: torch.Tensor

    def __init__(
        self,
        cfg: StreamBufferConfig,
        image_shape: tuple[int, int, int],
        feature_dim: int,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.capacity = cfg.size
        fields = [(image_shape, torch.uint8), ((feature_dim,), torch.float32)]
        check_storage_fits(cfg.size, [*fields, ((), torch.int64), ((), torch.int64)], "buffer.size")
        self.register_buffer("x", torch.zeros((cfg.size, *image_shape), dtype=torch.uint8))
        self.register_buffer("features", torch.zeros(cfg.size, feature_dim))
        self.register_buffer("replays", torch.zeros(cfg.size, dtype=torch.int64))
        self.register_buffer("stamp", torch.zeros(cfg.size, dtype=torch.int64))
        self.size = 0
        self.num_seen = 0
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        self._generator = torch.Generator().manual_seed(seed)
        self._setup()

    def _setup(self) -> None:
        """Create the policy's own state (called at the end of ``__init__``)."""

    def __len__(self) -> int:
        return self.size

    def add(self, x: torch.Tensor, features: torch.Tensor) -> None:
        """Offer a batch of stream items; the buffer's policy decides which are kept and where.

        Args:
            x: uint8 images (b, C, H, W).
            features: Their features (b, d); stored detached, as float32.
        """
        self._check(x, features)
        items, slots = self._place(features)
        self._store(x, features, items, slots)

    def _place(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch rows to keep and the slots they go to (int64, CPU); the buffer is not yet changed.

        Slots may repeat (reservoir); the later item then wins. The occupied slots afterwards
        must be ``0 .. min(size, len(self) + b) - 1``.
        """
        raise NotImplementedError

    def _check(self, x: torch.Tensor, features: torch.Tensor) -> None:
        image_shape = tuple(self.x.shape[1:])
        if x.dtype != torch.uint8 or tuple(x.shape[1:]) != image_shape:
            raise ValueError(f"expected uint8 images (b, *{image_shape}), got {x.dtype} {x.shape}")
        expected = (x.shape[0], self.features.shape[1])
        if tuple(features.shape) != expected:
            raise ValueError(f"expected features of shape {expected}, got {tuple(features.shape)}")

    @torch.no_grad()
    def _store(
        self, x: torch.Tensor, features: torch.Tensor, items: torch.Tensor, slots: torch.Tensor
    ) -> None:
        """Write rows ``items`` of the batch into ``slots`` (a later duplicate wins)."""
        chosen = dict(zip(slots.tolist(), items.tolist(), strict=True))
        device = self.x.device
        target = torch.tensor(list(chosen), dtype=torch.int64, device=device)
        source = torch.tensor(list(chosen.values()), dtype=torch.int64)
        self.x.index_copy_(0, target, x.index_select(0, source.to(x.device)).to(device))
        rows = features.detach().index_select(0, source.to(features.device))
        self.features.index_copy_(0, target, rows.to(device, self.features.dtype))
        self.replays.index_fill_(0, target, 0)
        self.stamp.index_copy_(0, target, (source + self.num_seen).to(device))
        self.num_seen += x.shape[0]
        self.size = min(self.capacity, self.size + x.shape[0])

    def sample(self, n: int) -> Replay:
        """``min(n, len(self))`` distinct stored items, uniformly at random."""
        return self._sample_from(torch.arange(self.size), n)

    def _sample_from(self, slots: torch.Tensor, n: int) -> Replay:
        """``min(n, len(slots))`` distinct items drawn uniformly from ``slots`` (CPU)."""
        _check_draw(n, len(slots))
        return self.gather(slots[torch.randperm(len(slots), generator=self._generator)[:n]])

    def gather(self, slots: torch.Tensor) -> Replay:
        """The stored items at ``slots``."""
        slots = slots.to(self.x.device)
        return Replay(self.x.index_select(0, slots), self.features.index_select(0, slots), slots)

    @torch.no_grad()
    def update_features(self, slots: torch.Tensor, features: torch.Tensor) -> None:
        """Refresh replayed items' features, f ← α f + (1 − α) f_new, and count them as trained on.

        Args:
            slots: Where the items are, as returned by :meth:`sample` (distinct).
            features: Their new features (n, d), e.g. the mean projection over the views.
        """
        slots = slots.to(self.x.device)
        alpha = self.cfg.feature_ema
        new = features.detach().to(self.features.device, self.features.dtype)
        self.features[slots] = alpha * self.features[slots] + (1.0 - alpha) * new
        self.replays.index_add_(0, slots, torch.ones_like(slots))

    def get_extra_state(self) -> dict[str, Any]:
        """Fill level, stream position and sampling generator, for checkpoints."""
        return {
            "size": self.size,
            "num_seen": self.num_seen,
            "generator": self._generator.get_state(),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        self.size = int(state["size"])
        self.num_seen = int(state["num_seen"])
        self._generator.set_state(state["generator"])


class FifoBuffer(StreamBuffer):
    """Keeps the newest ``size`` items (a ring of slots); samples uniformly."""

    def _place(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = features.shape[0]
        items = torch.arange(max(0, b - self.capacity), b)
        return items, (items + self.num_seen) % self.capacity


class FifoLastBuffer(FifoBuffer):
    """FIFO storage whose ``sample(n)`` returns the ``n`` newest items (oldest first, no draws)."""

    def sample(self, n: int) -> Replay:
        """The ``min(n, len(self))`` most recently added items, in insertion order."""
        _check_draw(n, self.size)
        order = self.stamp[: self.size].argsort()
        return self.gather(order[-n:])


class ReservoirBuffer(StreamBuffer):
    """Reservoir sampling: after ``t`` stream items each one is held with probability size / t."""

    def _setup(self) -> None:
        seed = int(torch.randint(0, 2**62, (1,), generator=self._generator))
        self.reservoir = Reservoir(self.capacity, random.Random(seed))

    def _place(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kept = self.reservoir.slots(features.shape[0])
        pairs = torch.tensor(kept, dtype=torch.int64).view(-1, 2)
        return pairs[:, 0], pairs[:, 1]

    def get_extra_state(self) -> dict[str, Any]:
        """Adds the reservoir's position and generator."""
        return {**super().get_extra_state(), "reservoir": self.reservoir.state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        super().set_extra_state(state)
        self.reservoir.load_state(state["reservoir"])


class MinRedBuffer(StreamBuffer):
    """Minimum redundancy: when full, drop the stored items closest to their nearest neighbour."""

    def _place(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = features.shape[0]
        if b >= self.capacity:  # the batch alone fills the buffer: keep its newest items
            return torch.arange(b - self.capacity, b), torch.arange(self.capacity)
        slots = torch.arange(self.size, self.capacity)
        excess = b - len(slots)
        if excess > 0:
            slots = torch.cat([slots, self.redundant(excess).cpu()])
        return torch.arange(b), slots[:b]

    @torch.no_grad()
    def redundant(self, n: int) -> torch.Tensor:
        """Slots of the ``n`` stored items MinRed removes (see the module docstring).

        Greedy: take the eligible item with the highest cosine similarity to its nearest
        neighbour (ties: the lowest slot, the first member of the closest pair), remove it as a
        neighbour of the others, repeat.
        """
        size = self.size
        eligible = self.replays[:size] >= self.cfg.min_replays
        if self.cfg.min_replays > 0 and int(eligible.sum()) < 2 * n:
            return self.stamp[:size].topk(n, largest=False).indices  # too few seen: the oldest
        z = F.normalize(self.features[:size], dim=1)
        similarity = z @ z.T
        similarity = torch.maximum(similarity, similarity.T)  # exact ties for a pair's two members
        similarity.fill_diagonal_(float("-inf"))
        nearest, neighbour = similarity.max(dim=1)
        removed = []
        for _ in range(n):
            candidates = eligible.nonzero().squeeze(1)
            slot = int(candidates[nearest[candidates].argmax()])
            removed.append(slot)
            eligible[slot] = False
            similarity[:, slot] = float("-inf")
            stale = neighbour == slot
            if bool(stale.any()):
                nearest[stale], neighbour[stale] = similarity[stale].max(dim=1)
        return torch.tensor(removed, dtype=torch.int64)


STREAM_BUFFERS.add("fifo", FifoBuffer)
STREAM_BUFFERS.add("fifo_last", FifoLastBuffer)
STREAM_BUFFERS.add("reservoir", ReservoirBuffer)
STREAM_BUFFERS.add("minred", MinRedBuffer)


def build_stream_buffer(
    cfg: StreamBufferConfig,
    image_shape: tuple[int, int, int],
    feature_dim: int,
    generator: torch.Generator,
) -> StreamBuffer:
    """The buffer ``cfg.kind`` for images of ``image_shape`` and features of ``feature_dim``."""
    return STREAM_BUFFERS.get(cfg.kind)(cfg, image_shape, feature_dim, generator)
