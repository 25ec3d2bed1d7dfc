"""mmflux.utils.cpu_info: the CPU facts that speed figures and the fast path depend on."""
from mmflux.utils.cpu_info import describe_cpu


def test_describe_cpu_without_bf16():
    zen2 = dict(model='AMD EPYC 7B12', cores=2, capability='AVX2', onednn_bf16=False,
                avx512_bf16=False, amx=False, native_bf16=False)
    assert describe_cpu(zen2) == ('AMD EPYC 7B12 (2 logical cores) | ISA AVX2 | '
                                  'bf16: oneDNN no, native no')
    spr = dict(zen2, capability='AVX512', onednn_bf16=True, avx512_bf16=True, amx=True,
               native_bf16=True)
    assert describe_cpu(spr).endswith('bf16: oneDNN yes, native yes (AVX512_BF16, AMX)')


def test_isa_flags_from_proc_cpuinfo(monkeypatch):
    """The ISA list is read off the first processor's flags, in a fixed order."""
    from mmflux.utils import cpu_info as module
    fields = {'model name': 'Some CPU', 'vendor_id': 'GenuineIntel',
              'flags': 'fpu sse2 avx2 fma amx_tile avx512f'}
    monkeypatch.setattr(module, '_proc_cpuinfo', lambda: dict(fields))
    info = module.cpu_info()
    assert info['model'] == 'Some CPU' and info['vendor'] == 'GenuineIntel'
    assert info['isa'] == ['AVX2', 'AVX-512', 'AMX']
    monkeypatch.setattr(module, '_proc_cpuinfo', lambda: {})  # no /proc (macOS, Windows)
    assert module.cpu_info()['isa'] == []


def test_machine_info_states_threads_and_versions():
    import platform

    import torch

    from mmflux.utils.cpu_info import machine_info
    info = machine_info()
    assert info['threads'] == torch.get_num_threads() and info['device'] == 'cpu'
    assert info['torch'] == torch.__version__ and info['python'] == platform.python_version()
    assert info['cpu'] == info['model'] and info['cpu_line'].startswith(info['model'])
    assert info['capability'] == torch.backends.cpu.get_cpu_capability()
