"""BI-R's VAE with an integrated classifier, fully connected (spec ``bir.md`` §2).

One network is encoder, classifier, decoder and (optionally learnable) prior:

- encoder ``fcE`` (here :attr:`VAEClassifier.body`): flatten, then Linear + ReLU layers of sizes
  ``[C·H·W, fc_units, …, h_dim]`` (§2.1);
- classifier (here :attr:`VAEClassifier.head`): ``Linear(h_dim → classes)`` on the last hidden
  layer ``hE`` ("beforeZ", §2.2), so the network is also a :class:`~lifelong.backbones.Backbone`
  and ``forward(x)`` returns logits (the evaluator's predictor);
- ``toZ``: ``mu`` (with bias) and ``logvar`` (no bias) heads on ``hE``;
- decoder: ``fromZ`` ``Linear(z → h_dim)`` + ReLU, then ``fcD``, the encoder sizes reversed,
  ReLU on hidden layers and a sigmoid on the output, which lies in [0, 1] (§2.3), or a linear
  output when the VAE reconstructs conv features (internal replay);
- optional decoder gates (§2.5): per class a fixed Bernoulli mask (0 with probability
  ``dg_prop``) on every decoder layer but the last, applied to the pre-activation as
  ``(W x + b) ⊙ (g M)`` with ``g`` a one-hot class vector or a probability vector;
- optional class-conditional Gaussian-mixture prior (§2.4): learnable ``prior_means`` and
  ``prior_logvars`` of shape (classes, z_dim), initialised i.i.d. N(0, 1);
- optional XdG (``xdg_prop > 0``): per task a fixed mask on the encoder's hidden units
  (:mod:`lifelong.generative.task_gates`), applied when a task id is passed.

Deviations from the reference code: the gate masks are registered buffers drawn from an explicit
``torch.Generator`` (the reference regenerates them from the global RNG and does not save them,
so a reloaded model has other gates); weights are initialised like PyTorch's defaults but from
that generator, not from the global RNG; the encoder's log-variance is clamped to ±30 so that
``exp`` stays finite (no effect in ordinary training, where it stays far inside).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.backbones import Backbone
from lifelong.errors import ConfigError
from lifelong.generative.task_gates import TaskGates

LOGVAR_LIMIT = 30.0
"""Bound on the encoder's log-variance: exp(±30) stays finite in float32 (a numerical guard)."""


