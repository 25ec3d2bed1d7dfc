"""Test helper imported by a training config: SIGKILL the trainer after an iteration.

``MMFLUX_TEST_SIGKILL_AT=N`` kills the process (and so its dataloader workers) right
after training iteration ``N`` (1-based), with no chance to clean up, like an
out-of-memory kill or a lost machine.
"""
import os
import signal

from mmengine.hooks import Hook

from mmaction.registry import HOOKS


@HOOKS.register_module()
class SigkillAtIterHook(Hook):

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        at = os.environ.get('MMFLUX_TEST_SIGKILL_AT')
        if at and runner.iter + 1 == int(at):
            os.kill(os.getpid(), signal.SIGKILL)
