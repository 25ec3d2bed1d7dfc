"""Old checkpoints are deleted only after the new one is complete, and last_checkpoint
only ever names a complete file."""
import os
import types

import torch
from mmengine.fileio import get_file_backend
from mmengine.logging import MessageHub, MMLogger

from mmflux.engine.hooks import AtomicCheckpointHook


def fake_runner(work_dir, seen):
    """What the hook uses of a runner; each save records the files present meanwhile."""

    def save_checkpoint(out_dir, filename, *args, **kwargs):
        record = os.path.join(work_dir, 'last_checkpoint')
        seen.append((filename, sorted(n for n in os.listdir(work_dir) if n.endswith('.pth')),
                     open(record).read() if os.path.exists(record) else None))
        torch.save({}, os.path.join(out_dir, filename))

    name = f'atomic_{id(seen)}'
    return types.SimpleNamespace(message_hub=MessageHub.get_instance(name), epoch=0, iter=0,
                                 save_checkpoint=save_checkpoint, work_dir=work_dir,
                                 logger=MMLogger.get_instance(name))


def hook_for(work_dir, **kwargs):
    hook = AtomicCheckpointHook(interval=1, **kwargs)
    hook.out_dir, hook.file_backend = work_dir, get_file_backend(work_dir)
    hook.last_ckpt, hook.best_ckpt_path = None, None
    from collections import deque
    hook.keep_ckpt_ids = deque(maxlen=kwargs.get('max_keep_ckpts', -1) if
                               kwargs.get('max_keep_ckpts', -1) > 0 else None)
    return hook


def test_rotation_after_the_save_and_last_checkpoint(tmp_path):
    work, seen = str(tmp_path), []
    runner, hook = fake_runner(work, seen), hook_for(str(tmp_path), max_keep_ckpts=1)
    for step in (1, 2, 3):
        hook._save_checkpoint_with_step(runner, step, dict(epoch=step))
    # each save happened while the previous checkpoint was still there, and named
    assert seen == [('epoch_1.pth', [], None),
                    ('epoch_2.pth', ['epoch_1.pth'], os.path.join(work, 'epoch_1.pth')),
                    ('epoch_3.pth', ['epoch_2.pth'], os.path.join(work, 'epoch_2.pth'))]
    assert sorted(os.listdir(work)) == ['epoch_3.pth', 'last_checkpoint']
    assert open(os.path.join(work, 'last_checkpoint')).read() == os.path.join(work, 'epoch_3.pth')


def test_previous_best_deleted_after_the_new_best(tmp_path):
    work, seen = str(tmp_path), []
    runner, hook = fake_runner(work, seen), hook_for(work, save_best='acc', rule='greater')
    runner.epoch = 1
    hook._save_best_checkpoint(runner, {'acc': 0.5})
    runner.epoch = 2
    hook._save_best_checkpoint(runner, {'acc': 0.4})  # not better: nothing happens
    runner.epoch = 3
    hook._save_best_checkpoint(runner, {'acc': 0.7})
    assert [(name, files) for name, files, _ in seen] == [
        ('best_acc_epoch_1.pth', []), ('best_acc_epoch_3.pth', ['best_acc_epoch_1.pth'])]
    assert sorted(os.listdir(work)) == ['best_acc_epoch_3.pth']
