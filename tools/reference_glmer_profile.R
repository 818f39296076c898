## Reference profile confidence limits of a glmer fit (lme4's confint(m, method = "profile")).
##
## Run from the repository root:
##     Rscript tools/reference_glmer_profile.R
## Writes tests/fixtures/glmm/profile_cbpp.json.
##
## lme4's profile of a glmerMod holds one parameter (an sd/cor of theta or a fixed effect) and
## minimizes the Laplace deviance over all the others (devfun2 over sd/cor and beta); there is no
## .sigma row for the binomial family.  Its limits interpolate the profile's trace with splines,
## accurate to about 1e-3 relative.

source(file.path("tools", "reference_common.R"))
suppressPackageStartupMessages(library(jsonlite))

cbpp <- get_dataset("cbpp")
m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial)
ci <- confint(m, method = "profile")
out <- list(
  lme4_version = as.character(packageVersion("lme4")),
  formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
  family = "binomial",
  deviance = -2 * c(logLik(m)),
  names = rownames(ci),
  lower = unname(ci[, 1]),
  upper = unname(ci[, 2])
)
write_json(out, file.path("tests", "fixtures", "glmm", "profile_cbpp.json"), digits = NA, pretty = TRUE, auto_unbox = TRUE)
