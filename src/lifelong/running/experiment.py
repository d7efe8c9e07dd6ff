"""The Python API: an :class:`Experiment` is a ``lifelong run`` command written in Python.

    >>> from lifelong import Experiment
    >>> results = Experiment(method="derpp", dataset="seq-mnist", buffer_size=200,
    ...                      data_root="../shared/data/mnist").run()

Both resolve their configuration with :func:`lifelong.config.layered_config`, so the same
request builds the same run: the scenario's paper defaults, the matching paper preset, then the
fields given here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifelong.config import Layered, RunConfig, layered_config
from lifelong.config.layers import REQUEST_KEYS
from lifelong.reporting.wandb_sink import WandbTarget


@dataclass(frozen=True)
class Experiment:
    """One run, described with the command line's names (``None``: not given)."""

    method: str | None = None
    """Method name (``--method``)."""
    dataset: str | None = None
    """Scenario name (``--dataset``)."""
    backbone: str | None = None
    """Backbone name (``--backbone``)."""
    buffer_size: int | None = None
    """Rehearsal buffer capacity (``--buffer-size``)."""
    minibatch_size: int | None = None
    """Examples replayed per step (``--minibatch-size``)."""
    lr: float | None = None
    """Learning rate (``--lr``)."""
    alpha: float | None = None
    """DER/DER++ logit-replay weight (``--alpha``)."""
    beta: float | None = None
    """DER++ replay cross-entropy weight (``--beta``)."""
    epochs: int | None = None
    """Epochs per experience (``--epochs``)."""
    iters: int | None = None
    """Iterations per experience instead of epochs (``--iters``)."""
    batch_size: int | None = None
    """Batch size of the current experience (``--batch-size``)."""
    data_root: str | None = None
    """Folder with the dataset (``--data-root``)."""
    seed: int | None = None
    """Random seed (``--seed``)."""
    device: str | None = None
    """``cpu``, ``cuda`` or ``cuda:N`` (``--device``)."""
    download: bool = False
    """Download the dataset if missing (``--download``)."""
    preset: str | None = None
    """A preset name; ``None``: the matching paper preset; ``"none"``: no preset."""
    config_file: Path | None = None
    """A YAML config file (``--config``)."""
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Any other field, as ``--set``: ``{"method.alpha": 0.2}`` or ``{"alpha": 0.2}``."""

    def layered(self) -> Layered:
        """The resolved config and the layer that set each field."""
        request = {name: getattr(self, name) for name in REQUEST_KEYS}
        return layered_config(request, self.preset, self.config_file, tuple(self.overrides.items()))

    def config(self) -> RunConfig:
        """The resolved run configuration."""
        return self.layered().config

    def run(
        self,
        run_dir: Path | str | None = None,
        progress: bool = True,
        tensorboard: bool = True,
        wandb: WandbTarget | None = None,
    ) -> dict[str, Any]:
        """Train and evaluate; return the results (also written to the run directory).

        Args:
            run_dir: Output folder; ``None``: ``runs/DATASET/METHOD-TIME-sSEED``, as the CLI.
            progress: Show progress bars (only when stderr is a terminal).
            tensorboard: Write TensorBoard events.
            wandb: Also log to Weights & Biases (``--wandb``), e.g.
                ``WandbTarget("my-project", mode="offline")``.
        """
        from lifelong.running.run import execute
        from lifelong.running.run_dir import claim_run_dir, default_run_dir

        cfg = self.config()
        if not progress:
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, progress=False))
        folder = Path(run_dir) if run_dir else claim_run_dir(default_run_dir(cfg))
        return execute(cfg, folder, False, tensorboard, wandb=wandb)
