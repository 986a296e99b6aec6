"""Where and how the computation runs: the device, mixed precision, kernels and seeds."""
import os
import random

import numpy as np
import torch

from semcnn.files.errors import fail


def amp_dtype(config, device):
    """The autocast dtype of config['amp'] on `device`, or None for plain fp32. 'auto' is bf16
    on a GPU and fp32 elsewhere; a GPU without bf16 gets fp16 (with a GradScaler)."""
    mode = config['amp']
    if mode == 'none' or (mode == 'auto' and device.type != 'cuda'):
        return None
    if (mode in ('auto', 'bf16') and device.type == 'cuda'
            and torch.cuda.get_device_capability(device) < (8, 0)):   # bf16 only emulated
        return torch.float16
    return torch.float16 if mode == 'fp16' else torch.bfloat16


def autocast(device, dtype):
    """The one mixed-precision context of training and prediction (off when dtype is None)."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def configure_kernels(config, device):
    """Deterministic kernels when config['deterministic'] (a rerun or a resumed run gives the
    same weights, bit for bit, on the same machine); otherwise on a GPU the fastest cuDNN kernels
    for the fixed input size. Call before the model first runs on the device."""
    if config['deterministic']:
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')   # read when cuBLAS starts
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == 'cuda':
        torch.backends.cudnn.benchmark = True


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name):
    if name == 'auto':
        if torch.cuda.is_available():
            return torch.device('cuda')
        if getattr(torch.backends, 'mps', None) and torch.backends.mps.is_available():
            return torch.device('mps')
        return torch.device('cpu')
    try:
        device = torch.device(name)
    except RuntimeError:
        fail(f'device={name}: not a device name; use auto, cpu, cuda, cuda:N or mps')
    if device.type == 'cuda' and not torch.cuda.is_available():
        fail(f'device={name}: this machine has no CUDA GPU; use --set device=cpu or auto')
    if device.type == 'cuda' and (device.index or 0) >= torch.cuda.device_count():
        fail(f'device={name}: this machine has {torch.cuda.device_count()} GPU(s), '
             f'cuda:0..cuda:{torch.cuda.device_count() - 1}')
    if device.type == 'mps' and not (getattr(torch.backends, 'mps', None)
                                     and torch.backends.mps.is_available()):
        fail(f'device={name}: Apple MPS is not available here; use --set device=cpu or auto')
    if device.type not in ('cpu', 'cuda', 'mps'):
        fail(f'device={name}: use auto, cpu, cuda, cuda:N or mps')
    return device
