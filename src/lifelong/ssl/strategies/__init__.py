"""Continual-SSL strategies (spec ``cssl.md`` §2): none, er, lump, minred, cassle, aep, arp, apre.

:mod:`~lifelong.ssl.strategies.base` holds the interface, config and the ``SSL_STRATEGIES``
registry; each strategy registers itself in its own module (imported by
:mod:`lifelong.components`).
"""
