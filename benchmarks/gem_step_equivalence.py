"""One GEM step of lifelong and of Avalanche 0.6.0 from the same state, batch and memories.

Issue 15's Perm-MNIST GEM-5120 row: ours and Avalanche's differed by about one point over seeds
0-4. This checks whether the two compute the same update. Run in the Avalanche environment that
``avalanche_side_by_side.py`` creates: it builds ``perm-mnist/gem-5120`` for one seed, trains
ours on the first batches of experiences 0-2 (filling their memories), then for each of the
next batches of experience 3 applies one step of each implementation from the same parameters
and memories (Avalanche's ``GEMPlugin`` around a plain SGD step, ours ``GEM.observe``), prints
the largest parameter difference and whether the step was projected, and continues from ours.

Usage:
    PYTHONPATH=src benchmarks/out/avalanche-venv/bin/python benchmarks/gem_step_equivalence.py \\
        --data-root ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import copy
from types import SimpleNamespace

import torch
from avalanche.training.plugins.gem import GEMPlugin

from avalanche_side_by_side import raw_config
from lifelong.config import resolve
from lifelong.running.run import build
from lifelong.running.train import batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data/mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm-up-steps", type=int, default=120, help="per experience 0-2")
    parser.add_argument("--steps", type=int, default=30, help="compared steps of experience 3")
    args = parser.parse_args()
    torch.set_num_threads(1)
    raw = raw_config("perm-mnist", "gem-5120", args.seed, args.data_root)
    cfg = resolve(raw, "perm-mnist/gem-5120")
    built = build(cfg)
    stream, method, generator = built.stream, built.method, built.generator
    cpu = torch.device("cpu")

    def feed(t: int, steps: int) -> list:
        e = stream.experiences[t]
        size = cfg.train.batch_size
        return list(batches(e.train, steps, size, 64, stream.transform, False, generator, cpu, t))

    for t in range(3):
        for batch in feed(t, args.warm_up_steps):
            method.observe(batch)
    ce = torch.nn.CrossEntropyLoss()
    worst, projected = 0.0, 0
    for i, batch in enumerate(feed(3, args.steps)):
        before = copy.deepcopy(method.net.state_dict())
        past = method.memories.past()
        net = copy.deepcopy(method.net)
        opt = torch.optim.SGD(net.parameters(), lr=cfg.method.lr)
        per = method.memories.per_experience(len(past) + 1)
        plugin = GEMPlugin(patterns_per_experience=per, memory_strength=cfg.method.gamma)
        for k in past:
            x_k, y_k = method.memories.examples(k)
            plugin.memory_x[k], plugin.memory_y[k] = x_k.clone(), y_k.clone()
            plugin.memory_tid[k] = torch.zeros(len(y_k), dtype=torch.int64)
        clock = SimpleNamespace(train_exp_counter=len(past))
        strategy = SimpleNamespace(
            model=net, optimizer=opt, device="cpu", _criterion=ce, clock=clock
        )
        plugin.before_training_iteration(strategy)
        opt.zero_grad()
        ce(net(batch.x), batch.y).backward()
        with torch.no_grad():
            current = torch.cat([p.grad.flatten() for p in net.parameters()])
            violated = bool((plugin.G @ current < 0).any())
        plugin.after_backward(strategy)
        opt.step()
        method.net.load_state_dict(before)
        method.observe(batch)
        with torch.no_grad():
            pairs = zip(method.net.parameters(), net.parameters(), strict=True)
            diff = max(float((a - b).abs().max()) for a, b in pairs)
        worst, projected = max(worst, diff), projected + violated
        print(
            f"step {i}: projected {'yes' if violated else 'no '}  max |ours - Avalanche| {diff:.2e}"
        )
    print(f"{projected} of {args.steps} steps projected; largest parameter difference {worst:.2e}")


if __name__ == "__main__":
    main()
