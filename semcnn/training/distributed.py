"""Training on several GPUs (or CPU processes) with torchrun: one process per device.

    torchrun --nproc_per_node=4 train.py --dataset paper_split --version gpu
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 \
        train.py --dataset paper_split --version gpu          # on each of the two machines

Without torchrun (no RANK in the environment) everything here is a no-op for one process.
batch_size stays the global batch, split evenly over the processes, so a recipe means the same
optimisation on 1 or N GPUs.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from semcnn.files.errors import fail


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self):
        """Only this process prints progress and writes files."""
        return self.rank == 0


def start(device_name):
    """(Ranks, this process's device); joins the process group when torchrun started us."""
    if 'RANK' not in os.environ:
        return Ranks(), None
    rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    if device_name not in ('auto', 'cuda', 'cpu'):
        fail(f'device={device_name}: under torchrun each process uses cuda:LOCAL_RANK; '
             'use device=auto, cuda or cpu')
    if device_name != 'cpu' and torch.cuda.is_available():
        if local_rank >= torch.cuda.device_count():
            fail(f'torchrun started {local_rank + 1}+ processes on a machine with '
                 f'{torch.cuda.device_count()} GPU(s); use --nproc_per_node at most that')
        device = torch.device('cuda', local_rank)
        torch.cuda.set_device(device)
        backend = 'nccl'
    else:
        device, backend = torch.device('cpu'), 'gloo'
    dist.init_process_group(backend)
    return Ranks(rank, world), device


def stop():
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier():
    if dist.is_initialized():
        dist.barrier()


def sum_over_ranks(values, device):
    """The sums over all processes of a list of numbers (float64), as a list."""
    total = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(total)
    return total.tolist()


def broadcast_buffers(model):
    """BatchNorm running statistics as rank 0 has them: each rank updated its own in the last
    training step, and evaluation and checkpoints must agree on one set."""
    if dist.is_initialized():
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)
