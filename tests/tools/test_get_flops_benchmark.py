"""tools/get_flops.py and tools/benchmark.py: end to end (tiny models, subprocesses) and
their helpers in process."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from conftest import REPO_ROOT, load_tool, tiny_model_cfg
from mmflux.utils.flops import analytic_macs

GET_FLOPS = osp.join(REPO_ROOT, 'tools', 'get_flops.py')
BENCHMARK = osp.join(REPO_ROOT, 'tools', 'benchmark.py')

TINY_CONFIG = f"""
custom_imports = dict(imports=['mmflux'], allow_failed_imports=False)
default_scope = 'mmaction'
model = {tiny_model_cfg(token_budget=64)!r}
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='UniformSample', clip_len=6, num_clips=2, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 56)),
    dict(type='ThreeCrop', crop_size=56),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
"""


def run(*args, timeout=120):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=timeout)


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / 'tiny_flux.py'
    path.write_text(TINY_CONFIG)
    return str(path)


@pytest.mark.slow
def test_get_flops_tiny_config(tiny_config):
    # grid from the test pipeline: 6 frames (clip_len) x 56^2 (ThreeCrop) = 96 tokens -> 64
    result = run(GET_FLOPS, tiny_config)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    out = json.loads(lines[-1])
    assert out['grid'] == [6, 56, 56] and out['budget'] == 64
    assert out['tokens'] == 64 and out['grid_tokens'] == 96 and out['head'] == 1
    ref = analytic_macs(64, 2, 64, 96, num_classes=7, pool_dims=32)
    assert out['gmacs'] == pytest.approx(ref['gmacs'], rel=1e-3)
    assert out['analytic_gmacs'] == pytest.approx(out['gmacs'], rel=1e-3)
    assert out['params_m'] > out['params_deploy_m'] > 0
    assert 'blocks' in result.stdout and 'total' in result.stdout


@pytest.mark.slow
def test_get_flops_overrides(tiny_config):
    result = run(GET_FLOPS, tiny_config, '--budget', 'none', '--grid', '2', '28', '42',
                 '--head', '0', '--views', '6', '--device', 'cpu')
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out['grid'] == [2, 28, 42] and out['budget'] is None and out['head'] == 0
    assert out['tokens'] == out['grid_tokens'] == 12
    ref = analytic_macs(64, 2, 12, 12, num_classes=7, pool_dims=32)['gmacs']
    assert out['gmacs'] == pytest.approx(ref, rel=1e-3)
    assert out['gmacs_per_video'] == pytest.approx(6 * out['gmacs'], rel=1e-3)


def test_grid_detection_from_configs(tmp_path):
    tool = load_tool('get_flops')
    path = tmp_path / 'c.py'
    path.write_text(TINY_CONFIG)
    cfg = Config.fromfile(str(path))
    assert tool.grid_from_config(cfg)[:3] == (6, 56, 56)
    cfg.token_optimization = dict(grid=(12, 252))  # the switch tools/test.py applies
    assert tool.grid_from_config(cfg)[:3] == (12, 252, 252)
    empty = Config(dict(model=dict()))
    assert tool.grid_from_config(empty) is None


@pytest.mark.slow
def test_benchmark_tiny_prints_ratios(tmp_path):
    out_json = tmp_path / 'bench.json'
    out_md = tmp_path / 'bench.md'
    result = run(BENCHMARK, '--models', 'tiny', '--budgets', '64', '--size', '56',
                 '--repeats', '2', '--warmup', '0', '--batch-size', '2',
                 '--json', str(out_json), '--markdown', str(out_md), timeout=180)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for needle in ('FluxViT / mmaction-ViT clips/s', 'FluxViT FLOP/s / matmul FLOP/s',
                   'bf16 / fp32 speed', 'selector share of forward'):
        assert any(line.startswith('ratio') and needle in line for line in text.splitlines()), \
            needle
    # measured ratios side by side, no pass/fail thresholds
    assert 'target' not in text.lower() and 'target' not in out_md.read_text().lower()
    data = json.loads(out_json.read_text())
    assert data['ratios'] and all('target' not in r and r['detail'] for r in data['ratios'])
    impls = {r['impl'] for r in data['results']}
    assert impls == {'fluxvit', 'mmaction-vit', 'matmul', 'selector'}
    flux = {r['dtype']: r for r in data['results'] if r['impl'] == 'fluxvit'}
    vit = {r['dtype']: r for r in data['results'] if r['impl'] == 'mmaction-vit'}
    assert set(flux) == set(vit) == {'fp32', 'bf16'}
    for dtype, r in flux.items():
        assert r['grid'] == [8, 56, 56] and r['tokens'] == 64  # oversample 2: 128 -> 64
        assert vit[dtype]['grid'] == [4, 56, 56]  # the same 64 tokens in the blocks
        # the harness: two interleaved samples, the median of them, clips/s and FLOP/s from it
        assert r['time_samples'] == 2 and len(r['time_times_ms']) == 2
        assert r['time_median_ms'] == pytest.approx(sum(r['time_times_ms']) / 2)
        assert r['clips_per_s'] == pytest.approx(2 / (r['time_median_ms'] / 1e3))
        assert r['gflops'] == pytest.approx(2 * r['gmacs_clip'] * 2 / (r['time_median_ms'] / 1e3))
        assert r['act_peak_mib'] is not None and r['act_peak_mib'] > 0
        # FluxViT at 128 input tokens, 64 kept: more MACs than the ViT on 64 (patch embed, cls)
        assert r['gmacs_clip'] > vit[dtype]['gmacs_clip']
    vs_vit = {r['dtype']: r for r in data['ratios'] if r['name'] == 'FluxViT / mmaction-ViT clips/s'}
    assert vs_vit['fp32']['value'] == pytest.approx(flux['fp32']['clips_per_s']
                                                    / vit['fp32']['clips_per_s'])
    # every table states the CPU and its ISA
    machine = data['machine']
    cpu_lines = [line for line in text.splitlines() if line.startswith('# CPU: ')]
    assert len(cpu_lines) == 2
    assert all(f"ISA {machine['capability']}" in line and 'bf16: oneDNN' in line
               for line in cpu_lines)
    assert out_md.read_text().count('CPU: ') == 2 and '| model |' in out_md.read_text()


@pytest.mark.slow
def test_benchmark_on_a_cpu_without_onednn_bf16(tmp_path):
    # this CPU limited to AVX2 like AMD Zen 2: oneDNN has no bf16 primitive, so bf16
    # rows are marked as not native
    out_json = tmp_path / 'bench.json'
    env = dict(os.environ, ATEN_CPU_CAPABILITY='avx2', ONEDNN_MAX_CPU_ISA='AVX2')
    result = subprocess.run(
        [sys.executable, BENCHMARK, '--models', 'tiny', '--budgets', '64', '--size', '56',
         '--repeats', '1', '--warmup', '0', '--batch-size', '1', '--no-vit', '--no-memory',
         '--json', str(out_json)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=180, env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(out_json.read_text())
    assert data['machine']['capability'] == 'AVX2'
    assert data['machine']['onednn_bf16'] is False and data['machine']['native_bf16'] is False
    flux = {r['dtype']: r for r in data['results'] if r['impl'] == 'fluxvit'}
    assert flux['bf16']['dtype_label'] == 'bf16*' and flux['fp32']['dtype_label'] == 'fp32'
    assert flux['bf16']['clips_per_s'] > 0
    assert '# bf16*: this CPU has no native bf16' in result.stdout
    assert any(line.startswith('ratio tiny@64 bf16* b1: bf16 / fp32 speed')
               for line in result.stdout.splitlines())


def test_benchmark_ratios_from_rows():
    # the ratios are plain divisions of numbers measured in the same run
    tool = load_tool('benchmark')
    common = dict(model='s', budget=2048, batch=2)
    flux = dict(common, impl='fluxvit', dtype='fp32', dtype_label='fp32', clips_per_s=2.0,
                time_median_ms=1000.0, gflops=300.0, matmul_gflops=200.0, matmul_frac=1.5)
    vit = dict(common, impl='mmaction-vit', dtype='fp32', clips_per_s=0.5)
    selector = dict(common, impl='selector', dtype='fp32', time_median_ms=3.0)
    bf16 = dict(flux, dtype='bf16', dtype_label='bf16*', clips_per_s=3.0, time_median_ms=2000 / 3)
    ratios = tool.ratios_of([flux, vit, selector, bf16])
    lines = [tool.ratio_line(r) for r in ratios]
    assert lines == [
        'ratio s@2048 fp32 b2: FluxViT / mmaction-ViT clips/s = 4.00x (2.000 vs 0.500 clips/s)',
        'ratio s@2048 fp32 b2: FluxViT FLOP/s / matmul FLOP/s = 1.50 (300 vs 200 GFLOP/s)',
        'ratio s@2048 fp32 b2: selector share of forward = 0.30% (3.00 ms of 1000.0 ms)',
        'ratio s@2048 bf16* b2: FluxViT FLOP/s / matmul FLOP/s = 1.50 (300 vs 200 GFLOP/s)',
        'ratio s@2048 bf16* b2: bf16 / fp32 speed = 1.50x (3.000 vs 2.000 clips/s)',
    ]
    assert all('target' not in r for r in ratios)


def test_benchmark_builds_the_registered_models():
    """No copy of the arch table: the backbone resolves the names; the ViT matches its width."""
    tool = load_tool('benchmark')
    flux = tool.build_fluxvit('s')
    assert flux.arch_settings['embed_dims'] == 384 and not flux.training
    vit = tool.build_vit(tool.build_fluxvit('tiny'), frames=2, size=56)
    assert type(vit).__module__ == 'mmaction.models.backbones.vit_mae'
    assert vit.patch_embed.projection.kernel_size == (1, 14, 14)
    with pytest.raises(ValueError, match='Unknown FluxViT arch'):
        tool.build_fluxvit('huge')
