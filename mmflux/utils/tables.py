"""The one table writer of the repository: Markdown and aligned plain text.

Tools print their results as tables and commit some of them under ``docs/``;
writing every table here keeps one format (and one escaping rule) for all of
them. Cells go through ``str()``, so callers format numbers first.
"""
from typing import Iterable, List, Sequence


def _cells(row: Sequence[object]) -> List[str]:
    return [str(c) for c in row]


def markdown_table(headers: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub Markdown table: a header line, a ``|---|`` rule, one line per row.

    A ``|`` inside a cell is escaped so that it cannot split the cell. Rows are
    not padded: Markdown does not need aligned columns, and unpadded lines keep
    the committed tables' diffs small.
    """
    def line(row: Sequence[object]) -> str:
        return '| ' + ' | '.join(c.replace('|', r'\|') for c in _cells(row)) + ' |'

    return '\n'.join([line(headers), '|' + '---|' * len(headers)] + [line(r) for r in rows])


def text_table(headers: Sequence[object], rows: Iterable[Sequence[object]],
               left: int = 1) -> str:
    """A fixed-width table for a terminal: columns two spaces apart, a dashed rule.

    The first ``left`` columns (names) are left-aligned and the others (numbers)
    right-aligned, so that digits line up.
    """
    cells = [_cells(headers)] + [_cells(r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]

    def line(row: List[str]) -> str:
        return '  '.join(c.ljust(w) if j < left else c.rjust(w)
                         for j, (c, w) in enumerate(zip(row, widths)))

    return '\n'.join([line(cells[0]), '  '.join('-' * w for w in widths)]
                     + [line(r) for r in cells[1:]])
