"""R's way of printing numbers and tables, shared by every printed summary (lmer, gls/lme, aov)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "SIGNIFICANCE_LEGEND",
    "abbreviate",
    "format_column",
    "format_p_values",
    "r_format",
    "significance_stars",
    "text_table",
]


def abbreviate(name: str, width: int = 6) -> str:
    """Short column labels for the correlation table (R's ``abbreviate``, simplified)."""
    if name == "(Intercept)":
        return "(Intr)"
    if len(name) <= width:
        return name
    head, tail = name[0], name[1:]
    for vowel_free in (tail.replace(c, "") for c in "aeiou"):
        tail = vowel_free
        if len(head + tail) <= width:
            break
    return (head + tail)[:width]


def format_column(values, digits: int = 4) -> list[str]:
    """Common fixed decimals so that the smallest value shows ``digits`` significant digits (trailing
    zeros kept, unlike R's ``format``: see :func:`_r_format`); scientific notation for extreme sizes."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values) & (values != 0)]
    if finite.size == 0:
        return [f"{v:g}" if np.isfinite(v) else "" for v in values]
    magnitudes = np.floor(np.log10(np.abs(finite))).astype(int)
    if magnitudes.max() >= 15 or magnitudes.min() <= -5:
        return [f"{v:.{digits - 1}e}" if np.isfinite(v) else "" for v in values]
    decimals = int(min(max(digits - 1 - magnitudes.min(), 0), 15))
    return [f"{v:.{decimals}f}" if np.isfinite(v) else "" for v in values]


def _decimals_for(value: float, digits: int) -> int:
    """Decimals R's ``format(x, digits=)`` needs to show ``value`` with up to ``digits`` significant
    digits, trailing zeros dropped."""
    if value == 0 or not np.isfinite(value):
        return 0
    rounded = float(f"{value:.{digits - 1}e}")
    magnitude = int(np.floor(np.log10(abs(rounded))))
    decimals = max(0, digits - 1 - magnitude)
    while decimals > 0 and round(rounded, decimals - 1) == rounded:
        decimals -= 1
    return decimals


def r_format(values, digits: int) -> list[str]:
    """R's ``format(x, digits=)`` of a numeric vector in fixed notation: common decimals, enough for
    every value to show ``digits`` significant digits."""
    values = np.asarray(values, dtype=float)
    decimals = max((_decimals_for(v, digits) for v in values), default=0)
    return [f"{v:.{decimals}f}" if np.isfinite(v) else "NaN" for v in values]


def _r_format_scientific(values, digits: int) -> list[str]:
    """R's ``format`` of small numbers: scientific, common mantissa digits (at most ``digits``)."""
    mantissa_digits = 1
    for v in values:
        for d in range(1, digits + 1):
            if float(f"{v:.{d - 1}e}") == float(f"{v:.{digits - 1}e}"):
                break
        mantissa_digits = max(mantissa_digits, d)
    return [f"{v:.{mantissa_digits - 1}e}" for v in values]


def format_p_values(values, digits: int = 3) -> list[str]:
    """R's ``format.pval`` as ``printCoefmat`` calls it (``< 2e-16`` below machine epsilon)."""
    values = np.asarray(values, dtype=float)
    eps = np.finfo(float).eps
    out = ["NaN"] * len(values)
    fixed = [i for i, v in enumerate(values) if v >= eps and np.floor(np.log10(v)) >= -3]
    small = [i for i, v in enumerate(values) if eps <= v and np.floor(np.log10(v)) < -3]
    for group, formatter in ((fixed, r_format), (small, _r_format_scientific)):
        for i, text in zip(group, formatter(values[group], digits)):
            out[i] = text
    for i, v in enumerate(values):
        if v < eps:
            out[i] = "< " + _r_format_scientific([eps], max(1, digits - 2))[0]
    return out


def significance_stars(p_value: float) -> str:
    """R's significance codes."""
    if not np.isfinite(p_value):
        return ""
    for limit, stars in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p_value < limit:
            return stars
    return ""


SIGNIFICANCE_LEGEND = (
    "Signif. codes:  0 \u2018***\u2019 0.001 \u2018**\u2019 0.01 \u2018*\u2019 0.05 \u2018.\u2019 0.1 "
    "\u2018 \u2019 1"
)


def text_table(columns: dict[str, list[str]], index: list[str], left: set[str] = frozenset()) -> list[str]:
    """Rows of a right-aligned (or left-aligned, for ``left`` columns) plain-text table."""
    index_width = max((len(i) for i in index), default=0)
    widths = {name: max([len(name)] + [len(v) for v in col]) for name, col in columns.items()}
    header = " " * index_width + "".join(
        " " + (name.ljust(widths[name]) if name in left else name.rjust(widths[name])) for name in columns
    )
    lines = [header.rstrip()]
    for r, label in enumerate(index):
        cells = "".join(
            " " + (col[r].ljust(widths[name]) if name in left else col[r].rjust(widths[name]))
            for name, col in columns.items()
        )
        lines.append((label.ljust(index_width) + cells).rstrip())
    return lines
