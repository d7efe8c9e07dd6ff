"""Per-example gradients: explicit rows, and the factored inner products of linear networks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lifelong.nn.example_gradients import ExampleGradients, example_gradients, explicit_gradients


def mlp(bias: bool = True) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(12, 7, bias=bias),
        nn.ReLU(),
        nn.Linear(7, 5),
        nn.Tanh(),
        nn.Linear(5, 4),
    )


def one_backward_per_example(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    rows = []
    for i in range(len(y)):
        net.zero_grad()
        loss = nn.functional.cross_entropy(net(x[i : i + 1]), y[i : i + 1])
        loss.backward()
        grads = [p.grad.reshape(-1) for p in net.parameters() if p.requires_grad]  # type: ignore[union-attr]
        rows.append(torch.cat(grads))
    return torch.stack(rows)


def batch(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 4, generator=g), torch.randint(0, 4, (n,), generator=g)


def test_explicit_gradients_match_one_backward_pass_per_example() -> None:
    net = mlp()
    x, y = batch(5, 1)
    assert torch.allclose(
        explicit_gradients(net, x, y), one_backward_per_example(net, x, y), atol=1e-6
    )


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("freeze", [None, "1.weight", "3.bias"])
def test_linear_networks_give_the_inner_products_of_the_explicit_gradients(
    bias: bool, freeze: str | None
) -> None:
    net = mlp(bias)
    if freeze is not None:
        net.get_parameter(freeze).requires_grad_(False)
    (x1, y1), (x2, y2) = batch(6, 2), batch(4, 3)
    first, second = example_gradients(net, x1, y1), example_gradients(net, x2, y2)
    assert first.explicit is None and first.factors  # factored
    rows1, rows2 = one_backward_per_example(net, x1, y1), one_backward_per_example(net, x2, y2)
    assert torch.allclose(first.inner(second), rows1 @ rows2.T, atol=1e-5)
    assert torch.allclose(first.squared_norms(), rows1.square().sum(1), atol=1e-5)
    expected = nn.functional.normalize(rows1, dim=1) @ nn.functional.normalize(rows2, dim=1).T
    assert torch.allclose(first.cosines(second), expected, atol=1e-5)
    mean = nn.functional.normalize(rows1.mean(0, keepdim=True), dim=1)
    assert torch.allclose(
        first.mean_cosines(second), mean @ nn.functional.normalize(rows2, dim=1).T, atol=1e-5
    )


def test_other_trainable_layers_fall_back_to_explicit_gradients_in_eval_mode() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    x, y = torch.randn(5, 1, 4, 4), torch.randint(0, 3, (5,))
    net.train()
    grads = example_gradients(net, x, y)
    assert grads.explicit is not None and net.training
    net.eval()  # the per-example reference uses the running statistics too
    assert torch.allclose(grads.explicit, one_backward_per_example(net, x, y), atol=1e-5)


def test_a_linear_layer_applied_twice_falls_back_to_explicit_gradients() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.layer(torch.relu(self.layer(x)))
            return out

    torch.manual_seed(0)
    net = Twice()
    x, y = torch.randn(3, 4), torch.randint(0, 4, (3,))
    grads = example_gradients(net, x, y)
    assert grads.explicit is not None
    assert torch.allclose(grads.explicit, one_backward_per_example(net, x, y), atol=1e-6)


def test_explicit_and_factored_gradients_do_not_mix() -> None:
    net = mlp()
    x, y = batch(2, 4)
    with pytest.raises(ValueError, match="explicit"):
        example_gradients(net, x, y).inner(ExampleGradients(torch.zeros(2, 3)))
