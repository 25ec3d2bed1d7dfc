"""RMSNorm as the released FluxViT weights expect it."""
import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Root-mean-square norm: statistics in fp32, then cast back, then the weight.

    The released model normalises in fp32 and multiplies by the weight after the
    cast; under bf16 autocast this order matters, so the slow path keeps it. In
    plain fp32 the fused ``F.rms_norm`` kernel computes the same thing.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32 and self.weight.dtype == torch.float32:
            return F.rms_norm(x, (x.shape[-1], ), self.weight, self.eps)
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return x32.to(dtype) * self.weight

    def extra_repr(self) -> str:
        return f'{self.weight.shape[0]}, eps={self.eps}'
