"""Response distributions and link functions of generalized linear (mixed) models, as R's family objects.

A :class:`Family` holds a :class:`Link` (``linkfun``, ``linkinv``, ``mu_eta`` = d mu / d eta, R's
``valideta``) and supplies the variance function, the deviance residuals (``dev.resids``), the AIC term
(``aic``: -2 log L of the response given mu, summed, the dispersion estimated where it is free), the
starting values (``mustart``) and R's ``validmu``.  The formulas are R's (``stats::binomial``,
``poisson``, ``Gamma``, ``inverse.gaussian``, ``gaussian``) with R's clamping of ``linkinv`` and
``mu_eta`` near 0 and 1 (``DBL_EPSILON``), which lme4's ``glmFamily`` copies.

``prior_weights`` are glm's weights (for a binomial proportion: the number of trials); ``trials`` is R's
``n`` of the binomial family (the trials of a ``cbind`` response, 1 otherwise).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

__all__ = [
    "FAMILIES",
    "LINKS",
    "Family",
    "Link",
    "Binomial",
    "Poisson",
    "Gamma",
    "InverseGaussian",
    "Gaussian",
    "NegativeBinomial",
    "NegativeBinomial2",
    "family_for",
]

EPS = np.finfo(float).eps
_PROBIT_LIMIT = -stats.norm.ppf(EPS)  # R's thresh in binomial(link = "probit")$linkinv
_LOGIT_LIMIT = 30.0  # R's C_logit_linkinv and C_logit_mu_eta thresholds


@dataclass(frozen=True)
class Link:
    """A link function ``eta = g(mu)`` with its inverse and derivative, by R's name."""

    name: str

    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        name = self.name
        if name == "logit":
            return special.logit(mu)
        if name == "probit":
            return stats.norm.ppf(mu)
        if name == "cloglog":
            return np.log(-np.log1p(-mu))
        if name == "log":
            return np.log(mu)
        if name == "sqrt":
            return np.sqrt(mu)
        if name == "inverse":
            return 1.0 / mu
        if name == "1/mu^2":
            return 1.0 / mu**2
        return np.asarray(mu, dtype=float)  # identity

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        name = self.name
        if name == "logit":
            mu = _logistic(eta)
            if eta.size and (eta.max() > _LOGIT_LIMIT or eta.min() < -_LOGIT_LIMIT):
                mu = np.where(eta < -_LOGIT_LIMIT, EPS, np.where(eta > _LOGIT_LIMIT, 1.0 - EPS, mu))
            return mu
        if name == "probit":
            return stats.norm.cdf(np.clip(eta, -_PROBIT_LIMIT, _PROBIT_LIMIT))
        if name == "cloglog":
            return np.clip(-np.expm1(-np.exp(eta)), EPS, 1.0 - EPS)
        if name == "log":
            return np.maximum(np.exp(eta), EPS)
        if name == "sqrt":
            return eta * eta
        if name == "inverse":
            return 1.0 / eta
        if name == "1/mu^2":
            return 1.0 / np.sqrt(eta)
        return np.asarray(eta, dtype=float)

    def mu_eta(self, eta: np.ndarray, mu: np.ndarray | None = None) -> np.ndarray:
        """d mu / d eta; ``mu``: ``linkinv(eta)`` where already known, from which the logit's and the
        log's derivatives follow without another exponential (mu (1 - mu), and mu: with R's clamping of
        mu they equal R's clamped derivatives to rounding)."""
        name = self.name
        if mu is not None and name == "logit":
            derivative = 1.0 - mu
            derivative *= mu
            return derivative
        if mu is not None and name == "log":
            return mu
        if name == "logit":
            size = np.abs(eta)
            e = np.exp(-size)
            return np.where(size > _LOGIT_LIMIT, EPS, e / (1.0 + e) ** 2)
        if name == "probit":
            return np.maximum(stats.norm.pdf(eta), EPS)
        if name == "cloglog":
            clamped = np.minimum(eta, 700.0)
            return np.maximum(np.exp(clamped) * np.exp(-np.exp(clamped)), EPS)
        if name == "log":
            return np.maximum(np.exp(eta), EPS)
        if name == "sqrt":
            return 2.0 * eta
        if name == "inverse":
            return -1.0 / eta**2
        if name == "1/mu^2":
            return -1.0 / (2.0 * eta**1.5)
        return np.ones_like(eta, dtype=float)

    def valid_eta(self, eta: np.ndarray) -> bool:
        if self.name in ("inverse", "1/mu^2"):
            return bool(
                np.all(np.isfinite(eta)) and np.all(eta != 0) and (self.name == "inverse" or np.all(eta > 0))
            )
        if self.name == "sqrt":
            return bool(np.all(np.isfinite(eta)) and np.all(eta > 0))
        return True


