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
