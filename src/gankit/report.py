"""A run's report: one static page, ``RUN/report.html``, that opens from disk with no server.

It shows the run's status and facts, the last logged statistics, training curves drawn from
``metrics.jsonl`` (``report_curves.png`` in the run folder), the latest sample picture, the progress GIF
when there is one, a sequence run's PCA and t-SNE picture, and the resolved ``config.toml``. Everything it
shows is read from the run folder, so a report can be rebuilt from a run folder alone. Pictures are linked
by relative paths: the run folder can be moved or copied as a whole.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Sequence

from .fileio import atomic_write
from .runs import RunDir

CURVES = "report_curves.png"
EVAL_CURVES = "report_eval.png"
# Panels of the evaluation picture: (result keys, title); a panel shows the keys the run computed.
EVAL_PANELS = ((("fid",), "Fréchet distance"), (("kid_mean",), "kernel distance"),
               (("precision", "recall", "coverage", "class_accuracy", "high_quality"), "share"),
               (("modes_covered", "classes_covered"), "modes covered"))
CAPTION = "caption.txt"  # in samples/: the caption of the latest picture, where a run writes its own
PROGRESS_GIF = "progress.gif"  # in samples/
EMBEDDING = "embedding.png"  # in samples/: PCA and t-SNE of a sequence run (gankit.sequence_pictures)
COLUMNS_PICTURE, CORRELATIONS_PICTURE = "columns.png", "correlations.png"  # in samples/: a table run's
REFRESH_S = 30  # a report of a running training reloads itself this often

# Columns of the "last logged step" table: (key in metrics.jsonl, heading, format)
LAST_RECORD = (("step", "step", "{:d}"), ("d_loss", "d_loss", "{:.4f}"), ("g_loss", "g_loss", "{:.4f}"),
               ("p_real", "D(real)", "{:.3f}"), ("p_fake", "D(fake)", "{:.3f}"),
               ("d_grad_norm", "|grad D|", "{:.3g}"), ("g_grad_norm", "|grad G|", "{:.3g}"),
               ("steps_per_s", "steps/s", "{:.1f}"), ("samples_per_s", "samples/s", "{:.0f}"))

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1240px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.status { font-size: 1.1em; font-weight: 600; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: right; border-bottom: 1px solid #eee; }
.figures { display: flex; flex-wrap: wrap; gap: 1em 1.5em; align-items: flex-start; }
figure { margin: 0; display: table; }  /* with table-caption: the caption wraps at the picture's width */
figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { display: table-caption; caption-side: bottom; color: #555; font-size: 0.9em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
.missing { color: #b00; }
"""

# Marks each picture with its decoded width (data-width, 0 when it failed) and flags a broken one, so a
# missing file shows as such for a reader, and a test can check in a headless browser that all rendered.
SCRIPT = """
for (const img of document.images) {
  const mark = () => {
    img.dataset.width = img.naturalWidth;
    if (img.naturalWidth) return;
    const note = document.createElement("p");
    note.className = "missing";
    note.textContent = "missing: " + img.getAttribute("src");
    img.after(note);
  };
  if (img.complete) mark(); else { img.addEventListener("load", mark); img.addEventListener("error", mark); }
}
"""


def write_report(run: RunDir, status: str, facts: Sequence[tuple[str, str]] = (), running: bool = False) -> Path:
    """Write (or replace) ``report.html`` and its curve pictures; returns the report's path.

    ``status`` is the headline (``finished at step 5000 of 5000``); ``facts`` are (name, text) pairs
    listed under it. A ``running`` report reloads itself every ``REFRESH_S`` seconds.
    """
    records = run.read_metrics()
    training = [r for r in records if "steps_per_s" in r]  # the logged steps, whatever the game logged
    warnings = [r["warning"] for r in records if "warning" in r]
    evaluations = [r for r in records if "eval" in r]
    curves = write_curves(run.path, training, evaluations)
    pictures = latest_pictures(run)
    config = run.config_path.read_text(encoding="utf-8") if run.config_path.is_file() else ""
    page = render(run.path.name, status, facts, training[-1] if training else None, curves, pictures, config,
                  refresh=REFRESH_S if running else None, evaluation=evaluations[-1] if evaluations else None,
                  warnings=warnings)
    atomic_write(run.report_path, page.encode("utf-8"))  # a reader never sees half a page
    return run.report_path


