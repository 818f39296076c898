## Reference values for residual and influence diagnostics of fitted linear
## mixed models (lme4 1.1-31 and R's stats), written as JSON test fixtures.
##
## Run from the repository root:
##     Rscript tools/reference_diagnostics.R
## Writes to tests/fixtures/diagnostics/:
##   <model>.json   one per row of `models`: residuals (response, Pearson),
##                  hatvalues, rstudent, observation-level Cook's distance,
##                  qqnorm/qqline of the standardized residuals and of the
##                  conditional modes, lowess of Pearson residuals on fitted
##                  values, per-group "separate fits" (the no-pooling
##                  estimates of the shrinkage plot) and, per deleted
##                  grouping factor, the fixed effects and Cook's distance of
##                  the fits without each level (tight refits, and lme4's own
##                  influence());
##   lowess.json    stats::lowess on data with ties, and with other f, iter
##                  and delta.
##
## Data loading, tight fits (bobyqa and nloptwrap, lower objective kept) and
## exact JSON output come from reference_common.R.

source(file.path("tools", "reference_common.R"))

fixture_dir <- file.path("tests", "fixtures", "diagnostics")
dir.create(fixture_dir, recursive = TRUE, showWarnings = FALSE)

## ---------------------------------------------------------------------------
## Models: a spec() of reference_common.R plus the grouping factors whose
## levels are deleted one at a time for Cook's distance.
## ---------------------------------------------------------------------------

model <- function(name, dataset, formula, delete, weights = NULL,
                  modify = NULL, data_changes = NULL)
  c(spec(name, dataset, formula, weights = weights, modify = modify,
         data_changes = data_changes),
    list(delete = delete))

ort_int <- "distance ~ age * Sex + (1 | Subject)"

models <- list(
  model("sleepstudy_slope", "sleepstudy", "Reaction ~ Days + (Days | Subject)",
        "Subject"),
  model("sleepstudy_weights", "sleepstudy", "Reaction ~ Days + (Days | Subject)",
        "Subject", weights = "w",
        modify = function(d) { d$w <- 1 + (d$Days %% 3); d },
        data_changes = "new column w = 1 + (Days %% 3), used as prior weights"),
  model("penicillin", "Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)",
        c("plate", "sample")),
  model("orthodont_intercept", "Orthodont", ort_int, "Subject"),
  model("orthodont_slope", "Orthodont", "distance ~ age * Sex + (age | Subject)",
        "Subject"),
  model("orthodont_missing", "Orthodont", ort_int, "Subject",
        modify = function(d) { d$distance[c(5, 17, 40, 77, 90)] <- NA; d },
        data_changes = paste("distance set to NA at rows 5, 17, 40, 77, 90",
                             "(1-based); na.action = na.omit")),
  model("pastes", "Pastes", "strength ~ 1 + (1 | batch/cask)", "batch"),
  model("machines", "Machines",
        "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", "Worker")
)
names(models) <- vapply(models, `[[`, character(1), "name")

## ---------------------------------------------------------------------------
## Helpers
## ---------------------------------------------------------------------------

## qqnorm's theoretical quantiles (in the order of y) and qqline's
## intercept and slope (through the quartiles, quantile type 7).
qq_of <- function(y) {
  q <- quantile(y, c(0.25, 0.75), names = FALSE, type = 7)
  x <- qnorm(c(0.25, 0.75))
  slope <- diff(q) / diff(x)
  list(values = arr(y), x = arr(qqnorm(y, plot.it = FALSE)$x),
       line = arr(c(q[1] - slope * x[1], slope)))
}

## lme4's cooks.distance(influence(m, groups = g)) (1.1-29 and later):
## D_j = (G - p) / (G p) * dfbeta_j' vcov(m)^-1 dfbeta_j, G = number of levels.
cooks_by_group <- function(dfbeta, vcov) {
  G <- nrow(dfbeta)
  p <- ncol(dfbeta)
  inv <- solve(vcov)
  (G - p) / (G * p) * rowSums((dfbeta %*% inv) * dfbeta)
}

## Tight refits without each level of grouping factor g, and lme4's own
## influence() (default optimizer settings with maxfun = 1000).
influence_of <- function(s, m, data, g) {
  levels <- levels(factor(data[[g]]))
  used <- model.frame(m)
  levels <- levels[levels %in% as.character(used[[g]])]
  V <- as.matrix(vcov(m))
  refits <- lapply(levels, function(lev) {
    sub <- data[as.character(data[[g]]) != lev, , drop = FALSE]
    fit_best(s, sub)$model
  })
  fixef_deleted <- do.call(rbind, lapply(refits, fixef))
  dfbeta <- sweep(fixef_deleted, 2, fixef(m))
  lme4_infl <- with_conditions(influence(m, groups = g, data = data))
  lme4_value <- lme4_infl$value
  ## influence() lists the levels in order of appearance in the data
  order <- match(levels, rownames(lme4_value[[paste0("fixed.effects[-", g, "]")]]))
  stopifnot(!anyNA(order))
  lme4_fixef <- lme4_value[[paste0("fixed.effects[-", g, "]")]][order, , drop = FALSE]
  lme4_cooks <- cooks.distance(lme4_value)[order]
  cooks <- cooks_by_group(dfbeta, V)
  stopifnot(max(abs(cooks - lme4_cooks) / pmax(abs(cooks), 1e-3)) < 1e-3)
  list(group = g, levels = arr(levels),
       fixef = rows_of(fixef_deleted),
       sigma = arr(vapply(refits, sigma, numeric(1))),
       theta = rows_of(do.call(rbind, lapply(refits, getME, "theta"))),
       cooks_distance = arr(cooks),
       lme4 = list(fixef = rows_of(lme4_fixef),
                   cooks_distance = arr(unname(lme4_cooks)),
                   converged = arr(lme4_value$converged[order])))
}

