"""Live curves in a running visdom server (``--visdom``), as the BI-R code offers.

TensorBoard events are always written (``RUN_DIR/tensorboard``); visdom is an optional
extra (``pip install "lifelong[visdom]"``) for users who already watch their runs there.
"""

from __future__ import annotations

from typing import Any, Protocol

from lifelong.errors import ConfigError


class LivePlot(Protocol):
    """Receives logged values while a run trains."""

    def scalars(self, group: str, step: int, values: dict[str, float]) -> None:
        """Append ``values`` at ``step`` to the curves of ``group`` (``train`` or ``eval``)."""
        ...


class VisdomPlot:
    """One visdom window per group (train losses, evaluation accuracies), one line per value.

    Args:
        env: Visdom environment name (the run directory's name).
        server: Server address.
        port: Server port (visdom's default 8097).

    Raises:
        ConfigError: when visdom is not installed or no server answers.
    """

    def __init__(self, env: str, server: str = "http://localhost", port: int = 8097) -> None:
        try:
            import visdom  # type: ignore[import-not-found,unused-ignore]
        except ImportError as err:
            raise ConfigError(
                '--visdom needs the visdom package: pip install "lifelong[visdom]", then start '
                "a server with `python -m visdom.server` (TensorBoard events are written anyway)"
            ) from err
        self._visdom: Any = visdom.Visdom(server=server, port=port, env=env)
        if not self._visdom.check_connection():
            raise ConfigError(
                f"no visdom server answers at {server}:{port}: start one with "
                "`python -m visdom.server`, or drop --visdom"
            )
        self._windows: set[str] = set()

    def scalars(self, group: str, step: int, values: dict[str, float]) -> None:
        """Append one point per value to the window of ``group``."""
        for name, value in values.items():
            self._visdom.line(
                X=[step],
                Y=[value],
                win=group,
                name=name,
                update="append" if group in self._windows else None,
                opts={
                    "title": group,
                    "showlegend": True,
                    "xlabel": "step" if group == "train" else "experiences trained",
                },
            )
            self._windows.add(group)
