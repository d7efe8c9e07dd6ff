"""No strategy: plain fine-tuning on the stream (the reference's ``no_strategy``, spec §2)."""

from __future__ import annotations

from lifelong.ssl.strategies.base import SSL_STRATEGIES, Strategy


@SSL_STRATEGIES.register("none")
class NoStrategy(Strategy):
    """Every pass trains the SSL loss on the stream minibatch alone; no buffer, no alignment."""

    name = "none"
