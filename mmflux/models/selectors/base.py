"""What every token selector shares: the budget check and how many tokens to keep."""
from typing import List, Optional

import torch
from mmengine.model import BaseModule


class BaseTokenSelector(BaseModule):
    """A selector maps patch embeddings (B, T, L, C) and a budget to kept indices.

    Returned indices index the flattened (t, h, w) raster of the T * L patch tokens
    (cls excluded), shape (B, K), ascending, so kept tokens stay in their original
    order. Selectors are pure functions of their inputs (the random selector of
    its seed and inputs).

    Counting: the frames are split into ``G`` contiguous temporal groups (the
    largest of 4, 2, 1 that divides T into groups of at least two frames) and each
    group keeps the same number of tokens. By default that number is the released
    code's ``int((1 - r) * T_g * L)`` with ``r = 1 - budget / N`` in Python floats,
    which can keep up to G tokens fewer than the budget (e.g. 12 x 224 at 1024
    keeps 1020); ``exact_count=True`` keeps exactly ``budget`` tokens, giving the
    first ``budget % G`` groups one token more.
    """

    #: True for selectors whose kept set is a random draw: an exported graph cannot
    #: reproduce it, so export refuses them below the grid's token count
    draws_at_random: bool = False

    def __init__(self, max_groups: int = 4, exact_count: bool = False, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if max_groups not in (1, 2, 4):
            raise ValueError(f'max_groups must be 1, 2 or 4, got {max_groups}.')
        self.max_groups = max_groups
        self.exact_count = exact_count

    def num_groups(self, frames: int) -> int:
        for groups in (4, 2, 1):
            if groups <= self.max_groups and frames % groups == 0 and frames // groups >= 2:
                return groups
        return 1

    def group_counts(self, frames: int, tokens_per_frame: int, budget: int) -> List[int]:
        """Tokens kept in each temporal group."""
        check_budget(budget)
        total = frames * tokens_per_frame
        groups = self.num_groups(frames)
        per_group = frames // groups * tokens_per_frame
        if budget >= total:
            return [per_group] * groups
        if self.exact_count:
            base, extra = divmod(budget, groups)
            return [base + (g < extra) for g in range(groups)]
        ratio = 1 - budget / total
        return [int((1 - ratio) * (frames // groups) * tokens_per_frame)] * groups

    def kept_count(self, frames: int, tokens_per_frame: int, budget: int) -> int:
        return sum(self.group_counts(frames, tokens_per_frame, budget))

    def scores(self, tokens: torch.Tensor) -> Optional[torch.Tensor]:
        """Budget-independent scores of patch embeddings (B, T, L, C), or None.

        A selector that ranks tokens by a score returns it here, so a caller that
        runs several budgets on the same clips (a test-time cascade) computes it
        once and passes it to :meth:`forward` as ``token_scores``.
        """
        return None

    def forward(self, tokens: torch.Tensor, budget: int,
                token_scores: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Kept indices (B, K) of patch embeddings (B, T, L, C) at ``budget``;
        ``token_scores`` are this selector's :meth:`scores` of ``tokens`` if already known."""
        raise NotImplementedError


def check_budget(budget) -> None:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(
            f'token budget must be a positive int (number of patch tokens), got {budget!r}; '
            'use None for no selection.')
