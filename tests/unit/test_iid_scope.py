"""The IID training scope: the union of every experience, shuffled once, cut into equal parts."""

from __future__ import annotations

import torch
from tests.contract.test_methods import build_method, make_stream

from lifelong.running.train import training_data, training_size


def test_iid_parts_cover_the_union_once_in_equal_mixed_parts() -> None:
    stream = make_stream("grey")
    method = build_method("cssl", stream, iid=True)
    assert method.training_scope() == "iid"
    parts = [training_data(method, stream, t) for t in range(len(stream))]
    union_x = torch.cat([e.train.x for e in stream]).flatten(1)
    seen = torch.cat([p.x for p in parts]).flatten(1)
    assert len(seen) == len(union_x)
    # every image of the union exactly once: the sorted projections of the rows agree
    projection = torch.randn(union_x.shape[1], dtype=torch.float64)
    assert torch.equal(
        (seen.double() @ projection).sort().values, (union_x.double() @ projection).sort().values
    )
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == [training_size(method, stream, t) for t in range(len(stream))]
    assert len(parts[0].y.unique()) > 2  # classes of several experiences in the first part
    again = training_data(method, stream, 1)
    assert torch.equal(again.x, parts[1].x)  # the same parts every time (and after a resume)


def test_without_iid_cssl_trains_on_the_current_experience() -> None:
    stream = make_stream("grey")
    method = build_method("cssl", stream)
    assert method.training_scope() == "current"
    assert torch.equal(training_data(method, stream, 2).x, stream[2].train.x)
