"""report.html: opened from disk in headless Chromium, every picture must decode; the text is escaped."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

import gankit
from gankit.report import render

from conftest import tiny_config

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="the browser check needs /usr/bin/chromium "
                                                                   "(Debian package chromium)")


class Images(HTMLParser):
    """src -> data-width (the decoded width the page's own script records) of each <img>; and the page's text."""

    def __init__(self):
        super().__init__()
        self.widths, self.text = {}, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.widths[attrs["src"]] = int(attrs.get("data-width", -1))

    def handle_data(self, data):
        self.text.append(data)


def render_in_chromium(page: Path, profile: Path) -> Images:
    """The page's DOM after load, as headless Chromium built it from the file on disk."""
    result = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=90)
    assert result.returncode == 0 and "<html" in result.stdout, result.stderr[-2000:]
    dom = Images()
    dom.feed(result.stdout)
    return dom


def assert_all_rendered(run: Path, dom: Images, expected: set[str]) -> None:
    assert set(dom.widths) == expected
    for src, width in dom.widths.items():
        with Image.open(run / src) as im:
            assert width == im.width > 0, src  # decoded by the browser at the file's own size


@needs_chromium
def test_report_of_an_image_run_renders_with_curves_grid_and_gif(tmp_path):
    run = tmp_path / "run"
    config = tiny_config("data.name=digits", "train.steps=10", "train.plot_every=5")
    gankit.train(config, run_dir=run, progress=False)
    dom = render_in_chromium(run / "report.html", tmp_path / "profile")
    assert_all_rendered(run, dom, {"report_curves.png", "samples/step_0000010.png", "samples/progress.gif"})
    text = "".join(dom.text)
    assert "finished at step 10 of 10" in text and 'name = "digits"' in text  # status and config.toml

    (run / "samples" / "progress.gif").unlink()  # the check must see a broken picture, and so must a reader
    dom = render_in_chromium(run / "report.html", tmp_path / "profile")
    assert dom.widths["samples/progress.gif"] == 0 and "missing: samples/progress.gif" in "".join(dom.text)


@needs_chromium
def test_report_of_a_2d_run_renders_with_curves_and_the_latest_plot(tmp_path):
    run = tmp_path / "run"
    gankit.train(tiny_config(), run_dir=run, progress=False)
    dom = render_in_chromium(run / "report.html", tmp_path / "profile")
    assert_all_rendered(run, dom, {"report_curves.png", "samples/step_0000020.png"})
    assert "finished at step 20 of 20" in "".join(dom.text)


def test_report_escapes_what_comes_from_the_run():
    page = render("a<b", "finished at step 1 of 1", [("data", "x&y")], None, [], [], 'name = "<script>"')
    assert "a&lt;b" in page and "x&amp;y" in page and "&lt;script&gt;" in page
    assert "<script>\"" not in page and "No logged step yet" in page
