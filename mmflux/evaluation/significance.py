"""Intervals and paired tests for comparing models on the same test videos.

Why: two accuracies measured on the same videos are not independent samples, and
a handful of training seeds is not a large sample. A claim "A beats B" is
therefore reported with three numbers that answer different questions:

- the 95% t-interval over seeds of the per-seed difference (does the effect
  survive retraining?),
- a paired bootstrap over videos (resampling the same videos for both models and
  every seed: does it survive another draw of test videos?),
- McNemar's exact test on the discordant (video, seed) pairs.
"""
from dataclasses import asdict, dataclass
from typing import Dict, Optional, Sequence

import numpy as np
from scipy import stats


@dataclass
class Interval:
    """A mean with its 95% interval (``low``/``high``; None when n < 2)."""
    mean: float
    low: Optional[float]
    high: Optional[float]
    n: int

    @property
    def half_width(self) -> Optional[float]:
        return None if self.low is None else (self.high - self.low) / 2


def seed_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean of per-seed values (n - 1 degrees of freedom)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError('seed_interval needs at least one value')
    mean = float(x.mean())
    if x.size < 2:
        return Interval(mean, None, None, int(x.size))
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return Interval(mean, mean - half, mean + half, int(x.size))


@dataclass
class PairedComparison:
    """A - B on the same videos, in accuracy points (0-100)."""
    delta: float
    seed_interval: Interval
    bootstrap_low: float
    bootstrap_high: float
    bootstrap_p: float
    a_only: Optional[int]  # (seed, video) pairs A gets right and B wrong
    b_only: Optional[int]
    mcnemar_p: Optional[float]  # None when a side is an average of draws (not 0/1)

    def as_dict(self) -> Dict:
        out = asdict(self)
        out['seed_interval'] = asdict(self.seed_interval)
        return out


def paired_comparison(correct_a: np.ndarray, correct_b: np.ndarray, num_bootstrap: int = 10000,
                      seed: int = 0, mcnemar: bool = True) -> PairedComparison:
    """Compare two models seed by seed on the same videos.

    Args:
        correct_a, correct_b: arrays (seeds, videos) in [0, 1]: whether each
            seed's model got each video right (or the fraction of random draws
            that did). Row i of both come from the same seed, column j from the
            same video. McNemar's test needs 0/1 on both sides.
        num_bootstrap: resamples of the videos (the same resample for every seed).
        seed: of the bootstrap's generator, so the report is reproducible.
        mcnemar: run McNemar's test (needs 0/1 on both sides); False when a side
            is an average of draws, even if its draws happened to agree.
    """
    a = np.asarray(correct_a, dtype=float)
    b = np.asarray(correct_b, dtype=float)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(f'paired_comparison needs two (seeds, videos) arrays of one shape, got '
                         f'{a.shape} and {b.shape}')
    if a.min() < 0 or a.max() > 1 or b.min() < 0 or b.max() > 1:
        raise ValueError('paired_comparison: correctness must lie in [0, 1]')
    per_seed = 100 * (a.mean(axis=1) - b.mean(axis=1))
    diff = a - b  # (seeds, videos) in [-1, 1]
    per_video = diff.mean(axis=0)  # mean over seeds: the bootstrap resamples videos
    rng = np.random.default_rng(seed)
    n = per_video.size
    boot = np.empty(num_bootstrap)
    for start in range(0, num_bootstrap, 1000):
        stop = min(start + 1000, num_bootstrap)
        idx = rng.integers(0, n, size=(stop - start, n))
        boot[start:stop] = 100 * per_video[idx].mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    # two-sided: how often the resampled difference falls on the other side of 0
    p_boot = min(1.0, 2 * min((boot <= 0).mean(), (boot >= 0).mean()))
    a_only = b_only = p_mcnemar = None
    if mcnemar:
        if not (np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all()):
            raise ValueError('McNemar needs 0/1 correctness; pass mcnemar=False for averages')
        a_only, b_only = int((diff > 0).sum()), int((diff < 0).sum())
        discordant = a_only + b_only
        p_mcnemar = 1.0 if discordant == 0 else float(
            stats.binomtest(a_only, discordant, 0.5, alternative='two-sided').pvalue)
    return PairedComparison(delta=float(per_seed.mean()), seed_interval=seed_interval(per_seed),
                            bootstrap_low=float(low), bootstrap_high=float(high),
                            bootstrap_p=float(p_boot), a_only=a_only, b_only=b_only,
                            mcnemar_p=p_mcnemar)


def verdict(comparison: PairedComparison, expected_sign: int = 1, alpha: float = 0.05) -> str:
    """'supported', 'contradicted' or 'not resolvable' for a claim that A - B has
    ``expected_sign``.

    Supported needs all three: the seed interval and the bootstrap interval exclude
    0 on the claimed side, and McNemar's p < alpha (where it applies).
    Contradicted: the same on the other side. Anything else is not resolvable at
    this scale.
    """
    si = comparison.seed_interval
    for sign, word in ((expected_sign, 'supported'), (-expected_sign, 'contradicted')):
        seeds_ok = si.low is not None and (si.low > 0 if sign > 0 else si.high < 0)
        boot_ok = comparison.bootstrap_low > 0 if sign > 0 else comparison.bootstrap_high < 0
        mcnemar_ok = comparison.mcnemar_p is None or comparison.mcnemar_p < alpha
        if seeds_ok and boot_ok and mcnemar_ok and np.sign(comparison.delta) == sign:
            return word
    return 'not resolvable'
