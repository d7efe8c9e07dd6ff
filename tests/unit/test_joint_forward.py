"""One forward pass over several batches, only when no module couples a batch's examples."""

from __future__ import annotations

import torch
from torch import nn

from lifelong.nn.batch_renorm import BatchRenorm2d
from lifelong.nn.joint_forward import examples_independent, forward_each


class Counted(nn.Module):
    """Wraps a network and counts its forward calls."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out: torch.Tensor = self.net(x)
        return out


def batches() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(4, 6, generator=g),
        torch.randn(2, 6, generator=g),
        torch.randn(3, 6, generator=g),
    )


def test_an_mlp_takes_one_pass_with_the_same_outputs() -> None:
    torch.manual_seed(0)
    net = Counted(nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)))
    inputs = batches()
    outputs = forward_each(net, *inputs)
    assert net.calls == 1
    assert [o.shape[0] for o in outputs] == [4, 2, 3]
    for got, x in zip(outputs, inputs, strict=True):
        torch.testing.assert_close(got, net.net(x))


def test_batch_norm_and_dropout_couple_examples_only_in_training_mode() -> None:
    for layer in (nn.BatchNorm1d(6), nn.Dropout(0.5), nn.AlphaDropout(0.5)):
        net = Counted(nn.Sequential(layer, nn.Linear(6, 3)))
        net.train()
        forward_each(net, *batches())
        assert net.calls == 3, layer
        net.eval()
        forward_each(net, *batches())
        assert net.calls == 4, layer


def test_our_batch_renorm_declares_that_it_couples_examples() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 1), BatchRenorm2d(2))
    assert not examples_independent(net.train())
    assert examples_independent(net.eval())


def test_a_network_with_a_forward_hook_takes_one_pass_per_batch() -> None:
    net = Counted(nn.Linear(6, 3))
    seen: list[int] = []
    handle = net.net.register_forward_hook(lambda _m, args, _out: seen.append(len(args[0])))
    forward_each(net, *batches())
    assert net.calls == 3 and seen == [4, 2, 3]
    handle.remove()
    forward_each(net, *batches())
    assert net.calls == 4


def test_a_single_batch_is_a_plain_call() -> None:
    net = Counted(nn.BatchNorm1d(6))
    (out,) = forward_each(net, batches()[0])
    assert net.calls == 1 and out.shape == (4, 6)
