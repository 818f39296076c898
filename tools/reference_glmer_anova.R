## Reference values for likelihood-ratio tests and Wald intervals of glmer fits
## (issue 13), written as one JSON fixture: tests/fixtures/glmm/anova.json.
##
## Run from the repository root:
##     Rscript tools/reference_glmer_anova.R
## The data are the CSV files shipped with the Python package.

source(file.path("tools", "reference_common.R"))

ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))
cbpp <- get_dataset("cbpp")
grouse <- get_dataset("grouseticks")

comparison <- function(m0, m1) {
  list(anova = table_of(anova(m0, m1)),
       m0 = list(loglik = as.numeric(logLik(m0)), df = attr(logLik(m0), "df")),
       m1 = list(loglik = as.numeric(logLik(m1)), df = attr(logLik(m1), "df")))
}

b0 <- glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), cbpp, binomial, control = ctrl)
b1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, control = ctrl)
p0 <- glmer(TICKS ~ YEAR + (1 | BROOD), grouse, poisson, control = ctrl)
p1 <- glmer(TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION), grouse, poisson, control = ctrl)

fixture <- list(
  cbpp_period = comparison(b0, b1),
  grouseticks_location = comparison(p0, p1),
  cbpp_wald = table_of(confint(b1, method = "Wald")),
  versions = versions_line())
write_fixture(fixture, file.path("tests", "fixtures", "glmm", "anova.json"))
