"""Confidence intervals for all of lme4's parameters: Wald, profile likelihood and parametric bootstrap.

The table has lme4's ``confint.merMod`` layout: the variance parameters first (standard deviations
and correlations of each random-effects term, then sigma; see :mod:`.parameters`), then the fixed
effects, in columns named as R's ``format.perc`` names them ("2.5 %", "97.5 %").  gls and lme fits
have the residual structure's parameters before sigma (:mod:`.profile_view`) and no bootstrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import check_choice, check_flag, check_probability
from .parameters import parameter_names, variance_names

if TYPE_CHECKING:
    from .view import SimulationView

__all__ = ["confint", "select_parameters", "percent_labels", "wald_intervals"]


def percent_labels(level: float) -> list[str]:
    """Column names of a two-sided interval, as R's ``format.perc(c(a, 1 - a), 3)``: "2.5 %", "97.5 %".

    R formats both numbers with the decimals the more demanding needs at 3 significant digits.
    """
    probs = 100 * np.array([(1 - level) / 2, (1 + level) / 2])
    decimals = 0
    for value in probs:
        text = f"{float(f'{value:.3g}'):f}".rstrip("0").rstrip(".")
        decimals = max(decimals, len(text.partition(".")[2]))
    return [f"{value:.{decimals}f} %" for value in probs]


def select_parameters(model: SimulationView, parm, old_names: bool = True) -> list[int]:
    """Positions of the parameters ``parm`` names among lme4's rows (all rows when None).

    ``parm`` is a name or a list of names (lme4's ``.sig01`` style or the ``sd_``/``cor_`` style,
    whichever ``old_names`` selects), ``"theta_"`` (all variance parameters), ``"beta_"`` (all fixed
    effects), or integer positions (0-based).
    """
    names = parameter_names(model, check_flag("old_names", old_names))
    if parm is None:
        return list(range(len(names)))
    n_variance = len(variance_names(model))
    if isinstance(parm, (str, int, np.integer)):
        wanted = [parm]
    elif isinstance(parm, (Sequence, np.ndarray, pd.Index)):
        wanted = list(parm)
    else:
        raise TypeError(f"parm must be a parameter name, a position or a list of them, not {parm!r}")
    if not wanted:
        raise ValueError("parm is empty: name at least one parameter (or None for all)")
    chosen: list[int] = []
    for item in wanted:
        if isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            if not -len(names) <= item < len(names):
                raise ValueError(f"parm position {item} is out of range: there are {len(names)} parameters")
            chosen.append(int(item) % len(names))
        elif not isinstance(item, str):
            raise TypeError(f"parm must hold parameter names or positions, not {item!r}")
        elif item == "theta_":
            chosen.extend(range(n_variance))
        elif item == "beta_":
            chosen.extend(range(n_variance, len(names)))
        elif item in names:
            chosen.append(names.index(item))
        else:
            raise ValueError(f"unknown parameter {item!r} in parm; the parameters are {', '.join(names)}")
    return list(dict.fromkeys(chosen))


def wald_intervals(model: SimulationView, level: float) -> np.ndarray:
    """Wald limits beta +- z se for the fixed effects; NaN for the variance parameters (as lme4)."""
    z = stats.norm.ppf([(1 - level) / 2, (1 + level) / 2])
    se = np.sqrt(np.diag(model.vcov.to_numpy()))
    fixed = model.fixef.to_numpy()[:, None] + se[:, None] * z[None, :]
    return np.vstack([np.full((len(variance_names(model)), 2), np.nan), fixed])


def confint(
    model: SimulationView,
    method: str = "profile",
    level: float = 0.95,
    parm: str | int | Sequence[str | int] | None = None,
    old_names: bool = True,
    nsim: int = 500,
    seed: int | None = None,
    n_jobs: int = 2,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Confidence intervals as lme4's ``confint.merMod``; see :meth:`LinearMixedModel.confint` (lme and gls
    fits: the methods of their ``interval_methods``)."""
    key = check_choice("method", method, model.interval_methods, canonical=str.lower)
    level = check_probability("level", level)
    indices = select_parameters(model, parm, old_names)
    names = parameter_names(model, old_names)
    if key == "wald":
        limits = wald_intervals(model, level)[indices]
    elif key == "profile":
        from .profile import LikelihoodProfile

        profile = LikelihoodProfile(model)
        limits = profile.limits_table(indices, level)
    else:
        from .bootstrap import bootstrap, percentile_interval

        replicates = bootstrap(model, nsim, seed=seed, n_jobs=n_jobs, progress=progress)
        values = replicates.to_numpy()
        limits = np.array([percentile_interval(values[:, i], level) for i in indices]).reshape(-1, 2)
    return pd.DataFrame(limits, index=[names[i] for i in indices], columns=percent_labels(level))
