"""Formula text to terms: lme4's formulas (:mod:`.parse`), what an expression may evaluate
(:mod:`.evaluation`) and nlme's one-sided structure formulas (:mod:`.nlme`)."""
