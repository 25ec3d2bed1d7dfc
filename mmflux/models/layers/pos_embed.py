"""Global positional embedding: 3-D sin-cos init and resizing to any T x H x W grid."""
import math

import torch
import torch.nn.functional as F


def sincos_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """[sin(p * w_k), cos(p * w_k)] with w_k = 10000^(-k / (dim / 2))."""
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    angles = positions.double().reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_3d(dim: int, frames: int, height: int, width: int) -> torch.Tensor:
    """(frames * height * width, dim) table, token order (t, h, w).

    Channels: [temporal dim/4 | w-index 3dim/8 | h-index 3dim/8], the layout the
    released table was initialised with.
    """
    if dim % 16 != 0:
        raise ValueError(f'sin-cos positional embedding needs embed_dims % 16 == 0, got {dim}.')
    dim_t, dim_s = dim // 4, dim * 3 // 8
    t = sincos_1d(torch.arange(frames), dim_t)
    w = sincos_1d(torch.arange(width), dim_s)
    h = sincos_1d(torch.arange(height), dim_s)
    t = t[:, None, None, :].expand(frames, height, width, dim_t)
    w = w[None, None, :, :].expand(frames, height, width, dim_s)
    h = h[None, :, None, :].expand(frames, height, width, dim_s)
    return torch.cat([t, w, h], dim=-1).reshape(-1, dim)


def resize_pos_table(table: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
    """Resize a (T0, H0, W0, C) table to (frames * height * width, C).

    Temporal axis: linear interpolation; spatial axes: bicubic (both with
    ``align_corners=False``), on the table's own device and dtype. Axes whose size
    already matches are left untouched.
    """
    t0, h0, w0, dim = table.shape
    x = table
    if frames != t0:
        # (T0, H0, W0, C) -> (1, H0*W0*C, T0): interpolate every channel of every location
        x = x.permute(1, 2, 3, 0).reshape(1, h0 * w0 * dim, t0)
        x = F.interpolate(x, size=frames, mode='linear', align_corners=False)
        x = x.reshape(h0, w0, dim, frames).permute(3, 0, 1, 2)
    if (height, width) != (h0, w0):
        x = x.permute(0, 3, 1, 2)  # (T, C, H0, W0)
        x = F.interpolate(x, size=(height, width), mode='bicubic', align_corners=False)
        x = x.permute(0, 2, 3, 1)
    return x.reshape(frames * height * width, dim)


def storage_grid(num_rows: int, frames: int) -> int:
    """Spatial side of a stored table with ``num_rows`` patch rows over ``frames``."""
    side = math.isqrt(num_rows // frames)
    if side * side * frames != num_rows:
        raise ValueError(f'pos_embed with {num_rows} patch rows is not {frames} x s x s.')
    return side
