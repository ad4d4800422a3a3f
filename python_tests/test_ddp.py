"""DistributedDataParallel on gloo: two CPU processes train a few steps from DIFFERENT initial
weights and data windows, and must end with identical weights (DDP broadcasts rank 0's weights
and all-reduces the gradients); the checkpoint keeps both ranks' generator states."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD = 2


def _worker(rank: int, folder: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                            world_size=WORLD)
    try:
        from diffusion_testing import synthetic_clips, tiny_model
        from disenttalk_fast.training import distributed
        from disenttalk_fast.training.trainer import Trainer
        from safetensors.torch import save_file

        info = distributed.current()
        assert info is not None and info.rank == rank and info.world_size == WORLD
        model = tiny_model(seed=10 + rank)          # deliberately different on each rank
        trainer = Trainer(model, synthetic_clips(3, 30, seed=5), seed=0, batch_size=4, window=12,
                          lr=1e-3, device="cpu")
        assert trainer.data.batch_size == 2         # the global batch is split over the ranks
        trainer.fit(3, out=f"{folder}/ck.safetensors", progress=False)
        save_file({k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
                  f"{folder}/rank{rank}.safetensors")
        save_file({"g": trainer.generator.get_state()}, f"{folder}/rng{rank}.safetensors")
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path),), nprocs=WORLD, join=True)
    from safetensors.torch import load_file

    from diffusion_testing import tiny_model
    from disenttalk_fast.checkpoint import load_checkpoint

    w0, w1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(WORLD))
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    init = tiny_model(seed=10).state_dict()
    assert any(not torch.equal(init[k], w0[k]) for k in w0)   # it did train
    ck = load_checkpoint(tmp_path / "ck.safetensors")
    assert ck.meta["training"]["world_size"] == WORLD and ck.meta["training"]["step"] == 3
    for r in range(WORLD):   # each rank's own generator state is kept for an exact resume
        g = load_file(str(tmp_path / f"rng{r}.safetensors"))["g"]
        assert torch.equal(ck.extra_tensors[f"train.rng.rank{r}"], g)
    assert not torch.equal(ck.extra_tensors["train.rng.rank0"], ck.extra_tensors["train.rng.rank1"])
