"""Test helper imported by a training config: which dtype the linear layers computed in.

Before training it hooks every ``nn.Linear`` of the model; after training it writes
``autocast_probe.json`` in the work dir: the output dtypes seen in training steps
and whether CPU autocast was on at the time.
"""
import json
import os.path as osp

import torch
from mmengine.hooks import Hook
from torch import nn

from mmaction.registry import HOOKS


@HOOKS.register_module()
class AutocastProbeHook(Hook):

    def before_train(self, runner) -> None:
        self.seen = set()
        model = getattr(runner.model, 'module', runner.model)

        def record(module, inputs, output):
            if module.training:
                self.seen.add((str(output.dtype), torch.is_autocast_enabled('cpu')))

        self.handles = [m.register_forward_hook(record) for m in model.modules()
                        if isinstance(m, nn.Linear)]

    def after_train(self, runner) -> None:
        for handle in self.handles:
            handle.remove()
        with open(osp.join(runner.work_dir, 'autocast_probe.json'), 'w') as f:
            json.dump(sorted(self.seen), f)