@dataclass(frozen=True)
class VAEClassifierConfig:
    """Shape of the VAE-classifier (defaults: BI-R on split MNIST, without BI-R's components)."""

    fc_units: int = 400
    """Units of the first hidden layer of the encoder (the BI-R code's --fc-units)."""
    h_dim: int = 400
    """Units of the last hidden layer hE, which feeds the classifier and the z heads."""
    z_dim: int = 100
    """Dimension of the latent variable z."""
    fc_layers: int = 3
    """Fully connected layers of the encoder counting the input (3 → two hidden layers)."""
    dg_prop: float = 0.8
    """Probability that a gate-mask entry is 0 (gating strength; 0 disables gates)."""
    per_class_prior: bool = False
    """Learnable Gaussian-mixture prior with one mode per class (conditional replay)."""
    gates: bool = False
    """Class-specific gates on the decoder's hidden layers (see dg_prop)."""
    xdg_prop: float = 0.0
    """XdG: proportion of the encoder's hidden units switched off per task (0: no XdG)."""
    linear_output: bool = False
    """Linear decoder output (conv features, trained with MSE) instead of sigmoid pixels."""

    def __post_init__(self) -> None:
        for name in ("fc_units", "h_dim", "z_dim"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.fc_layers < 2:
            raise ConfigError(f"fc_layers must be >= 2 (one hidden layer), got {self.fc_layers}")
        if not 0.0 <= self.dg_prop < 1.0:
            raise ConfigError(f"dg_prop must be in [0, 1), got {self.dg_prop}")
        if not 0.0 <= self.xdg_prop < 1.0:
            raise ConfigError(f"xdg_prop must be in [0, 1), got {self.xdg_prop}")

    @property
    def gated(self) -> bool:
        """Whether the decoder is gated (``gates`` on and ``dg_prop > 0``, as in §2.5)."""
        return self.gates and self.dg_prop > 0.0


def encoder_sizes(cfg: VAEClassifierConfig, in_features: int) -> list[int]:
    """Layer sizes of ``fcE``: ``[in] + linspace(fc_units, h_dim, fc_layers - 1)`` (§2.1)."""
    if cfg.fc_layers == 2:
        return [in_features, cfg.h_dim]
    steps = cfg.fc_layers - 2
    step = (cfg.h_dim - cfg.fc_units) / steps
    hidden = [int(cfg.fc_units + i * step) for i in range(steps)]  # np.linspace, truncated
    return [in_features, *hidden, cfg.h_dim]


def standard_normal(
    shape: tuple[int, ...], generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """N(0, 1) noise drawn from ``generator`` (on the generator's device), moved to ``device``."""
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """``z = mu + exp(logvar / 2) ⊙ ε`` with ``ε ~ N(0, I)`` from ``generator``."""
    eps = standard_normal(tuple(mu.shape), generator, mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def seeded_linear(
    in_features: int, out_features: int, generator: torch.Generator, bias: bool = True
) -> nn.Linear:
    """A Linear layer with PyTorch's default initialisation drawn from ``generator``.

    Kaiming-uniform weights with ``a = √5`` and biases uniform in ±1/√fan_in, as
    ``nn.Linear.reset_parameters``; built with ``skip_init`` so the global RNG is not touched.
    """
    layer: nn.Linear = nn.utils.skip_init(nn.Linear, in_features, out_features, bias=bias)
    with torch.no_grad():
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        if layer.bias is not None:
            bound = 1.0 / math.sqrt(in_features)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


class GatedLinear(nn.Module):
    """``ReLU((W x + b) ⊙ (g M))``: a decoder layer with fixed per-class gates (§2.5).

    ``M`` (classes × out_features) is a registered buffer of Bernoulli(1 − dg_prop) entries
    drawn once from ``generator``; without gates (``dg_prop = 0``) the layer is Linear + ReLU.

    Args:
        in_features: Input width.
        out_features: Output width.
        num_classes: Rows of the gate mask.
        dg_prop: Probability of a 0 entry; 0 builds no mask.
        generator: Draws the weights and the mask.
    """

    mask: torch.Tensor | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_classes: int,
        dg_prop: float,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.linear = seeded_linear(in_features, out_features, generator)
        mask = None
        if dg_prop > 0:
            draws = torch.rand(num_classes, out_features, generator=generator)
            mask = (draws >= dg_prop).float()
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor, gate: torch.Tensor | None) -> torch.Tensor:
        """Apply the layer; ``gate`` (B, classes) is required when the layer has a mask."""
        pre: torch.Tensor = self.linear(x)
        if self.mask is not None:
            if gate is None:
                raise ValueError("a gated decoder needs a gate (class labels or probabilities)")
            pre = pre * (gate @ self.mask)
        return F.relu(pre)


class FCClassifier(Backbone):
    """The encoder trunk ``fcE`` plus the linear classifier on ``hE`` (the reference's MLP).

    Flatten, then Linear + ReLU layers ``[C·H·W, fc_units, …, h_dim]``, then
    ``Linear(h_dim → classes)``; as the BI-R code's ``Classifier`` (used by GR) and the
    encoder/classifier part of :class:`VAEClassifier`.

    Args:
        cfg: Layer sizes (``fc_units``, ``h_dim``, ``fc_layers``) and ``xdg_prop``.
        image_shape: (C, H, W) of the inputs.
        num_classes: Output units.
        generator: CPU generator for the initial weights (and the XdG masks, drawn last).
        n_tasks: Tasks of the stream, one XdG mask each (needed when ``cfg.xdg_prop > 0``).
    """

    task_gates: TaskGates | None

    def __init__(
        self,
        cfg: VAEClassifierConfig,
        image_shape: tuple[int, int, int],
        num_classes: int,
        generator: torch.Generator,
        n_tasks: int = 0,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.image_shape = image_shape
        self.num_classes = num_classes
        self.sizes = encoder_sizes(cfg, math.prod(image_shape))
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in itertools.pairwise(self.sizes):
            layers += [seeded_linear(fan_in, fan_out, generator), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = seeded_linear(cfg.h_dim, num_classes, generator)
        self.n_tasks = n_tasks
        self.task_gates = None

    def draw_task_gates(self, generator: torch.Generator) -> None:
        """Draw the XdG masks of the hidden layers (once, after every other random draw)."""
        if self.cfg.xdg_prop > 0:
            widths = self.sizes[1:]
            self.task_gates = TaskGates(widths, self.n_tasks, self.cfg.xdg_prop, generator)

    def features(self, x: torch.Tensor, task: torch.Tensor | None = None) -> torch.Tensor:
        """The last hidden layer of the encoder, ``hE``, shape (B, h_dim).

        ``task`` (B,) selects each example's XdG masks; None (or no XdG): no gating.
        """
        if self.task_gates is None or task is None:
            out: torch.Tensor = self.body(x)
            return out
        h, layer = x, 0
        for module in self.body:
            h = module(h)
            if isinstance(module, nn.ReLU):  # h ⊙ m: gating after or before ReLU is the same
                h = self.task_gates.gate(h, layer, task)
                layer += 1
        return h

    def classify(self, x: torch.Tensor, task: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, num_classes) of the classifier on ``hE`` (gated by ``task`` with XdG)."""
        out: torch.Tensor = self.head(self.features(x, task))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, as :meth:`classify` (so the network serves as the predictor)."""
        return self.classify(x)


class VAEClassifier(FCClassifier):
    """Encoder + classifier + gated decoder + class-conditional prior (BI-R, §2).

    Args:
        cfg: Layer sizes and BI-R's components (gates, per-class prior).
        image_shape: (C, H, W) of the inputs.
        num_classes: Output units of the classifier, gate contexts and prior modes.
        generator: CPU generator for the initial weights, gate masks and prior.
        n_tasks: Tasks of the stream (XdG masks; needed when ``cfg.xdg_prop > 0``).
    """

    prior_means: nn.Parameter | None
    prior_logvars: nn.Parameter | None

    def __init__(
        self,
        cfg: VAEClassifierConfig,
        image_shape: tuple[int, int, int],
        num_classes: int,
        generator: torch.Generator,
        n_tasks: int = 0,
    ) -> None:
        super().__init__(cfg, image_shape, num_classes, generator, n_tasks)
        self.to_mu = seeded_linear(cfg.h_dim, cfg.z_dim, generator)
        self.to_logvar = seeded_linear(cfg.h_dim, cfg.z_dim, generator, bias=False)
        dg_prop = cfg.dg_prop if cfg.gated else 0.0
        down = self.sizes[::-1]  # h_dim → … → fc_units → in
        self.from_z = GatedLinear(cfg.z_dim, cfg.h_dim, num_classes, dg_prop, generator)
        self.hidden_d = nn.ModuleList(
            GatedLinear(a, b, num_classes, dg_prop, generator)
            for a, b in itertools.pairwise(down[:-1])
        )
        self.to_x = seeded_linear(down[-2], down[-1], generator)  # never gated (§2.3)
        self.prior_means = self.prior_logvars = None
        if cfg.per_class_prior:
            shape = (num_classes, cfg.z_dim)
            self.prior_means = nn.Parameter(torch.randn(shape, generator=generator))
            self.prior_logvars = nn.Parameter(torch.randn(shape, generator=generator))
        self.draw_task_gates(generator)

    def encode(
        self, x: torch.Tensor, task: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(hE, mu, logvar)`` of inputs ``x`` (B, C, H, W); ``mu`` and ``logvar`` (B, z_dim).

        ``task`` (B,): the examples' tasks, which pick the XdG masks (None: no gating).
        """
        h = self.features(x, task)
        logvar = self.to_logvar(h).clamp(-LOGVAR_LIMIT, LOGVAR_LIMIT)
        return h, self.to_mu(h), logvar

    def gate_vector(self, gate: torch.Tensor | None) -> torch.Tensor | None:
        """Labels (B,) become one-hot (B, classes); probability rows pass; None stays None."""
        if gate is None or gate.dim() == 2:
            return gate
        return F.one_hot(gate, self.num_classes).to(self.to_x.weight.dtype)

    def decode(self, z: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [0, 1] (or features), shape (B, C, H, W), from latents ``z`` (B, z_dim).

        ``gate``: class labels (B,) or class probabilities (B, classes); required when gated,
        ignored otherwise.
        """
        g = self.gate_vector(gate) if self.cfg.gated else None
        h = self.from_z(z, g)
        for layer in self.hidden_d:
            h = layer(h, g)
        out = self.to_x(h)
        return (out if self.cfg.linear_output else torch.sigmoid(out)).view(-1, *self.image_shape)

    def generate(self, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Images of classes ``y`` (B,): ``z`` from class ``y``'s prior mode, gated with ``y``.

        With the standard prior ``z ~ N(0, I)`` and ``y`` only selects the gates.
        """
        eps = standard_normal((len(y), self.cfg.z_dim), generator, y.device)
        z = eps
        if self.prior_means is not None and self.prior_logvars is not None:
            z = self.prior_means[y] + torch.exp(0.5 * self.prior_logvars[y]) * eps
        return self.decode(z, y)

    @torch.no_grad()
    def sample(
        self, n: int, classes: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` generated ``(x, y)``: classes uniform over ``classes`` (1-d labels), no grad.

        Each sample's class picks its prior mode and gates (§4 step 3, spec ``bir.md``).
        """
        if len(classes) == 0:
            raise ValueError("sample() needs at least one allowed class")
        pick = torch.randint(len(classes), (n,), generator=generator, device=generator.device)
        y = classes[pick.to(classes.device)]
        return self.generate(y, generator), y
