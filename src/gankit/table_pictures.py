"""Pictures of a synthetic table beside the real one: a panel per column, and the two correlation matrices.

``column_pictures`` draws one PNG (``samples/columns.png`` in a run folder): a grid of small panels, one per
column. Numerical and datetime columns are overlaid histograms on the same bins (from the real column's
range; whole numbers get a bin each when there are few), as densities of the non-missing values: synthetic
values outside the real range fall off the panel, and the title says how many. Categorical and boolean
columns are side-by-side bars of category shares over all rows: the 12 commonest real categories, the rest
as "other" (synthetic categories the real data never had included), missing cells as "(missing)".

``correlation_pictures`` draws ``samples/correlations.png``: the real and the synthetic association matrices
side by side on one colour bar, with the mean absolute difference of their pairs in the title. Pairs of
numerical/datetime columns get Pearson's r (-1..1, over the rows where both are present); pairs with a
categorical/boolean column get the bias-corrected Cramér's V (0..1, Bergsma 2013), numbers cut into the real
column's deciles and missing cells as a category of their own, so that a table of mostly categories still
gets a matrix.

Inputs are typed frames (``gankit.data.table_schema.typed_frame``): numerical float64 with NaN, datetime64
with NaT, categorical/boolean text with None, and ``sdtypes`` (column -> SDMetrics sdtype, the columns to
draw, in order). Tables of more than ``MAX_ROWS`` rows are drawn from a seeded subset of rows. PNGs carry
no timestamp and are written atomically: the same tables give the same bytes, and a reader (the report)
never sees half a file.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import GankitError
from .fileio import atomic_write
from .report import COLUMNS_PICTURE, CORRELATIONS_PICTURE  # noqa: F401  (in samples/)

REAL_COLOR, FAKE_COLOR = "tab:blue", "tab:red"  # as gankit.sequence_pictures
SDTYPES = ("numerical", "datetime", "categorical", "boolean")
MAX_ROWS = 50_000  # rows drawn of each table (a seeded subset beyond): shares and histograms need no more
TOP_CATEGORIES, BINS, MIN_BINS, CRAMER_BINS = 12, 30, 10, 10  # bins: sqrt(rows) between MIN_BINS and BINS
PANEL_COLUMNS, PANEL_SIZE = 4, (3.5, 2.7)  # panels per row; inches of each, with its titles
NAME_CHARS, LABEL_CHARS = 40, 18  # shown of a column's name in a title, of a category or column on an axis


def column_pictures(real: pd.DataFrame, fake: pd.DataFrame, sdtypes: Mapping[str, str], path: str | Path,
                    max_columns: int = 24, seed: int = 0) -> Path:
    """One PNG at ``path``: a panel per column of ``sdtypes`` (the first ``max_columns``), real against synthetic."""
    names = _check(real, fake, sdtypes)
    rows_of = (len(real), len(fake))
    real, fake = _subset(real, seed), _subset(fake, seed + 1)
    shown = names[:max(1, max_columns)]
    plt = _pyplot()
    cols = min(PANEL_COLUMNS, len(shown))
    rows = math.ceil(len(shown) / cols)
    top, bottom = 1.25, 0.3  # inches above the panels (title, legend, the first row's titles) and below
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows + top + bottom),
                             dpi=100, squeeze=False)
    for ax, name in zip(axes.flat, shown):
        if sdtypes[name] in ("numerical", "datetime"):
            _histogram_panel(ax, real[name], fake[name], sdtypes[name] == "datetime")
        else:
            _shares_panel(ax, real[name], fake[name])
        ax.set_title(_title(name, sdtypes[name], real[name], fake[name]), fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25)
    for ax in axes.flat[len(shown):]:
        ax.set_axis_off()
    height = fig.get_figheight()
    more = f" (the first {len(shown)} of {len(names)} columns)" if len(shown) < len(names) else ""
    fig.suptitle(f"Columns, real and synthetic{more}: numbers as densities over the real range, categories as "
                 f"shares of rows", fontsize=10.5, y=1 - 0.1 / height, va="top")
    fig.legend(handles=_legend_handles(rows_of, (len(real), len(fake))), loc="upper center", ncol=2, fontsize=8.5,
               frameon=False, bbox_to_anchor=(0.5, 1 - 0.33 / height))
    fig.subplots_adjust(left=0.75 / fig.get_figwidth(), right=1 - 0.2 / fig.get_figwidth(), bottom=bottom / height,
                        top=1 - top / height, wspace=0.45, hspace=0.32 + 0.55 / PANEL_SIZE[1])
    return save_png(fig, path)


def correlation_pictures(real: pd.DataFrame, fake: pd.DataFrame, sdtypes: Mapping[str, str], path: str | Path,
                         seed: int = 0) -> Path:
    """One PNG at ``path``: the association matrices of the real and synthetic tables side by side (Pearson's r
    between numbers, Cramér's V for pairs with a category), one colour bar; with fewer than two columns, a
    picture saying so."""
    names = _check(real, fake, sdtypes)
    real, fake = _subset(real, seed), _subset(fake, seed + 1)
    plt = _pyplot()
    if len(names) < 2:
        fig = plt.figure(figsize=(6.0, 1.4), dpi=100)
        fig.text(0.5, 0.5, f"One column ({_short(names[0], NAME_CHARS)}): no correlations to show.",
                 ha="center", va="center", fontsize=11)
        return save_png(fig, path)
    a, b = association_matrix(real, sdtypes, names), association_matrix(fake, sdtypes, names, real)
    pairs = np.triu_indices(len(names), 1)
    diff = np.abs(a - b)[pairs]
    diff = diff[np.isfinite(diff)]
    mad = f"{diff.mean():.3f} over {len(diff)} of {len(pairs[0])} pairs" if len(diff) else "none (no pair defined)"
    mixed = any(sdtypes[n] in ("categorical", "boolean") for n in names)
    how = ("Pearson's r between numerical/datetime columns; bias-corrected Cramér's V (0 to 1) for pairs with a "
           "categorical/boolean column (numbers in the real deciles)" if mixed else
           "Pearson's r between numerical/datetime columns")
    k = len(names)
    side = min(max(2.6, 0.26 * k), 7.5)  # inches of one matrix
    size = 7.5 if k <= 16 else 6 if k <= 30 else 4.5  # of the labels
    label = 0.065 * size / 7.5 * min(LABEL_CHARS, max(len(n) for n in names)) + 0.15  # inches for the labels
    left, gap, bar, top = label, 0.3, 0.9, 0.95  # inches: y labels, between the matrices, colour bar, titles
    width, height = left + 2 * side + gap + bar, top + side + label
    fig = plt.figure(figsize=(max(width, 6.0), height), dpi=100)
    width = fig.get_figwidth()
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")  # grey: undefined (a constant or all-missing column)
    labels = [_short(n, LABEL_CHARS) for n in names]
    for index, (m, title) in enumerate(((a, "real"), (b, "synthetic"))):
        ax = fig.add_axes(((left + index * (side + gap)) / width, label / height, side / width, side / height))
        image = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks(range(k), labels, rotation=90, fontsize=size)
        ax.set_yticks(range(k), labels if index == 0 else [], fontsize=size)  # the same order on both
        ax.set_title(title, fontsize=10)
        if k <= 12:  # room for the values themselves
            for i, j in zip(*np.nonzero(np.isfinite(m))):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6.5 if k <= 8 else 5.5,
                        color="white" if abs(m[i, j]) > 0.6 else "0.15")
    cax = fig.add_axes(((left + 2 * side + gap + 0.15) / width, label / height, 0.15 / width, side / height))
    fig.colorbar(image, cax=cax).ax.tick_params(labelsize=7.5)
    chars = int(width * 13)  # of the 9 pt title on a line
    lines = [f"Associations, real and synthetic: mean |real - synthetic| {mad}", *textwrap.wrap(how, chars)]
    fig.suptitle("\n".join(lines), fontsize=9, y=1 - 0.08 / height, va="top")
    return save_png(fig, path)


def association_matrix(frame: pd.DataFrame, sdtypes: Mapping[str, str], names: list[str],
                       reference: pd.DataFrame | None = None) -> np.ndarray:
    """[k, k] associations of ``frame``'s columns ``names`` (1 on the diagonal, NaN where undefined): Pearson's r
    between numbers, Cramér's V for pairs with a category. Numbers are cut into the deciles of ``reference``
    (the real table; default ``frame``) for Cramér's V, so both tables are cut alike."""
    reference = frame if reference is None else reference
    k = len(names)
    out = np.full((k, k), np.nan)
    numeric = [i for i, n in enumerate(names) if sdtypes[n] in ("numerical", "datetime")]
    if numeric:
        values = pd.DataFrame({names[i]: _numbers(frame[names[i]]) for i in numeric})
        with np.errstate(all="ignore"):
            out[np.ix_(numeric, numeric)] = values.corr(method="pearson").to_numpy()  # pairwise complete rows
    if len(numeric) < k:
        codes = [_dense(_codes(frame[n], reference[n], sdtypes[n])) for n in names]
        for i in range(k):
            for j in range(i + 1, k):
                if i not in numeric or j not in numeric:
                    out[i, j] = out[j, i] = _cramers_v(*codes[i], *codes[j])
    defined = [i for i in range(k) if np.isfinite(np.delete(out[i], i)).any()]
    out[defined, defined] = 1.0  # the diagonal, where the column has any association at all
    return out


def cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-corrected Cramér's V of two integer-coded columns (Bergsma 2013, "A bias-correction for Cramér's V
    and Tschuprow's T"): phi2 = chi2 / n, less its expectation under independence (r-1)(c-1)/(n-1), over
    min(r~, c~) - 1 with r~ = r - (r-1)^2/(n-1). NaN when a column has one category."""
    return _cramers_v(*_dense(a), *_dense(b))


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes renumbered 0..m-1, and m."""
    values, inverse = np.unique(codes, return_inverse=True)
    return inverse.reshape(-1), len(values)


def _cramers_v(a: np.ndarray, r: int, b: np.ndarray, c: int) -> float:
    n = len(a)
    if r < 2 or c < 2 or n < 3:
        return float("nan")
    table = np.bincount(a * c + b, minlength=r * c).reshape(r, c).astype(np.float64)  # [r, c] counts
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    phi2 = ((table - expected) ** 2 / expected).sum() / n
    phi2 = max(0.0, phi2 - (r - 1) * (c - 1) / (n - 1))
    r_, c_ = r - (r - 1) ** 2 / (n - 1), c - (c - 1) ** 2 / (n - 1)
    denominator = min(r_ - 1, c_ - 1)
    return float(math.sqrt(min(phi2 / denominator, 1.0))) if denominator > 0 else float("nan")


def save_png(fig, path: str | Path) -> Path:
    """Write a figure as PNG, atomically and with no timestamp or version in it, and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    _pyplot().close(fig)
    atomic_write(path, buffer.getvalue())
    return Path(path)


# ------------------------------------------------------------------------------------------------ panels


def _histogram_panel(ax, real: pd.Series, fake: pd.Series, dates: bool) -> None:
    r, f = _present(_numbers(real)), _present(_numbers(fake))
    if not len(r):
        ax.text(0.5, 0.5, "no real values", ha="center", va="center", transform=ax.transAxes, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    edges = _edges(r, dates)
    if dates:  # nanoseconds -> matplotlib's days, so the axis shows dates
        import matplotlib.dates as mdates

        edges = mdates.date2num(edges.astype("datetime64[ns]"))
        r, f = (mdates.date2num(v.astype("datetime64[ns]")) for v in (r, f))
        locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    else:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(4))
    width = np.diff(edges)
    for values, color, fill in ((r, REAL_COLOR, 0.35), (f, FAKE_COLOR, 0.12)):
        if len(values):  # density of the non-missing values: mass outside the bins is not spread over them
            density = np.histogram(values, edges)[0] / (len(values) * width)
            ax.stairs(density, edges, fill=True, color=color, alpha=fill, linewidth=0)
            ax.stairs(density, edges, color=color, linewidth=1.2)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(_max_ticks(3))
    ax.tick_params(axis="y", labelleft=False)  # densities in 1/unit say little; the overlay compares the shapes


def _shares_panel(ax, real: pd.Series, fake: pd.Series) -> None:
    labels, real_share, fake_share = category_shares(real, fake)
    from matplotlib.collections import PolyCollection

    y = np.arange(len(labels))
    for centre, share, color in ((y - 0.2, real_share, REAL_COLOR), (y + 0.2, fake_share, FAKE_COLOR)):
        # one collection of rectangles: a tenth of what as many barh patches cost to draw
        boxes = [((0, c - 0.2), (w, c - 0.2), (w, c + 0.2), (0, c + 0.2)) for c, w in zip(centre, share)]
        ax.add_collection(PolyCollection(boxes, facecolors=color, edgecolors="none", alpha=0.8))
    ax.set_yticks(y, [_short(c, LABEL_CHARS) for c in labels], fontsize=7 if len(labels) <= 8 else 6)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # commonest on top
    from matplotlib.ticker import PercentFormatter

    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.xaxis.set_major_locator(_max_ticks(4))
    ax.set_xlim(0, max(real_share.max(initial=0), fake_share.max(initial=0), 0.01) * 1.08)


def _title(name: str, sdtype: str, real: pd.Series, fake: pd.Series) -> str:
    """Three lines at most: the name; the sdtype and missing shares; synthetic values off the real range."""
    lines = [_short(name, NAME_CHARS), sdtype]
    rm, fm = real.isna().mean() if len(real) else 0.0, fake.isna().mean() if len(fake) else 0.0
    if fm == 1:
        lines[1] += " · synthetic all missing"
    elif rm or fm:
        lines[1] += f" · missing: real {_percent(rm)}, synth. {_percent(fm)}"
    numbers = sdtype in ("numerical", "datetime")
    r, f = (_present(_numbers(real)), _present(_numbers(fake))) if numbers else ((), ())
    if len(r) and len(f):
        outside = float(((f < r.min()) | (f > r.max())).mean())
        if outside:
            lines.append(f"synthetic outside the real range: {_percent(outside)}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ values


def category_shares(real: pd.Series, fake: pd.Series, top: int = TOP_CATEGORIES
                    ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(labels, real shares, synthetic shares) over all rows of each: the ``top`` commonest real categories
    (ties by name), then "(other)" (the rest, and synthetic categories the real data lacks) and "(missing)",
    each only when either table has some."""
    r, f = _text(real), _text(fake)
    counts = r.value_counts(dropna=True)
    kept = [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    r_counts, f_counts = counts.reindex(kept).to_numpy(float), f.value_counts().reindex(kept, fill_value=0)
    rows = [(c, rc, fc) for c, rc, fc in zip(kept, r_counts, f_counts.to_numpy(float))]
    for label, keep in (("(other)", lambda s: s.notna() & ~s.isin(kept)), ("(missing)", lambda s: s.isna())):
        rc, fc = float(keep(r).sum()), float(keep(f).sum())
        if rc or fc:
            rows.append((label, rc, fc))
    labels = [c for c, _, _ in rows]
    return (labels, np.array([rc for _, rc, _ in rows]) / max(len(r), 1),
            np.array([fc for _, _, fc in rows]) / max(len(f), 1))


def _check(real: pd.DataFrame, fake: pd.DataFrame, sdtypes: Mapping[str, str]) -> list[str]:
    names = list(sdtypes)
    if not names:
        raise GankitError("sdtypes names no columns; expected column -> numerical, categorical, boolean or datetime")
    for name in names:
        if sdtypes[name] not in SDTYPES:
            raise GankitError(f"column {name!r}: sdtype {sdtypes[name]!r}; expected one of {', '.join(SDTYPES)}")
        for frame, which in ((real, "real"), (fake, "synthetic")):
            if name not in frame.columns:
                raise GankitError(f"column {name!r} is not in the {which} table (its columns: "
                                  f"{', '.join(map(str, frame.columns))})")
    return names


def _subset(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    if len(frame) <= MAX_ROWS:
        return frame
    keep = np.sort(np.random.default_rng(seed).choice(len(frame), MAX_ROWS, replace=False))
    return frame.iloc[keep]


def _numbers(s: pd.Series) -> np.ndarray:
    """float64 values, NaN where missing; datetimes as nanoseconds since 1970."""
    if pd.api.types.is_datetime64_any_dtype(s) or (s.dtype == object and s.notna().any()
                                                   and isinstance(s.dropna().iloc[0], pd.Timestamp)):
        t = pd.to_datetime(s, errors="coerce")
        out = t.to_numpy().astype("datetime64[ns]").astype(np.int64).astype(np.float64)
        out[t.isna().to_numpy()] = np.nan
        return out
    return pd.to_numeric(s, errors="coerce").to_numpy(np.float64)


def _present(v: np.ndarray) -> np.ndarray:
    return v[np.isfinite(v)]


def _text(s: pd.Series) -> pd.Series:
    """Categories as text (None where missing), so that True and "True" are one category."""
    missing = s.isna().to_numpy()
    values = s.to_numpy(dtype=object, copy=True)
    if pd.api.types.infer_dtype(values[~missing], skipna=False) not in ("string", "empty"):
        values[~missing] = [str(v) for v in values[~missing]]
    values[missing] = None
    return pd.Series(values, index=s.index, dtype=object)


def _codes(s: pd.Series, reference: pd.Series, sdtype: str) -> np.ndarray:
    """[n] integer codes for a contingency table: categories by text, numbers by ``reference``'s deciles; missing
    cells are a code of their own."""
    if sdtype in ("categorical", "boolean"):
        t = _text(s)
        return pd.factorize(t.fillna("\0missing"), sort=True)[0]
    v, ref = _numbers(s), _present(_numbers(reference))
    cuts = np.unique(np.quantile(ref, np.linspace(0, 1, CRAMER_BINS + 1)[1:-1])) if len(ref) else np.array([])
    return np.where(np.isfinite(v), np.searchsorted(cuts, v, side="right"), len(cuts) + 1)


def _edges(values: np.ndarray, dates: bool) -> np.ndarray:
    """Bin edges over the real values' range: a bin per whole number when they are whole and few."""
    lo, hi = float(values.min()), float(values.max())
    bins = int(np.clip(round(math.sqrt(len(values))), MIN_BINS, BINS))  # a small table gets wider bins
    if not dates and np.all(values == np.round(values)) and hi - lo <= BINS:
        return np.arange(lo - 0.5, hi + 1.0)
    if hi <= lo:
        pad = abs(lo) * 0.05 or (86_400e9 if dates else 0.5)  # one value: a bin around it
        lo, hi = lo - pad, hi + pad
    return np.linspace(lo, hi, bins + 1)


def _legend_handles(rows: tuple[int, int], drawn: tuple[int, int]) -> list:
    from matplotlib.patches import Patch

    def label(name: str, n: int, m: int) -> str:
        return f"{name} ({n:,} rows)" if n == m else f"{name} ({m:,} seeded rows of {n:,})"

    return [Patch(facecolor=c, edgecolor=c, alpha=0.6, label=label(name, n, m))
            for c, name, n, m in zip((REAL_COLOR, FAKE_COLOR), ("real", "synthetic"), rows, drawn)]


def _max_ticks(n: int):
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(n)


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%" if share >= 0.01 or share == 0 else f"{100 * share:.1g}%"


def _short(text: str, chars: int) -> str:
    text = str(text)
    return text if len(text) <= chars else text[:chars - 1] + "…"


def _pyplot():
    from .plots import _pyplot

    return _pyplot()
