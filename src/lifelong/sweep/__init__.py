"""``lifelong sweep FILE``: experiments × hyper-parameter grid × seeds, as resumable processes.

A sweep file (YAML, read with ``yaml.safe_load``) has these top-level keys:

* ``common``: parameters of every run, in the config layout of ``lifelong run --config``
  (``method: {...}``, ``dataset: {...}``, ``backbone: {...}``, ``train: {...}``, ``device``) or
  as dotted keys (``method.lr: 0.1``); ``preset: NAME`` (or ``none``) picks the preset layer.
* ``experiments``: a mapping ``name: {overrides of common}``, or a list of such mappings with a
  ``name`` each. Overrides merge into ``common`` key by key (an experiment that changes
  ``method.name`` keeps common's other method keys, which must then exist for that method). An
  experiment may have its own ``hyperparams_search``. Default: one experiment called
  ``default``.
* ``hyperparams_search``: ``{dotted.key: [values...]}``, the Cartesian grid of every experiment
  (an experiment's own grid adds keys, or replaces the list of a key given at the top level).
* ``seeds``: every grid point runs once per seed (default ``[0]``); an experiment may have its
  own ``seeds``.
* ``out``: the output folder (default ``runs/sweeps/<file name>``; ``--out`` overrides it).

The continual-SSL library's ``run_from_config.py`` ``config.json`` (``common_params``,
``experiments``, ``hyperparams_search``) is read too: its ``main.py`` options are translated by
the table of ``lifelong cssl`` (:mod:`lifelong.sweep.cssl_json`).

Each trial (experiment, grid point, seed) is resolved by :func:`lifelong.config.layered_config`
in the same layers as the command line (scenario defaults < preset < the file's parameters) and
runs as one ``lifelong run --config RESOLVED.yaml --preset none`` subprocess, writing
``OUT/<experiment>/<grid point>/seed<N>`` (no grid-point level without a grid). Every trial's
config is resolved before anything runs, so a bad file fails at once with one line.
Finished runs (``results.json`` marked ``completed`` with its scores, and a ``config.yaml`` equal
to its config) are skipped, interrupted ones start again from scratch, and a failing trial is
logged (``OUT/sweep.log`` and its ``trial.log``) without stopping the others. ``OUT/summary.md``
and ``OUT/summary.png`` hold the mean ± sample std over seeds of each grid point's final average
accuracy.

Trial processes die with the sweep (``kill -9`` included, on Linux) and hold their folder's lock
(``RUN_DIR/.lock``) while they live: a sweep never clears or runs a folder another process holds,
it reports that trial as running elsewhere (summary, exit code 1) and goes on with the others.

The best grid point of an experiment is the highest mean final average accuracy of the first
protocol the runs report (class-IL for class-incremental streams), among grid points whose runs
all finished. Our runs report TEST accuracy only (no validation split), so the choice is made on
the test split and the best number is optimistically biased; the summary says so. Differences
from the reference (``run_from_config.py``): it selects on the probe's validation accuracy, runs
no seeds in a search, falls back to an lr grid when the search is empty (an error here), lets
the file win over the command line (there is no command-line layer here), and reports the
population std where we report the sample std.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifelong.sweep.children import SweepStoppedError, raise_on_termination
    from lifelong.sweep.plan import Sweep, Trial, completed_results, load_sweep, plan_sweep
    from lifelong.sweep.runner import Attempt, check_backend, run_once, run_sweep
    from lifelong.sweep.summary import summarize, summary_table, write_summary

_HOMES = {
    "SweepStoppedError": "children",
    "raise_on_termination": "children",
    "Sweep": "plan",
    "Trial": "plan",
    "completed_results": "plan",
    "load_sweep": "plan",
    "plan_sweep": "plan",
    "Attempt": "runner",
    "check_backend": "runner",
    "run_once": "runner",
    "run_sweep": "runner",
    "summarize": "summary",
    "summary_table": "summary",
    "write_summary": "summary",
}
"""Where each public name lives: they load on first use (``lifelong --help`` loads none)."""

__all__ = [
    "Attempt",
    "Sweep",
    "SweepStoppedError",
    "Trial",
    "check_backend",
    "completed_results",
    "load_sweep",
    "plan_sweep",
    "raise_on_termination",
    "run_once",
    "run_sweep",
    "summarize",
    "summary_table",
    "write_summary",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"lifelong.sweep.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'lifelong.sweep' has no attribute {name!r}")
