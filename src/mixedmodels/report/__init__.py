"""Printed summaries: R's number and table formatting (:mod:`.text`), shared by lmer's (:mod:`.lmer`),
nlme's (:mod:`.nlme`) and aov's layouts."""
