"""Fitting a linear mixed model, as lme4's ``lmer`` pipeline.

``lmer`` runs lme4's stages: parse the formula and build the model frame (``lFormula``); :func:`assemble`
makes the cross-products in one pass over the rows and the profiled objective over theta
(``mkLmerDevfun``); :func:`fit` minimizes it (``optimizeLmer``, see :mod:`mixedmodels.engine.fit`) and
returns a :class:`.results.LinearMixedModel`, which holds the results and no fitting logic (``mkMerMod``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ...data.frame import ModelFrame, build_frame
from ...data.rows import TableRows, source_cross_products
from ...engine.cholesky import BlockedCholesky
from ...engine.covariance import CovarianceStructure, covariance_for
from ...engine.crossprod import CrossProducts
from ...engine.deviance import ProfiledObjective
from ...engine.fit import fit_theta
from ...engine.optimize import OptimizerControl
from ...engine.threads import limited_threads
from ...errors import check_flag, check_instance, check_integer
from ...formula.parse import parse_formula
from .results import LinearMixedModel

__all__ = ["LinearMixedProblem", "assemble", "fit", "lmer"]


@limited_threads()  # building the frame too: a BLAS pool woken there spins on
def lmer(
    formula: str,
    data,
    reml: bool = True,
    weights: str | np.ndarray | None = None,
    offset: str | np.ndarray | None = None,
    control: OptimizerControl | None = None,
    functions: Mapping[str, Callable] | None = None,
    chunk_rows: int | None = None,
) -> LinearMixedModel:
    """Fit a linear mixed model with an lme4 formula, by REML (default) or maximum likelihood.

    ``weights`` and ``offset`` are column names or arrays (prior weights and an offset, as lmer's
    ``weights=`` and ``offset=``; a pandas Series is matched to the data's rows by its index, other
    arrays by position); ``offset(x)`` terms in the formula are added to the offset.
    ``control`` (an :class:`OptimizerControl`) sets the optimizer's tolerances and lme4's checks
    (``gradient_tol``, ``boundary_tol``, ``singular_tol``, ...).  ``functions`` are your own functions
    the formula may call (``{"logit": logit}``), beyond R's and NumPy's; a formula runs nothing else.
    ``chunk_rows=k`` makes the cross-products from chunks of k rows of ``data`` at a time, each made
    from the model spec alone (:class:`mixedmodels.data.rows.TableRows`): the same objective, whose
    optimum agrees with the in-memory fit's to the precision of an optimum.
    """
    reml = check_flag("reml", reml)
    if control is not None:
        check_instance("control", control, OptimizerControl, "an OptimizerControl")
    if chunk_rows is not None:
        chunk_rows = check_integer("chunk_rows", chunk_rows)
    frame = build_frame(parse_formula(formula), data, weights=weights, offset=offset, functions=functions)
    cross = None
    if chunk_rows is not None:
        cross = source_cross_products(TableRows.from_data(frame.spec, data, chunk_rows, weights, offset))
        frame.response_units = cross.units
    return fit(assemble(frame, reml, cross), control)


@dataclass(frozen=True)
class LinearMixedProblem:
    """What lme4's ``mkLmerDevfun`` makes: the model frame, its cross-products, the covariance
    parameterization of each random-effects term and the profiled objective over theta."""

    frame: ModelFrame
    reml: bool
    cross: CrossProducts
    covariances: list[CovarianceStructure]
    objective: ProfiledObjective


def assemble(frame: ModelFrame, reml: bool = True, cross: CrossProducts | None = None) -> LinearMixedProblem:
    """The problem of fitting ``frame`` by REML or ML (``cross``: its cross-products, if already made)."""
    cross = frame.cross_products() if cross is None else cross
    covariances = [covariance_for(t.term.structure, t.ncols) for t in frame.terms]
    objective = ProfiledObjective(BlockedCholesky(cross, frame.x.shape[1]), covariances, reml)
    return LinearMixedProblem(frame, bool(reml), cross, covariances, objective)


def fit(
    problem: LinearMixedProblem, control: OptimizerControl | None = None, start: np.ndarray | None = None
) -> LinearMixedModel:
    """Minimize the problem's REML criterion or deviance over theta (lme4's ``optimizeLmer``), show the
    convergence warnings, and return the results (``mkMerMod``)."""
    control = control or OptimizerControl()
    result, caught = fit_theta(problem.objective, control, start)
    for message in caught:
        warnings.warn(message.message, message.category, stacklevel=3)
    return LinearMixedModel(problem, result.x, control, result)
