"""Every annotation line checked when the dataset is built: file, line, text and fix."""
import pytest

from mmaction.registry import DATASETS
from mmflux.datasets import AnnotationError
from mmflux.datasets.annotation_check import check_annotation_lines


def build(tmp_path, text, dataset='FluxVideoDataset', **kwargs):
    ann = tmp_path / 'list.txt'
    ann.write_text(text)
    return DATASETS.build(dict(type=dataset, ann_file=str(ann), pipeline=[], **kwargs)), str(ann)


@pytest.mark.parametrize('text,line,expected', [
    ('a.mp4 1\nb.mp4 -1\n', "line 2: 'b.mp4 -1': label -1 is negative; fix: class indices start at 0",
     None),
    ('a.mp4 abc\n', "line 1: 'a.mp4 abc': label 'abc' is not an integer; fix: write the class index",
     None),
    ('a.mp4 0\nb.mp4 1.5\n', "line 2: 'b.mp4 1.5': label '1.5' is not an integer", None),
    ('a.mp4 1 2\n', "line 1: 'a.mp4 1 2': 3 field(s) where 2 are expected (<video> <label>",
     'set dataset.delimiter'),
    ('a.mp4\n', "line 1: 'a.mp4': 1 field(s) where 2 are expected", None),
    ('a.mp4  1\n', "line 1: 'a.mp4  1': an empty field", None),
    ('a.mp4 1\n\nb.mp4 2\n', 'line 2: empty line; fix: delete it', None),
])
def test_bad_lines_are_refused_by_file_line_and_text(tmp_path, text, line, expected):
    with pytest.raises(AnnotationError) as info:
        build(tmp_path, text)
    message = str(info.value)
    assert message.startswith(f"annotation file {tmp_path / 'list.txt'}: 1 bad line(s):")
    assert line in message
    assert 'fix:' in message
    if expected:
        assert expected in message


def test_every_bad_line_is_listed_once(tmp_path):
    text = ''.join(f'v{i}.mp4 {"x" if i % 3 == 0 else i}\n' for i in range(90))
    with pytest.raises(AnnotationError) as info:
        build(tmp_path, text)
    message = str(info.value)
    assert ': 30 bad line(s):' in message  # lines 1, 4, 7, ... (i = 0, 3, 6, ...)
    assert message.count("is not an integer") == 20 and '... and 10 more' in message
    assert "line 88: 'v87.mp4 x'" not in message and "line 4: 'v3.mp4 x'" in message


def test_empty_file_is_refused(tmp_path):
    with pytest.raises(AnnotationError, match=r'list\.txt has no annotation lines \(it is empty\); fix'):
        build(tmp_path, '', dataset='RobustVideoDataset', test_mode=True)


def test_rawframe_lines(tmp_path):
    with pytest.raises(AnnotationError) as info:
        build(tmp_path, 'd1 10 1\nd2 ten 1\nd3 5\n', dataset='FluxRawframeDataset')
    message = str(info.value)
    assert "line 2: 'd2 ten 1': total_frames 'ten' is not a non-negative integer" in message
    assert "line 3: 'd3 5': 2 field(s) where 3 are expected (<frame_dir> <total_frames> <label>" \
        in message


def test_good_file_keeps_line_numbers_for_messages(tmp_path):
    dataset, ann = build(tmp_path, 'a.mp4 1\nb.mp4 0\nc.mp4 3\n', dataset='RobustVideoDataset',
                         test_mode=True)
    assert len(dataset) == 3
    assert [dataset.get_data_info(i)['label'] for i in range(3)] == [1, 0, 3]
    assert dataset.label_location(2) == f"{ann} line 3: 'c.mp4 3'"


def test_multi_class_labels_against_num_classes():
    lines = ['a.mp4 0 2', 'b.mp4 4']
    with pytest.raises(AnnotationError, match=r"line 2: 'b.mp4 4': label 4 is not below "
                                              r'dataset.num_classes=4'):
        check_annotation_lines('m.txt', lines, multi_class=True, num_classes=4)
    assert check_annotation_lines('m.txt', lines, multi_class=True, num_classes=5) == [
        (1, 'a.mp4 0 2'), (2, 'b.mp4 4')]
