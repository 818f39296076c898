## lme4's profile confidence intervals on data sets where profiling is hard, for tests/test_confint.py.
##
## Run from the repository root:  Rscript tools/reference_profile.R
## The data sets are replicates of validation/calibration.py's `slopes` design (6 groups x 10 times,
## y ~ t + (t | g)), stored as tests/fixtures/profile/slopes_<replicate>.csv:
##   116  the correlation's profile has a local minimum: lme4's inner optimization at a correlation of
##        -0.83 stops above the deviance it has with the slope SD at 0 (which every correlation allows);
##   955  lme4's and our ML fits stop 0.0023 above a lower deviance that the profile finds; lme4 stops
##        with "profiling detected new, lower deviance".
## Writes tests/fixtures/profile/slopes_<replicate>.json: lme4's REML and ML criteria and confint's
## limits (or its error message).

source(file.path("tools", "reference_common.R"))

dir <- file.path("tests", "fixtures", "profile")
for (replicate in c(116, 955)) {
  d <- read.csv(file.path(dir, sprintf("slopes_%d.csv", replicate)))
  fit <- function(reml) lmer(y ~ t + (t | g), d, REML = reml, control = controls$bobyqa)
  m <- suppressMessages(fit(TRUE))
  limits <- suppressMessages(suppressWarnings(try(confint(m, method = "profile", oldNames = FALSE),
                                                  silent = TRUE)))
  out <- list(replicate = replicate, versions = versions_line(), reml_criterion = REMLcrit(m),
              ml_deviance = deviance(suppressMessages(fit(FALSE))))
  if (inherits(limits, "try-error")) {
    out$error <- trimws(sub(".*: *", "", conditionMessage(attr(limits, "condition"))))
  } else {
    out$confint <- table_of(limits)
  }
  write_fixture(out, file.path(dir, sprintf("slopes_%d.json", replicate)))
  cat(replicate, if (is.null(out$error)) "limits" else out$error, "\n")
}
