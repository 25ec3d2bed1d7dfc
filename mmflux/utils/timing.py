"""One timing harness for every speed figure: benchmarks, latency plans, runtime comparisons.

Why one: a ratio is only meaningful when both sides were timed the same way
(same warm-up, same statistic, same threads, on a machine that is stated).
Why interleaved: on a shared CPU, background load comes and goes; running every
candidate once per round spreads that load over all of them alike, so their
ratio holds even when the absolute times drift.

API::

    timing = time_call(fn, warmup=3, repeats=10)              # one callable
    timings = time_interleaved({'eager': f, 'fast': g}, warmup=2, repeats=7)
    timing.median_ms, timing.min_ms, timing.percentile(90), timing.spread, timing.as_dict()
    run_info(threads)  # the machine it ran on: CPU facts, threads, torch, load average

``fn`` takes no argument. Each sample is the wall time of ``number`` calls
divided by ``number`` (``number`` is sized from the last warm-up round when
``min_sample_s`` is given, so fast parts are not timed at the clock's
resolution; without a warm-up round it stays 1). ``device='cuda'`` synchronises before reading the clock. Each
sample also records the CPU share the process got (process CPU time / wall time
/ threads): well below 1 means other processes took the CPU meanwhile.
"""
import contextlib
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Mapping, Optional

import torch

from .cpu_info import machine_info

#: a sample with at least this CPU share ran on an (almost) uncontended CPU
CLEAN_SHARE = 0.9


@dataclass
class Timing:
    """Per-call times (seconds) of one callable, and how it was timed."""
    name: str
    times_s: List[float] = field(default_factory=list)
    cpu_shares: List[float] = field(default_factory=list)
    number: int = 1
    warmup: int = 0
    threads: int = 1

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100, linear interpolation) of the per-call times, in ms."""
        if not self.times_s:
            return float('nan')
        ordered = sorted(self.times_s)
        pos = (len(ordered) - 1) * q / 100.0
        lo, hi = math.floor(pos), math.ceil(pos)
        return 1e3 * (ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))

    @property
    def median_ms(self) -> float:
        return 1e3 * statistics.median(self.times_s) if self.times_s else float('nan')

    @property
    def min_ms(self) -> float:
        return 1e3 * min(self.times_s) if self.times_s else float('nan')

    @property
    def max_ms(self) -> float:
        return 1e3 * max(self.times_s) if self.times_s else float('nan')

    @property
    def iqr_ms(self) -> float:
        return self.percentile(75) - self.percentile(25)

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: the relative noise of these samples."""
        median = self.median_ms
        return (self.percentile(90) - self.percentile(10)) / median if median else float('nan')

    @property
    def clean(self) -> int:
        """Samples during which the process had the CPU to itself (share >= CLEAN_SHARE)."""
        return sum(share >= CLEAN_SHARE for share in self.cpu_shares)

    def as_dict(self) -> Dict:
        return dict(name=self.name, median_ms=self.median_ms, min_ms=self.min_ms,
                    p10_ms=self.percentile(10), p90_ms=self.percentile(90), iqr_ms=self.iqr_ms,
                    spread=self.spread, samples=len(self.times_s), number=self.number,
                    warmup=self.warmup, threads=self.threads, clean=self.clean,
                    times_ms=[1e3 * t for t in self.times_s], cpu_shares=self.cpu_shares)


@contextlib.contextmanager
def torch_threads(threads: Optional[int]) -> Iterator[int]:
    """Run with ``threads`` intra-op threads (None: as set), restored afterwards."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def _sync(device: str) -> None:
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def _sample(fn: Callable[[], object], number: int, device: str, threads: int):
    """(seconds per call, CPU share) of ``number`` calls."""
    _sync(device)
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(number):
        fn()
    _sync(device)
    t1, c1 = time.perf_counter(), time.process_time()
    wall = max(t1 - t0, 1e-9)
    share = (c1 - c0) / wall / threads if device == 'cpu' else 1.0
    return wall / number, share


def time_interleaved(calls: Mapping[str, Callable[[], object]], warmup: int = 2, repeats: int = 7,
                     threads: Optional[int] = None, device: str = 'cpu',
                     min_sample_s: float = 0.0) -> Dict[str, Timing]:
    """Time several callables in rounds: each round calls every one of them once, in turn.

    ``warmup`` untimed rounds first (the last one also sizes ``number`` per
    callable from ``min_sample_s``), then ``repeats`` timed rounds.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f'repeats={repeats}, warmup={warmup}: need repeats >= 1 and warmup >= 0.')
    with torch_threads(threads) as used:
        timings = {name: Timing(name, warmup=warmup, threads=used) for name in calls}
        for rnd in range(warmup):
            for name, fn in calls.items():
                per_call, _ = _sample(fn, 1, device, used)
                if rnd == warmup - 1 and min_sample_s > 0:
                    timings[name].number = max(1, math.ceil(min_sample_s / max(per_call, 1e-9)))
        for _ in range(repeats):
            for name, fn in calls.items():
                per_call, share = _sample(fn, timings[name].number, device, used)
                timings[name].times_s.append(per_call)
                timings[name].cpu_shares.append(share)
    return timings


def time_call(fn: Callable[[], object], warmup: int = 3, repeats: int = 10,
              threads: Optional[int] = None, device: str = 'cpu', min_sample_s: float = 0.0,
              name: str = 'call') -> Timing:
    """Time one callable: ``warmup`` untimed calls, then ``repeats`` samples."""
    return time_interleaved({name: fn}, warmup, repeats, threads, device, min_sample_s)[name]


def run_info(threads: Optional[int] = None, device: str = 'cpu') -> Dict:
    """The machine a timing ran on (:func:`mmflux.utils.cpu_info.machine_info`) plus threads."""
    info = machine_info(device)
    info['threads'] = threads or torch.get_num_threads()
    return info


__all__ = ['CLEAN_SHARE', 'Timing', 'run_info', 'time_call', 'time_interleaved', 'torch_threads']
