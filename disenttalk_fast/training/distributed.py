"""Multi-process training through torchrun and DistributedDataParallel.

    torchrun --nproc_per_node 8 -m disenttalk_fast.cli train DATA --out ckpt.safetensors ...
    torchrun --nnodes 2 --node_rank R --master_addr HOST --nproc_per_node 8 -m disenttalk_fast.cli train ...

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; `init_from_env` joins
the process group (NCCL on CUDA, gloo on CPU). DDP broadcasts rank 0's initial weights and
all-reduces gradients, so every rank holds the same weights after every step; each rank draws
its own data windows and noise (seed + rank), and only rank 0 writes checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch.distributed as dist

from disenttalk_fast._torch import torch


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(backend: str | None = None, device: str | None = None) -> DistInfo | None:
    """Join the process group torchrun describes; None when not launched by torchrun (or with
    WORLD_SIZE 1). device "cpu" forces gloo on CPU even where CUDA exists."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if use_cuda else "gloo"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    return DistInfo(rank, world, local_rank, dev)


def current() -> DistInfo | None:
    """The process group already joined (e.g. by a test or by init_from_env), if any."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    rank = dist.get_rank()
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if dist.get_backend() == "nccl":
        return DistInfo(rank, dist.get_world_size(), local_rank, torch.device("cuda", local_rank))
    return DistInfo(rank, dist.get_world_size(), local_rank, torch.device("cpu"))


def wrap(model, info: DistInfo):
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [info.device.index] if info.device.type == "cuda" else None
    return DDP(model, device_ids=ids)


def gather_tensors(t: torch.Tensor, info: DistInfo | None) -> list[torch.Tensor]:
    """Every rank's copy of an equally shaped tensor (a list of one without a process group)."""
    if info is None:
        return [t]
    device = info.device if dist.get_backend() == "nccl" else torch.device("cpu")
    src = t.to(device)
    out = [torch.empty_like(src) for _ in range(info.world_size)]
    dist.all_gather(out, src)
    return [o.cpu() for o in out]


def barrier(info: DistInfo | None) -> None:
    if info is not None:
        dist.barrier()


def shutdown(info: DistInfo | None) -> None:
    if info is not None and dist.is_initialized():
        dist.destroy_process_group()
