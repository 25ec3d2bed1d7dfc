"""The group-dynamic selector: keep the patches that change most between frames."""
from typing import Optional, Union

import torch

from mmaction.registry import MODELS
from .base import BaseTokenSelector


@MODELS.register_module()
class GroupDynamicSelector(BaseTokenSelector):
    """Top-k per temporal group of the inter-frame L2 change of patch embeddings.

    Within a group of T_g frames, the score of patch l in frame t >= 1 is
    ``||E[t, l] - E[t - 1, l]||_2`` and the first frame copies the score of the
    second. Each group keeps its top-scoring tokens, so the kept set covers the
    clip evenly in time while favouring moving content.

    Ties: the first two frames of a group tie by construction. By default
    (``stable=True``) ties are broken by the lower index (a stable descending
    sort), the rule of ONNX / OpenVINO ``TopK``, so an exported graph, another
    device or another sort routine keeps the same tokens as eager PyTorch.
    ``stable=False`` is the released code's order: torch's unstable CPU argsort
    (libstdc++'s introsort), which reproduces the authors' CPU selection bit for
    bit but no exported graph can.

    A group of a single frame (T = 1, or an odd T with no even split) has no
    inter-frame change: its patches are scored by their distance to the frame's
    mean embedding instead (spatial saliency).
    """

    def __init__(self, max_groups: int = 4, exact_count: bool = False, stable: bool = True,
                 init_cfg=None) -> None:
        super().__init__(max_groups=max_groups, exact_count=exact_count, init_cfg=init_cfg)
        self.stable = stable

    def scores(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, G, T_g * L) change scores of patch embeddings (B, T, L, C), per temporal group."""
        B, T, L, C = tokens.shape
        groups = self.num_groups(T)
        frames_per_group = T // groups
        emb = tokens.detach().reshape(B, groups, frames_per_group, L, C)
        if frames_per_group >= 2:
            change = torch.linalg.vector_norm(emb[:, :, 1:] - emb[:, :, :-1], dim=-1)
            scores = torch.cat([change[:, :, :1], change], dim=2)
        else:
            scores = torch.linalg.vector_norm(emb - emb.mean(dim=3, keepdim=True), dim=-1)
        return scores.reshape(B, groups, frames_per_group * L).float()

    def _order(self, scores: torch.Tensor, k) -> torch.Tensor:
        """Indices of the ``k`` highest scores of each group, highest first."""
        if torch.compiler.is_exporting():  # ONNX / OpenVINO TopK: ties to the lower index
            return torch.topk(scores, k, dim=-1).indices
        return torch.argsort(scores, dim=-1, descending=True, stable=self.stable)[..., :k]

    def forward(self, tokens: torch.Tensor, budget: Union[int, torch.Tensor],
                token_scores: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Kept indices (B, K); ``budget`` an int, or a 0-d integer tensor (see
        :meth:`select_at_runtime_budget`); ``token_scores``: :meth:`scores` of
        ``tokens`` when the caller already has them (a cascade computes them once)."""
        B, T, L, _ = tokens.shape
        if isinstance(budget, torch.Tensor):
            return self.select_at_runtime_budget(tokens, budget)
        counts = self.group_counts(T, L, budget)
        scores = self.scores(tokens) if token_scores is None else token_scores
        groups, group_size = scores.shape[1:]
        if len(set(counts)) == 1:
            offsets = torch.arange(groups, device=tokens.device).view(1, groups, 1) * group_size
            kept = (self._order(scores, counts[0]) + offsets).reshape(B, -1)
        else:
            order = self._order(scores, max(counts))
            kept = torch.cat([order[:, g, :k] + g * group_size for g, k in enumerate(counts)], dim=1)
        return kept.sort(dim=1).values

    def count_table(self, frames: int, tokens_per_frame: int) -> torch.Tensor:
        """(N, G) int64: row ``b - 1`` holds :meth:`group_counts` at budget ``b`` (1..N)."""
        total = frames * tokens_per_frame
        return torch.tensor([self.group_counts(frames, tokens_per_frame, b)
                             for b in range(1, total + 1)], dtype=torch.int64)

    def select_at_runtime_budget(self, tokens: torch.Tensor, budget: torch.Tensor) -> torch.Tensor:
        """Kept indices for a budget that is data (the input of an exported graph).

        The same tokens as ``forward(tokens, int(budget))`` (all of them, in order,
        for a budget at or above the token count): the per-group counts come from
        :meth:`count_table` (the counting rule evaluated once per budget while
        tracing, a constant of the graph), each group takes its top ``max(counts)``
        and the surplus of groups that keep fewer is pushed past the end by a
        sentinel index before the final ascending sort cuts ``sum(counts)``. A
        budget that keeps no token at all is refused (a graph's attention needs one).
        """
        B, T, L, _ = tokens.shape
        total = T * L
        scores = self.scores(tokens)
        groups, group_size = scores.shape[1:]
        table = self.count_table(T, L).to(tokens.device)
        row = budget.reshape(()).to(torch.int64).clamp(1, total) - 1
        counts = table[row]  # (G, )
        k_max = counts.max().clamp(min=1).item()  # TopK needs K >= 1 (OpenVINO)
        kept_count = counts.sum().item()
        torch._check(k_max >= 1)
        torch._check(k_max <= group_size)
        torch._check(kept_count >= 1, lambda: 'a runtime budget must keep at least one token')
        torch._check(kept_count <= groups * k_max)
        order = self._order(scores, k_max)  # (B, G, k_max)
        offsets = torch.arange(groups, device=tokens.device).view(1, groups, 1) * group_size
        slot = torch.arange(k_max, device=tokens.device).view(1, 1, -1)
        kept = torch.where(slot < counts.view(1, groups, 1), order + offsets, total)
        return kept.reshape(B, -1).sort(dim=1).values[:, :kept_count]