LINKS = ("logit", "probit", "cloglog", "log", "sqrt", "inverse", "identity", "1/mu^2")


def _logistic(eta: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-eta))`` in one array (scipy's ``expit`` to rounding, several times faster: NumPy's
    exponential is vectorized); overflow to infinity for eta < -709 gives 0, as the limit."""
    eta = np.asarray(eta, dtype=float)
    mu = np.negative(eta.reshape(-1))  # a new 1-d array (ufuncs write no 0-d output)
    with np.errstate(over="ignore"):
        np.exp(mu, out=mu)
    mu += 1.0
    np.reciprocal(mu, out=mu)
    return mu.reshape(eta.shape)


def _y_log_y(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``y log(y / mu)``, 0 where y is 0 (R's C_binomial_dev_resids); mu > 0 (a ufunc of plain logs is
    ~15 times faster than scipy's xlogy)."""
    return y * np.log(np.where(y > 0, y, mu) / mu)


def _binary(y: np.ndarray) -> bool:
    """Whether every response is 0 or 1."""
    return not np.any((y > 0) & (y < 1))


class Family:
    """A response distribution with its link (R's family object); subclasses give the formulas."""

    name: str = ""
    links: tuple[str, ...] = ()
    default_link: str = ""
    has_dispersion: bool = False  # a free scale parameter (Gamma, inverse Gaussian, Gaussian)
    # the link whose mu_eta equals the variance function as computed from mu (R's canonical link, up to
    # sign): there IRLS's weights w mu_eta^2 / V(mu) are w mu_eta
    canonical_link: str | None = None
    integer_response: bool = False  # counts (of successes): quantile residuals randomize their ties
    # PIRLS's weights are the observed information -d^2 log p / d eta^2 (:meth:`observed_weights`: Newton
    # steps, and the Laplace approximation's exact curvature, as glmmTMB's) instead of the expected
    # mu_eta^2 / V(mu) (Fisher scoring, lme4's); the two differ where the link is not canonical
    observed_curvature: bool = False

    def __init__(self, link: str | None = None):
        link = self.default_link if link is None else link
        if not isinstance(link, str) or link not in self.links:
            raise ValueError(
                f"link {link!r} is not available for the {self.name} family; choose one of "
                f"{', '.join(repr(name) for name in self.links)}"
            )
        self.link = Link(link)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(link={self.link.name!r})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.link == self.link

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.link.name))

    def variance(self, mu: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def deviance_residuals(self, y: np.ndarray, mu: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """R's ``dev.resids``: each row's contribution to the deviance (squared deviance residual)."""
        raise NotImplementedError

    def deviance(self, y: np.ndarray, mu: np.ndarray, weights: np.ndarray) -> float:
        """The deviance: the sum of :meth:`deviance_residuals`."""
        return self.deviance_of(y, weights)(mu)

    def deviance_of(self, y: np.ndarray, weights: np.ndarray) -> Callable[[np.ndarray], float]:
        """The deviance as a function of the means for fixed rows, which a fit evaluates again and
        again: a family makes once what does not change with mu."""
        return lambda mu: float(np.sum(self.deviance_residuals(y, mu, weights)))

    def aic(self, y, trials, mu, weights, deviance: float) -> float:
        """R's ``aic``: -2 log L of y given mu (the dispersion estimated from ``deviance`` where free)."""
        raise NotImplementedError

    def aic_of(self, y, trials, weights) -> Callable[[np.ndarray, float], float]:
        """:meth:`aic` as a function of the means and the deviance for fixed rows (as
        :meth:`deviance_of`)."""
        return lambda mu, deviance: self.aic(y, trials, mu, weights, deviance)

    def observed_weights(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """The observed information of each row in eta per unit prior weight (families with
        ``observed_curvature``):
        ``-d^2 log p(y | mu) / d eta^2 = mu_eta^2 / V - (y - mu) d/d eta (mu_eta / V)``."""
        raise NotImplementedError

    def mustart(self, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """R's ``initialize``: starting means."""
        return y.astype(float)

    def valid_mu(self, mu: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(mu)))

    def check_response(self, y: np.ndarray, weights: np.ndarray) -> None:
        """Raise ValueError for a response outside the family's support (as R's ``initialize``)."""

    def sample(
        self, mu: np.ndarray, weights: np.ndarray, scale: float, rng: np.random.Generator
    ) -> np.ndarray:
        """Responses drawn from the family at means ``mu`` (prior ``weights``, dispersion ``scale`` =
        lme4's sigma), on the scale PIRLS reads (a binomial's proportion of trials), as R's ``simulate``."""
        raise NotImplementedError(f"simulating from the {self.name} family is not available")


class Binomial(Family):
    name = "binomial"
    canonical_link = "logit"
    integer_response = True
    links = ("logit", "probit", "cloglog", "log", "identity")
    default_link = "logit"

    def variance(self, mu):
        return mu * (1.0 - mu)

    def deviance_residuals(self, y, mu, weights):
        if _binary(y):  # -2 w log P(y): one logarithm instead of two, in one array
            residuals = mu - (1.0 - y)  # P(y) = |mu - (1 - y)|: mu, or 1 - mu rounded as 1.0 - mu is
            np.abs(residuals, out=residuals)
            np.log(residuals, out=residuals)
            residuals *= weights
            residuals *= -2.0
            return residuals
        return 2.0 * weights * (_y_log_y(y, mu) + _y_log_y(1.0 - y, 1.0 - mu))

    def deviance_of(self, y, weights):
        if not _binary(y):
            return super().deviance_of(y, weights)
        failure, unit = 1.0 - y, bool(np.all(weights == 1.0))

        def deviance(mu: np.ndarray) -> float:  # -2 sum w log P(y), P(y) = |mu - (1 - y)|
            log_p = mu - failure
            np.abs(log_p, out=log_p)
            np.log(log_p, out=log_p)
            return -2.0 * float(log_p.sum() if unit else log_p @ weights)

        return deviance

    def aic_of(self, y, trials, weights):
        if np.all(weights == 1.0) and np.all(trials == 1.0) and _binary(y):
            return lambda mu, deviance: float(deviance)  # 0/1 rows: the deviance is -2 log L
        return super().aic_of(y, trials, weights)

    def aic(self, y, trials, mu, weights, deviance):
        if np.all(weights == 1.0) and np.all(trials == 1.0) and _binary(y):
            return float(deviance)
        m = trials if np.any(trials > 1) else weights
        factor = np.where(m > 0, weights / np.where(m > 0, m, 1.0), 0.0)
        size, successes = np.round(m), np.round(m * y)
        # dbinom's log: log C(size, successes) + successes log mu + failures log(1 - mu)
        logp = successes * np.log(mu) + (size - successes) * np.log1p(-mu)  # 0 < mu < 1
        if np.any(size > 1):
            logp += (
                special.gammaln(size + 1)
                - special.gammaln(successes + 1)
                - special.gammaln(size - successes + 1)
            )
        return float(-2.0 * np.sum(factor * logp))

    def mustart(self, y, weights):
        return (weights * y + 0.5) / (weights + 1.0)

    def valid_mu(self, mu):
        return bool(np.all((mu > 0) & (mu < 1)))  # NaN and infinities fail the comparisons

    def check_response(self, y, weights):
        if np.any((y < 0) | (y > 1)):
            raise ValueError(
                "a binomial response must be a proportion in [0, 1] (or 0/1, a factor, "
                "or cbind(successes, failures)); y values must be 0 <= y <= 1"
            )
        successes = weights * y
        if np.any(np.abs(successes - np.round(successes)) > 1e-3):
            warnings.warn("non-integer #successes in a binomial glm!", UserWarning, stacklevel=5)

    def sample(self, mu, weights, scale, rng):
        trials = np.rint(weights)
        if np.any(np.abs(weights - trials) > 1e-8):
            raise ValueError("cannot simulate binomial responses with non-integer prior weights (trials)")
        return rng.binomial(trials.astype(np.int64), np.clip(mu, 0.0, 1.0)) / trials


class Poisson(Family):
    name = "poisson"
    canonical_link = "log"
    integer_response = True
    links = ("log", "identity", "sqrt")
    default_link = "log"

    def variance(self, mu):
        return mu

    def deviance_residuals(self, y, mu, weights):
        return 2.0 * weights * np.where(y > 0, _y_log_y(y, mu) - (y - mu), mu)

    def aic(self, y, trials, mu, weights, deviance):
        logp = y * np.log(mu) - mu - special.gammaln(y + 1.0)  # dpois's log (mu > 0)
        return float(-2.0 * np.sum(logp * weights))

    def mustart(self, y, weights):
        return y + 0.1

    def valid_mu(self, mu):
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def check_response(self, y, weights):
        _check_counts(y, "Poisson")

    def sample(self, mu, weights, scale, rng):
        return rng.poisson(mu).astype(float)  # as R's poisson()$simulate, prior weights do not scale counts


def _check_counts(y: np.ndarray, family: str) -> None:
    """A count response: negative values are an error, non-integers a warning (as R's families)."""
    if np.any(y < 0):
        raise ValueError(f"negative values not allowed for the '{family}' family ({int(np.sum(y < 0))} are)")
    if np.any(np.abs(y - np.round(y)) > 1e-7):
        warnings.warn(
            f"non-integer counts in a {family} response ({int(np.sum(np.abs(y - np.round(y)) > 1e-7))} "
            "values): the likelihood is not that of counts",
            UserWarning,
            stacklevel=5,
        )


class NegativeBinomial(Family):
    """The negative binomial with shape ``theta`` (variance ``mu + mu^2 / theta``; MASS's
    ``negative.binomial(theta)``, glmmTMB's ``nbinom2``).  ``theta=None``: to be estimated (by
    :func:`mixedmodels.glmer_nb`); a family with a theta is what PIRLS and the Laplace deviance use."""

    links = ("log", "identity", "sqrt")
    default_link = "log"
    integer_response = True

    def __init__(self, theta: float | None = None, link: str | None = None):
        if theta is not None and not (isinstance(theta, (int, float, np.number)) and 0 < theta < np.inf):
            raise ValueError(f"the negative binomial's theta must be a positive number, got {theta!r}")
        self.theta = None if theta is None else float(theta)
        super().__init__(link)

    @property
    def name(self) -> str:
        """R's family name, ``Negative Binomial(3.3035)`` (theta rounded to 4 decimals)."""
        return "Negative Binomial" if self.theta is None else f"Negative Binomial({round(self.theta, 4):g})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(theta={self.theta!r}, link={self.link.name!r})"

    def __eq__(self, other) -> bool:
        return super().__eq__(other) and other.theta == self.theta

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.link.name, self.theta))

    def with_theta(self, theta: float) -> NegativeBinomial:
        return type(self)(theta, self.link.name)

    def variance(self, mu):
        return mu + mu * mu / self.theta

    def deviance_residuals(self, y, mu, weights):
        theta = self.theta
        return 2.0 * weights * (_y_log_y(y, mu) - (y + theta) * np.log((y + theta) / (mu + theta)))

    def aic(self, y, trials, mu, weights, deviance):
        theta = self.theta
        # -dnbinom's log with size theta and mean mu (MASS's aic term)
        term = (
            (y + theta) * np.log(mu + theta)
            - y * np.log(mu)
            + special.gammaln(y + 1.0)
            - theta * np.log(theta)
            + special.gammaln(theta)
            - special.gammaln(theta + y)
        )
        return float(2.0 * np.sum(term * weights))

    def mustart(self, y, weights):
        return y + (y == 0) / 6.0

    def valid_mu(self, mu):
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def check_response(self, y, weights):
        _check_counts(y, "negative binomial")

    def sample(self, mu, weights, scale, rng):
        return rng.negative_binomial(self.theta, self.theta / (self.theta + mu)).astype(float)


class NegativeBinomial2(NegativeBinomial):
    """glmmTMB's ``nbinom2``: the negative binomial of :class:`NegativeBinomial` (variance ``mu + mu^2 /
    theta``, log link), fitted as glmmTMB fits it: the Laplace approximation with the observed curvature
    of the log-likelihood in the random effects (glmmTMB differentiates the joint likelihood exactly),
    where lme4's glmer.nb uses PIRLS's expected weights.  With the log link (not canonical here)
    ``-d^2 log p / d eta^2 = theta mu (theta + y) / (theta + mu)^2``, whose expectation is the
    expected weight ``theta mu / (theta + mu)``.  ``theta=None``: estimated jointly with the other
    parameters (:mod:`mixedmodels.models.glmm.nbinom2`)."""

    links = ("log",)
    observed_curvature = True

    @property
    def name(self) -> str:
        return "nbinom2"

    def observed_weights(self, y, mu):
        theta = self.theta
        return theta * mu * (theta + y) / ((theta + mu) * (theta + mu))


class Gamma(Family):
    name = "Gamma"
    links = ("inverse", "identity", "log")
    default_link = "inverse"
    has_dispersion = True

    def variance(self, mu):
        return mu * mu

    def deviance_residuals(self, y, mu, weights):
        with np.errstate(divide="ignore"):
            return -2.0 * weights * (np.log(np.where(y == 0, 1.0, y / mu)) - (y - mu) / mu)

    def aic(self, y, trials, mu, weights, deviance):
        dispersion = deviance / np.sum(weights)
        logp = stats.gamma.logpdf(y, 1.0 / dispersion, scale=mu * dispersion)
        return float(-2.0 * np.sum(logp * weights) + 2.0)

    def valid_mu(self, mu):
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def check_response(self, y, weights):
        if np.any(y <= 0):
            raise ValueError(
                f"non-positive values not allowed for the 'Gamma' family ({int(np.sum(y <= 0))} are)"
            )

    def sample(self, mu, weights, scale, rng):
        shape = weights / scale**2
        return rng.gamma(shape, mu / shape)


class InverseGaussian(Family):
    name = "inverse.gaussian"
    links = ("1/mu^2", "inverse", "identity", "log")
    default_link = "1/mu^2"
    has_dispersion = True

    def variance(self, mu):
        return mu**3

    def deviance_residuals(self, y, mu, weights):
        return weights * (y - mu) ** 2 / (y * mu * mu)

    def aic(self, y, trials, mu, weights, deviance):
        total = np.sum(weights)
        return float(
            total * (np.log(deviance / total * 2.0 * np.pi) + 1.0) + 3.0 * np.sum(np.log(y) * weights) + 2.0
        )

    def valid_mu(self, mu):
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def check_response(self, y, weights):
        if np.any(y <= 0):
            raise ValueError("positive values only are allowed for the 'inverse.gaussian' family")

    def sample(self, mu, weights, scale, rng):
        return rng.wald(mu, weights / scale**2)


class Gaussian(Family):
    name = "gaussian"
    links = ("identity", "log", "inverse")
    default_link = "identity"
    has_dispersion = True

    def variance(self, mu):
        return np.ones_like(mu, dtype=float)

    def deviance_residuals(self, y, mu, weights):
        return weights * (y - mu) ** 2

    def aic(self, y, trials, mu, weights, deviance):
        nobs = len(y)
        return float(nobs * (np.log(2.0 * np.pi * deviance / nobs) + 1.0) + 2.0 - np.sum(np.log(weights)))

    def sample(self, mu, weights, scale, rng):
        return mu + scale / np.sqrt(weights) * rng.standard_normal(len(mu))


FAMILIES: dict[str, type[Family]] = {
    "binomial": Binomial,
    "poisson": Poisson,
    "gamma": Gamma,
    "inverse.gaussian": InverseGaussian,
    "inverse_gaussian": InverseGaussian,
    "gaussian": Gaussian,
    "negative_binomial": NegativeBinomial,
    "negative.binomial": NegativeBinomial,
    "nbinom2": NegativeBinomial2,
}


def family_for(family: str | Family, link: str | None = None) -> Family:
    """A family object from a name (``"binomial"``, ``"poisson"``, ``"Gamma"``, ...) or a family object."""
    if isinstance(family, Family):
        if link is not None and link != family.link.name:
            return type(family)(link)
        return family
    if isinstance(family, type) and issubclass(family, Family):
        return family(link=link)
    if not isinstance(family, str) or family.lower() not in FAMILIES:
        raise ValueError(
            f"unknown family {family!r}; choose one of 'binomial', 'poisson', 'Gamma', 'inverse.gaussian', "
            "'gaussian', 'negative_binomial', 'nbinom2' or a family object such as "
            "mm.families.Binomial(link='probit')"
        )
    return FAMILIES[family.lower()](link=link)
