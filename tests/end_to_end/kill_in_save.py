"""Test helper imported by a training config: SIGKILL the trainer *inside* a checkpoint save.

``MMFLUX_TEST_KILL_IN_SAVE=<moment>@<n>`` arms a kill during the ``n``-th
checkpoint save of the run (1-based, counted by ``before_save_checkpoint``;
best checkpoints count too). The moments are file-system operations, not
timers, so the kill lands at the same point every time:

* ``write``: half of the checkpoint's bytes are written (and fsynced), then the
  process is killed (mmengine writes through ``LocalBackend.put``);
* ``replace<K>``: killed just before the ``K``-th ``os.replace`` of the save
  (the checkpoint's rename, then ``last_checkpoint``'s);
* ``remove``: killed just before the first file is deleted after the save
  began (the rotation of old checkpoints);
* ``after``: killed as soon as any of the above would have happened last, i.e.
  after the save and the rotation (at the next iteration).
"""
import os
import signal

from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import Hook

from mmaction.registry import HOOKS

_state = dict(saves=0, armed=False, replaces=0)


def _spec():
    value = os.environ.get('MMFLUX_TEST_KILL_IN_SAVE', '')
    if '@' not in value:
        return None, None
    moment, n = value.split('@')
    return moment, int(n)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


_put = LocalBackend.put


def _put_then_maybe_die(self, obj, filepath):
    moment, _ = _spec()
    if _state['armed'] and moment == 'write' and str(filepath).find('.pth') >= 0:
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
            os.fsync(f.fileno())
        _die()
    return _put(self, obj, filepath)


_replace = os.replace


def _replace_then_maybe_die(src, dst, *args, **kwargs):
    moment, _ = _spec()
    if _state['armed'] and moment and moment.startswith('replace'):
        _state['replaces'] += 1
        if _state['replaces'] == int(moment[len('replace'):]):
            _die()
    return _replace(src, dst, *args, **kwargs)


_remove = os.remove


def _remove_then_maybe_die(path, *args, **kwargs):
    moment, _ = _spec()
    if _state['armed'] and moment == 'remove' and str(path).endswith('.pth'):
        _die()
    return _remove(path, *args, **kwargs)


LocalBackend.put = _put_then_maybe_die
os.replace = _replace_then_maybe_die
os.remove = _remove_then_maybe_die


@HOOKS.register_module()
class KillInSaveHook(Hook):
    """Arms the kill for the ``n``-th save (see the module docstring)."""

    priority = 'VERY_HIGH'

    def before_save_checkpoint(self, runner, checkpoint) -> None:
        moment, n = _spec()
        _state['saves'] += 1
        _state['armed'] = moment is not None and _state['saves'] == n
        _state['replaces'] = 0

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        moment, _ = _spec()
        if _state['armed'] and moment == 'after':
            _die()
