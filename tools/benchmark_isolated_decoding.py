#!/usr/bin/env python
"""Cost of crash-isolated decoding on normal videos: decord in-process vs in a child.

    python tools/benchmark_isolated_decoding.py [VIDEO ...] [--clip-len 16] [--repeats 30]

Loads each video through the same MMAction2 pipeline (``DecordInit``,
``SampleFrames``, ``DecordDecode``) run by :class:`~mmflux.datasets.RobustCompose`,
once with ``isolate_decoder=False`` and once with ``True``, alternating the two
side by side so that load on the machine affects both alike; prints the median
time per video of each and their ratio. The child's start (once per loading
process) is excluded and printed separately. Default videos: shared/data/*.mp4.
"""
import argparse
import glob
import os.path as osp
import statistics
import time

from mmengine.registry import init_default_scope

import mmflux  # noqa: F401
from mmflux.datasets.robust_dataset import RobustCompose
from mmaction.registry import TRANSFORMS


def pipeline(clip_len: int, isolate: bool, mode: str) -> RobustCompose:
    transforms = [dict(type='DecordInit'),
                  dict(type='SampleFrames', clip_len=clip_len, frame_interval=4, num_clips=1),
                  dict(type='DecordDecode', mode=mode)]
    return RobustCompose([TRANSFORMS.build(t) for t in transforms], isolate_decoder=isolate)


def load_ms(compose: RobustCompose, path: str) -> float:
    start = time.perf_counter()
    out = compose(dict(filename=path, start_index=0, modality='RGB'))
    assert len(out['imgs']) > 0
    return (time.perf_counter() - start) * 1000


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('videos', nargs='*')
    parser.add_argument('--clip-len', type=int, default=16)
    parser.add_argument('--repeats', type=int, default=30)
    parser.add_argument('--mode', default='accurate', choices=['accurate', 'efficient'])
    args = parser.parse_args(argv)
    init_default_scope('mmaction')
    videos = args.videos or sorted(glob.glob(osp.join(
        osp.dirname(osp.dirname(osp.abspath(__file__))), '..', 'shared', 'data', '*.mp4')))
    plain = pipeline(args.clip_len, False, args.mode)
    isolated = pipeline(args.clip_len, True, args.mode)
    start = time.perf_counter()
    isolated.fallback.isolated._ensure()
    load_ms(isolated, videos[0])  # the child imports decord on its first request
    print(f'child start + first video: {(time.perf_counter() - start) * 1000:.0f} ms (once per '
          'dataloader worker)')
    for path in videos:
        times = {False: [], True: []}
        for _ in range(args.repeats):
            for isolate, compose in ((False, plain), (True, isolated)):
                times[isolate].append(load_ms(compose, path))
        a, b = statistics.median(times[False]), statistics.median(times[True])
        print(f'{osp.basename(path)}: in-process {a:.2f} ms, isolated {b:.2f} ms, '
              f'ratio {b / a:.3f} (+{b - a:.2f} ms per video; {args.clip_len} frames, '
              f'{args.mode}, median of {args.repeats})')


if __name__ == '__main__':
    main()
