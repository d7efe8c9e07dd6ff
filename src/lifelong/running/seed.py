"""Seeding and random generators: randomness is passed around, never hidden in globals."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch's global generators and return a fresh CPU generator.

    Library code draws from the returned generator (data order, augmentation, buffer sampling),
    so a run is reproducible from its seed. The global seeds only cover third-party code such
    as weight initialisation inside ``torch.nn`` layers.

    Args:
        seed: The run's seed.

    Returns:
        A ``torch.Generator`` seeded with ``seed``.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def rng_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Capture the run generator and torch's global CPU generator for a checkpoint."""
    return {"run": generator.get_state(), "torch_global": torch.get_rng_state()}


def restore_rng_state(generator: torch.Generator, state: dict[str, torch.Tensor]) -> None:
    """Restore what :func:`rng_state` captured."""
    generator.set_state(state["run"])
    torch.set_rng_state(state["torch_global"])
