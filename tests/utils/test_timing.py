"""mmflux.utils.timing: the statistics are right, rounds interleave, threads are restored."""
import time

import pytest
import torch

from mmflux.utils import timing
from mmflux.utils.timing import Timing, time_call, time_interleaved, torch_threads


def test_statistics_by_hand():
    t = Timing('x', times_s=[0.004, 0.001, 0.003, 0.002, 0.010])
    assert t.median_ms == pytest.approx(3.0)
    assert t.min_ms == pytest.approx(1.0) and t.max_ms == pytest.approx(10.0)
    # sorted 1, 2, 3, 4, 10 ms: p25 at index 1 (2 ms), p75 at index 3 (4 ms), p90 at 3.6 -> 4 + 0.6 * 6
    assert t.percentile(25) == pytest.approx(2.0) and t.percentile(75) == pytest.approx(4.0)
    assert t.iqr_ms == pytest.approx(2.0)
    assert t.percentile(90) == pytest.approx(7.6) and t.percentile(10) == pytest.approx(1.4)
    assert t.spread == pytest.approx((7.6 - 1.4) / 3.0)
    assert Timing('empty').median_ms != Timing('empty').median_ms  # nan


def test_rounds_interleave_and_warmup_is_untimed():
    order = []
    calls = {name: (lambda name=name: order.append(name)) for name in ('a', 'b', 'c')}
    timings = time_interleaved(calls, warmup=2, repeats=3)
    assert order == ['a', 'b', 'c'] * 5
    assert all(len(t.times_s) == 3 and len(t.cpu_shares) == 3 and t.warmup == 2
               for t in timings.values())


def test_samples_time_the_call(monkeypatch):
    """A fake clock: each call advances it by 5 ms; a sample of ``number`` calls is divided back."""
    now = [0.0]

    def call():
        now[0] += 0.005

    monkeypatch.setattr(timing.time, 'perf_counter', lambda: now[0])
    monkeypatch.setattr(timing.time, 'process_time', lambda: now[0])
    t = time_call(call, warmup=1, repeats=4, min_sample_s=0.02, threads=1)
    assert t.number == 4  # ceil(20 ms / 5 ms)
    assert t.times_s == pytest.approx([0.005] * 4)
    assert t.cpu_shares == pytest.approx([1.0] * 4) and t.clean == 4
    assert t.as_dict()['median_ms'] == pytest.approx(5.0)


def test_real_sleep_is_measured():
    t = time_call(lambda: time.sleep(0.01), warmup=0, repeats=2)
    assert 9.5 <= t.min_ms < 200
    assert t.cpu_shares[0] < 0.5  # sleeping is not CPU time


def test_threads_are_restored():
    before = torch.get_num_threads()
    with torch_threads(1) as used:
        assert used == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before
    seen = []
    t = time_call(lambda: seen.append(torch.get_num_threads()), warmup=0, repeats=1, threads=1)
    assert seen == [1] and t.threads == 1 and torch.get_num_threads() == before


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='repeats=0'):
        time_call(lambda: None, repeats=0)
