"""``python -m lifelong``: the same as the ``lifelong`` command."""

from lifelong.cli import main

raise SystemExit(main())
