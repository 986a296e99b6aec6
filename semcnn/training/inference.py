"""Class scores of a batch or of a whole split by a trained model (with optional 8-fold TTA)."""
import torch
from tqdm import tqdm

from semcnn.data.images import dihedral
from semcnn.training.device import autocast


@torch.no_grad()
def predict_batch(model, x, tta=False):
    """Logits of a batch; with tta, the log of the mean softmax over the 8 flips/turns of each
    image (so .softmax(1) gives that mean); either divided by the model's temperature (1 until
    train.py has fitted one), so that .softmax(1) gives calibrated probabilities."""
    temperature = getattr(model, 'temperature', 1.0)   # any module; SEMClassifier has one
    if not tta:
        return model(x).float() / temperature
    probs = sum(model(dihedral(x, k)).float().softmax(1) for k in range(8)) / 8
    return probs.log() / temperature


@torch.no_grad()
def predict(model, loader, device, desc='predict', tta=False, amp=None, show=True):
    """Logits, labels and names of every item of `loader`, in order; under `amp` autocast."""
    model.eval()
    logits, labels, names = [], [], []
    for x, y, batch_names in tqdm(loader, desc=desc, leave=False, unit='batch', disable=not show):
        with autocast(device, amp):
            logits.append(predict_batch(model, x.to(device, non_blocking=True), tta))
        labels.append(y)
        names += batch_names
    # one copy to the host at the end: no wait for the device between batches
    return torch.cat(logits).cpu(), torch.cat(labels).cpu(), names
