"""Atomic writes: the whole new file or the old one, with the permissions open() would have given."""

from __future__ import annotations

import os
import stat

import pytest

from gankit.fileio import atomic_write


def test_written_files_get_the_mode_open_gives_not_mkstemps_0600(tmp_path):
    atomic_write(tmp_path / "a.bin", b"x")
    (tmp_path / "plain.bin").write_bytes(b"x")
    assert stat.S_IMODE(os.stat(tmp_path / "a.bin").st_mode) == stat.S_IMODE(os.stat(tmp_path / "plain.bin").st_mode)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    atomic_write(tmp_path / "a.bin", b"old")

    def interrupted(fd):
        raise KeyboardInterrupt  # as Ctrl-C while the new bytes are being flushed

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "a.bin", b"new")
    assert (tmp_path / "a.bin").read_bytes() == b"old" and os.listdir(tmp_path) == ["a.bin"]
