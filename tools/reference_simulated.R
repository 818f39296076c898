## lme4 on simulated data sets that are hard to fit or to profile, for tests/test_confint.py and
## tests/test_optimum.py.
##
## Run from the repository root:  Rscript tools/reference_simulated.R
## The data sets are replicates of validation/calibration.py's `slopes` design (6 groups x 10 times,
## y ~ t + (t | g)), stored as tests/fixtures/simulated/slopes_<replicate>.csv:
##   116  the correlation's profile has a local minimum: lme4's inner optimization at a correlation of
##        -0.83 stops above the deviance it has with the slope SD at 0 (which every correlation allows);
##   955  lme4's and our ML fits stop 0.0023 above a lower deviance that the profile finds; lme4 stops
##        with "profiling detected new, lower deviance";
##   675, 781  our REML (675) and ML (781) fits stopped with the intercept SD at 0, 0.47 and 0.024 above
##        lme4's optimum, where intercept and slope are perfectly correlated.
## Writes tests/fixtures/simulated/slopes_<replicate>.json: lme4's REML and ML criteria (tight settings,
## the lower of BOBYQA's and NLopt's) and confint's limits (or its error message).

source(file.path("tools", "reference_common.R"))

dir <- file.path("tests", "fixtures", "simulated")
for (replicate in c(116, 955, 675, 781)) {
  d <- read.csv(file.path(dir, sprintf("slopes_%d.csv", replicate)))
  fit <- function(reml) {
    fits <- lapply(controls, function(control)
      suppressMessages(lmer(y ~ t + (t | g), d, REML = reml, control = control)))
    fits[[which.min(vapply(fits, objective, numeric(1)))]]
  }
  m <- fit(TRUE)
  limits <- suppressMessages(suppressWarnings(try(confint(m, method = "profile", oldNames = FALSE),
                                                  silent = TRUE)))
  out <- list(replicate = replicate, versions = versions_line(), reml_criterion = REMLcrit(m),
              ml_deviance = deviance(fit(FALSE)))
  if (inherits(limits, "try-error")) {
    out$error <- trimws(sub(".*: *", "", conditionMessage(attr(limits, "condition"))))
  } else {
    out$confint <- table_of(limits)
  }
  write_fixture(out, file.path(dir, sprintf("slopes_%d.json", replicate)))
  cat(replicate, if (is.null(out$error)) "limits" else out$error, "\n")
}
