"""Predictions and simulations from a fitted linear mixed model (lme4's ``predict`` and ``simulate``).

The fitted model's methods call these; the model supplies its estimates, its frame (the spec that builds
the designs of new data) and the per-term random effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..data.design import Design
from ..data.frame import ModelFrame, formula_offset, new_data
from ..data.rows import total_offset
from ..data.tables import check_finite
from ..errors import FormulaError, check_flag, check_instance, check_integer, check_seed
from ..formula.parse import parse_one_sided

if TYPE_CHECKING:
    from .inference.view import SimulationView
    from .lmm import LinearMixedModel

__all__ = [
    "included_columns",
    "linear_predictor",
    "new_data_offset",
    "on_response_scale",
    "new_random_effects",
    "predict",
    "random_contribution",
    "simulate",
]


def random_contribution(codes: np.ndarray, z: np.ndarray, effects: np.ndarray) -> np.ndarray:
    """Row-wise ``z @ b[level]`` for effects ``b`` laid out as (nlevels, p); codes -1 contribute 0."""
    known = codes >= 0
    rows = np.where(known, codes, 0)
    return np.where(known, np.einsum("np,np->n", z, effects[rows]), 0.0)


def linear_predictor(model: LinearMixedModel, x: np.ndarray, terms_z_codes, offset) -> np.ndarray:
    """X beta + the random effects of ``(term index, z, codes)`` (+ offset)."""
    eta = x @ model.fixef.to_numpy()
    for k, z, codes in terms_z_codes:
        eta = eta + random_contribution(codes, z, model.term_effects[k])
    return eta if offset is None else eta + offset


def included_columns(model: LinearMixedModel, re_form) -> dict[int, np.ndarray]:
    """Random-effects columns that ``re_form`` keeps: term index -> boolean mask over its columns.

    As lme4, a ``re_form`` term may name part of a model term: ``~(1 | Subject)`` of a
    ``(Days | Subject)`` model keeps the intercepts only.
    """
    everything = {k: np.ones(t.ncols, dtype=bool) for k, t in enumerate(model.frame.terms)}
    if re_form is None:
        return everything
    if isinstance(re_form, float) and np.isnan(re_form):
        return {}
    check_instance("re_form", re_form, str, "None, '~0' or a formula such as '~(1 | g)'")
    text = re_form.strip()
    if text.replace(" ", "") in ("~0", "NA", "~1", "0"):
        return {}
    wanted = parse_one_sided(text).random
    if not wanted:
        raise FormulaError(
            f"re_form {re_form!r} has no random-effects terms: use '~0' for none, '~(1 | g)' for some"
        )
    kept: dict[int, np.ndarray] = {}
    for term in wanted:
        # its columns as R names them on the fit's rows: the coding of a factor depends on the whole term
        design = Design.build(term.lhs, model.frame.data, functions=model.frame.functions)[0]
        names = set(design.column_names)
        found = set()
        for k, model_term in enumerate(model.frame.terms):
            if model_term.group.name != term.group:
                continue
            mask = np.isin(model_term.column_names, list(names))
            if mask.any():
                kept[k] = kept.get(k, np.zeros_like(mask)) | mask
                found.update(np.asarray(model_term.column_names)[mask])
        if found != names:
            raise FormulaError(
                f"re_form term ({term.lhs.text} | {term.group}) is not part of the model's random effects"
            )
    return kept


def predict(
    model: LinearMixedModel, newdata=None, re_form=None, allow_new_levels: bool = False, offset=None
) -> pd.Series:
    """lme4's ``predict.merMod`` (see :meth:`.LinearMixedModel.predict`); ``offset``: the offset of
    ``newdata``'s rows in place of the fit's ``offset=`` argument (:func:`new_data_offset`)."""
    allow_new_levels = check_flag("allow_new_levels", allow_new_levels)
    included = included_columns(model, re_form)
    if newdata is None:
        if offset is not None:
            raise ValueError("offset= is the offset of newdata's rows: give newdata too")
        data, x, offset = model.frame.data, model.frame.x, model.frame.offset
        blocks = model.frame.blocks
        terms = [(k, blocks[k].z * mask, blocks[k].codes) for k, mask in included.items()]
    else:
        data, leveled = new_data(model.frame, newdata, tuple(model.frame.terms[k].term for k in included))
        x = model.frame.fixed_matrix(leveled)
        offset = new_data_offset(model.frame, data, offset)
        terms = []
        for k, mask in included.items():
            term = model.frame.terms[k]
            labels = term.group.labels_for(data)
            codes = term.group.levels.get_indexer(labels)
            unseen = sorted(set(labels[codes < 0]))
            if unseen and not allow_new_levels:
                shown = ", ".join(unseen[:10]) + (" ..." if len(unseen) > 10 else "")
                raise ValueError(
                    f"new levels of {term.group.name!r} in newdata: {shown}; "
                    "use allow_new_levels=True to predict them at the population level"
                )
            terms.append((k, term.design.matrix(leveled) * mask, codes))
    values = linear_predictor(model, x, terms, offset)
    return pd.Series(values, index=data.index, name="predicted")


def on_response_scale(eta: pd.Series, link) -> pd.Series:
    """Predictions on the link scale taken to the response's by the inverse ``link``."""
    return pd.Series(link.linkinv(eta.to_numpy(dtype=float)), index=eta.index, name=eta.name)


