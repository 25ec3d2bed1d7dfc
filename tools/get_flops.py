"""Per-view MACs ("GFLOPs" in the paper's fvcore convention) of a FluxViT config.

Usage (from the repository root)::

    python tools/get_flops.py CONFIG [--budget N|all] [--grid T H W] [--head H]
                                     [--views V] [--device meta|cpu|cuda]
                                     [--cfg-options key=value ...]

The model is built from the config and one zero view of the grid is run through
it under ``torch.utils.flop_counter.FlopCounterMode`` (on the meta device by
default: no memory and no compute). What is counted: patch embedding of the full
sampled grid, the blocks on the kept tokens, and the ONE projector + classifier
the recognizer uses for that many tokens (or ``--head``). The closed form of the
spec (section 7.3) is printed next to it as a cross-check.

Defaults: ``--budget`` from ``model.test_cfg.token_budget``; ``--grid`` from the
test pipeline as mmflux.evaluation.grid_config reads it (after the
``token_optimization`` switch), else 8 x 224 x 224.

The LAST line of the output is one JSON object with at least ``gmacs``,
``params_m``, ``params_deploy_m``, ``tokens``, ``grid``, ``budget`` and ``head``.
"""
import argparse
import json
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

DEFAULT_GRID = (8, 224, 224)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='MACs of one view of a FluxViT recognizer at a token budget.')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--budget', default=None,
                        help='patch tokens kept per view (int, or "all" for no selection; '
                        'default: model.test_cfg.token_budget)')
    parser.add_argument('--grid', nargs=3, type=int, metavar=('T', 'H', 'W'), default=None,
                        help='sampled grid: frames, height, width (default: from the test '
                        f'pipeline, else {" ".join(map(str, DEFAULT_GRID))})')
    parser.add_argument('--head', type=int, default=None,
                        help='force a head (default: the head the recognizer picks)')
    parser.add_argument('--views', type=int, default=1,
                        help='views per video; also prints the per-video total')
    parser.add_argument('--device', default='meta',
                        help='"meta" (default, shape-only) or a real device (cpu, cuda) '
                        'to run a zero input')
    parser.add_argument('--cfg-options', nargs='+', default=None, metavar='KEY=VALUE',
                        help='override config settings (mmengine DictAction syntax)')
    args = parser.parse_args(argv)
    if args.cfg_options:
        from mmengine.config import DictAction
        action = DictAction(option_strings=['--cfg-options'], dest='cfg_options')
        ns = argparse.Namespace()
        action(parser, ns, args.cfg_options)
        args.cfg_options = ns.cfg_options
    return args


def _parse_budget(value, cfg):
    if value is None:
        test_cfg = cfg.model.get('test_cfg') or {}
        return test_cfg.get('token_budget'), 'model.test_cfg.token_budget'
    from mmflux.evaluation.to_switch import parse_budget
    try:
        return parse_budget(value, '--budget'), '--budget'
    except ValueError as err:
        raise SystemExit(str(err)) from None


def grid_from_config(cfg):
    """(T, H, W, source) of the config's test (else val) view, or None.

    Read by :mod:`mmflux.evaluation.grid_config`, the one owner of the test grid, so
    the Token Optimization switch (``--cfg-options token_optimization.grid=(12,252)``
    or ``token_optimization.plan=...``) counts the grid that tools/test.py tests.
    """
    from mmflux.evaluation.grid_config import view_grids
    from mmflux.evaluation.to_switch import resolved_config, to_settings
    switched = to_settings(cfg) is not None
    for grid in view_grids(resolved_config(cfg), ('test', 'val')):
        if isinstance(grid['frames'], int) and grid['crop'] is not None:
            src = f"{grid['where']}: clip_len, {grid['crop_type']}.crop_size"
            return (grid['frames'], *grid['crop'],
                    src + (' (token_optimization switch)' if switched else ''))
    return None


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmflux  # noqa: F401  (registers FluxViT & co.)
    from mmaction.registry import MODELS

    from mmflux.utils.flops import analytic_for_model, count_macs
    from mmflux.utils.tables import text_table

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    from mmflux.evaluation.to_switch import apply_token_optimization
    apply_token_optimization(cfg)  # token_optimization.budget / .grid / .plan, as tools/test.py
    budget, budget_src = _parse_budget(args.budget, cfg)
    if args.grid is not None:
        frames, height, width = args.grid
        grid_src = '--grid'
    else:
        found = grid_from_config(cfg)
        if found is not None:
            frames, height, width, grid_src = found
        else:
            frames, height, width = DEFAULT_GRID
            grid_src = 'default (no clip_len found in the test pipeline)'

    model_cfg = cfg.model.copy()
    model_cfg.get('backbone', {}).pop('init_cfg', None)  # no pretrained download for counting
    with torch.device('meta') if args.device == 'meta' else torch.device('cpu'):
        model = MODELS.build(model_cfg)
    if args.device not in ('meta', 'cpu'):
        model = model.to(args.device)
    model.eval()

    result = count_macs(model, frames, height, width, budget=budget, head=args.head,
                        device='meta' if args.device == 'meta' else None)
    analytic = analytic_for_model(model, result['tokens'], result['grid_tokens'])

    backbone = getattr(model, 'backbone', model)
    name = type(backbone).__name__
    prefix = backbone.num_prefix_tokens
    print(f'{name} MACs of one view  ({args.config})')
    print(f'  grid          {frames} x {height} x {width}  [{grid_src}]')
    print(f'  budget        {budget}  [{budget_src}]')
    kept = result['tokens']
    print(f'  patch tokens  {kept} kept of {result["grid_tokens"]} sampled'
          + (f' (+{prefix} prefix)' if prefix else ''))
    print(f'  head          {result["head"]}'
          + ('  [--head]' if args.head is not None else '  [chosen by the recognizer]'))
    rows = []
    for part, value in result['breakdown'].items():
        if value == 0 and part in ('selector', 'fc_norm', 'other'):
            note = 'elementwise only (not counted)' if part != 'other' else ''
        else:
            note = ''
        share = 100 * value / max(result['gmacs'], 1e-12)
        rows.append([part, f'{value:.4f}', f'{share:.1f}%', note])
    rows.append(['total', f'{result["gmacs"]:.4f}', '100.0%', ''])
    print(text_table(['part', 'GMACs', 'share', 'note'], rows))
    out = dict(gmacs=result['gmacs'], params_m=result['params_m'],
               params_deploy_m=result['params_deploy_m'], tokens=kept,
               grid_tokens=result['grid_tokens'], grid=[frames, height, width],
               budget=budget, head=result['head'], breakdown=result['breakdown'],
               device=args.device)
    if analytic is not None:
        diff = 100 * (result['gmacs'] - analytic['gmacs']) / analytic['gmacs']
        print(f'  analytic (spec 7.3): {analytic["gmacs"]:.3f} GMACs  (counter - analytic: '
              f'{diff:+.3f}%)')
        out['analytic_gmacs'] = analytic['gmacs']
    if args.views != 1:
        print(f'  x {args.views} views: {result["gmacs"] * args.views:.1f} GMACs per video')
        out['views'] = args.views
        out['gmacs_per_video'] = result['gmacs'] * args.views
    print(f'  params: {result["params_m"]:.2f} M whole recognizer state dict; '
          f'{result["params_deploy_m"]:.2f} M deployable '
          '(backbone + 1 projector/fc_norm/classifier)')
    sys.stdout.flush()
    print(json.dumps(out))
    return out


if __name__ == '__main__':
    main()
