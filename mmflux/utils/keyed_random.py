"""Random streams keyed by what they are for, not by what ran before.

A draw made from a stream keyed by e.g. ``(seed, epoch, sample index)`` is the
same whichever process makes it (a dataloader worker or the main process), how
many workers there are, in which order samples are loaded, and whether the run
was restarted from a checkpoint in between. Nothing has to be saved for it to
continue exactly after a resume: the keys are recomputed from the seed and the
counters that the checkpoint already holds (epoch, iteration).

Keys are ints (taken modulo 2**64) or strings (their CRC32, so a stream can be
named, e.g. ``'sample'``); a numpy ``SeedSequence`` mixes them, so neighbouring
keys give unrelated streams.

* :func:`keyed_generator` / :func:`keyed_torch_generator`: a private generator;
* :func:`keyed_seed`: one 64-bit int for APIs that want a seed;
* :func:`seed_global_rngs` / :func:`keyed_global_rngs`: seed ``random``,
  ``numpy.random`` and torch's default generator for code that draws from them
  (MMAction2 / mmcv transforms, Mixup, timm layers); the context manager
  restores the previous states afterwards.
"""
import random
import zlib
from contextlib import contextmanager
from typing import Iterator, Union

import numpy as np
import torch

Key = Union[int, str]

_U64 = (1 << 64) - 1


def _entropy(keys) -> list:
    if not keys:
        raise ValueError('keyed_random: give at least one key (e.g. the seed).')
    out = []
    for key in keys:
        if isinstance(key, str):
            out.append(zlib.crc32(key.encode()))
        elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            out.append(int(key) & _U64)
        else:
            raise TypeError(f'keyed_random: key {key!r} ({type(key).__name__}) must be an int '
                            'or a str.')
    return out


def _sequence(keys) -> np.random.SeedSequence:
    return np.random.SeedSequence(_entropy(keys))


def keyed_generator(*keys: Key) -> np.random.Generator:
    """A numpy ``Generator`` (PCG64) that is a pure function of ``keys``."""
    return np.random.Generator(np.random.PCG64(_sequence(keys)))


def keyed_seed(*keys: Key) -> int:
    """A seed in ``[0, 2**63)`` that is a pure function of ``keys`` (63 bits: it
    fits a signed int64, e.g. in a tensor or torch's seed APIs)."""
    return int(_sequence(keys).generate_state(1, np.uint64)[0]) >> 1


def keyed_torch_generator(*keys: Key, device: Union[str, torch.device] = 'cpu') -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded from ``keys``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(keyed_seed(*keys))
    return generator


def seed_global_rngs(seed: int) -> None:
    """Seed ``random``, ``numpy.random`` and torch (CPU and CUDA) from one int seed."""
    seed = int(seed) & _U64
    random.seed(seed)
    np.random.seed([seed & 0xFFFFFFFF, seed >> 32])  # the legacy API takes 32-bit words
    torch.manual_seed(seed)  # also seeds every CUDA device


@contextmanager
def keyed_global_rngs(*keys: Key) -> Iterator[int]:
    """Run a block with the global generators seeded from ``keys``, then put
    back the previous CPU states of ``random``, ``numpy.random`` and torch, so
    the block does not shift the caller's streams. Yields the seed used."""
    saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
    seed = keyed_seed(*keys)
    try:
        seed_global_rngs(seed)
        yield seed
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])


__all__ = ['keyed_generator', 'keyed_global_rngs', 'keyed_seed', 'keyed_torch_generator',
           'seed_global_rngs']
