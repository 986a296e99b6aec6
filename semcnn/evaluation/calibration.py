"""Probabilities that mean what they say: one temperature, and how to check it.

A network trained with label smoothing (the from-scratch recipes) or for many epochs gives
probabilities that are not frequencies: a verdict at P 0.86 may be right far more or less often
than 86 % of the time. train.py fits one temperature T on the validation split at the end of
training (temperature scaling, Guo et al. 2017: the T that minimises the negative log-likelihood
of softmax(outputs / T)); it is kept in the checkpoint, and every P(...) that test.py, predict.py
and gradcam.py give is softmax(outputs / T). Dividing by one T > 0 changes no prediction.

The expected calibration error (ECE) is the gap between confidence and accuracy, averaged over
CALIBRATION_BINS equal-width bins of the top probability, weighted by the crops in each; the
reliability diagram draws accuracy against confidence per bin.
"""
import numpy as np
import torch
import torch.nn.functional as F

from semcnn.evaluation.plots import pyplot, save_figure_atomic

CALIBRATION_BINS = 15
TEMPERATURES = torch.logspace(-2, 2, 401, dtype=torch.float64)   # 0.01 .. 100, 2.3 % apart


def fit_temperature(outputs, labels):
    """The temperature that minimises the mean negative log-likelihood of
    softmax(outputs / T) for `labels` (on a grid 2.3 % apart, from 0.01 to 100), but no lower
    than confidence_floor(): on a validation split the network gets entirely right, the
    likelihood alone falls without end as T does, and every later answer, right or wrong, would
    read P = 1.00."""
    outputs, labels = torch.as_tensor(outputs).double(), torch.as_tensor(labels).long()
    losses = torch.stack([F.cross_entropy(outputs / t, labels) for t in TEMPERATURES])
    return max(float(TEMPERATURES[int(losses.argmin())]), confidence_floor(outputs, labels))


def confidence_floor(outputs, labels):
    """The lowest grid temperature at which the mean top probability of the n validation items
    is at most (n + 1) / (n + 2): the most that n items can show, all of them right (Laplace's
    rule of succession leaves an error rate of 1 / (n + 2)). It binds only where the likelihood
    asks for more confidence than the split can support: a split the network gets entirely
    right. The top probability falls as T rises."""
    outputs = torch.as_tensor(outputs).double()
    supported = (len(outputs) + 1) / (len(outputs) + 2)
    for t in TEMPERATURES:
        if float((outputs / t).softmax(1).max(1).values.mean()) <= supported:
            return float(t)
    return float(TEMPERATURES[-1])


def calibrated(outputs, temperature):
    """Probabilities (numpy, float64) of outputs scaled by 1 / temperature."""
    return (torch.as_tensor(outputs).double() / temperature).softmax(1).numpy()


def expected_calibration_error(probs, labels, bins=CALIBRATION_BINS):
    """Mean |accuracy - confidence| over equal-width bins of the top probability, weighted by
    the share of items in each bin."""
    confidence, right = probs.max(1), probs.argmax(1) == np.asarray(labels)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap += inside.mean() * abs(right[inside].mean() - confidence[inside].mean())
    return float(gap)


def calibration_scores(outputs, labels, temperature):
    """{'temperature', 'ece_uncalibrated', 'ece'} of `outputs` (already divided by
    `temperature`, as test.py's predictions are) and their labels."""
    outputs = torch.as_tensor(outputs).double()
    return {'temperature': temperature,
            'ece_uncalibrated': expected_calibration_error(
                calibrated(outputs * temperature, 1.0), labels),
            'ece': expected_calibration_error(calibrated(outputs, 1.0), labels)}


def reliability_png(outputs, labels, temperature, path, title):
    """Accuracy against confidence per bin, before (T = 1) and after the temperature, with
    the share of crops per bin below."""
    outputs = torch.as_tensor(outputs).double()
    labels = np.asarray(labels)
    plt = pyplot()
    fig, (ax, ax_count) = plt.subplots(2, 1, figsize=(5, 6), sharex=True,
                                       gridspec_kw={'height_ratios': [3, 1]})
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    for name, probs, style in (('uncalibrated (T = 1)', calibrated(outputs * temperature, 1.0),
                                '-s'),
                               (f'calibrated (T = {temperature:.2f})', calibrated(outputs, 1.0),
                                '-o')):
        confidence, right = probs.max(1), probs.argmax(1) == labels
        which = np.minimum((confidence * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
        used = [b for b in range(CALIBRATION_BINS) if (which == b).any()]
        ax.plot([confidence[which == b].mean() for b in used],
                [right[which == b].mean() for b in used], style, ms=4,
                label=f'{name}, ECE {100 * expected_calibration_error(probs, labels):.1f} %')
        ax_count.hist(confidence, bins=edges, histtype='step', weights=np.full(len(labels),
                                                                              1 / len(labels)))
    ax.plot([0, 1], [0, 1], ':', color='grey', label='perfect calibration')
    ax.set(ylabel='accuracy', title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='lower right')
    ax_count.set(xlabel='confidence (top probability)', ylabel='share of crops')
    ax_count.grid(alpha=0.3)
    save_figure_atomic(fig, path)
    plt.close(fig)
