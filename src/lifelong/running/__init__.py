"""Running: the training loop, a run and its folder, seeding, the Python API and pre-training.

:mod:`~lifelong.running.train` is the one loop, :mod:`~lifelong.running.run` a whole run into its
folder, :class:`~lifelong.running.experiment.Experiment` the Python API, and
:mod:`~lifelong.running.pretrain` BI-R's conv pre-training.
"""
