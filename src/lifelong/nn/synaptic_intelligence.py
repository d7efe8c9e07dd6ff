"""Synaptic Intelligence (Zenke, Poole & Ganguli, ICML 2017) as a reusable component.

The online importance estimate and quadratic penalty of SI, as implemented in the
Brain-Inspired Replay code (``../shared/specs/bir.md`` §3.5). A method owns one
:class:`SynapticIntelligence`, hands it the parameters to protect, adds ``c * penalty()`` to its
loss and calls the three hooks in this order::

    si.begin_experience()                  # before the first step of an experience
    for batch in experience:
        optimizer.zero_grad(set_to_none=True)
        (loss + c * si.penalty()).backward()
        optimizer.step()
        si.after_step()                    # after optimizer.step(): reads .grad and the change
    si.end_experience()                    # after the last step of an experience

``after_step`` must come after ``optimizer.step()`` and before the next ``zero_grad``: it reads
the gradient used by the step from ``.grad`` (``optimizer.step()`` leaves it unchanged) and the
parameter change the step made.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn


def buffer_key(name: str) -> str:
    """A buffer name for parameter ``name`` (dots are not allowed; the reference uses ``__``)."""
    return name.replace(".", "__")


class SynapticIntelligence(nn.Module):
    """Path-integral importance ω of each tracked parameter and the penalty Σ ω (θ − θ*)².

    For every tracked parameter θ it keeps, as registered buffers (so they are part of the owning
    method's ``state_dict`` and survive checkpoint and resume): the anchor θ* (the value at the
    end of the previous experience, set to θ at construction), the path integral W of the
    current experience, the accumulated importance ω, and θ_old (the value before the last step).
    State dict keys are ``<state>.<parameter name with '.' replaced by '__'>``, for example
    ``omega.body__1__weight``.

    Updates (spec §3.5):

    - ``begin_experience``: W ← 0, θ_old ← θ.
    - ``after_step``: W += −g ⊙ (θ − θ_old) with g the gradient in ``.grad`` (parameters whose
      ``.grad`` is ``None`` add nothing); then θ_old ← θ.
    - ``end_experience``: Δ = θ − θ*; ω += W / (Δ² + ε), clipped above at ``max_omega``
      when given; θ* ← θ.
    - ``penalty``: Σ ω ⊙ (θ − θ*)², without a factor ½; ω is not clipped and can be negative.

    The parameters are referenced, not registered: they stay owned by the network, and this
    module's own ``parameters()`` is empty.

    Args:
        named_parameters: ``(name, parameter)`` pairs to track, e.g.
            ``net.named_parameters()`` or only an encoder's and classifier's (as BI-R does).
        epsilon: Damping ε > 0 of ω's denominator (0.1 in the reference).
        max_omega: Upper clip of ω after each consolidation (None: no clip; AR1* uses 0.001).

    Raises:
        ValueError: If ε is not positive or two names map to the same buffer name.
    """

    def __init__(
        self,
        named_parameters: Iterable[tuple[str, nn.Parameter]],
        epsilon: float = 0.1,
        max_omega: float | None = None,
    ) -> None:
        super().__init__()
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon}")
        self.epsilon = epsilon
        self.max_omega = max_omega
        self.tracked: list[tuple[str, nn.Parameter]] = list(named_parameters)
        keys = [buffer_key(name) for name, _ in self.tracked]
        if len(set(keys)) != len(keys):
            raise ValueError(f"tracked parameter names must be unique, got {keys}")
        self.anchor = nn.Module()
        self.path_integral = nn.Module()
        self.omega = nn.Module()
        self.previous = nn.Module()
        for key, (_, param) in zip(keys, self.tracked, strict=True):
            value = param.detach()
            self.anchor.register_buffer(key, value.clone())
            self.path_integral.register_buffer(key, torch.zeros_like(value))
            self.omega.register_buffer(key, torch.zeros_like(value))
            self.previous.register_buffer(key, value.clone())

    def _rows(self, *states: str) -> Iterator[tuple[nn.Parameter, tuple[torch.Tensor, ...]]]:
        """Each tracked parameter with its buffers of ``states`` (in that order)."""
        for name, param in self.tracked:
            key = buffer_key(name)
            yield param, tuple(self.get_buffer(f"{state}.{key}") for state in states)

    @torch.no_grad()
    def begin_experience(self) -> None:
        """Start a new experience's path integral: W ← 0, θ_old ← θ."""
        for param, (w, previous) in self._rows("path_integral", "previous"):
            w.zero_()
            previous.copy_(param)

    @torch.no_grad()
    def after_step(self) -> None:
        """Add the last step's contribution W += −g ⊙ (θ − θ_old), then θ_old ← θ.

        Call after ``optimizer.step()``, before the gradients are cleared.
        """
        for param, (w, previous) in self._rows("path_integral", "previous"):
            if param.grad is not None:
                w.sub_(param.grad * (param - previous))
            previous.copy_(param)

    @torch.no_grad()
    def end_experience(self) -> None:
        """Consolidate: ω += W / ((θ − θ*)² + ε), then move the anchor θ* ← θ."""
        for param, (anchor, w, omega) in self._rows("anchor", "path_integral", "omega"):
            delta = param - anchor
            omega.add_(w / (delta.square() + self.epsilon))
            if self.max_omega is not None:
                omega.clamp_(max=self.max_omega)
            anchor.copy_(param)

    def penalty(self) -> torch.Tensor:
        """The surrogate loss Σ ω ⊙ (θ − θ*)², differentiable with respect to the parameters."""
        terms = [
            (omega * (param - anchor).square()).sum()
            for param, (anchor, omega) in self._rows("anchor", "omega")
        ]
        if not terms:
            return torch.zeros(())
        return torch.stack(terms).sum()

    def extra_repr(self) -> str:
        """Shown by ``print(module)``."""
        return f"tracked={len(self.tracked)}, epsilon={self.epsilon}"
