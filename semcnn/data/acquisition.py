"""What changes between two imaging sessions at the microscope, as operations on image batches.

Each function takes N x C x H x W float images in [0, 1] and per-image amounts (length-N tensors),
and returns images in [0, 1]. Training augments with them (augment.py: random amounts, at the
input size) and semcnn/evaluation/shifts.py evaluates a trained run under them (fixed amounts, at
the crops' own pixel size), so the two always mean the same change.

- gamma: the detector's response curve (x ** g);
- gain_offset: brightness (offset) and contrast (gain about the image's mean);
- blur: defocus, a Gaussian of standard deviation sigma pixels;
- sharpen: a sharper focus or more local contrast, an unsharp mask of a given amount and radius;
- rescale: another magnification, the image zoomed about its centre;
- illumination: uneven illumination or a charging gradient, a linear gain ramp of +-amplitude
  across the image in a given direction;
- noise: scan speed and detector gain, additive Gaussian noise of standard deviation std;
- remap: another session's grey-level curve, every pixel keeping its rank (quantile matching).
"""
import math

import torch
import torch.nn.functional as F

LEVELS = 256   # grey levels of the histograms that equalize() and remap() work on


def _per_image(values, x):
    return torch.as_tensor(values, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)


def gamma(x, g):
    return x.clamp_min(1e-6).pow(_per_image(g, x)).clamp(0, 1)


def gain_offset(x, gain, offset):
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * _per_image(gain, x) + mean + _per_image(offset, x)).clamp(0, 1)


def blur(x, sigma):
    """Gaussian blur with its own sigma (pixels) per image; sigma 0 leaves an image as it is."""
    sigma = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1)
    if not (sigma > 0).any():
        return x
    n, c, h, w = x.shape
    radius = max(1, math.ceil(3 * float(sigma.max())))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma.clamp_min(1e-3)[:, None]) ** 2)
    kernel[sigma <= 0] = (offsets == 0).float()
    kernel = (kernel / kernel.sum(1, keepdim=True)).to(x.device, x.dtype)
    kernel = kernel.repeat_interleave(c, 0)                       # (n*c) x taps
    flat = x.reshape(1, n * c, h, w)
    flat = F.pad(flat, (radius, radius, radius, radius), mode='replicate')
    flat = F.conv2d(flat, kernel.view(n * c, 1, 1, -1), groups=n * c)
    flat = F.conv2d(flat, kernel.view(n * c, 1, -1, 1), groups=n * c)
    return flat.view(n, c, h, w)


def sharpen(x, amount, sigma):
    """Unsharp mask x + amount * (x - blur(x, sigma)), per image: with a radius of a pixel or two
    a sharper focus, with a few pixels more local contrast. Amount 0 leaves an image as it is."""
    return (x + _per_image(amount, x) * (x - blur(x, sigma))).clamp(0, 1)


def rescale(x, factor):
    """Each image zoomed about its centre by its factor (> 1 magnifies), bilinear, with the
    border mirrored where a factor < 1 needs more field than the image has. Factor 1 leaves an
    image as it is."""
    factor = torch.as_tensor(factor, dtype=torch.float32).reshape(-1)
    if not (factor != 1).any():
        return x
    theta = torch.zeros(len(x), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / factor
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    zoomed = F.grid_sample(x, grid, mode='bilinear', padding_mode='reflection',
                           align_corners=False)
    return torch.where((factor != 1).to(x.device).view(-1, 1, 1, 1), zoomed, x)


def illumination(x, amplitude, angle):
    """Gain 1 + amplitude * t, t running from -1 to 1 across the image along `angle` (radians)."""
    n, c, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w)
    cos, sin = torch.cos(_per_image(angle, x)), torch.sin(_per_image(angle, x))
    ramp = (xs * cos + ys * sin) / (cos.abs() + sin.abs())   # -1 and 1 at opposite corners
    return (x * (1 + _per_image(amplitude, x) * ramp)).clamp(0, 1)


def noise(x, std, generator=None):
    """Additive Gaussian noise; the noise field is drawn on the images' device."""
    field = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + field * _per_image(std, x)).clamp(0, 1)


def level_index(x):
    """Each pixel's grey level 0..LEVELS-1, as a flat N x (C*H*W) index."""
    return (x.reshape(len(x), -1) * (LEVELS - 1)).round().clamp(0, LEVELS - 1).long()


def histograms(x):
    """N x LEVELS pixel counts of each image."""
    index = level_index(x)
    return torch.zeros(len(x), LEVELS, device=x.device).scatter_add_(
        1, index, torch.ones_like(index, dtype=torch.float32))


def mid_cdf(hist):
    """Share of pixels below each level plus half of those at it: a level's mean rank in [0, 1]."""
    hist = hist.double()
    cdf = hist.cumsum(-1)
    return ((cdf - hist / 2) / cdf[..., -1:]).float()


def equalize(x):
    """Each image's pixels replaced by their mean rank within the image (histogram
    equalization): the same output for any increasing change of grey levels."""
    index = level_index(x)
    return mid_cdf(histograms(x)).gather(1, index).view_as(x)


def quantiles(hist, points=1024):
    """The grey level (in [0, 1]) below which each of `points` evenly spaced shares of the
    pixels of a histogram lie: the inverse of its distribution function."""
    cdf = mid_cdf(hist)
    shares = torch.linspace(0, 1, points)
    index = torch.searchsorted(cdf, shares).clamp(max=LEVELS - 1)
    return index.float() / (LEVELS - 1)


def remap(x, own_hist, target_quantiles):
    """Give an image the grey-level distribution of `target_quantiles` (quantiles()), through
    its own histogram `own_hist` (that of the image, or of the whole frame it was cut from):
    a pixel at mean rank r gets the target's level at share r; pixel order is kept."""
    index = level_index(x)
    ranks = mid_cdf(own_hist.reshape(len(x), -1)).gather(1, index)
    points = target_quantiles.shape[-1]
    picked = (ranks * (points - 1)).round().long()
    return target_quantiles.reshape(len(x), -1).gather(1, picked).view_as(x)
