"""Faults in the middle of a job: a full disk or a read-only folder while a checkpoint or a search's files are
written is one line naming the file (exit 2), the previous file stays usable, and the job resumes once there is
room. Fault-injected writes everywhere; a real, small tmpfs where this process may mount one (root)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tiny_training import train_flags

from effdet_graph.atomic import atomic_output
from effdet_graph.cli import main
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.errors import OutputError
from effdet_graph.io.checkpoint import read_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("full_disk") / "shapes"
    make_dataset(folder, images=10, seed=0, image_size=128)
    return folder


@pytest.mark.parametrize(
    ("code", "reason", "advice"),
    [
        (errno.ENOSPC, "no space left on device", "free space on that device or choose another output folder"),
        (errno.EROFS, "read-only file system", "the file system is read-only; choose another output folder"),
        (errno.EACCES, "permission denied", "make the folder writable or choose another output folder"),
    ],
)
def test_a_write_that_fails_for_room_or_permission_is_one_line_and_keeps_the_old_file(tmp_path, code, reason, advice):
    target = tmp_path / "result.json"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(OutputError) as raised, atomic_output(target) as tmp:
        tmp.write_text("new, half", encoding="utf-8")
        raise OSError(code, os.strerror(code))
    assert str(raised.value) == f"{reason} while writing {target}; {advice}"
    assert target.read_text(encoding="utf-8") == "old" and os.listdir(tmp_path) == ["result.json"]


def test_other_errors_inside_a_write_pass_through_unchanged(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_output(tmp_path / "a.json"):
        raise FileNotFoundError(errno.ENOENT, "gone", "elsewhere.json")
    assert os.listdir(tmp_path) == []


def test_a_training_on_a_full_disk_ends_in_one_line_and_resumes_from_its_last_checkpoint(
    data, tmp_path, monkeypatch, capsys
):
    """The second checkpoint's write finds the disk full (injected into the file the checkpoint streams to)."""
    from effdet_graph.io import checkpoint

    out = tmp_path / "run"
    args = ["train", "--data", str(data), *train_flags(steps=6, bn_images=0), "--out", str(out)]
    save, calls = checkpoint.torch.save, []

    def full_after_the_first(payload, handle):
        calls.append(1)
        if len(calls) == 2:
            handle.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        save(payload, handle)

    monkeypatch.setattr(checkpoint.torch, "save", full_after_the_first)
    assert main(args) == 2
    message = capsys.readouterr().err.strip()
    assert message == (
        f"error: no space left on device while writing {out / 'last.pt'}; free space on that device or choose "
        "another output folder"
    )
    assert read_checkpoint(out / "last.pt")["step"] == 2 and not [p for p in os.listdir(out) if p.startswith(".")]
    monkeypatch.setattr(checkpoint.torch, "save", save)
    assert main([*args, "--resume", str(out / "last.pt")]) == 0
    assert read_checkpoint(out / "last.pt")["step"] == 6


def _mount_tmpfs(folder: Path, megabytes: float) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    size = f"size={int(megabytes * 2**20)}"
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", size, "tmpfs", str(folder)], capture_output=True).returncode == 0
    )


def test_a_training_on_a_real_full_tmpfs_ends_in_one_line_and_resumes_once_there_is_room(data, tmp_path, capsys):
    probe = tmp_path / "probe"
    assert main(["train", "--data", str(data), *train_flags(steps=2, bn_images=0), "--out", str(probe)]) == 0
    size = (probe / "last.pt").stat().st_size / 2**20
    disk = tmp_path / "tmpfs"
    if not _mount_tmpfs(disk, 1.5 * size):  # room for one checkpoint, not for its next one written beside it
        pytest.skip("mounting a tmpfs needs root and the mount command")
    try:
        out = disk / "run"
        args = ["train", "--data", str(data), *train_flags(steps=6, bn_images=0), "--out", str(out)]
        capsys.readouterr()
        assert main(args) == 2
        message = capsys.readouterr().err.strip()
        assert message.startswith(f"error: no space left on device while writing {out / 'last.pt'}; free space")
        assert read_checkpoint(out / "last.pt")["step"] == 2
        subprocess.run(["mount", "-o", f"remount,size={int(4 * size * 2**20)}", str(disk)], check=True)
        assert main([*args, "--resume", str(out / "last.pt")]) == 0
        assert read_checkpoint(out / "last.pt")["step"] == 6
    finally:
        subprocess.run(["umount", str(disk)], check=False)
