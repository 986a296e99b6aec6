"""The loss, optimizer and learning-rate schedule that a config names: edit them here.

loss_fn / optimize_fn / schedule_fn are the extension points: add a branch to support another
loss, optimizer or schedule, and its name to LOSSES / OPTIMIZERS / SCHEDULERS.

torch is imported where it is used: config.py reads the names below to check a config, and
needs no torch for that.
"""
import math

# The names each factory takes; config.check_values accepts only these, before any work starts.
LOSSES = ('cross_entropy',)
OPTIMIZERS = ('adam', 'adamw', 'sgd')
SCHEDULERS = ('none', 'cosine')


def loss_fn(config):
    import torch
    return torch.nn.CrossEntropyLoss(label_smoothing=config['label_smoothing'])


def optimize_fn(config, params):
    """The optimizer; with config['fused'], its single-kernel implementation (same update)."""
    import torch
    name, lr, wd = config['optimizer'], config['lr'], config['weight_decay']
    fused = {'fused': True} if config['fused'] else {}
    if name == 'sgd':
        return torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=config['momentum'],
                               nesterov=config['momentum'] > 0, **fused)
    adam = torch.optim.Adam if name == 'adam' else torch.optim.AdamW
    return adam(params, lr=lr, weight_decay=wd, **fused)


def schedule_fn(config, optimizer, steps_per_epoch):
    """Learning-rate factor, stepped after every optimizer step: a linear warm-up over
    warmup_epochs, then constant (none) or a cosine down to zero at the last step (cosine)."""
    import torch
    warmup = config['warmup_epochs'] * steps_per_epoch
    total = config['epochs'] * steps_per_epoch
    cosine = config['scheduler'] == 'cosine'

    def factor(step):
        if step < warmup:
            return min(1.0, (step + 1) / warmup)
        if cosine:
            done = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.5 * (1 + math.cos(math.pi * done))
        return 1.0
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
