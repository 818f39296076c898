"""``gls`` and ``lme``: nlme's linear models with variance functions and correlation structures.

Each call prepares the model frame (:func:`.data.prepare`), assembles the likelihood and fits it
(:func:`.fitting.assemble`, :func:`.fitting.fit`); the results are :class:`.gls_model.GLSModel` and
:class:`.lme_model.LMEModel`, reported with nlme's conventions (:mod:`.results`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ...engine.optimize import OptimizerControl
from ...engine.threads import limited_threads
from ...errors import check_choice, check_instance, check_integer, check_positive
from .corstruct import CorStruct
from .data import PreparedData, prepare
from .fitting import assemble, fit
from .gls_model import GLSModel
from .lme_model import LMEModel

__all__ = ["gls", "lme", "GLSModel", "LMEModel"]

_METHODS = ("REML", "ML")


def _check_arguments(method: str, control, max_iter: int, tolerance: float, chunk_rows: int | None) -> bool:
    """The settings gls and lme share, checked; True for REML."""
    if control is not None:
        check_instance("control", control, OptimizerControl, "an OptimizerControl")
    if chunk_rows is not None:
        check_integer("chunk_rows", chunk_rows)
    check_integer("max_iter", max_iter)
    check_positive("tolerance", tolerance)
    return check_choice("method", method, _METHODS) == "REML"


@limited_threads()  # building the frame too: a BLAS pool woken there spins on
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
    chunk_rows: int | None = None,
) -> GLSModel:
    """Generalized least squares with a variance function and a correlation structure (nlme's ``gls``).

    >>> m = gls("follicles ~ sinT + cosT", ovary, correlation=CorAR1("~ 1 | Mare"))

    ``weights``: a variance function (``VarIdent("~ 1 | g")``, ``VarPower("~ x")``, ...) or a formula
    ``"~ v"`` (= ``VarFixed``); ``correlation``: a correlation structure; ``method``: ``"REML"`` or
    ``"ML"``.  Variance functions of the fitted values (``VarPower()``, the default form) refit with the
    new fitted values as nlme does, at most ``max_iter`` times, until their largest change relative to
    the largest fitted value is below ``tolerance``.  ``functions`` are your own functions the formulas
    (the model's and the structures' forms) may call, beyond R's and NumPy's.  ``chunk_rows=k`` makes
    the likelihood from chunks of whole residual groups of about k rows of ``data`` (a group larger than
    k a chunk of its own), each made from the model spec alone with the structures bound to its rows
    (:meth:`.data.PreparedData.table_chunks`); every evaluation sums the chunks' whitened
    cross-products: the same objective, whose optimum agrees with the in-memory fit's to the precision
    of an optimum.
    """
    reml = _check_arguments(method, control, max_iter, tolerance, chunk_rows)
    prepared = prepare(formula, data, None, weights, correlation, functions)
    return _fit(prepared, reml, data, chunk_rows, control, max_iter, tolerance)


@limited_threads()  # building the frame too: a BLAS pool woken there spins on
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
    chunk_rows: int | None = None,
) -> LMEModel:
    """Linear mixed model with a variance function and a correlation structure (nlme's ``lme``).

    >>> m = lme("distance ~ age", orthodont, random="~ age | Subject", correlation=CorAR1())

    ``random``: nlme's one-sided formula (``"~ age | Subject"``, ``"~ 1 | Block/Variety"``) or lme4
    bars (``"(age | Subject)"``; ``"(sinT || Mare)"`` for a diagonal covariance).  A correlation
    structure without groups works within the innermost random-effects groups.  Other arguments as
    :func:`gls` (``chunk_rows`` too).
    """
    reml = _check_arguments(method, control, max_iter, tolerance, chunk_rows)
    check_instance("random", random, str, "a formula such as '~ age | Subject'")
    prepared = prepare(fixed, data, random, weights, correlation, functions)
    return _fit(prepared, reml, data, chunk_rows, control, max_iter, tolerance)


def _fit(prepared: PreparedData, reml: bool, data, chunk_rows: int | None, control, max_iter, tolerance):
    """Assemble and fit ``prepared``, from chunks of ``chunk_rows`` rows of ``data`` if given."""
    chunks = None if chunk_rows is None else prepared.table_chunks(data, chunk_rows)
    return fit(assemble(prepared, reml, chunks), control, max_iter, tolerance)
