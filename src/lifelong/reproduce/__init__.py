"""``lifelong reproduce``: the ledger of paper numbers we claim, one command per claim.

* :mod:`lifelong.reproduce.ledger`: the ledger file (one row per claim) and its validation;
* :mod:`lifelong.reproduce.results`: the acceptance rule and the results file written back;
* :mod:`lifelong.reproduce.runner`: a row's seeds as a resumable sweep, or a smoke run;
* :mod:`lifelong.reproduce.smoke_data`: tiny datasets in the official formats for smoke runs;
* :mod:`lifelong.reproduce.table`: the Markdown table and the status list.

The shipped ledger is ``benchmarks/ledger.yaml`` in a clone; the package holds a link to it
(``lifelong/reproduce/ledger.yaml``, package data like the presets), so ``lifelong reproduce``
finds it from an installed package as well as from a clone.
"""

from lifelong.reproduce.ledger import DEFAULT_LEDGER, Measured, Row, find_row, load_ledger
from lifelong.reproduce.results import Result, decide, mean_std, read_results, write_result
from lifelong.reproduce.runner import Reproduction, reproduce_row, smoke_row
from lifelong.reproduce.table import list_text, markdown_table

__all__ = [
    "DEFAULT_LEDGER",
    "Measured",
    "Reproduction",
    "Result",
    "Row",
    "decide",
    "find_row",
    "list_text",
    "load_ledger",
    "markdown_table",
    "mean_std",
    "read_results",
    "reproduce_row",
    "smoke_row",
    "write_result",
]
