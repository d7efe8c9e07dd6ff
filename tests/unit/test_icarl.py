"""iCaRL's parts against hand-computed values: herding order, nearest mean, loss, exemplars."""

from __future__ import annotations

import math

import torch

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.buffers.herding import herding_order
from lifelong.data.stream import Experience
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.losses.icarl import icarl_loss, nearest_mean_scores
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.icarl import ICaRL


def test_herding_picks_the_point_that_brings_the_running_mean_closest():
    # mean 3.2; by hand: 3 (|3.2-3|), then 2 ((3+2)/2 = 2.5 beats (3+10)/2 = 6.5), then 1
    # ((5+1)/3 = 2 beats (5+10)/3 = 5), then 10 ((6+10)/4 = 4 beats 6/4), then 0. A plain
    # distance-to-mean order would put 0 before 10.
    features = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0]])
    assert herding_order(features, 5).tolist() == [3, 2, 1, 4, 0]
    assert herding_order(features, 2).tolist() == [3, 2]
    assert herding_order(features, 9).tolist() == [3, 2, 1, 4, 0]


def test_nearest_mean_scores_are_negative_squared_distances_of_normalised_features():
    features = torch.tensor([[3.0, 4.0]])  # normalised: (0.6, 0.8)
    means = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    has_mean = torch.tensor([True, True, False])
    scores = nearest_mean_scores(features, means, has_mean)
    # (0.4^2 + 0.8^2, 0.6^2 + 0.2^2) = (0.8, 0.4); the class without a mean never wins
    assert torch.allclose(scores[0, :2], torch.tensor([-0.8, -0.4]))
    assert scores[0, 2] == torch.finfo(torch.float32).min
    assert scores.argmax(1).tolist() == [1]


def bce(z: float, t: float) -> float:
    p = 1 / (1 + math.exp(-z))
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def test_icarl_loss_distils_old_classes_and_one_hot_encodes_new_ones():
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.3]])
    old_logits = torch.tensor([[1.0, -2.0, 0.0, 5.0]])
    labels = torch.tensor([2])
    old = torch.tensor([True, True, False, False])
    seen = torch.tensor([True, True, True, False])  # class 3 not seen: left out
    sig = [1 / (1 + math.exp(-v)) for v in (1.0, -2.0)]
    expected = (bce(0.5, sig[0]) + bce(-1.0, sig[1]) + bce(2.0, 1.0)) / 3
    loss = icarl_loss(logits, labels, old_logits, old, seen)
    assert math.isclose(float(loss), expected, rel_tol=1e-6)
    # without a previous network every seen unit has a one-hot target
    first = icarl_loss(logits, labels, None, old, seen)
    expected_first = (bce(0.5, 0.0) + bce(-1.0, 0.0) + bce(2.0, 1.0)) / 3
    assert math.isclose(float(first), expected_first, rel_tol=1e-6)


def make_icarl(buffer_size: int, **fields: object) -> ICaRL:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    backbone = BACKBONES.get("mlp").build(MLPConfig(hidden=(16, 8)), (1, 4, 4), 6)
    ctx = MethodContext(
        backbone, 6, (1, 4, 4), ImageTransform((0.0,), (1.0,)), torch.device("cpu"), generator
    )
    entry = METHODS.get("icarl")
    method = entry.build(entry.make_config({"buffer_size": buffer_size, "lr": 0.1, **fields}), ctx)
    assert isinstance(method, ICaRL)
    return method


def experience(t: int, classes: tuple[int, ...], per_class: int = 12) -> Experience:
    g = torch.Generator().manual_seed(t)
    x = torch.randint(0, 256, (per_class * len(classes), 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.tensor(classes).repeat_interleave(per_class)
    return Experience(t, classes, ImageSet(x, y), ImageSet(x, y))


def test_exemplar_sets_are_balanced_herded_and_used_for_prediction():
    method = make_icarl(buffer_size=12)
    x = torch.randn(5, 1, 4, 4)
    assert torch.equal(method.predict(x), method.net(x))  # no class means yet: the logits
    first = experience(0, (0, 1))
    method.before_experience(first)
    method.after_experience(first)
    labels = method.exemplar_y.tolist()
    assert labels.count(0) == labels.count(1) == 6  # 12 // 2 classes seen
    # class 0's exemplars are its herding order on normalised features, as stored inputs
    images = ImageTransform((0.0,), (1.0,)).normalize(first.train.x[first.train.y == 0])
    order = herding_order(method.normalised_features(images), 6)
    assert torch.equal(method.exemplar_x[:6], images[order])
    second = experience(1, (2, 3))
    method.before_experience(second)
    method.after_experience(second)
    labels = method.exemplar_y.tolist()
    assert [labels.count(c) for c in range(4)] == [3, 3, 3, 3]  # 12 // 4: old sets shrink
    assert torch.equal(method.exemplar_x[:3], images[order[:3]])  # ...to their first entries
    scores = method.predict(x)
    assert scores.shape == (5, 6)
    assert (scores[:, 4:] == torch.finfo(torch.float32).min).all()  # unseen classes never win
    assert set(scores.argmax(1).tolist()) <= {0, 1, 2, 3}


def test_union_replay_shows_each_exemplar_once_per_epoch_in_proportion_to_new_data():
    method = make_icarl(buffer_size=12)
    first = experience(0, (0, 1))  # 24 examples
    method.before_experience(first)
    method.after_experience(first)  # 12 exemplars stored
    second = experience(1, (2, 3))  # 24 new examples: half an exemplar per new example
    method.before_experience(second)
    counts, seen = [], []
    for _epoch in range(2):
        for batch_size in (5, 5, 5, 5, 4):
            index = method.exemplars_for_step(batch_size)
            counts.append(len(index))
            seen.append(index)
    # after p of 24 new examples, 12 p // 24 exemplars: 2, 5, 7, 10, 12 per epoch
    assert counts == [2, 3, 2, 3, 2] * 2
    for epoch in (seen[:5], seen[5:]):
        assert sorted(torch.cat(epoch).tolist()) == list(range(12))  # each exactly once


def test_minibatch_replay_adds_minibatch_size_exemplars_every_step():
    method = make_icarl(buffer_size=12, exemplar_replay="minibatch", minibatch_size=4)
    first = experience(0, (0, 1))
    method.before_experience(first)
    method.after_experience(first)
    method.before_experience(experience(1, (2, 3)))
    index = method.exemplars_for_step(5)
    assert len(index) == 4 and len(set(index.tolist())) == 4
