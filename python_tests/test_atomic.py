"""atomic_output: the target appears complete or not at all, with ordinary permissions."""

import os
import stat

import pytest

from disenttalk_fast._atomic import atomic_output


def test_success_replaces_target_with_umask_permissions(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_output(target) as tmp:
        with open(tmp, "w") as f:
            f.write("new")
        assert target.read_text() == "old"      # not visible until the block ends
    assert target.read_text() == "new"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert os.listdir(tmp_path) == ["out.txt"]


def test_writers_that_replace_the_file_still_get_umask_permissions(tmp_path):
    """safetensors' save_file swaps in a file of its own: checkpoints came out 0600."""
    import torch
    from safetensors.torch import save_file

    target = tmp_path / "w.safetensors"
    with atomic_output(target) as tmp:
        save_file({"a": torch.zeros(2)}, tmp)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_error_leaves_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            with open(tmp, "w") as f:
                f.write("partial")
            raise RuntimeError("encoder died")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_missing_folder_is_one_line_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_output(tmp_path / "nope" / "x.bin"):
            pass
