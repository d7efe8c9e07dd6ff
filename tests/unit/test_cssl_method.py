"""The ``cssl`` method: config, probe-based predict, checkpoints, and the loop's accuracy matrix."""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
from typing import Any

import pytest
import torch
from sklearn.linear_model import RidgeClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.resnet import ResNetConfig
from lifelong.config.training import TrainConfig
from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.evaluation import probe_head
from lifelong.evaluation.evaluator import Evaluator
from lifelong.evaluation.probe_head import (
    FittedProbe,
    balanced_sample,
    fit_ridge,
    validation_split,
)
from lifelong.evaluation.probes import ProbeConfig, extract_features
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.cssl import CSSL, CSSLConfig, as_uint8
from lifelong.reporting.run_logger import RunLogger
from lifelong.running.seed import restore_rng_state, rng_state
from lifelong.running.train import FitState, batches, fit
from lifelong.ssl.model import SSL_MODELS
from lifelong.ssl.options import SSLModelOptions
from lifelong.types import Batch

CPU = torch.device("cpu")
SHAPE = (3, 16, 16)
TINY: dict[str, Any] = {
    "ssl_dim_proj": 8,
    "ssl_dim_pred": 4,
    "buffer_size": 16,
    "replay_batch_size": 4,
    "aligner_dim": 8,
    "passes": 2,
}


@functools.cache
def colour_stream() -> Stream:
    """2 experiences × 2 classes; a class is one random colour plus pixel noise (easy)."""
    g = torch.Generator().manual_seed(11)
    colours = torch.randint(30, 226, (4, 3, 1, 1), generator=g)
    transform = ImageTransform((0.5,) * 3, (0.25,) * 3)

    def images(label: int, n: int) -> ImageSet:
        noise = torch.randint(-40, 41, (n, *SHAPE), generator=g)
        x = (colours[label] + noise).clamp(0, 255).to(torch.uint8)
        return ImageSet(x, torch.full((n,), label, dtype=torch.int64))

    experiences = []
    for t in range(2):
        classes = (2 * t, 2 * t + 1)
        train = ImageSet.concat([images(c, 12) for c in classes])
        test = ImageSet.concat([images(c, 10) for c in classes])
        experiences.append(Experience(t, classes, train, test))
    return Stream("colours", tuple(experiences), 4, "class-il", transform, ("a", "b", "c", "d"))


def build(seed: int = 0, **overrides: Any) -> CSSL:
    stream = colour_stream()
    torch.manual_seed(seed)
    encoder = BACKBONES.get("resnet18").build(ResNetConfig(nf=4), SHAPE, stream.num_classes)
    generator = torch.Generator().manual_seed(seed)
    ctx = MethodContext(encoder, stream.num_classes, SHAPE, stream.transform, CPU, generator)
    return CSSL(CSSLConfig(**{**TINY, **overrides}), ctx)


def train(method: CSSL, upto: int, steps: int = 3) -> None:
    stream = colour_stream()
    method.train()
    for t in range(upto + 1):
        method.before_experience(stream[t])
        g = method.ctx.generator
        for batch in batches(stream[t].train, steps, 8, 2, stream.transform, False, g, CPU, t):
            method.observe(batch)
        method.after_experience(stream[t])


def serialised(payload: dict[str, Any]) -> dict[str, Any]:
    blob = io.BytesIO()
    torch.save(payload, blob)
    blob.seek(0)
    loaded: dict[str, Any] = torch.load(blob, weights_only=True)
    return loaded


def test_registered_with_the_reference_defaults() -> None:
    assert METHODS.get("cssl").method_class is CSSL
    cfg = CSSLConfig()
    expected = {
        "ssl_model": "simsiam",
        "strategy": "none",
        "buffer": "default",
        "buffer_size": 2000,
        "replay_batch_size": 32,
        "passes": 3,
        "omega": 0.1,
        "align_criterion": "cosine",
        "ema_momentum": 0.999,
        "feature_ema": 0.5,
        "lump_alpha": 0.4,
        "aligner_dim": 512,
        "use_aligner": True,
        "lr": 0.01,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "probe": "ridge",
        "knn_k": 50,
    }
    assert {k: getattr(cfg, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"passes": 0}, "passes"),
        ({"probe": "svm"}, "probe"),
        ({"replay_batch_size": 1}, "replay_batch_size"),
        ({"ema_momentum": 1.5}, "ema_momentum"),
        ({"align_criterion": "l1"}, "align_criterion"),
        ({"ssl_model": "moco"}, "ssl_model"),
        ({"ssl_dim_proj": 0}, "dim_proj"),
        ({"buffer": "ring"}, "buffer"),
        ({"probe_val_ratio": 1.0}, "probe_val_ratio"),
    ],
)
def test_invalid_config_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        CSSLConfig(**overrides)


