"""Likelihood-ratio tests for the random-effects terms of a fitted model, as lmerTest's ``ranova``.

Each random-effects term, in lme4's ``findbars`` order, gives one reduced model (lmerTest 3.1-3):

* ``(1 | g)`` is removed (row ``(1 | g)``);
* with ``reduce_terms`` a term with effects, ``(x + z | g)``, loses one term label of its left-hand
  side at a time, among those no other label contains (R's ``drop.scope``), the intercept staying as
  it was; a term left with no label becomes ``(1 | g)`` (so does ``(0 + x | g)``, as in lmerTest)
  (row ``x in (x + z | g)``);
* without ``reduce_terms`` every term is removed whole.

Reduced models are refitted by the fit's method (REML or ML) on the same rows.  When no random term
remains, the reduced model is the linear model of the fixed effects and its (restricted, for REML
fits) log-likelihood is R's ``logLik.lm``, computed from the cross-products of ``[X y]``.  The table
has lmerTest's columns npar, logLik, AIC, LRT = 2 (logLik - logLik_reduced), Df = npar - npar_reduced
and Pr(>Chisq), with the full model in the first row, ``<none>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..engine.deviance import linear_model_deviance
from ..errors import check_flag
from ..formula.parse import RandomTerm, Rhs, r_expression

if TYPE_CHECKING:
    from ..models.lmm import LinearMixedModel

__all__ = ["ranova", "reduced_random_terms", "fixed_effects_loglik"]


def _drop_scope(labels: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Term labels that may be dropped under marginality: those no other label contains."""
    return [a for a in labels if not any(b != a and set(a) <= set(b) for b in labels)]


def reduced_random_terms(
    terms: tuple[RandomTerm, ...], reduce_terms: bool = True
) -> list[tuple[str, tuple[RandomTerm, ...]]]:
    """(row label, random terms of the reduced model) for each reduction lmerTest's ranova makes.

    The reduced term goes last, as R's ``update(formula, ~ . - (term) + (new term))`` puts it, unless
    the formula already has it.
    """
    reductions = []
    for k, term in enumerate(terms):
        others = terms[:k] + terms[k + 1 :]
        labels = term.lhs.labels
        scope = _drop_scope(list(labels)) if reduce_terms else []
        if not scope:
            reductions.append((term.formula_text, others))
            continue
        for dropped in scope:
            kept = tuple(factors for factors, label in zip(term.lhs.terms, labels) if label != dropped)
            lhs = Rhs.of_terms(term.lhs.intercept or not kept, kept)
            reduced = RandomTerm(lhs, term.factors, term.structure)
            # a formula holds a term once: (x || g) reduced gives (1 | g), which it already has
            duplicate = any(other.formula_text == reduced.formula_text for other in others)
            label = f"{r_expression(':'.join(dropped))} in {term.formula_text}"
            reductions.append((label, others if duplicate else others + (reduced,)))
    return reductions


def fixed_effects_loglik(model: LinearMixedModel) -> tuple[float, int]:
    """Log-likelihood and parameter count of the fixed-effects linear model on the fit's rows.

    R's ``logLik.lm`` (restricted for REML fits): :func:`.engine.deviance.linear_model_deviance` from
    the Cholesky factor of ``[X y]'W[X y]`` (``W`` the prior weights); ``p + 1`` parameters.
    """
    cross = model.cross
    diagonal = np.diag(np.linalg.cholesky(cross.xy))
    deviance = linear_model_deviance(
        diagonal, cross.nobs, model.reml, cross.sum_log_weights, cross.units.scale
    )
    return -0.5 * deviance, model.n_fixed + 1


def _reduced_loglik(model: LinearMixedModel, random: tuple[RandomTerm, ...]) -> tuple[float, int]:
    """Log-likelihood and parameter count of ``model`` refitted with other random-effects terms."""
    if not random:
        return fixed_effects_loglik(model)
    fit = model.update_random(random)
    return fit.loglik, fit.df_loglik


ROUNDOFF = 1e-10  # relative size of log-likelihood differences that are roundoff


def ranova(model: LinearMixedModel, reduce_terms: bool = True) -> pd.DataFrame:
    """lmerTest's ``ranova(model, reduce.terms)`` table (see the module docstring)."""
    reduce_terms = check_flag("reduce_terms", reduce_terms)
    rows = [("<none>", model.loglik, model.df_loglik)]
    for label, random in reduced_random_terms(model.frame.formula.random, reduce_terms):
        rows.append((label, *_reduced_loglik(model, random)))
    labels, loglik, npar = (list(column) for column in zip(*rows))
    loglik, npar = np.array(loglik), np.array(npar)
    lrt = np.concatenate([[np.nan], 2 * (loglik[0] - loglik[1:])])
    # a reduced model that is the same fit (a variance already at zero) differs only by roundoff, to
    # which the chi-square tail is very sensitive near 0: such differences count as 0, as in R
    lrt[np.abs(lrt) < ROUNDOFF * max(1.0, abs(loglik[0]))] = 0.0
    df = np.concatenate([[np.nan], (npar[0] - npar[1:]).astype(float)])
    with np.errstate(invalid="ignore"):
        p_value = stats.chi2.sf(lrt, np.where(df > 0, df, np.nan))
    return pd.DataFrame(
        {
            "npar": npar,
            "logLik": loglik,
            "AIC": -2 * loglik + 2 * npar,
            "LRT": lrt,
            "Df": df,
            "Pr(>Chisq)": p_value,
        },
        index=labels,
    )