def write_curves(folder: Path, records: list[dict[str, Any]],
                 evaluations: Sequence[dict[str, Any]] = ()) -> list[tuple[str, str]]:
    """The loss and D-output curves as one PNG in ``folder``, and the evaluation curves as another; returns
    [(file name, caption)], or [] with no records."""
    out = write_eval_curves(folder, evaluations)
    if not records:
        return out
    from .plots import plot_curves

    steps = [r["step"] for r in records]

    def column(key: str) -> list[float]:
        return [r.get(key, float("nan")) for r in records]

    losses = list(dict.fromkeys(k for r in records for k in r if k.endswith("_loss")))  # whatever the game logged
    panels = [{"series": {k: column(k) for k in losses}, "title": "losses", "ylabel": "loss"}] if losses else []
    caption = "The losses the game logged, averaged over each logging interval."
    if any("p_real" in r for r in records):
        panels.append({"series": {"D(real)": column("p_real"), "D(fake)": column("p_fake")}, "title": "D's mean output",
                       "ylabel": "sigmoid(D(x))", "reference": 0.5, "ylim": (-0.02, 1.02)})
        caption = ("Left: the losses of D and G, averaged over each logging interval. Right: D's mean "
                   "probability that a real (D(real)) or generated (D(fake)) batch is real. At the equilibrium "
                   "of the original GAN both are 1/2; D(real) near 1 with D(fake) near 0 for long means D is "
                   "winning.")
    if not panels:
        return out
    plot_curves(steps, panels, folder / CURVES)
    return [(CURVES, caption)] + out


