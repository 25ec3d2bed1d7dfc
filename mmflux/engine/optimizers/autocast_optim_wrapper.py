"""bf16 autocast training on any device (mmengine's AmpOptimWrapper requires a GPU)."""
import contextlib

import torch
from mmengine.optim import OptimWrapper

from mmaction.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """Runs forward and loss under ``torch.autocast`` on the model's device.

    bf16 keeps fp32's exponent range, so no loss scaling is needed; that is
    also how the released FluxViT models were trained (DeepSpeed bf16).
    """

    def __init__(self, *args, dtype: str = 'bfloat16', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(f'AutocastOptimWrapper dtype must be bfloat16 or float16, got {dtype!r}.')
        self.cast_dtype = getattr(torch, dtype)

    @contextlib.contextmanager
    def optim_context(self, model: torch.nn.Module):
        param = next(model.parameters(), None)
        device_type = param.device.type if param is not None else 'cpu'
        with super().optim_context(model), torch.autocast(device_type=device_type,
                                                          dtype=self.cast_dtype):
            yield
