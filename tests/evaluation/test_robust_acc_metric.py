"""RobustAccMetric: failed placeholders are excluded, named and counted."""
import math

import torch

from mmaction.registry import METRICS
from mmaction.structures import ActionDataSample


def sample(label, pred, failed=False, name=None, fallback=None):
    s = ActionDataSample().set_gt_label(label)
    s.set_pred_score(torch.tensor(pred, dtype=torch.float32))
    if fallback:
        s.set_metainfo(dict(decoder_fallback=fallback))
    if failed:
        s.set_metainfo(dict(failed=True, fail_reason='RuntimeError: broken', filename=name))
    return s.to_dict()


def evaluate(samples):
    metric = METRICS.build(dict(type='RobustAccMetric'))
    metric.dataset_meta = {}
    metric.process([], samples)
    return metric.evaluate(len(samples))


def test_failed_videos_are_excluded_and_counted(log_messages):
    samples = [
        sample(0, [0.9, 0.1]),
        sample(1, [0.2, 0.8]),
        sample(1, [0.9, 0.1], failed=True, name='/data/bad_a.mp4'),  # would be wrong
        sample(0, [0.4, 0.6]),
        sample(0, [0.1, 0.9], failed=True, name='/data/bad_b.mp4'),
    ]
    metrics = evaluate(samples)
    assert metrics['acc/num_evaluated'] == 3
    assert metrics['acc/num_failed'] == 2
    assert math.isclose(metrics['acc/top1'], 2 / 3)
    out = '\n'.join(log_messages)
    assert 'excluded /data/bad_a.mp4: RuntimeError: broken' in out
    assert 'excluded /data/bad_b.mp4' in out
    assert 'evaluated 3 of 5 videos; 2 failed to load and were excluded' in out


def test_no_failures_match_acc_metric():
    samples = [sample(0, [0.9, 0.1]), sample(1, [0.6, 0.4]), sample(1, [0.3, 0.7])]
    robust = evaluate(samples)
    plain = METRICS.build(dict(type='AccMetric'))
    plain.process([], samples)
    expected = plain.evaluate(len(samples))
    for key, value in expected.items():
        assert math.isclose(robust[key], value)
    assert robust['acc/num_failed'] == 0 and robust['acc/num_evaluated'] == 3


def test_all_failed_gives_nan_and_an_error(log_messages):
    metrics = evaluate([sample(0, [0.5, 0.5], failed=True, name='/x.mp4')])
    assert math.isnan(metrics['acc/top1']) and math.isnan(metrics['acc/mean1'])
    assert metrics['acc/num_evaluated'] == 0 and metrics['acc/num_failed'] == 1
    assert 'no video could be evaluated' in '\n'.join(log_messages)


def test_videos_decoded_by_the_fallback_are_scored_and_counted(log_messages):
    reason = 'DecordDecode failed (DECORDError: ...); decoded by OpenCV'
    samples = [sample(0, [0.9, 0.1], fallback=reason), sample(1, [0.2, 0.8]),
               sample(1, [0.7, 0.3], fallback=reason),
               sample(0, [0.1, 0.9], failed=True, name='/x.mp4')]
    metrics = evaluate(samples)
    assert metrics['acc/num_evaluated'] == 3 and metrics['acc/num_failed'] == 1
    assert metrics['acc/num_decoder_fallbacks'] == 2
    assert math.isclose(metrics['acc/top1'], 2 / 3)  # the fallback videos are scored
    assert '2 of the 3 evaluated videos were decoded by OpenCV' in '\n'.join(log_messages)
