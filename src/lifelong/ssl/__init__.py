"""Self-supervised models for continual SSL: SimSiam, BYOL, Barlow Twins, EMP-SSL and MAE.

:mod:`lifelong.ssl.model` defines the common interface and the ``SSL_MODELS`` registry; each
model registers itself in its own module (imported by :mod:`lifelong.components`).
:mod:`lifelong.ssl.losses` holds the losses as pure functions and :mod:`lifelong.ssl.heads` the
projector and predictor MLPs.
"""