def write_eval_curves(folder: Path, evaluations: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """The headline metrics over training steps (``EVAL_CURVES``), from the ``eval`` records of metrics.jsonl."""
    if not evaluations:
        return []
    from .plots import plot_curves

    steps = [r["step"] for r in evaluations]
    panels = []
    for keys, title in EVAL_PANELS:
        series = {k: [r["eval"].get(k) if r["eval"].get(k) is not None else float("nan") for r in evaluations]
                  for k in keys if any(k in r["eval"] for r in evaluations)}
        if series:
            panels.append({"series": series, "title": title, "ylabel": title})
    if not panels:
        return []
    plot_curves(steps, panels, folder / EVAL_CURVES)
    features = evaluations[-1].get("features", "?")
    return [(EVAL_CURVES, f"Metrics of {evaluations[-1].get('n_fake', '?')} samples from a fixed noise batch at "
                          f"each evaluation, on {features} features (gankit.metrics). Fréchet and kernel distances: "
                          f"lower is better; precision, recall, coverage and class accuracy: higher is better.")]


def latest_pictures(run: RunDir) -> list[tuple[str, str]]:
    """(path relative to the run folder, caption) of the latest sample picture and of the progress GIF."""
    out = []
    pictures = run.pictures()
    if pictures:
        step, path = pictures[-1]
        if path.with_suffix(".txt").is_file():  # a text run's table (gankit.sequence_pictures)
            out.append((f"{run.samples.name}/{path.name}", f"Generated items at step {step} (in full in "
                        f"{run.samples.name}/{path.stem}.txt), from the same fixed noise as every picture of this "
                        f"run, beside real items."))
        elif (run.samples / CAPTION).is_file():  # the run's own words (an image-to-image run's rows)
            text = (run.samples / CAPTION).read_text(encoding="utf-8").strip()
            out.append((f"{run.samples.name}/{path.name}", text.replace("{step}", str(step))))
        else:
            out.append((f"{run.samples.name}/{path.name}", f"Generated samples at step {step}, "
                        f"from the same fixed noise as every picture of this run."))
    gif = run.samples / PROGRESS_GIF
    if gif.is_file():
        out.append((f"{run.samples.name}/{gif.name}", "Progress: the pictures of this run in order, as an animation."))
    for name, caption in ((COLUMNS_PICTURE, "Each column, real (blue) against synthetic (red): numbers as densities "
                           "over the real range, categories as shares of rows."),
                          (CORRELATIONS_PICTURE, "Associations, real against synthetic: Pearson's r between numbers, "
                           "Cramér's V for pairs with a category; the title gives the mean absolute difference.")):
        if (run.samples / name).is_file():
            out.append((f"{run.samples.name}/{name}", caption))
    embedding = run.samples / EMBEDDING
    if embedding.is_file():
        out.append((f"{run.samples.name}/{EMBEDDING}", "Real and generated sequences as TimeGAN's figures show them: "
                    "each sequence reduced to its mean over features at every step, then PCA (fit on the real ones, "
                    "left) and t-SNE of both together (right). Generated points that cover the real ones, and no "
                    "more, mean G's sequences are distributed like the data's."))
    for picture in sorted(run.samples.glob("*.png")):  # pictures with their own caption (gankit.anomaly_pictures)
        caption = picture.with_suffix(".caption.txt")
        if caption.is_file():
            out.append((f"{run.samples.name}/{picture.name}", caption.read_text(encoding="utf-8").strip()))
    for grid in sorted(run.samples.glob("codes-c*.png")):  # InfoGAN's (gankit.pictures)
        j = grid.stem.removeprefix("codes-c")
        out.append((f"{run.samples.name}/{grid.name}", f"Latent codes: a row per value of the categorical code c0, "
                    f"continuous code {j} from -1 (left) to 1 (right); the noise and the other codes fixed."))
    return out


def render(name: str, status: str, facts: Sequence[tuple[str, str]], record: dict[str, Any] | None,
           curves: Sequence[tuple[str, str]], pictures: Sequence[tuple[str, str]], config: str,
           refresh: int | None = None, evaluation: dict[str, Any] | None = None,
           warnings: Sequence[str] = ()) -> str:
    """The page as a string; every text that comes from the run is escaped."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>gankit run: {e(name)}</title>",
             *([f'<meta http-equiv="refresh" content="{refresh}">'] if refresh else []),
             f"<style>{STYLE}</style></head><body>",
             f"<h1>gankit run: {e(name)}</h1>",
             f'<p class="status" id="status">{e(status)}</p>']
    if facts:
        parts.append("<ul>" + "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in facts) + "</ul>")
    if warnings:
        parts.append('<h2>Warnings</h2><ul id="warnings">' + "".join(f'<li class="missing">{e(w)}</li>'
                                                                     for w in warnings) + "</ul>")
    parts.append("<h2>Last logged step</h2>")
    if record:
        known = {key for key, _, _ in LAST_RECORD}
        cells = [(head, fmt.format(record[key])) for key, head, fmt in LAST_RECORD if key in record]
        cells[1:1] = [(key, f"{value:.4g}") for key, value in record.items()  # the game's other statistics
                      if key not in known and isinstance(value, (int, float))]
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h, _ in cells) + "</tr><tr>"
                     + "".join(f"<td>{e(v)}</td>" for _, v in cells) + "</tr></table>")
    else:
        parts.append("<p>No logged step yet.</p>")
    if evaluation:
        values = [(k, v) for k, v in evaluation["eval"].items() if isinstance(v, (int, float))]
        parts.append(f"<h2>Last evaluation (step {evaluation['step']}, {e(str(evaluation.get('features', '?')))} "
                     f"features, {evaluation.get('n_fake', '?')} samples)</h2>")
        parts.append('<table id="evaluation"><tr>' + "".join(f"<th>{e(k)}</th>" for k, _ in values) + "</tr><tr>"
                     + "".join(f"<td>{v:.4g}</td>" for _, v in values) + "</tr></table>")
    for title, figures in (("Training curves", curves), ("Samples", pictures)):
        if figures:
            parts.append(f"<h2>{title}</h2>")
            parts += ['<div class="figures">',
                      *(f'<figure><img src="{e(src)}" alt="{e(src)}"><figcaption>{e(caption)}</figcaption></figure>'
                        for src, caption in figures), "</div>"]
    parts += ["<h2>Config (config.toml)</h2>", f"<pre>{e(config)}</pre>",
              f"<script>{SCRIPT}</script>", "</body></html>", ""]
    return "\n".join(parts)
