"""The 1x1x1 depthwise Conv3d of the released code, computed as what it is."""
import torch
from torch import nn


class DepthwiseAffine(nn.Module):
    """Per-channel affine map ``w_c * x + b_c`` stored as a depthwise Conv3d.

    FluxViT's global (GPE) and local (LPE) positional terms are depthwise Conv3d
    layers with a (1, 1, 1) kernel, so they mix nothing across space or time. The
    parameter is kept under ``depthwise_conv`` with its Conv3d shape (C, 1, 1, 1, 1)
    so that official checkpoints load unchanged; the forward is a broadcast
    multiply-add over the last (channel) dimension. Initialised to identity, as
    released.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.depthwise_conv = nn.Conv3d(dim, dim, kernel_size=1, groups=dim, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.depthwise_conv.weight)
        nn.init.zeros_(self.depthwise_conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., C), channels last."""
        weight = self.depthwise_conv.weight.view(-1)
        return torch.addcmul(self.depthwise_conv.bias.to(x.dtype), x, weight.to(x.dtype))
