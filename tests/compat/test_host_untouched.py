"""``import mmflux`` leaves mmengine, MMAction2 and torch as it found them, except the
two documented process-wide workarounds (mmflux/compat/__init__.py)."""
import json
import os
import subprocess
import sys

import pytest

# Every function and class attribute of these modules is fingerprinted before and
# after ``import mmflux`` in a fresh interpreter. "Before" is taken after importing
# every upstream module that ``import mmflux`` imports (argv), so upstream's own
# import side effects (torch._dynamo wraps torch.manual_seed ...) are not counted.
_SNAPSHOT = r'''
import importlib, json, sys
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception:  # e.g. mmaction.models without the DRN placeholder
        pass
MODULES = ['torch', 'torch.serialization', 'torch.cuda', 'torch.hub', 'torch.distributed',
           'torch.distributed.optim', 'mmengine.runner', 'mmengine.runner.checkpoint',
           'mmengine.runner.loops', 'mmengine.logging', 'mmengine.logging.history_buffer',
           'mmengine.logging.logger', 'mmengine.dist', 'mmengine.dist.utils', 'mmengine.hooks',
           'mmengine.optim', 'mmengine.optim.optimizer.zero_optimizer', 'mmengine.config',
           'mmengine.model', 'mmaction.apis', 'mmaction.registry']


def snapshot():
    state = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, value in list(vars(module).items()):
            state[f'{name}.{attr}'] = id(value)
            if isinstance(value, type) and value.__module__.split('.')[0] in ('torch', 'mmengine', 'mmaction'):
                for key, member in list(vars(value).items()):
                    state[f'{name}.{attr}.{key}'] = id(member)
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefix, loader in CheckpointLoader._schemes.items():
        state[f'CheckpointLoader scheme {prefix!r}'] = f'{loader.__module__}.{loader.__qualname__}'
    import torch.serialization
    state['torch safe globals'] = repr(sorted(map(repr, torch.serialization.get_safe_globals())))
    return state


before = snapshot()
import mmflux  # noqa
after = snapshot()
changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
drn = sys.modules.get('mmaction.models.localizers.drn.drn')
print(json.dumps(dict(changed=changed, after={k: after.get(k) for k in changed},
                      drn=getattr(getattr(drn, 'DRN', None), '__module__', None))))
'''


@pytest.mark.slow
def test_import_mmflux_changes_only_the_documented_host_state():
    env = dict(os.environ, OMP_NUM_THREADS='1')
    listed = subprocess.run(
        [sys.executable, '-c', 'import json, sys, mmflux; print(json.dumps(sorted(m for m in '
         'sys.modules if m.split(".")[0] not in ("mmflux", "__main__"))))'],
        env=env, capture_output=True, text=True, timeout=600)
    assert listed.returncode == 0, listed.stderr[-4000:]
    upstream = listed.stdout.strip().splitlines()[-1]
    result = subprocess.run([sys.executable, '-c', _SNAPSHOT, upstream], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # the one changed fact: mmengine's loader for local paths
    assert report['changed'] == ["CheckpointLoader scheme ''",
                                 'mmengine.runner.CheckpointLoader._schemes',  # the same dict
                                 'mmengine.runner.checkpoint.CheckpointLoader._schemes'], \
        report['changed']
    assert report['after']["CheckpointLoader scheme ''"] == \
        'mmflux.compat.checkpoint_loading.safe_load_checkpoint'
    # the wheel lacks DRN (mmaction2 issue 2714): the placeholder, not a real module
    assert report['drn'] == 'mmflux.compat.mmaction_drn'


def test_mmengine_and_torch_objects_are_their_own():
    """In this (mmflux-importing) process, the methods mmflux used to patch are upstream's."""
    import torch
    from mmengine.dist import utils as dist_utils
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.optim.optimizer.zero_optimizer import ZeroRedundancyOptimizer
    from mmengine.runner import Runner
    from mmengine.runner.checkpoint import CheckpointLoader
    assert HistoryBuffer.__getstate__.__module__ == 'mmengine.logging.history_buffer'
    assert HistoryBuffer.__setstate__.__module__ == 'mmengine.logging.history_buffer'
    assert Runner.save_checkpoint.__module__ == 'mmengine.runner.runner'
    assert Runner.setup_env.__module__ == 'mmengine.runner.runner'
    assert ZeroRedundancyOptimizer.state_dict.__module__ == \
        'mmengine.optim.optimizer.zero_optimizer'
    assert dist_utils._init_dist_pytorch.__module__ == 'mmengine.dist.utils'
    assert torch.cuda.set_device.__module__ == 'torch.cuda'
    for prefix in ('http://', 'https://', 'open-mmlab://', 'torchvision://'):
        assert CheckpointLoader._schemes[prefix].__module__ == 'mmengine.runner.checkpoint'
    from mmflux.compat.checkpoint_loading import mmengine_checkpoint_globals
    registered = set(map(repr, torch.serialization.get_safe_globals()))
    scoped = set(map(repr, mmengine_checkpoint_globals()))  # allowed only during a load
    assert HistoryBuffer not in torch.serialization.get_safe_globals()
    assert not scoped & registered - {repr(c) for c in (dict, list)}
