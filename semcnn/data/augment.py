"""The training augmentation: flips and turns, brightness/contrast jitter, session changes.

Drawn once per batch from a seeded generator and applied to whole batches, so that a seed gives
the same augmentation per crop or per batch, on any device."""
import math

import torch

from semcnn.data import acquisition
from semcnn.data.images import flip_turn_batch


def jitter(x, amount, draws):
    """Brightness and contrast changed per image (gain 1 +- amount about the image's mean,
    offset +- amount / 2), from uniform [0, 1) draws (2 x N: gain, offset): each class was
    imaged in one session, so its settings must not become a cue the model relies on."""
    draws = draws.to(x.device, non_blocking=True).view(2, -1, 1, 1, 1)
    gain, offset = 1 + amount * (2 * draws[0] - 1), amount * (draws[1] - 0.5)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * gain + mean + offset).clamp(0, 1)


SHARPEN_RADII = (0.5, 4.0)   # unsharp-mask radii drawn (log-uniform), in pixels of the input


class SessionAugment:
    """Random changes of the kind two imaging sessions differ by (acquisition.py), so that the
    network learns the material rather than the microscope's settings. Each amount is the
    largest change: every image gets its own, drawn uniformly from none up to it.

    gamma: largest |ln g| of the grey-level curve x ** g; blur: largest Gaussian sigma in
    pixels of the network's input; illumination: largest gain ramp +-amplitude across the
    image; noise: largest standard deviation of additive Gaussian noise; sharpen: largest
    unsharp-mask amount, at a radius from SHARPEN_RADII (finer focus to more local contrast);
    scale: largest change of magnification, a zoom by a factor up to 1 + scale either way. Half
    of the images
    (drawn) are left as they are: with every training image changed, BatchNorm's running
    statistics describe changed images only, and clean ones are misjudged at validation."""

    def __init__(self, gamma=0.0, blur=0.0, illumination=0.0, noise=0.0, sharpen=0.0,
                 scale=0.0):
        self.gamma, self.blur, self.illumination, self.noise = gamma, blur, illumination, noise
        self.sharpen, self.scale = sharpen, scale

    def __bool__(self):
        return any((self.gamma, self.blur, self.illumination, self.noise, self.sharpen,
                    self.scale))

    def draw(self, n, generator=None):
        """6 x N uniform draws (the amounts, and whether the image is changed at all), a seed
        for the noise field, and 3 x N more when sharpen or scale is on (drawn last, so that
        recipes without them draw as they always did), from `generator` (on the CPU, so that a
        seed gives the same augmentation on any device)."""
        u = torch.rand(6, n, generator=generator)
        noise_seed = int(torch.randint(2 ** 62, (), generator=generator))
        if self.sharpen or self.scale:
            u = torch.cat([u, torch.rand(3, n, generator=generator)])
        return u, noise_seed

    def apply(self, x, draws):
        u, noise_seed = draws
        changed = (u[5] < 0.5).float()   # the others get amounts of 0: they stay as they are
        u = torch.cat([u[:5], u[6:]]) * changed   # rows 5.. are now the sharpen/scale draws
        if self.gamma:
            x = acquisition.gamma(x, torch.exp((2 * u[0] - changed) * self.gamma))
        if self.blur:
            x = acquisition.blur(x, u[1] * self.blur)
        if self.illumination:
            x = acquisition.illumination(x, u[2] * self.illumination, u[3] * 2 * math.pi)
        if self.noise:
            field = torch.Generator(device=x.device).manual_seed(noise_seed)
            x = acquisition.noise(x, u[4] * self.noise, field)
        if self.sharpen:
            low, high = SHARPEN_RADII
            x = acquisition.sharpen(x, u[5] * self.sharpen, low * (high / low) ** u[6])
        if self.scale:   # ln of the zoom uniform in +-ln(1 + scale); unchanged images get 1
            x = acquisition.rescale(x, torch.exp((2 * u[7] - changed) * math.log1p(self.scale)))
        return x


class Augment:
    """The training augmentation of a batch (N x C x S x S, in [0, 1]): one of the 8 flips and
    quarter turns of each crop (an SEM crop has no canonical orientation) when flip_turn, the
    brightness/contrast jitter, and the session changes. SEMDataset applies it to one crop at
    a time, PreloadedBatches to whole batches: the same draws give the same images."""

    def __init__(self, flip_turn=False, jitter=0.0, session=None):
        self.flip_turn, self.jitter = flip_turn, jitter
        self.session = session or SessionAugment()

    def __bool__(self):
        return bool(self.flip_turn or self.jitter or self.session)

    def draw(self, n, generator=None):
        """The random draws for n images (turns, jitter, session; None where not used), in
        a fixed order from `generator` (on the CPU: a seed gives the same on any device)."""
        return (torch.randint(8, (n,), generator=generator) if self.flip_turn else None,
                torch.rand(2, n, generator=generator) if self.jitter else None,
                self.session.draw(n, generator) if self.session else None)

    @staticmethod
    def share(draws, mine, rank):
        """The draws of the images `mine` (a slice of the batch) that process `rank` takes."""
        turns, gains, session = draws
        return (None if turns is None else turns[mine], None if gains is None else gains[:, mine],
                None if session is None else (session[0][:, mine], session[1] + rank))

    def apply(self, x, draws):
        turns, gains, session = draws
        if turns is not None:
            x = flip_turn_batch(x, turns)
        if gains is not None:
            x = jitter(x, self.jitter, gains)
        if session is not None:
            x = self.session.apply(x, session)
        return x
