"""``gls`` and ``lme``: nlme's linear models with variance functions and correlation structures.

Each call prepares the model frame (:func:`.data.prepare`), assembles the likelihood and fits it
(:func:`.fitting.assemble`, :func:`.fitting.fit`); the results are :class:`.gls_model.GLSModel` and
:class:`.lme_model.LMEModel`, reported with nlme's conventions (:mod:`.results`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ...engine.optimize import OptimizerControl
from ...errors import check_choice, check_instance, check_integer, check_positive
from .corstruct import CorStruct
from .data import prepare
from .fitting import assemble, fit
from .gls_model import GLSModel
from .lme_model import LMEModel

__all__ = ["gls", "lme", "GLSModel", "LMEModel"]

_METHODS = ("REML", "ML")


def _check_arguments(method: str, control, max_iter: int, tolerance: float) -> bool:
    """The settings gls and lme share, checked; True for REML."""
    if control is not None:
        check_instance("control", control, OptimizerControl, "an OptimizerControl")
    check_integer("max_iter", max_iter)
    check_positive("tolerance", tolerance)
    return check_choice("method", method, _METHODS) == "REML"


def gls(
    formula: str,
    data,
    weights=None,
    correlation: CorStruct | None = None,
    method: str = "REML",
    control: OptimizerControl | None = None,
    max_iter: int = 50,
    tolerance: float = 1e-6,
    functions: Mapping[str, Callable] | None = None,
) -> GLSModel:
    """Generalized least squares with a variance function and a correlation structure (nlme's ``gls``).

    >>> m = gls("follicles ~ sinT + cosT", ovary, correlation=CorAR1("~ 1 | Mare"))

    ``weights``: a variance function (``VarIdent("~ 1 | g")``, ``VarPower("~ x")``, ...) or a formula
    ``"~ v"`` (= ``VarFixed``); ``correlation``: a correlation structure; ``method``: ``"REML"`` or
    ``"ML"``.  Variance functions of the fitted values (``VarPower()``, the default form) refit with the
    new fitted values as nlme does, at most ``max_iter`` times, until their largest change relative to
    the largest fitted value is below ``tolerance``.  ``functions`` are your own functions the formulas
    (the model's and the structures' forms) may call, beyond R's and NumPy's.
    """
    reml = _check_arguments(method, control, max_iter, tolerance)
    prepared = prepare(formula, data, None, weights, correlation, functions)
    return fit(assemble(prepared, reml), control, max_iter, tolerance)


def lme(
    fixed: str,
    data,
    random: str,
    weights=None,
    correlation: CorStruct | None = None,
    method: str = "REML",
    control: OptimizerControl | None = None,
    max_iter: int = 50,
    tolerance: float = 1e-6,
    functions: Mapping[str, Callable] | None = None,
) -> LMEModel:
    """Linear mixed model with a variance function and a correlation structure (nlme's ``lme``).

    >>> m = lme("distance ~ age", orthodont, random="~ age | Subject", correlation=CorAR1())

    ``random``: nlme's one-sided formula (``"~ age | Subject"``, ``"~ 1 | Block/Variety"``) or lme4
    bars (``"(age | Subject)"``; ``"(sinT || Mare)"`` for a diagonal covariance).  A correlation
    structure without groups works within the innermost random-effects groups.  Other arguments as
    :func:`gls`.
    """
    reml = _check_arguments(method, control, max_iter, tolerance)
    check_instance("random", random, str, "a formula such as '~ age | Subject'")
    prepared = prepare(fixed, data, random, weights, correlation, functions)
    return fit(assemble(prepared, reml), control, max_iter, tolerance)
