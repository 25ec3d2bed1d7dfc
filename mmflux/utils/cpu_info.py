"""What this CPU can do, in one place: model name, vector ISA, bf16 support.

Every speed figure depends on the ISA and on what else ran, so the benchmark
tools, the latency plans and export state :func:`machine_info` with every table.
The one owner of these facts: nobody else parses ``/proc/cpuinfo``. Nothing here
assumes an ISA; every probe falls back to "no".
"""
import os
import platform
from typing import Dict, Optional

import torch


#: (name, /proc/cpuinfo flag) of the vector ISAs speed depends on
_ISA_FLAGS = (('AVX2', 'avx2'), ('AVX-512', 'avx512f'), ('AVX512_BF16', 'avx512_bf16'),
              ('AMX', 'amx_tile'))


def _proc_cpuinfo() -> Dict[str, str]:
    fields: Dict[str, str] = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if not line.strip():
                    break  # first processor only
                key, _, value = line.partition(':')
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def _probe(name: str) -> bool:
    fn = getattr(torch.cpu, name, None)
    try:
        return bool(fn()) if fn is not None else False
    except Exception:  # noqa: BLE001 - a missing probe means "not supported"
        return False


def onednn_bf16_supported() -> bool:
    """oneDNN has bf16 matmul kernels for this CPU (AVX-512 or newer).

    False on AVX2-only CPUs (e.g. AMD EPYC Zen 2), where oneDNN cannot create a
    bf16 primitive at all. Honours ``ONEDNN_MAX_CPU_ISA``.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    fn = getattr(getattr(torch.ops, 'mkldnn', None), '_is_mkldnn_bf16_supported', None)
    try:
        return bool(fn()) if fn is not None else False
    except Exception:  # noqa: BLE001
        return False


def cpu_info() -> Dict[str, object]:
    """Model, vendor, ATen vector ISA and bf16 support of this CPU.

    ``capability``: the vector ISA ATen dispatches to (honours
    ``ATEN_CPU_CAPABILITY``); ``isa``: what the CPU itself reports.
    ``onednn_bf16``: oneDNN runs bf16 at all (it emulates it on plain AVX-512);
    ``native_bf16``: besides, the CPU has bf16 instructions (AVX512_BF16 or AMX)
    for it to use. Without ``onednn_bf16``, bf16 runs through slow generic kernels.
    """
    fields = _proc_cpuinfo()
    onednn_bf16 = onednn_bf16_supported()
    flags = set(fields.get('flags', '').split())
    avx512_bf16 = _probe('_is_avx512_bf16_supported')
    amx = _probe('_is_amx_tile_supported')
    model: Optional[str] = fields.get('model name') or platform.processor() or None
    return dict(
        model=model or platform.machine() or 'unknown CPU',
        vendor=fields.get('vendor_id', 'unknown'),
        machine=platform.machine(),
        cores=os.cpu_count(),
        capability=torch.backends.cpu.get_cpu_capability(),
        isa=[name for name, flag in _ISA_FLAGS if flag in flags],
        onednn=torch.backends.mkldnn.is_available(),
        onednn_bf16=onednn_bf16,
        avx512_bf16=avx512_bf16,
        amx=amx,
        native_bf16=onednn_bf16 and (avx512_bf16 or amx),
    )


def describe_cpu(info: Optional[Dict[str, object]] = None) -> str:
    """One line for logs and tables, e.g. ``Intel(R) Xeon(R) ... | ISA AVX512 | bf16:
    oneDNN yes, native yes (AVX512_BF16, AMX)``."""
    info = info or cpu_info()
    native = [name for name, key in (('AVX512_BF16', 'avx512_bf16'), ('AMX', 'amx'))
              if info.get(key)] if info.get('native_bf16') else []
    return (f"{info['model']} ({info['cores']} logical cores) | ISA {info['capability']} | "
            f"bf16: oneDNN {'yes' if info['onednn_bf16'] else 'no'}, native "
            f"{'yes (' + ', '.join(native) + ')' if native else 'no'}")


def _load_average() -> Optional[float]:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def machine_info(device: str = 'cpu') -> Dict[str, object]:
    """Everything a speed figure was measured on: CPU facts, threads, versions, load.

    ``cpu`` (the model), ``cpu_line`` (:func:`describe_cpu`), the keys of
    :func:`cpu_info`, ``threads`` (torch intra-op), ``device`` (and ``gpu``),
    ``torch``, ``python``, ``load_avg`` (1-minute load average when read).
    """
    info = cpu_info()
    out: Dict[str, object] = dict(cpu=info['model'], cpu_line=describe_cpu(info), **info)
    out.update(device=device, threads=torch.get_num_threads(), torch=torch.__version__,
               python=platform.python_version(), load_avg=_load_average())
    if str(device).startswith('cuda') and torch.cuda.is_available():
        out['gpu'] = torch.cuda.get_device_name()
    return out


__all__ = ['cpu_info', 'describe_cpu', 'machine_info', 'onednn_bf16_supported']
