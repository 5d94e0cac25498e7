"""Atomic writes: all or nothing, and the file permissions an ordinary write would leave (outputs shared with a group
must stay readable to it)."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from speechmeta.checkpoint import save_checkpoint
from speechmeta.fileio import append_csv_row, atomic_open, atomic_write_text, keep_csv_rows, remove_stale_temps


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    before = os.umask(0o022)
    os.umask(before)
    yield os.umask
    os.umask(before)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077], ids=["022", "002", "077"])
def test_a_new_file_gets_the_umask_permissions_like_open(tmp_path, umask, mask):
    umask(mask)
    atomic_write_text(tmp_path / "text", "a b\n")
    save_checkpoint(tmp_path / "model.pt", {"w": torch.zeros(2)})
    with open(tmp_path / "plain", "w") as f:
        f.write("a b\n")
    assert mode(tmp_path / "text") == mode(tmp_path / "model.pt") == mode(tmp_path / "plain") == 0o666 & ~mask


def test_a_replaced_file_keeps_its_permissions(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "wav.scp"
    target.write_text("old\n")
    target.chmod(0o640)
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n" and mode(target) == 0o640


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "text"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_open(target) as f:
        f.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["text"]


def test_the_temporaries_of_killed_writes_are_found_and_removed(tmp_path):
    target = tmp_path / "feats.scp"
    with atomic_open(target) as f:
        f.write("x\n")
        temps = [p for p in tmp_path.iterdir() if p != target]  # what a kill at this moment would leave
    assert [p.name.startswith(".feats.scp.") and p.name.endswith(".tmp") for p in temps] == [True]
    (tmp_path / temps[0].name).write_text("left by a killed writer")
    assert remove_stale_temps(tmp_path) == [temps[0]] and sorted(tmp_path.iterdir()) == [target]


def test_kept_csv_rows_take_a_new_header_so_appended_rows_line_up(tmp_path):
    """A run resumed by a newer version with more metrics columns: its rows must stay under the right names."""
    import csv

    path = tmp_path / "metrics.csv"
    path.write_text("step,loss\r\n0,1.5\r\n1,1.25\r\n2,1.0\r\n3,0.")  # the last row was cut short by a kill
    fields = ["step", "loss", "cer"]
    kept = keep_csv_rows(path, lambda r: int(r["step"]) < 2, fields)
    assert kept == [{"step": "0", "loss": "1.5", "cer": ""}, {"step": "1", "loss": "1.25", "cer": ""}]
    append_csv_row(path, fields, {"step": 2, "loss": 1.0, "cer": 0.5})
    assert list(csv.DictReader(open(path))) == [*kept, {"step": "2", "loss": "1.0", "cer": "0.5"}]
    assert keep_csv_rows(path, lambda r: True) == list(csv.DictReader(open(path)))  # without fields: the file's own
