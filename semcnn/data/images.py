"""Images as tensors: one rule for each conversion (to [0, 1], gray to colour, size, flips).

An image here is a C x H x W float tensor in [0, 1]: 1 channel for gray crops, 3 for colour ones.
"""
import functools

import numpy as np
import torch
import torch.nn.functional as F

from semcnn.files.frames import unit_scale, white


def to_tensor(pixels, input_size):
    """C x S x S float tensor in [0, 1] of an H x W (x C) uint8/uint16 array, resized to S."""
    return resize(unit_range(pixels), input_size)


def unit_range(pixels):
    """C x H x W float tensor in [0, 1] of an H x W (x C) uint8/uint16 array, at its own size."""
    x = torch.from_numpy(unit_scale(pixels))
    return x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)


def with_channels(x, channels):
    """Image(s) x (... x C x H x W) with `channels` channels. The one rule for gray crops: they
    stay 1-channel (a third of the memory) until they meet colour crops in a batch or the
    network's 3-channel input, and are then repeated, without a copy."""
    return x if x.shape[-3] == channels else x.expand(*x.shape[:-3], channels, *x.shape[-2:])


def resize(x, input_size):
    """A C x H x W image scaled to C x S x S (S = input_size), antialiased."""
    if x.shape[1:] != (input_size, input_size):
        x = F.interpolate(x.unsqueeze(0), size=(input_size, input_size), mode='bilinear',
                          antialias=True, align_corners=False)[0]
    return x


def rescale_pixels(pixels, factor):
    """An H x W (x C) uint8/uint16 frame with each side scaled by `factor`, in its own dtype:
    area averaging when it shrinks (each new pixel the mean of those it covers), bilinear when
    it grows. Brings a frame to another physical scale (semcnn/files/scale.py)."""
    height, width = pixels.shape[:2]
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    if size == (height, width):
        return pixels
    x = unit_range(pixels).unsqueeze(0)
    x = (F.interpolate(x, size=size, mode='area') if factor < 1 else
         F.interpolate(x, size=size, mode='bilinear', align_corners=False))[0]
    out = (x.clamp(0, 1) * white(pixels)).round().to(torch.int32).numpy().astype(pixels.dtype)
    return out[0] if pixels.ndim == 2 else np.ascontiguousarray(out.transpose(1, 2, 0))


def dihedral(x, k):
    """The k-th (0..7) of the 8 flips and quarter turns of square images (last two dims)."""
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def flip_turn_batch(x, turns):
    """Image i of the batch as dihedral(x[i], turns[i]): one gather, no per-image work."""
    n, c, h, w = x.shape
    index = _dihedral_maps(h, x.device)[turns.to(x.device, non_blocking=True)]
    return x.flatten(2).gather(2, index.unsqueeze(1).expand(-1, c, -1)).view(n, c, h, w)


@functools.lru_cache(maxsize=8)
def _dihedral_maps(size, device):
    """8 x S*S: row k holds, for each pixel of dihedral(image, k), the flat index of its source."""
    grid = torch.arange(size * size, device=device).view(size, size)
    return torch.stack([dihedral(grid, k).flatten() for k in range(8)])