## The no-pooling estimates of the shrinkage plot: per level of g, weighted
## least squares of the partial residual y - fitted + (g's random-effects
## contribution) on g's random-effects columns, using only that level's rows;
## on the coefficient scale (plus the fixed effect of the same name, if any).
separate_fits <- function(m, g) {
  terms <- names(getME(m, "mmList"))
  mine <- terms[sub(".*\\| ", "", terms) == g]
  Z <- do.call(cbind, getME(m, "mmList")[mine])
  columns <- colnames(Z)
  groups <- getME(m, "flist")[[g]]
  re <- ranef(m)[[g]]
  contribution <- rowSums(Z * as.matrix(re[as.character(groups), columns,
                                           drop = FALSE]))
  partial <- getME(m, "y") - fitted(m) + contribution
  w <- weights(m)
  beta <- fixef(m)
  levels <- rownames(re)
  values <- do.call(rbind, lapply(levels, function(lev) {
    rows <- groups == lev
    b <- coef(lm.wfit(Z[rows, , drop = FALSE], partial[rows], w[rows]))
    shift <- ifelse(columns %in% names(beta), beta[columns], 0)
    unname(b + shift)
  }))
  list(group = g, levels = arr(levels), columns = arr(columns),
       values = rows_of(values))
}

extract_model <- function(s) {
  data <- model_data(s)
  fit <- fit_best(s, data)
  m <- fit$model
  pearson <- residuals(m, type = "pearson")
  fitted_values <- fitted(m)
  re <- ranef(m)
  groups <- unique(c(s$delete, names(re)))
  out <- list(
    name = s$name, dataset = s$dataset, formula = s$formula, reml = TRUE,
    weights = s$weights, data_changes = s$data_changes,
    versions = versions_line(), optimizer = fit$optimizer,
    fit = list(theta = arr(getME(m, "theta")), fixef = as.list(fixef(m)),
               sigma = sigma(m), reml_criterion = REMLcrit(m)),
    rows_used = arr(as.integer(rownames(model.frame(m)))),
    fitted = arr(fitted_values),
    residuals = arr(residuals(m)),
    pearson = arr(pearson),
    hatvalues = arr(hatvalues(m)),
    rstudent = arr(rstudent(m)),
    cooks_distance = arr(cooks.distance(m)),
    qq_standardized = qq_of(rstudent(m)),
    qq_ranef = lapply(re, function(r) lapply(r, qq_of)),
    lowess = lowess(fitted_values, pearson)[c("x", "y")],
    separate_fits = lapply(setNames(names(re), names(re)),
                           function(g) separate_fits(m, g)),
    influence = lapply(setNames(s$delete, s$delete),
                       function(g) influence_of(s, m, data, g)))
  out$lowess <- lapply(out$lowess, arr)
  out
}

## ---------------------------------------------------------------------------
## lowess cases: ties (sleepstudy Days), other span/iterations, no delta
## ---------------------------------------------------------------------------

lowess_cases <- function() {
  ss <- get_dataset("sleepstudy")
  pen <- get_dataset("Penicillin")
  case <- function(x, y, ...) {
    r <- lowess(x, y, ...)
    list(x_in = arr(as.double(x)), y_in = arr(as.double(y)), args = list(...),
         x = arr(r$x), y = arr(r$y))
  }
  list(
    versions = versions_line(),
    days_reaction = case(ss$Days, ss$Reaction),
    days_reaction_f03_iter0 = case(ss$Days, ss$Reaction, f = 0.3, iter = 0L),
    subject_order_delta0 = case(seq_along(ss$Reaction) %% 37, ss$Reaction,
                                f = 0.5, delta = 0),
    penicillin_rows = case(seq_along(pen$diameter), pen$diameter, f = 0.2),
    constant_y = case(1:20, rep(3, 20))
  )
}

## ---------------------------------------------------------------------------
## Main
## ---------------------------------------------------------------------------

for (s in models) {
  t0 <- proc.time()[["elapsed"]]
  write_fixture(extract_model(s), file.path(fixture_dir, paste0(s$name, ".json")))
  cat(sprintf("%-22s %5.1f s\n", s$name, proc.time()[["elapsed"]] - t0))
}
write_fixture(lowess_cases(), file.path(fixture_dir, "lowess.json"))
cat("wrote", fixture_dir, "\n")