def new_data_offset(frame: ModelFrame, data: pd.DataFrame, given=None) -> np.ndarray | None:
    """The offset of new rows: the formula's ``offset(...)`` terms evaluated on them, plus the part the
    fit took as its ``offset=`` argument: ``given`` (one number per row), else a column (or expression)
    evaluated on the new rows; an offset given to the fit as numbers must be given again.

    lme4's ``predict`` leaves an ``offset=`` argument out for new data (a prediction without it); here
    it is never silently dropped.
    """
    in_formula = formula_offset(frame.formula, data, frame.functions)
    argument = frame.spec.offset
    if given is not None:
        if argument is None and "offset" not in frame.used_rows.extra:
            raise ValueError(
                "the model was fitted without an offset= argument, so predict takes no offset=; "
                "the formula's offset(...) terms are evaluated on newdata"
            )
        given = np.asarray(given, dtype=float)
        if given.shape != (len(data),):
            raise ValueError(
                f"offset= must have one number per row of newdata ({len(data)}), not {given.shape}"
            )
        check_finite(given, "offset")
    elif argument is not None:
        if argument.design is None and argument.expr not in data:
            raise ValueError(
                f"newdata has no column {argument.expr!r}, the model's offset: add it, or pass offset="
            )
        given = argument.values(data)
    elif "offset" in frame.used_rows.extra:
        raise ValueError(
            "the model was fitted with an offset= given as numbers: pass the offset of newdata's rows "
            "as predict(newdata, offset=...)"
        )
    return total_offset(given, [] if in_formula is None else [in_formula])


def simulate(model: SimulationView, nsim: int = 1, seed: int | None = None) -> pd.DataFrame:
    """lme4's ``simulate.merMod`` with new random effects (see :meth:`.LinearMixedModel.simulate`), for
    lmer, lme and gls fits.

    Each response is ``X beta (+ offset) + errors + Z b``: the fit's residual errors from ``nobs``
    standard normal draws (:meth:`~mixedmodels.models.base.FittedModel.residual_errors`: prior weights,
    or nlme's variance function and correlation structure), then per random-effects term
    ``sigma Lambda u`` from ``nlevels x ncols`` draws, in that order, so an lme fit without structures
    simulates from the same seed what the equivalent lmer fit does.
    """
    nsim = check_integer("nsim", nsim)
    rng = np.random.default_rng(check_seed(seed))
    mean = model.frame.x @ model.fixef.to_numpy()
    if model.frame.offset is not None:
        mean = mean + model.frame.offset
    out = {}
    for i in range(nsim):
        y = mean + model.residual_errors(rng.standard_normal(model.nobs))
        out[f"sim_{i + 1}"] = y + new_random_effects(model, rng)
    return pd.DataFrame(out, index=model.fitted.index)


def new_random_effects(
    model: SimulationView, rng: np.random.Generator, scale: float | None = None
) -> np.ndarray:
    """``Z b`` for random effects drawn anew, ``b = scale Lambda u`` with ``u`` standard normal
    (``nlevels x ncols`` draws per term, in the terms' order), as lme4's ``simulate``; ``scale`` is
    the model's sigma unless given (a GLMM's are ``Lambda u``: 1)."""
    scale = model.sigma if scale is None else scale
    total = np.zeros(model.nobs)
    for block, t in zip(model.frame.blocks, model.lambdas):
        u = rng.standard_normal((block.nlevels, block.ncols))
        total += random_contribution(block.codes, block.z, scale * u @ t.T)
    return total
