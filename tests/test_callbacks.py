"""Callbacks around the loop: image grids and their GIF across a resume, TensorBoard, the report's refresh."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

import gankit
from gankit.errors import GankitError

from conftest import StopAt, tiny_config


def digits_config(*overrides: str):
    return tiny_config("data.name=digits", "train.steps=12", "train.plot_every=5", *overrides)


def pictures(run) -> list[str]:
    return sorted(p.name for p in (run / "samples").glob("step_*.png"))


def gif_frames(path) -> int:
    with Image.open(path) as gif:
        return gif.n_frames


def test_image_grids_at_start_every_n_steps_and_end_with_a_gif(tmp_path):
    result = gankit.train(digits_config(), run_dir=tmp_path, progress=False)
    assert pictures(tmp_path) == ["step_0000000.png", "step_0000005.png", "step_0000010.png", "step_0000012.png"]
    with Image.open(tmp_path / "samples" / "step_0000012.png") as grid:
        assert grid.mode == "L" and grid.width >= 512  # 10 classes x 10 samples of 8x8, enlarged, names at the left
        first = np.asarray(grid)
    assert gif_frames(tmp_path / "samples" / "progress.gif") == 4
    assert result.trainer.G.training  # drawn in eval mode, given back in training mode
    with Image.open(tmp_path / "samples" / "step_0000000.png") as grid:
        assert not np.array_equal(first, np.asarray(grid))


def test_same_seed_gives_the_same_grids(tmp_path):
    for name in ("a", "b"):
        gankit.train(digits_config("train.steps=5"), run_dir=tmp_path / name, progress=False)
    for name in pictures(tmp_path / "a"):
        a, b = (np.asarray(Image.open(tmp_path / run / "samples" / name)) for run in ("a", "b"))
        assert np.array_equal(a, b)


def test_resumed_run_gif_holds_the_grids_of_every_session(tmp_path):
    gankit.train(digits_config(), run_dir=tmp_path, progress=False, callbacks=[StopAt(7)])
    assert pictures(tmp_path) == ["step_0000000.png", "step_0000005.png", "step_0000007.png"]
    # A grid past the checkpoint (as an aborted session would leave) is dropped, like its metrics lines.
    Image.new("L", (4, 4)).save(tmp_path / "samples" / "step_0000099.png")
    gankit.train(run_dir=tmp_path, resume=True, progress=False)
    assert pictures(tmp_path) == ["step_0000000.png", "step_0000005.png", "step_0000007.png",
                                  "step_0000010.png", "step_0000012.png"]
    assert gif_frames(tmp_path / "samples" / "progress.gif") == 5


def test_tensorboard_logs_every_record_and_the_pictures(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    gankit.train(digits_config("train.tensorboard=true", "eval.every=5", "eval.n=200", "eval.metrics=fid,classes"),
                 run_dir=tmp_path, progress=False, callbacks=[StopAt(7)])
    gankit.train(run_dir=tmp_path, resume=True, progress=False)  # a second session, a second event file
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/d_loss", "train/g_loss", "train/p_real", "train/p_fake"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("train/d_loss")] == [5, 7, 10, 12]  # each step once
    assert [e.step for e in events.Scalars("eval/fid")] == [5, 7, 10, 12]  # evaluations too
    assert {"eval/class_accuracy", "eval/classes_covered"} <= set(tags["scalars"])
    assert tags["images"] == ["samples"]
    images = events.Images("samples")
    assert [e.step for e in images] == [0, 5, 7, 10, 12] and images[0].width >= 512
    assert "config" in " ".join(tags["tensors"])  # the resolved config, as text


def test_missing_tensorboard_is_one_clear_error_before_the_run_starts(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    with pytest.raises(GankitError, match=r"pip install 'gankit\[tensorboard\]'"):
        gankit.train(tiny_config("train.tensorboard=true"), run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # no half-made run folder to trip over on the next try


def test_report_is_written_at_the_start_and_says_running(tmp_path):
    seen = {}

    class Peek:
        def on_step_end(self, trainer):
            if trainer.step == 1:
                seen["html"] = (tmp_path / "report.html").read_text()

    gankit.train(tiny_config(), run_dir=tmp_path, progress=False, callbacks=[Peek()])
    assert "running: step 0 of 20" in seen["html"] and 'http-equiv="refresh"' in seen["html"]
    final = (tmp_path / "report.html").read_text()
    assert "finished at step 20 of 20" in final and "refresh" not in final
