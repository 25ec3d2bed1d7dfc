"""Every line of an MMAction2 annotation list parsed before anything runs.

MMAction2 parses list files with bare ``int()`` and tuple unpacking: a label
``abc`` or ``1.5`` fails with ``invalid literal for int()``, an extra field
with ``too many values to unpack``, an empty file later with ``need at least
one array to concatenate``, none of them naming the file or the line. A label
``-1`` passes (MMAction2 uses it for unlabeled inference lists) and then fails
in the loss at some iteration, or is evaluated as one more class in testing.
:func:`check_annotation_lines` checks every line of a ``VideoDataset``
(``video label [label ...]``) or ``RawframeDataset`` (``frame_dir [offset]
total_frames label [label ...]``) list and raises one :class:`AnnotationError`
listing every bad line with its number, its text and the fix. Labels above the
model's classes are checked where the model is known
(:mod:`mmflux.engine.config_check`), with the line from :func:`label_location`.
"""
from typing import List, Optional, Sequence, Tuple

#: bad lines listed in one error (the count is always complete)
MAX_LISTED = 20


class AnnotationError(ValueError):
    """An annotation file that cannot be used as it is."""


def _int(text: str) -> Optional[int]:
    try:
        return int(text)
    except ValueError:
        return None


def _line_problem(fields: List[str], kind: str, delimiter: Optional[str], multi_class: bool,
                  with_offset: bool, num_classes: Optional[int]) -> Optional[str]:
    if kind == 'rawframe':
        heads = ['frame_dir'] + (['offset'] if with_offset else []) + ['total_frames']
    else:
        heads = ['video']
    layout = ' '.join(f'<{h}>' for h in heads) + (' <label> [<label> ...]' if multi_class
                                                   else ' <label>')
    sep = 'whitespace' if delimiter is None else repr(delimiter)
    if any(f == '' for f in fields):
        return (f'an empty field (two {sep} in a row, or one at the end); fix: one {sep} '
                f'between fields: {layout}')
    least = len(heads) + 1
    if len(fields) < least or (not multi_class and len(fields) > least):
        count = f'{least}' if not multi_class else f'at least {least}'
        return (f'{len(fields)} field(s) where {count} are expected ({layout}, separated by '
                f'{sep}); fix: write the line as {layout}' + (
                    '' if len(fields) < least else
                    '; a file name containing the separator must be renamed, or set '
                    'dataset.delimiter' if kind == 'video' else
                    '; for several labels per video set dataset.multi_class=True'))
    for name, text in zip(heads[1:], fields[1:len(heads)]):
        value = _int(text)
        if value is None or value < 0:
            return f'{name} {text!r} is not a non-negative integer; fix: write the {name} as 0, 1, 2, ...'
    for text in fields[len(heads):]:
        value = _int(text)
        if value is None:
            return (f'label {text!r} is not an integer; fix: write the class index '
                    '(0, 1, 2, ...), not a name or a fraction')
        if value < 0:
            return (f'label {value} is negative; fix: class indices start at 0 (an unlabeled '
                    'video cannot be trained or evaluated: give it its class or remove the line)')
        if num_classes is not None and value >= num_classes:
            return (f'label {value} is not below dataset.num_classes={num_classes}; fix: use '
                    f'0..{num_classes - 1} or raise num_classes')
    return None


def check_annotation_lines(ann_file: str, lines: Sequence[str], kind: str = 'video',
                           delimiter: Optional[str] = ' ', multi_class: bool = False,
                           with_offset: bool = False,
                           num_classes: Optional[int] = None) -> List[Tuple[int, str]]:
    """Check every line of ``ann_file`` (its ``lines``); return ``(line number, text)``
    of each sample in order, or raise :class:`AnnotationError` naming every bad line.

    ``kind``: ``'video'`` (fields split by ``delimiter``) or ``'rawframe'``
    (split on whitespace, as MMAction2's datasets split them).
    """
    if kind == 'rawframe':
        delimiter = None
    samples: List[Tuple[int, str]] = []
    bad: List[str] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.rstrip('\r\n')
        if not text.strip():  # MMAction2 would make a sample of it, named after the folder
            bad.append(f'  line {number}: empty line; fix: delete it')
            continue
        problem = _line_problem(text.strip().split(delimiter), kind, delimiter, multi_class,
                                with_offset, num_classes)
        if problem is not None:
            bad.append(f'  line {number}: {text!r}: {problem}')
        samples.append((number, text))
    if bad:
        shown = bad[:MAX_LISTED]
        more = [f'  ... and {len(bad) - len(shown)} more'] if len(bad) > len(shown) else []
        raise AnnotationError('\n'.join(
            [f'annotation file {ann_file}: {len(bad)} bad line(s):'] + shown + more))
    if not samples:
        raise AnnotationError(
            f'annotation file {ann_file} has no annotation lines (it is empty); fix: point '
            'ann_file at the list of this split (one "<video> <label>" line per video).')
    return samples


def label_location(ann_file: str, samples: Sequence[Tuple[int, str]], index: int) -> str:
    """``'<file> line 7: "a.mp4 9"'`` for sample ``index`` (for messages)."""
    if 0 <= index < len(samples):
        number, text = samples[index]
        return f'{ann_file} line {number}: {text!r}'
    return f'{ann_file} (sample {index})'


__all__ = ['AnnotationError', 'check_annotation_lines', 'label_location']