def test_every_ssl_model_setting_has_an_option() -> None:
    options = {f.name for f in dataclasses.fields(SSLModelOptions)}
    for name in SSL_MODELS.names():
        for f in dataclasses.fields(SSL_MODELS.get(name).config_cls):
            assert f"ssl_{f.name}" in options, (name, f.name)


def test_options_reach_the_model_and_foreign_ones_are_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        method = build(ssl_model="byol", ssl_momentum=0.5, ssl_lambd=0.1)
    assert method.model.projector_dim == 8
    assert method.model.cfg.momentum == 0.5  # type: ignore[union-attr]
    assert "method.ssl_lambd" in caplog.text and "byol" in caplog.text
    assert SSLModelOptions().ssl_config("byol") == SSL_MODELS.get("byol").config_cls()


def test_as_uint8_recovers_normalised_images() -> None:
    stream = colour_stream()
    x = stream[0].train.x
    assert torch.equal(as_uint8(stream.transform.normalize(x), stream.transform), x)
    assert as_uint8(x, stream.transform) is x


def test_float_clean_inputs_train_like_their_uint8_images() -> None:
    stream = colour_stream()
    x = stream[0].train.x[:8]
    y = stream[0].train.y[:8]
    normalised = stream.transform.normalize(x)
    losses = []
    for clean in (x, normalised):
        method = build()
        method.train()
        losses.append(method.observe(Batch(normalised, y, clean, 0)).loss)
    assert torch.equal(losses[0], losses[1])


def test_a_one_image_minibatch_is_skipped() -> None:
    method = build()
    before = [p.detach().clone() for p in method.parameters()]
    x = colour_stream()[0].train.x[:1]
    out = method.observe(Batch(colour_stream().transform.normalize(x), torch.zeros(1).long(), x, 0))
    assert float(out.loss) == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, method.parameters(), strict=True))


def test_without_encoder_training_the_probe_reads_the_initial_encoder() -> None:
    method = build(train_encoder=False)
    before = {k: v.clone() for k, v in method.model.state_dict().items()}
    train(method, upto=1)
    after = method.model.state_dict()
    changed = {key for key, value in before.items() if not torch.equal(value, after[key])}
    assert all(".head." in key for key in changed)  # only the fitted probe; BN stats stay
    trained = build()
    train(trained, upto=1)
    assert any(not torch.equal(v, trained.model.state_dict()[k]) for k, v in before.items())
    x = colour_stream().transform.normalize(colour_stream()[0].test.x)
    assert method.predict(x).shape == (len(x), 4)  # the probe was still fitted


def test_fit_ridge_is_sklearns_ridge_classifier_on_standardised_features() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 7, generator=g) * torch.tensor([1.0, 5, 0.1, 2, 1, 1, 3]) + 4
    x[:, 5] = 2.0  # a constant feature: scale 1, as StandardScaler
    y = torch.arange(60) % 3
    test = torch.randn(20, 7, generator=g) + 4
    weight, bias = fit_ridge(x, y, num_classes=5, alpha=1.0)
    reference = make_pipeline(StandardScaler(), RidgeClassifier(alpha=1.0)).fit(
        x.numpy(), y.numpy()
    )
    ours = test @ weight.T + bias
    expected = torch.from_numpy(reference.decision_function(test.numpy())).float()
    torch.testing.assert_close(ours[:, :3], expected, atol=1e-4, rtol=1e-4)
    assert torch.equal(weight[3:], torch.zeros(2, 7)) and torch.equal(bias[3:], -torch.ones(2))
    # two classes: scikit-learn keeps one column; ours are its negative and itself
    binary = y < 2
    weight, bias = fit_ridge(x[binary], y[binary], num_classes=2)
    reference.fit(x[binary].numpy(), y[binary].numpy())
    column = torch.from_numpy(reference.decision_function(test.numpy())).float()
    torch.testing.assert_close(
        test @ weight.T + bias, torch.stack([-column, column], 1), atol=1e-4, rtol=1e-4
    )


