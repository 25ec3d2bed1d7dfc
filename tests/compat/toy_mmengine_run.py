"""A tiny mmengine training run, importable with or without mmflux.

Run as a script it trains WITHOUT importing mmflux (plain mmengine, as an MMAction2
user has it) and writes into WORK_DIR:

* ``epoch_1.pth``, ``epoch_2.pth``: mmengine training checkpoints (model,
  optimizer, schedulers, message hub, meta);
* ``zoo_*.pth``: ``epoch_2.pth`` passed through MMAction2's own
  ``tools/deployment/publish_model.py`` (the model-zoo format: ``meta`` and
  ``state_dict``).

    python toy_mmengine_run.py WORK_DIR [--resume-from CKPT]

The run is deterministic (fixed data order, seeded init), so a run resumed from
``epoch_1.pth`` must end with exactly the weights of ``epoch_2.pth``.
"""
import argparse
import glob
import importlib.util
import os
import os.path as osp
import sys
import time

import torch
from mmengine.model import BaseModel
from torch.utils.data import Dataset

EPOCHS = 2
SAMPLES, BATCH = 8, 2


class ToyRegressor(BaseModel):
    """Linear regression, with a data preprocessor left at mmengine's default."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, inputs, targets=None, mode='tensor'):
        out = self.linear(torch.stack(inputs) if isinstance(inputs, list) else inputs)
        if mode == 'loss':
            return dict(loss=((out - targets) ** 2).mean())
        return out


class ToyData(Dataset):

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(1)
        self.x = torch.randn(SAMPLES, 4, generator=generator)
        self.y = torch.randn(SAMPLES, 2, generator=generator)

    def __len__(self) -> int:
        return SAMPLES

    def __getitem__(self, i):
        return dict(inputs=self.x[i], targets=self.y[i])


def runner_kwargs(work_dir: str, max_epochs: int = EPOCHS, scope: str = 'mmengine') -> dict:
    """Everything a Runner (mmengine's or FluxRunner) needs for the toy run.

    ``scope``: 'mmengine' without mmflux (mmaction's scope imports mmaction.models,
    which the 1.2.0 wheel cannot without mmflux's placeholder); 'mmaction' in a test
    process, whose later tests build from mmaction's registries.
    """
    torch.manual_seed(0)  # the model's initial weights
    return dict(
        model=ToyRegressor(), work_dir=work_dir, default_scope=scope,
        experiment_name=f'toy_{osp.basename(work_dir)}_{time.time_ns()}',
        train_dataloader=dict(dataset=ToyData(), batch_size=BATCH, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', by_epoch=True, milestones=[1], gamma=0.1),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(window_size=1), randomness=dict(seed=0))


def publish(checkpoint: str, out: str) -> str:
    """MMAction2's own tools/deployment/publish_model.py on ``checkpoint``."""
    import mmaction
    script = osp.join(osp.dirname(mmaction.__file__), '.mim', 'tools', 'deployment',
                      'publish_model.py')
    spec = importlib.util.spec_from_file_location('publish_model', script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.process_checkpoint(checkpoint, out)  # renames to <out>_<date>-<sha>.pth
    return glob.glob(out[:-len('.pth')] + '_*.pth')[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('work_dir')
    parser.add_argument('--resume-from', help='resume this checkpoint and train to epoch 2')
    args = parser.parse_args()
    from mmengine.runner import Runner
    kwargs = runner_kwargs(args.work_dir)
    if args.resume_from:
        Runner(**kwargs, resume=True, load_from=args.resume_from).train()
        assert 'mmflux' not in sys.modules, 'the plain run imported mmflux'
        return
    Runner(**kwargs).train()
    # publish_model.py calls torch.load without weights_only: under torch >= 2.6 an
    # MMAction2 user needs torch's opt-out to run it on a training checkpoint
    os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'
    publish(osp.join(args.work_dir, f'epoch_{EPOCHS}.pth'), osp.join(args.work_dir, 'zoo.pth'))
    assert 'mmflux' not in sys.modules, 'the plain run imported mmflux'


if __name__ == '__main__':
    main()
