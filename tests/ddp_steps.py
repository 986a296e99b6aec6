"""Helper of test_fast_path.py: two epochs of train.py's loop (preloaded batches with flips/turns
and jitter, DDP, metrics summed over ranks) on a BatchNorm-free network, so that one process
and torchrun's processes must compute the same thing.

    python tests/ddp_steps.py OUT.pt                                  # one process
    torchrun --standalone --nproc_per_node=2 tests/ddp_steps.py OUT.pt

Rank 0 saves the final weights and each epoch's (train loss, train acc, val loss, val acc).
"""
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine import build_training, evaluate, train_one_epoch  # noqa: E402
from semcnn.data.augment import Augment  # noqa: E402
from semcnn.data.loaders import PreloadedBatches, seed_epoch  # noqa: E402
from semcnn.training import distributed  # noqa: E402
from semcnn.training.model import SEMClassifier  # noqa: E402

CONFIG = {'model': 'conv-relu-linear', 'channels_last': False, 'compile': False,
          'optimizer': 'adamw', 'lr': 3e-3,
          'weight_decay': 0.01, 'momentum': 0.9, 'fused': False, 'amp': 'none',
          'loss': 'cross_entropy', 'label_smoothing': 0.1, 'scheduler': 'cosine',
          'warmup_epochs': 0.5, 'epochs': 2}


def main(out):
    ranks, device = distributed.start('cpu')
    device = device or torch.device('cpu')
    data = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (96, 1, 16, 16), generator=data, dtype=torch.uint8)
    labels, names = torch.arange(96) % 3, [f'crop{i}' for i in range(96)]
    train = PreloadedBatches((images, labels, names), 16, shuffle=True, drop_last=True,
                             augmentation=Augment(flip_turn=True, jitter=0.1), ranks=ranks)
    # 45 validation crops in batches of 8: the last batch splits 3 + 2 over two ranks
    val = PreloadedBatches((images[:45], labels[:45], names[:45]), 8, shuffle=False,
                           drop_last=False, ranks=ranks)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                        nn.Flatten(), nn.Linear(128, 3))
    t = build_training(CONFIG, SEMClassifier(net), device, len(train), ranks)
    metrics = []
    for epoch in range(CONFIG['epochs']):
        seed_epoch(train, 0, epoch, ranks)
        loss, acc, _ = train_one_epoch(t, train, f'epoch {epoch + 1}', ranks)
        metrics.append([loss, acc, *evaluate(t, val, ranks)])
    if ranks.is_main:
        torch.save({'weights': t.raw.state_dict(), 'metrics': torch.tensor(metrics)}, out)
    distributed.stop()


if __name__ == '__main__':
    main(sys.argv[1])
