"""The group-dynamic selector: keep the patches that change most between frames."""
import torch

from mmaction.registry import MODELS
from .base import BaseTokenSelector


@MODELS.register_module()
class GroupDynamicSelector(BaseTokenSelector):
    """Top-k per temporal group of the inter-frame L2 change of patch embeddings.

    Within a group of T_g frames, the score of patch l in frame t >= 1 is
    ``||E[t, l] - E[t - 1, l]||_2`` and the first frame copies the score of the
    second. Each group keeps its top-scoring tokens, so the kept set covers the
    clip evenly in time while favouring moving content. The first two frames of a
    group tie by construction; ties are broken by torch's default (unstable)
    descending argsort, as in the released code, which reproduces its selection
    bit for bit on CPU.

    ``stable=True`` breaks ties by the lower index instead (a stable sort), the
    rule of ONNX / OpenVINO ``TopK``: the released order is that of libstdc++'s
    introsort inside torch's CPU sort, which no exported graph can reproduce, so
    an exported model matches the eager one exactly with ``stable=True`` (and
    with the default whenever no tie straddles the cut).

    A group of a single frame (T = 1, or an odd T with no even split) has no
    inter-frame change: its patches are scored by their distance to the frame's
    mean embedding instead (spatial saliency).
    """

    def __init__(self, max_groups: int = 4, exact_count: bool = False, stable: bool = False,
                 init_cfg=None) -> None:
        super().__init__(max_groups=max_groups, exact_count=exact_count, init_cfg=init_cfg)
        self.stable = stable

    def forward(self, tokens: torch.Tensor, budget: int) -> torch.Tensor:
        B, T, L, C = tokens.shape
        counts = self.group_counts(T, L, budget)
        groups = len(counts)
        frames_per_group = T // groups
        emb = tokens.detach().reshape(B, groups, frames_per_group, L, C)
        if frames_per_group >= 2:
            change = torch.linalg.vector_norm(emb[:, :, 1:] - emb[:, :, :-1], dim=-1)
            scores = torch.cat([change[:, :, :1], change], dim=2)
        else:
            scores = torch.linalg.vector_norm(emb - emb.mean(dim=3, keepdim=True), dim=-1)
        scores = scores.reshape(B, groups, frames_per_group * L)
        if self.stable and not torch.compiler.is_exporting():
            order = torch.argsort(scores.float(), dim=-1, descending=True, stable=True)
        else:  # exported: ONNX TopK, which breaks ties by the lower index (= stable)
            order = torch.argsort(scores.float(), dim=-1, descending=True)
        group_size = frames_per_group * L
        if len(set(counts)) == 1:
            offsets = torch.arange(groups, device=tokens.device).view(1, groups, 1) * group_size
            kept = (order[:, :, :counts[0]] + offsets).reshape(B, -1)
        else:
            kept = torch.cat([order[:, g, :k] + g * group_size for g, k in enumerate(counts)], dim=1)
        return kept.sort(dim=1).values
