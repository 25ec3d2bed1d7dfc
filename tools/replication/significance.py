"""Intervals, tests and multiplicity corrections for models compared on the same videos.

Why: a replication's verdict has two sources of chance, the training seed and the
draw of test videos, and it tests many contrasts at once. So:

- one test combines both sources: a two-way bootstrap that resamples seeds and
  videos independently (rows and columns of the (seeds, videos) correctness
  table, Owen's "pigeonhole" bootstrap for crossed factors). Pooling the
  (seed, video) pairs into one McNemar test counted the same video once per seed
  and ignored the seed-to-seed variance;
- the paper's claims are one family declared before the data: Holm's step-down
  correction decides their verdicts; every other contrast gets a
  Benjamini-Hochberg q-value (a false-discovery rate, descriptive);
- the minimal detectable difference says what size of effect this many seeds
  and videos could have found, so "not resolvable" is read with its resolution.
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
    """A - B on the same videos and seeds, in accuracy points (0-100)."""
    delta: float
    seed_interval: Interval  # descriptive: the t-interval of the per-seed differences
    low: float  # 95% two-way bootstrap interval (seeds and videos resampled)
    high: float
    p: float  # two-sided, from the same bootstrap
    se: float  # the bootstrap's standard deviation of the difference
    seeds: int
    videos: int

    def as_dict(self) -> Dict:
        out = asdict(self)
        out['seed_interval'] = asdict(self.seed_interval)
        return out


def two_way_bootstrap(diff: np.ndarray, num_bootstrap: int = 10000, seed: int = 0) -> np.ndarray:
    """Means of ``diff`` (seeds, videos) over independent resamples of its rows and
    its columns: each resample draws seeds with replacement and, independently,
    videos with replacement, and averages the table they cross."""
    diff = np.asarray(diff, dtype=float)
    s, n = diff.shape
    rng = np.random.default_rng(seed)
    out = np.empty(num_bootstrap)
    for start in range(0, num_bootstrap, 500):
        k = min(500, num_bootstrap - start)
        # how often each seed and each video is drawn, per resample
        rows = np.stack([np.bincount(r, minlength=s) for r in rng.integers(0, s, (k, s))])
        cols = np.stack([np.bincount(c, minlength=n) for c in rng.integers(0, n, (k, n))])
        out[start:start + k] = ((rows @ diff) * cols).sum(axis=1) / (s * n)
    return out


def inflate_seed_deviations(diff: np.ndarray) -> np.ndarray:
    """``diff`` with each seed's deviation from the mean scaled by sqrt(s / (s - 1)).

    Resampling s seeds with replacement has a variance (s - 1) / s of the sample's:
    with 3 or 5 seeds the bootstrap would understate the seed-to-seed variance by a
    third or a fifth. Scaling the per-seed deviations makes its variance of the
    seed mean the unbiased s^2 / s; the mean and the video structure are unchanged."""
    s = diff.shape[0]
    if s < 2:
        return diff
    row = diff.mean(axis=1, keepdims=True)
    return diff + (np.sqrt(s / (s - 1)) - 1) * (row - diff.mean())


def paired_comparison(correct_a: np.ndarray, correct_b: np.ndarray, num_bootstrap: int = 10000,
                      seed: int = 0) -> PairedComparison:
    """Compare two models seed by seed on the same videos.

    Args:
        correct_a, correct_b: arrays (seeds, videos) in [0, 1]: whether each
            seed's model got each video right (or the fraction of random draws
            that did). Row i of both come from the same seed, column j from the
            same video.
        num_bootstrap: two-way resamples (seeds and videos).
        seed: of the bootstrap's generator, so the report is reproducible.
    """
    a = np.asarray(correct_a, dtype=float)
    b = np.asarray(correct_b, dtype=float)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(f'paired_comparison needs two (seeds, videos) arrays of one shape, got '
                         f'{a.shape} and {b.shape}')
    if a.min() < 0 or a.max() > 1 or b.min() < 0 or b.max() > 1:
        raise ValueError('paired_comparison: correctness must lie in [0, 1]')
    diff = 100 * (a - b)
    boot = two_way_bootstrap(inflate_seed_deviations(diff), num_bootstrap, seed)
    low, high = np.percentile(boot, [2.5, 97.5])
    # two-sided: how often a resample lands on the other side of 0 (+1: never exactly 0)
    tail = min((boot <= 0).sum(), (boot >= 0).sum())
    p = min(1.0, 2 * (tail + 1) / (num_bootstrap + 1))
    return PairedComparison(delta=float(diff.mean()), seed_interval=seed_interval(diff.mean(axis=1)),
                            low=float(low), high=float(high), p=float(p), se=float(boot.std(ddof=1)),
                            seeds=a.shape[0], videos=a.shape[1])


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values: reject where adjusted p < alpha controls
    the family-wise error rate at alpha, for any dependence between the tests."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    order = np.argsort(p, kind='stable')
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def benjamini_hochberg(pvalues: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg q-values: the false-discovery rate at which each test
    would just be a discovery."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    order = np.argsort(p, kind='stable')
    scaled = m * p[order] / np.arange(1, m + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def minimal_detectable_difference(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The true difference a two-sided test at ``alpha`` finds with probability
    ``power``, for an estimate with standard error ``se`` (normal approximation)."""
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * se)


def verdict(comparison: PairedComparison, adjusted_p: float, expected_sign: int = 1,
            alpha: float = 0.05) -> str:
    """'supported', 'contradicted' or 'not resolvable' for a claim that A - B has
    ``expected_sign``: the corrected p decides, the difference's sign names the side."""
    if adjusted_p >= alpha or comparison.delta == 0:
        return 'not resolvable'
    return 'supported' if np.sign(comparison.delta) == expected_sign else 'contradicted'
