"""Warnings that mmengine's duplicate filter must not swallow.

Upstream (mmengine 0.10.7, ``mmengine/logging/logger.py``): every MMLogger handler
carries ``FilterDuplicateWarning``, which prints a WARNING text once per process
and drops its repeats. A bad video met again (a later epoch, another random pick)
is a new event that must be logged again.

Fix, scoped to mmflux's own messages: :class:`RepeatableWarning` is a ``str`` that
compares equal only to itself, so the filter never finds it among the texts it has
seen. mmengine's filter and every other message are unchanged.
"""


class RepeatableWarning(str):
    """A log message that compares (and hashes) only as itself."""

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other
