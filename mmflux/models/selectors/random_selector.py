"""Random keep: the baseline a learned-free selector must beat."""
import hashlib
from typing import Optional

import torch

from mmaction.registry import MODELS
from .base import BaseTokenSelector


def input_seed(seed: int, tokens: torch.Tensor) -> int:
    """A 63-bit seed from ``seed`` and one sample's patch embeddings (T, L, C).

    Hashes the shape and the first channel of every token: the same clip gives
    the same draw whatever ran before, a different clip a different one.
    """
    probe = tokens.detach()[..., :1].float().cpu().contiguous()
    digest = hashlib.blake2b(digest_size=8)
    digest.update(repr((int(seed), tuple(tokens.shape))).encode())
    digest.update(probe.numpy().tobytes())
    return int.from_bytes(digest.digest(), 'little') >> 1


@MODELS.register_module()
class RandomSelector(BaseTokenSelector):
    """Keep a uniformly random subset of each temporal group, per sample.

    Keeps the same number of tokens per group as :class:`GroupDynamicSelector`
    would, so both are compared at the same count. The draw never touches the
    global RNG: each sample's subset is a function of ``seed`` and that
    sample's embeddings (so it is reproducible, independent of call order and
    of the batch it is in, and still new for every new clip).

    Args:
        seed: base seed mixed into every per-sample draw.
    """

    draws_at_random = True

    def __init__(self, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f'RandomSelector seed must be an int, got {seed!r}; fix: set '
                             'model.backbone.selector.seed to an integer.')
        self.seed = seed

    def forward(self, tokens: torch.Tensor, budget: int,
                token_scores: Optional[torch.Tensor] = None) -> torch.Tensor:
        B, T, L, _ = tokens.shape
        counts = self.group_counts(T, L, budget)
        group_size = T // len(counts) * L
        shape = (len(counts), group_size)
        rand = torch.stack([
            torch.rand(shape, generator=torch.Generator().manual_seed(
                input_seed(self.seed, sample))) for sample in tokens
        ])
        order = rand.to(tokens.device).argsort(dim=-1)
        kept = torch.cat([order[:, g, :k] + g * group_size for g, k in enumerate(counts)], dim=1)
        return kept.sort(dim=1).values
