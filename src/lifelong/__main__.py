"""``python -m lifelong``: the same as the ``lifelong`` command."""

from lifelong.cli.main import entry_point

entry_point()
