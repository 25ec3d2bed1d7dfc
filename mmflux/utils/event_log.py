"""Structured logging of events that must never be lost: skipped, failed or excluded items.

Why a leaf module: datasets log skipped videos, evaluation logs excluded ones and
an engine hook logs the per-epoch counts; all of them need the same rule and
none may import the others.
"""
import logging

from mmengine.logging import print_log


class _Occurrence(str):
    """A log message that compares only to itself.

    mmengine's ``FilterDuplicateWarning`` (on every MMLogger handler) prints a
    WARNING text once per process and drops its repeats. A bad video met again
    (a later epoch, a second random pick) is a new event that must be logged,
    so these messages never compare equal to an earlier one.
    """

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other


def log_event(message: str, level: int = logging.WARNING) -> None:
    """``print_log`` to the current logger, never swallowed as a duplicate."""
    print_log(_Occurrence(message), logger='current', level=level)


__all__ = ['log_event']
