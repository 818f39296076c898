"""Classical analysis of variance of designed experiments with fixed and random terms.

``mm.aov(formula, data, random=[...])`` gives the ANOVA table (Type I or III sums of squares), the
expected mean squares in the variance components, F tests with denominators chosen or synthesized
from them (PROC GLM's ``RANDOM / TEST``), method-of-moments variance components and, for the one-way
random model, the classical intervals.

* :mod:`.design` -- terms, coded columns and cell columns, reduced to cross-products;
* :mod:`.ems` -- sums of squares and expected mean squares from quadratic-form traces;
* :mod:`.ftests` -- denominators and Satterthwaite's df;
* :mod:`.components` -- ANOVA (and REML) variance components, negative estimates;
* :mod:`.oneway` -- the one-way random model's intervals;
* :mod:`.result` -- ``aov`` and its result object.
"""

from .oneway import OneWayRandom
from .result import AovReport, AovResult, aov

__all__ = ["AovReport", "AovResult", "OneWayRandom", "aov"]