def test_balanced_sample_keeps_the_smallest_keys_per_class() -> None:
    labels = torch.tensor([0, 1, 0, 0, 1, 2, 0])
    keys = torch.tensor([0.9, 0.5, 0.1, 0.4, 0.2, 0.3, 0.8])
    assert balanced_sample(labels, keys, 2).tolist() == [1, 2, 3, 4, 5]


def test_probe_sample_is_uniform_per_class_and_stable() -> None:
    probe = FittedProbe("ridge", 3, 5, ProbeConfig(), CPU)
    g = torch.Generator().manual_seed(0)
    first = ImageSet(torch.arange(30, dtype=torch.uint8).view(30, 1, 1, 1), torch.arange(30) % 2)
    probe.add(first, g)
    assert probe.images.y.bincount().tolist() == [5, 5]
    kept = set(probe.images.x.flatten().tolist())
    second = ImageSet(torch.full((40, 1, 1, 1), 200, dtype=torch.uint8), torch.full((40,), 2))
    probe.add(second, g)
    assert probe.images.y.bincount().tolist() == [5, 5, 5]
    assert kept <= set(probe.images.x.flatten().tolist())  # a new class does not evict


def test_validation_split_holds_out_the_largest_keys_of_each_class() -> None:
    labels = torch.tensor([0, 1, 0, 0, 1, 2, 0, 1, 1])
    keys = torch.tensor([0.9, 0.5, 0.1, 0.4, 0.2, 0.3, 0.8, 0.7, 0.6])
    # class 0: 4 items → 2 held (keys 0.9, 0.8); class 1: 4 → 2 (0.7, 0.6); class 2: 1 → 0
    held = validation_split(labels, keys, 0.5)
    assert held.nonzero().flatten().tolist() == [0, 6, 7, 8]
    assert not validation_split(labels, keys, 0.0).any()


def test_the_linear_probe_stops_early_on_held_out_images(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, int] = {}
    original = probe_head.train_linear_layer

    def spy(train: Any, num_classes: int, cfg: Any, generator: Any, val: Any = None) -> Any:
        seen["train"], seen["val"] = len(train.y), 0 if val is None else len(val.y)
        return original(train, num_classes, cfg, generator, val)

    monkeypatch.setattr(probe_head, "train_linear_layer", spy)
    g = torch.Generator().manual_seed(2)
    images = ImageSet(
        torch.randint(0, 256, (60, 1, 2, 2), generator=g, dtype=torch.uint8), torch.arange(60) % 3
    )
    flat = torch.nn.Flatten()
    for ratio, held in ((0.1, 6), (0.0, 0)):
        probe = FittedProbe("linear", 3, 100, ProbeConfig(linear_epochs=3), CPU, val_ratio=ratio)
        probe.add(images, g)
        probe.fit(flat, flat, ImageTransform((0.5,), (0.25,)), torch.nn.Linear(4, 3), g)
        assert seen == {"train": 60 - held, "val": held}  # 2 of each class's 20 when 0.1


def test_knn_scores_vote_like_sklearn() -> None:
    g = torch.Generator().manual_seed(1)
    images = ImageSet(
        torch.randint(0, 256, (40, 1, 2, 2), generator=g, dtype=torch.uint8), torch.arange(40) % 3
    )
    probe = FittedProbe("knn", 4, 100, ProbeConfig(knn_k=5), CPU)
    probe.add(images, g)
    transform = ImageTransform((0.5,), (0.25,))
    flat = torch.nn.Flatten()
    probe.fit(flat, flat, transform, torch.nn.Linear(4, 4), g)
    query = torch.randn(30, 4, generator=g)
    scores = probe.scores(query, torch.nn.Linear(4, 4))
    assert scores.shape == (30, 4) and torch.equal(scores.sum(1), torch.full((30,), 5.0))
    train = flat(transform.normalize(probe.images.x))
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(5)).fit(train, probe.images.y)
    assert scores.argmax(1).tolist() == knn.predict(query.numpy()).tolist()


