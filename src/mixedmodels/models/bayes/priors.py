"""MCMCglmm's priors: ``prior=dict(R=dict(V=1, nu=0.002), G=dict(G1=dict(V=1, nu=0.002)), B=dict(mu, V))``.

A covariance matrix G (p x p) with prior ``V, nu`` is inverse-Wishart with ``nu`` degrees of freedom and
scale ``nu V``: density proportional to |G|^{-(nu + p + 1)/2} exp(-tr(nu V G^{-1}) / 2); for one variance
that is inverse-gamma(nu / 2, nu V / 2).  ``fix=1`` holds the structure at V.  ``alpha_mu``/``alpha_V``
(MCMCglmm's ``alpha.mu``/``alpha.V``) ask for parameter expansion: G = diag(alpha) G* diag(alpha) with
G* ~ IW(V, nu) and alpha ~ N(alpha_mu, alpha_V), which makes each standard deviation a scaled F (for
``nu = 1``, ``alpha_mu = 0``, a half-Cauchy with scale sqrt(alpha_V)).  The fixed effects are
N(mu, V), by default N(0, 1e10 I).  ``idh`` structures take the diagonal of V, one inverse-gamma per
variance; ``corh`` and ``cor`` structures (sampled by Metropolis-Hastings) take independent
inverse-gamma priors on the variances (``corh``) and a uniform prior on the correlations.

Without ``prior``, every structure gets V = I and nu = 0.002 (MCMCglmm's default nu = 0 gives a G
structure an improper posterior), and a binary (categorical, threshold) response's residual variance
is fixed at 1, the convention MCMCglmm's documentation recommends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ...errors import FitError

__all__ = ["CovariancePrior", "FixedPrior", "ModelPriors", "read_priors"]

DEFAULT_NU = 0.002
FIXED_PRIOR_VARIANCE = 1e10


@dataclass(frozen=True)
class CovariancePrior:
    """The prior of one G or R structure of ``size`` columns."""

    V: np.ndarray  # (size, size)
    nu: float
    fix: bool = False
    alpha_mu: np.ndarray | None = None  # parameter expansion: (size,)
    alpha_V: np.ndarray | None = None  # (size, size)

    @property
    def expanded(self) -> bool:
        return self.alpha_V is not None and bool(np.any(np.diag(self.alpha_V) > 0))

    @property
    def size(self) -> int:
        return self.V.shape[0]


@dataclass(frozen=True)
class FixedPrior:
    """beta ~ N(mu, V), held as its precision."""

    mu: np.ndarray
    precision: np.ndarray


@dataclass(frozen=True)
class ModelPriors:
    fixed: FixedPrior
    random: list[CovariancePrior]  # one per G structure, in the order written
    residual: CovariancePrior


_KEYS = {"V", "nu", "n", "fix", "alpha_mu", "alpha_V", "alpha.mu", "alpha.V"}


def _matrix(value, size: int, where: str, name: str = "V") -> np.ndarray:
    try:
        matrix = np.atleast_2d(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        raise FitError(
            f"prior {where}: {name} must be a number or a matrix of numbers, not {value!r}"
        ) from None
    if matrix.shape == (1, 1) and size > 1 and name == "V":
        raise FitError(
            f"prior {where}: V is 1 x 1 but the structure has {size} columns; give a {size} x {size} matrix"
        )
    if matrix.shape != (size, size):
        shape = " x ".join(map(str, matrix.shape))
        raise FitError(f"prior {where}: {name} is {shape} but the structure has {size} columns")
    if not np.all(np.isfinite(matrix)) or not np.allclose(matrix, matrix.T):
        raise FitError(f"prior {where}: {name} must be a finite symmetric matrix")
    return (matrix + matrix.T) / 2


def _positive_definite(matrix: np.ndarray) -> bool:
    return bool(np.all(np.linalg.eigvalsh(matrix) > 0))


def covariance_prior(spec, size: int, where: str) -> CovariancePrior:
    """One structure's prior from MCMCglmm's dict (keys V, nu (or n), fix, alpha_mu, alpha_V)."""
    if not isinstance(spec, Mapping):
        raise FitError(f"prior {where} must be a dict such as dict(V=1, nu=0.002), not {spec!r}")
    unknown = set(spec) - _KEYS
    if unknown:
        raise FitError(
            f"prior {where} has unknown entries {sorted(unknown)}; the entries are V, nu, fix, alpha_mu, alpha_V"
        )
    if "V" not in spec:
        raise FitError(f"prior {where} has no V")
    matrix = _matrix(spec["V"], size, where)
    nu = spec.get("nu", spec.get("n"))
    if nu is None:
        raise FitError(f"prior {where} has no nu (the degree of belief)")
    try:
        nu = float(nu)
    except (TypeError, ValueError):
        raise FitError(f"prior {where}: nu must be a number, not {nu!r}") from None
    if not np.isfinite(nu):
        raise FitError(f"prior {where}: nu must be finite")
    fix = spec.get("fix", 0)
    if fix not in (0, 1, False, True):
        raise FitError(f"prior {where}: fix={fix!r}; only fix=1 (hold the whole structure at V) is supported")
    if (nu > 0 or fix) and not _positive_definite(matrix):
        raise FitError(f"prior {where}: V must be positive definite")
    alpha_mu = spec.get("alpha_mu", spec.get("alpha.mu"))
    alpha_v = spec.get("alpha_V", spec.get("alpha.V"))
    if (alpha_mu is None) != (alpha_v is None):
        raise FitError(f"prior {where}: parameter expansion needs both alpha_mu and alpha_V")
    if alpha_v is not None:
        alpha_v = _matrix(alpha_v, size, where, "alpha_V")
        alpha_mu = np.atleast_1d(np.asarray(alpha_mu, dtype=float))
        if alpha_mu.shape != (size,):
            raise FitError(f"prior {where}: alpha_mu has {alpha_mu.size} values but the structure has {size}")
        if np.all(np.diag(alpha_v) == 0):
            alpha_mu = alpha_v = None  # MCMCglmm's alpha.V = 0: no expansion
        elif not _positive_definite(alpha_v):
            raise FitError(f"prior {where}: alpha_V must be positive definite")
    return CovariancePrior(matrix, nu, bool(fix), alpha_mu, alpha_v)


def check_random_posterior(prior: CovariancePrior, nlevels: int, where: str) -> None:
    """Refuse a G prior whose posterior is improper.

    Near a singular G the likelihood stays bounded, so the prior must be integrable there: it is when
    nu > 0 (the exp(-tr(nu V G^{-1})/2) factor vanishes) or nu < 1 - p (the power alone, the flat prior
    nu = -2 of one variance included); nu = 0 (MCMCglmm's default, the prior 1/sigma^2) is not.  Far
    from zero the likelihood decays like |G|^{-(levels - 1)/2} once the fixed effects absorb a level's
    mean, so nu + levels must exceed p.
    """
    if prior.fix:
        return
    p = prior.size
    if prior.expanded:
        if prior.nu <= 0:
            raise FitError(
                f"prior {where}: a parameter-expanded prior needs nu > 0 (the posterior is improper)"
            )
        return
    if 1 - p <= prior.nu <= 0:
        raise FitError(
            f"prior {where}: nu = {prior.nu:g} gives an improper posterior (the prior is not integrable near "
            "a zero variance, where the likelihood stays finite); use nu > 0, e.g. V=1, nu=0.002, or a "
            "parameter-expanded prior (alpha_mu=0, alpha_V=1000)"
        )
    if prior.nu + nlevels <= p:
        raise FitError(
            f"prior {where}: nu = {prior.nu:g} with {nlevels} levels gives an improper posterior; "
            f"nu + levels must exceed {p}"
        )


def fixed_prior(spec, names: list[str]) -> FixedPrior:
    p = len(names)
    if spec is None:
        return FixedPrior(np.zeros(p), np.eye(p) / FIXED_PRIOR_VARIANCE)
    if not isinstance(spec, Mapping) or set(spec) - {"mu", "V"} or "V" not in spec:
        raise FitError(
            "prior B must be a dict with V (and mu), e.g. dict(mu=np.zeros(p), V=np.eye(p) * 1e10)"
        )
    variance = _matrix(spec["V"], p, "B")
    if not _positive_definite(variance):
        raise FitError("prior B: V must be positive definite")
    mu = np.atleast_1d(np.asarray(spec.get("mu", np.zeros(p)), dtype=float))
    if mu.shape != (p,):
        raise FitError(
            f"prior B: mu has {mu.size} values but there are {p} fixed effects ({', '.join(names)})"
        )
    return FixedPrior(mu, np.linalg.inv(variance))


def read_priors(
    prior,
    fixed_names: list[str],
    sizes: list[int],
    nlevels: list[int],
    residual_size: int,
    binary: bool,
) -> ModelPriors:
    """The priors of a model from MCMCglmm's ``prior`` dict (or the defaults), checked against the model:
    ``sizes``/``nlevels`` of each G structure in the order written, the residual structure's size, and
    whether the response is binary (its residual variance is then fixed at 1 unless a prior is given)."""
    if prior is None:
        prior = {}
    if not isinstance(prior, Mapping) or set(prior) - {"R", "G", "B"}:
        raise FitError("prior must be a dict with entries R, G and/or B, as MCMCglmm's prior list")
    random_specs = prior.get("G")
    if random_specs is None:
        random = [CovariancePrior(np.eye(size), DEFAULT_NU) for size in sizes]
    else:
        if not isinstance(random_specs, Mapping):
            raise FitError("prior G must be a dict of structures, dict(G1=dict(V=1, nu=0.002), ...)")
        if len(random_specs) != len(sizes):
            raise FitError(
                f"prior G has {len(random_specs)} structure(s) but random= has {len(sizes)} term(s)"
            )
        random = [
            covariance_prior(spec, size, f"G[{name!r}]")
            for (name, spec), size in zip(random_specs.items(), sizes)
        ]
    for (name, one), levels in zip(
        ((n, r) for n, r in zip(random_specs or [f"G{i + 1}" for i in range(len(sizes))], random)), nlevels
    ):
        check_random_posterior(one, levels, f"G[{name!r}]")
    residual_spec = prior.get("R")
    if residual_spec is None:
        residual = CovariancePrior(np.eye(residual_size), DEFAULT_NU, fix=binary)
    else:
        residual = covariance_prior(residual_spec, residual_size, "R")
        if residual.alpha_V is not None:
            raise FitError("prior R: parameter expansion is not available for the residual structure")
    return ModelPriors(fixed_prior(prior.get("B"), fixed_names), random, residual)
