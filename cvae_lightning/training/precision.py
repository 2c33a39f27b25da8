"""`trainer.precision: auto`: bf16 mixed precision where the hardware runs bf16 natively,
32-bit elsewhere.

On a CPU with AMX or AVX512-BF16, oneDNN runs this model's convolutions in bf16 about twice as
fast as in fp32, with the same loss to a fraction of a percent; without them bf16 is emulated
and slower. On a CUDA GPU, bf16 needs compute capability 8.0 (Ampere) or newer.
"""

from __future__ import annotations

import torch

AUTO = "auto"
BF16, FP32 = "bf16-mixed", "32-true"


def cpu_runs_bf16() -> tuple[bool, str]:
    """(native, which instructions) for this CPU."""
    found = [
        name
        for name, probe in (
            ("AMX", getattr(torch.cpu, "_is_amx_tile_supported", None)),
            ("AVX512-BF16", getattr(torch.cpu, "_is_avx512_bf16_supported", None)),
        )
        if probe is not None and probe()
    ]
    return bool(found), " and ".join(found)


def gpu_runs_bf16() -> tuple[bool, str]:
    """(native, the device's name) for the current CUDA device."""
    name = torch.cuda.get_device_name()
    return torch.cuda.is_bf16_supported(including_emulation=False), name


def on_cuda(accelerator: str) -> bool:
    """Whether a trainer with this accelerator trains on a CUDA GPU."""
    return accelerator in ("gpu", "cuda") or (accelerator == AUTO and torch.cuda.is_available())


def choose_precision(accelerator: str) -> tuple[str, str]:
    """(precision, why) for trainer.precision=auto on this machine and `accelerator`."""
    if on_cuda(accelerator):
        native, name = gpu_runs_bf16()
        if native:
            return BF16, f"the GPU ({name}) runs bf16 natively"
        return FP32, f"the GPU ({name}) has no native bf16"
    native, found = cpu_runs_bf16()
    if native:
        return BF16, f"the CPU has {found}, so bf16 runs natively (about 2x fp32 here)"
    return FP32, "the CPU has neither AMX nor AVX512-BF16, so bf16 would be emulated (slower)"
