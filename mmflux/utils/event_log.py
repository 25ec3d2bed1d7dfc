"""Structured logging of events that must never be lost: skipped, failed or excluded items.

Why a leaf module: datasets log skipped videos, evaluation logs excluded ones and
an engine hook logs the per-epoch counts; all of them need the same rule and
none may import the others.
"""
import logging

from mmengine.logging import print_log

from ..compat.repeatable_warning import RepeatableWarning  # mmengine drops repeated warnings


def log_event(message: str, level: int = logging.WARNING) -> None:
    """``print_log`` to the current logger, never swallowed as a duplicate."""
    print_log(RepeatableWarning(message), logger='current', level=level)


__all__ = ['log_event']
