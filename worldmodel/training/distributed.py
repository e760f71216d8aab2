"""One process or many: torchrun's environment decides, PyTorch DistributedDataParallel does the work.

``torchrun --nproc_per_node N`` (or ``--nnodes``/``--rdzv_endpoint`` for several machines) sets
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; without them training runs in one process. The backend
is NCCL on GPUs and gloo on CPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from worldmodel.precision import resolve_device


@dataclass
class DistributedContext:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` under DistributedDataParallel when there are several processes (its gradients are
        averaged during backward), else ``module`` itself. Call its forward through what this returns."""
        if not self.enabled:
            return module
        return DistributedDataParallel(module, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def mean(self, values: list[float]) -> list[float]:
        """The mean over processes of each value (identity in one process)."""
        if not self.enabled:
            return values
        # gloo reduces CPU tensors, NCCL device tensors.
        device = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return (tensor / self.world_size).tolist()

    def check_replicas(self, module: torch.nn.Module) -> None:
        """Raise if the processes' copies of ``module`` differ (DDP keeps them equal; a mismatch is a bug)."""
        if not self.enabled:
            return
        device = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
        checksum = torch.stack([p.detach().double().sum() for p in module.parameters()]).to(device)
        gathered = [torch.zeros_like(checksum) for _ in range(self.world_size)]
        dist.all_gather(gathered, checksum)
        if any(not torch.equal(g, gathered[0]) for g in gathered):
            raise RuntimeError(
                "the model replicas of the processes differ after training (DistributedDataParallel out of sync)"
            )

    def leave_together(self) -> None:
        """After a run that ended normally: wait for every rank before the group is destroyed. A rank
        that tore down its gloo group while rank 0 was still writing the model aborted at exit
        ("terminate called without an active exception", SIGABRT) in a test on a clean clone."""
        if self.enabled and dist.is_initialized():
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def setup_distributed(device: str = "") -> DistributedContext:
    """Read torchrun's environment, join the process group when there are several processes, pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = resolve_device(device).type == "cuda"  # ValueError for a GPU this machine lacks
    if use_cuda:
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistributedContext(rank, local_rank, world_size, chosen)