@pytest.mark.parametrize("probe", ["ridge", "knn", "linear"])
def test_loop_accuracy_matrix_holds_above_chance_probe_accuracies(probe: str) -> None:
    stream = colour_stream()
    method = build(probe=probe, knn_k=5, strategy="er")
    cfg = TrainConfig(epochs=1, batch_size=8, eval_batch_size=64, chunk_batches=2, progress=False)
    evaluator = Evaluator(stream, cfg.eval_batch_size, CPU)
    state = fit(method, stream, cfg, evaluator, RunLogger(None, log_every=5), method.ctx.generator)
    final = state.rows["class-il"][-1]
    assert sum(final) / len(final) > 60.0  # chance: 25%
    if probe == "ridge":  # the matrix holds the ridge probe's accuracy on the kept images
        encoder = method.eval_encoder()
        kept = extract_features(
            encoder, method.probe.images, stream.transform, encode=encoder.features
        )
        reference = make_pipeline(StandardScaler(), RidgeClassifier()).fit(kept.x, kept.y)
        for t, experience in enumerate(stream):
            test = extract_features(
                encoder, experience.test, stream.transform, encode=encoder.features
            )
            accuracy = 100.0 * reference.score(test.x, test.y)
            assert abs(final[t] - accuracy) <= 100.0 / len(test.y)


def test_before_any_fit_predict_has_the_right_shape() -> None:
    method = build(probe="knn")
    method.train(False)
    x = colour_stream().transform.normalize(colour_stream()[0].test.x[:5])
    assert method.predict(x).shape == (5, 4)
    assert torch.equal(method.predict(x), torch.zeros(5, 4))


def test_byol_probes_its_momentum_encoder() -> None:
    method = build(ssl_model="byol")
    train(method, 0, steps=2)
    method.train(False)
    x = colour_stream().transform.normalize(colour_stream()[0].test.x[:5])
    target = method.model.target_encoder  # type: ignore[union-attr]
    assert torch.equal(method.features(x), target.features(x))
    assert not torch.equal(method.features(x), method.net.features(x))


@pytest.mark.parametrize(
    ("strategy", "probe"),
    [("cassle", "ridge"), ("minred", "knn"), ("apre", "linear"), ("lump", "ridge")],
)
def test_checkpoint_round_trip_gives_same_predictions_and_next_update(
    strategy: str, probe: str
) -> None:
    stream = colour_stream()
    original = build(strategy=strategy, probe=probe, knn_k=5)
    train(original, 0)
    original.before_experience(stream[1])
    checkpoint = serialised(
        {"method": original.state_dict(), "rng": original.ctx.generator.get_state()}
    )
    restored = build(seed=5, strategy=strategy, probe=probe, knn_k=5)
    restored.load_state_dict(checkpoint["method"])
    x = stream.transform.normalize(stream[0].test.x)
    for m in (original, restored):
        m.train(False)
    with torch.no_grad():
        assert torch.equal(original.predict(x), restored.predict(x))
    batch = next(
        batches(stream[1].train, 1, 8, 1, stream.transform, False, torch.Generator(), CPU, 1)
    )
    outs = []
    for m in (original, restored):
        m.ctx.generator.set_state(checkpoint["rng"])
        m.train()
        outs.append(m.observe(batch))
    assert torch.equal(outs[0].loss, outs[1].loss)
    assert outs[0].terms.keys() == outs[1].terms.keys()
    if strategy == "cassle":
        assert "align" in outs[0].terms  # the distillation state travelled
    a, b = original.state_dict(), restored.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))


@pytest.mark.parametrize(("strategy", "probe"), [("cassle", "ridge"), ("minred", "knn")])
def test_resumed_fit_ends_like_an_uninterrupted_one(strategy: str, probe: str) -> None:
    stream = colour_stream()
    cfg = TrainConfig(epochs=1, batch_size=8, eval_batch_size=64, chunk_batches=2, progress=False)
    evaluator = Evaluator(stream, cfg.eval_batch_size, CPU)
    saved: list[tuple[FitState, dict[str, Any]]] = []

    def fit_from(method: CSSL, state: FitState | None = None) -> FitState:
        def keep(s: FitState) -> None:
            payload = {"method": method.state_dict(), "rng": rng_state(method.ctx.generator)}
            saved.append((s, serialised(payload)))

        logger = RunLogger(None, log_every=5)
        g = method.ctx.generator
        return fit(method, stream, cfg, evaluator, logger, g, state=state, on_boundary=keep)

    uninterrupted = fit_from(build(seed=3, strategy=strategy, probe=probe, knn_k=5))
    state, checkpoint = saved[0]  # as if killed after the first experience
    resumed_method = build(seed=3, strategy=strategy, probe=probe, knn_k=5)
    resumed_method.load_state_dict(checkpoint["method"])
    restore_rng_state(resumed_method.ctx.generator, checkpoint["rng"])
    resumed = fit_from(resumed_method, state)
    assert resumed.rows == uninterrupted.rows
    assert resumed.rows["class-il"][-1] != resumed.rows["class-il"][0]
