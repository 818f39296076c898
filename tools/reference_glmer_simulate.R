## Moments of glmer's simulate() for the Gamma and inverse Gaussian families,
## written as the test fixture tests/fixtures/glmm/simulate_moments.json.
##
## Run from the repository root:
##     Rscript tools/reference_glmer_simulate.R
##
## Both models are fitted to tests/fixtures/glmm/data/gamma_sim.csv (written by
## reference_glmer.R): y ~ x + (1 | g) with Gamma(link = "log") (the gamma_log
## fixture's model) and inverse.gaussian(link = "log").  For each, simulate()
## draws nsim responses with new random effects (use.u = FALSE, lme4's
## default) and at the conditional modes (use.u = TRUE), and the script
## records, for a few rows, the mean, variance and fourth central moment of
## the draws (the test's Monte-Carlo standard errors come from them).
##
## Two sets of draws per model and setting:
##   "lme4"  - lme4 1.1-31's simulate() as installed.  Its Gamma_simfun uses
##             shape = sigma * w (lme4 GitHub #782, fixed in 1.1-35.4:
##             shape = w / sigma^2), and its inverse.gaussian_simfun uses
##             statmod's shape = w / sigma (to date), so its draws do not have
##             the fitted model's variance (sigma^2 V(mu) / w).
##   "model" - the same simulate() with those two family draws replaced by
##             the fitted model's distribution: lme4 >= 1.1-35.4's
##             Gamma_simfun (shape w / sigma^2) and statmod::rinvgauss with
##             dispersion sigma^2 / w (as stats::inverse.gaussian()$simulate).
## The library is checked against "model"; "lme4" documents the difference.

source(file.path("tools", "reference_common.R"))

NSIM <- 4000L
ROWS <- c(1L, 60L, 121L, 180L, 240L)  # 1-based rows of gamma_sim.csv, 5 different groups
SEED <- 20262L

d <- read.csv(file.path("tests", "fixtures", "glmm", "data", "gamma_sim.csv"),
              stringsAsFactors = FALSE, colClasses = c(g = "character"))
d$g <- factor(d$g, levels = sort(unique(d$g)))

control <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
families <- list(
  gamma_log = quote(Gamma(link = "log")),
  inverse_gaussian_log = quote(inverse.gaussian(link = "log")))

## The fitted model's distribution (see the header).
model_simfuns <- list(
  Gamma = function(object, nsim, ftd = fitted(object), wts = weights(object)) {
    shape <- wts / sigma(object)^2
    rgamma(nsim * length(ftd), shape = shape, rate = shape / ftd)
  },
  inverse.gaussian = function(object, nsim, ftd = fitted(object), wts = weights(object)) {
    statmod::rinvgauss(nsim * length(ftd), mean = ftd, dispersion = sigma(object)^2 / wts)
  })

with_simfuns <- function(funs, expr) {
  shipped <- lme4:::simfunList
  assignInNamespace("simfunList", modifyList(shipped, funs), "lme4")
  on.exit(assignInNamespace("simfunList", shipped, "lme4"))
  expr
}

moments <- function(sims) {
  x <- as.matrix(sims)[ROWS, , drop = FALSE]
  centred <- x - rowMeans(x)
  list(mean = arr(rowMeans(x)),
       var = arr(rowSums(centred^2) / (ncol(x) - 1)),
       m4 = arr(rowMeans(centred^4)))
}

draws <- function(m, use_u) {
  list(lme4 = moments(simulate(m, nsim = NSIM, seed = SEED, use.u = use_u)),
       model = with_simfuns(model_simfuns,
                            moments(simulate(m, nsim = NSIM, seed = SEED, use.u = use_u))))
}

out <- list(
  nsim = NSIM, rows = arr(ROWS), seed = SEED, formula = "y ~ x + (1 | g)",
  data = "tests/fixtures/glmm/data/gamma_sim.csv",
  note = paste("lme4: lme4's simulate() as installed; model: its Gamma and inverse.gaussian draws",
               "replaced by the fitted model's distribution (see tools/reference_glmer_simulate.R)"))
for (name in names(families)) {
  m <- eval(bquote(glmer(y ~ x + (1 | g), data = d, family = .(families[[name]]), control = control)))
  out[[name]] <- list(
    family = family(m)$family, link = family(m)$link,
    theta = arr(getME(m, "theta")), beta = arr(fixef(m)), sigma = sigma(m),
    fitted = arr(unname(fitted(m))[ROWS]),
    new_random_effects = draws(m, FALSE),
    conditional = draws(m, TRUE))
  cat(sprintf("%-22s sigma=%.6f theta=%.6f\n", name, sigma(m), getME(m, "theta")))
}
out$versions <- list(R = R.version.string, lme4 = format(packageVersion("lme4")),
                     statmod = format(packageVersion("statmod")))
write_fixture(out, file.path("tests", "fixtures", "glmm", "simulate_moments.json"))
cat(versions_line(), "\n")
