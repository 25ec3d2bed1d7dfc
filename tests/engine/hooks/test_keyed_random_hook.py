"""KeyedRandomHook: training randomness keyed by (seed, iteration).

End to end (workers, SIGKILL and resume): tests/end_to_end/test_determinism.py.
"""
import torch

from mmflux.engine import KeyedRandomHook
from mmflux.models.layers.block import KeyedDropPath


def test_hook_keys_drop_path_by_iteration_and_module():
    """KeyedDropPath: same mask for the same (step seed, tokens), another step another."""
    path = KeyedDropPath(0.5).train()
    x = torch.ones(64, 10, 4)

    class Runner:
        seed, iter = 3, 0

        class message_hub:
            update_info = staticmethod(lambda *a: None)

        model = torch.nn.Sequential(path)

    hook, runner = KeyedRandomHook(), Runner()
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    first = path(x)
    torch.manual_seed(123)  # the global stream does not matter
    assert torch.equal(path(x), first)
    assert not torch.equal(path(x[:, :5]), first[:, :5])  # another budget, another mask
    runner.iter = 1
    hook.before_train_iter(runner, 0)
    assert not torch.equal(path(x), first)
    assert set(first.unique().tolist()) == {0.0, 2.0}  # drop or scale by 1 / keep
