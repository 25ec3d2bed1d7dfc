"""Random keep: the baseline a learned-free selector must beat."""
import torch

from mmaction.registry import MODELS
from .base import BaseTokenSelector


@MODELS.register_module()
class RandomSelector(BaseTokenSelector):
    """Keep a uniformly random subset of each temporal group, per sample.

    Keeps the same number of tokens per group as :class:`GroupDynamicSelector`
    would, so both are compared at the same count.
    """

    def forward(self, tokens: torch.Tensor, budget: int) -> torch.Tensor:
        B, T, L, _ = tokens.shape
        counts = self.group_counts(T, L, budget)
        group_size = T // len(counts) * L
        rand = torch.rand(B, len(counts), group_size, device=tokens.device)
        order = rand.argsort(dim=-1)
        kept = torch.cat([order[:, g, :k] + g * group_size for g, k in enumerate(counts)], dim=1)
        return kept.sort(dim=1).values
