"""The linear probe: the head of a pretrained network fitted on its frozen features.

With probe_views = V > 0, train.py first computes, once, the features the head reads for V
views of every training crop (the first as it is, the others with the training augmentation,
session changes included: a head fitted on clean crops alone follows their focus and noise) and
for the validation crops, and fits the head on them alone. The network's other layers are left
as ImageNet made them. With epochs = 0 that is the whole training (recipe lite0_probe); with
epochs > 0 the whole network is then fine-tuned from there (LP-FT: Kumar et al., ICLR 2022:
fine-tuning a network whose head already fits keeps more of what pretraining learnt, and more
robustness to shifts, than fine-tuning from a random head, whose large early gradients distort
the features).

First the network's BatchNorm statistics are measured again on a sample of the training crops
(AdaBN, Li et al. 2017): ImageNet's means and variances are not those of equalized SEM crops, and
in fine-tuning every batch is normalised by its own statistics, so the features the head is
fitted on are then close to those fine-tuning starts from. Only the statistics change: every
weight stays ImageNet's until fine-tuning.

The head is fitted by full-batch L-BFGS on the loss that fine-tuning will use (the cross-entropy
with the run's label smoothing) plus an L2 penalty, chosen among DECAYS by validation accuracy
(then loss), never by the test split: a head fitted on the plain cross-entropy of nearly
separable features grows large weights, and its confident mistakes on the first augmented
batches send large gradients into the pretrained layers, which LP-FT is meant to avoid.
"""
import torch
from tqdm import tqdm

from semcnn.evaluation.novelty import tapped
from semcnn.training.device import autocast

DECAYS = (1e-4, 1e-3, 1e-2)   # L2 penalties tried on the mean cross-entropy
STEPS = 200                   # L-BFGS iterations: converged on ~30,000 x 1,280 features


@torch.no_grad()
def adapt_statistics(model, batches, device, amp):
    """BatchNorm's running means and variances measured anew: the plain average over every
    crop of `batches` (a sample of the training split spread over its classes)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    kept = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None   # a cumulative average over every batch seen
    model.train()
    for x, _, _ in tqdm(batches, desc='BatchNorm statistics', leave=False, unit='batch'):
        with autocast(device, amp):
            model(x.to(device, non_blocking=True))
    for m, momentum in zip(norms, kept):
        m.momentum = momentum
    model.eval()


@torch.no_grad()
def head_inputs(model, batches, device, amp, desc):
    """(features the head reads, labels) of every batch, on the CPU, in float32."""
    model.eval()
    found, labels = [], []
    for x, y, _ in tqdm(batches, desc=desc, leave=False, unit='batch'):
        with autocast(device, amp), tapped(model) as seen:
            model(x.to(device, non_blocking=True))
        found.append(seen[-1].flatten(1).cpu())
        labels.append(y.cpu())
    return torch.cat(found), torch.cat(labels)


def fit_head(head, train, val, decay, smoothing=0.0, steps=STEPS):
    """Fit `head` (a module from features to class scores) on (features, labels) `train` with
    label smoothing `smoothing` and L2 penalty `decay` on its weights; its (accuracy,
    cross-entropy) on `val`."""
    x, y = train
    weights = [p for name, p in head.named_parameters() if not name.endswith('bias')]
    optimizer = torch.optim.LBFGS(head.parameters(), lr=1, max_iter=steps,
                                  history_size=20, line_search_fn='strong_wolfe')

    def loss():
        optimizer.zero_grad()
        value = (torch.nn.functional.cross_entropy(head(x), y, label_smoothing=smoothing)
                 + decay * sum((w * w).sum() for w in weights))
        value.backward()
        return value
    head.train()
    optimizer.step(loss)
    head.eval()
    with torch.no_grad():
        out = head(val[0])
    return (float((out.argmax(1) == val[1]).float().mean()),
            float(torch.nn.functional.cross_entropy(out, val[1])))


def linear_probe(model, sample_batches, view_batches, val_batches, device, amp, smoothing=0.0):
    """Measure the BatchNorm statistics on `sample_batches`, then fit model.head on the frozen
    features of the training views (an iterable of batch iterables) and choose its L2 penalty
    on the validation batches. Returns the history row of this 'epoch 0': training and
    validation loss and accuracy, and the penalty chosen."""
    adapt_statistics(model, sample_batches, device, amp)
    parts = [head_inputs(model, batches, device, amp, f'probe features, view {v + 1}')
             for v, batches in enumerate(view_batches)]
    train = (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
    val = head_inputs(model, val_batches, device, amp, 'probe features, validation')
    head = model.head.cpu().float()
    start = {k: v.clone() for k, v in head.state_dict().items()}
    best = None
    for decay in DECAYS:
        head.load_state_dict(start)
        val_acc, val_loss = fit_head(head, train, val, decay, smoothing)
        if best is None or (val_acc, -val_loss) > (best[0], -best[1]):
            best = (val_acc, val_loss, decay, {k: v.clone() for k, v in head.state_dict().items()})
    head.load_state_dict(best[3])
    with torch.no_grad():
        out = head(train[0])
    model.head.to(device)
    return {'train_loss': float(torch.nn.functional.cross_entropy(out, train[1])),
            'train_acc': float((out.argmax(1) == train[1]).float().mean()),
            'val_loss': best[1], 'val_acc': best[0], 'probe_decay': best[2],
            'probe_crops': len(train[1])}
