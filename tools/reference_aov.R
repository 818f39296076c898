## Reference values for the classical ANOVA of designed experiments (mm.aov):
## sums of squares, expected mean squares, F tests with denominators chosen
## (or synthesized) from the expected mean squares, method-of-moments variance
## components and the one-way random model's intervals.
##
## Run from the repository root:
##     Rscript tools/reference_aov.R
## Writes tests/fixtures/aov/<design>.json, one file per row of `designs`.
##
## Sums of squares come from R itself: anova(lm()) (Type I), car::Anova(type = 3)
## with contr.sum / contr.poly (Type III, which is SAS PROC GLM's Type III for
## designs without empty cells) and aov() with Error() strata.  Everything PROC
## GLM's RANDOM / TEST adds is computed here by hand, with dense N x N matrices
## (fine for these small designs; the Python code never forms them):
##   * the quadratic form Q of each source: Type I  Q_k = P_k - P_{k-1} (P_k the
##     projection on the columns of the first k terms), Type III
##     Q = X G L' (L G L')^-1 L G X' with G = (X'X)^-1 and L selecting the
##     term's contr.sum columns, Error  Q = I - P;
##   * the expected mean squares: the coefficient of Var(u) in E[MS] is
##     tr(F_u' Q F_u) / df with F_u the cell indicators of random term u; a
##     fixed term f enters as Q(f) when tr(F_f' Q F_f) > 0 (SAS's rule: its
##     parameters appear in the quadratic form);
##   * the F tests: under H0 the source's expected mean square loses its own
##     component (Var(u) for a random term, every Q(.) for a fixed one); the
##     denominator is the combination of the mean squares of the random terms
##     and Error whose own components are left, solved from the EMS
##     coefficients, with Satterthwaite's df when it is not a single MS;
##   * method-of-moments (ANOVA) variance components: the EMS equations of the
##     random sources and Error solved for the variances;
##   * for the one-way random model, the lecture's estimates and intervals
##     (/work/shared/seeds/000: mu t interval on t - 1 df from MS[T],
##     chi-square interval for sigma^2, Satterthwaite interval for sigma_T^2,
##     F interval for the intraclass correlation, CV, shares of variance).
## REML estimates come from lme4 (the tight fits of reference_common.R).
## The run stops if the sires numbers printed in seed 000 are not reproduced.

source(file.path("tools", "reference_common.R"))
suppressPackageStartupMessages(library(car))

## SAS-style Type III: sum-to-zero contrasts for unordered factors and
## polynomial contrasts (which also sum to zero) for ordered ones.
options(contrasts = c("contr.sum", "contr.poly"))

fixture_dir <- file.path("tests", "fixtures", "aov")
dir.create(fixture_dir, recursive = TRUE, showWarnings = FALSE)

## ---------------------------------------------------------------------------
## Designs
## ---------------------------------------------------------------------------

## formula  the full model (as PROC GLM's MODEL statement, as lm() reads it);
## random   the term labels declared random (PROC GLM's RANDOM statement);
## strata   aov() formula with Error() strata (balanced designs), or NULL;
## lmer     the same model for lme4 (REML variance components), or NULL;
## make     function() returning the data (CSV dataset plus changes);
## store_data  write the data into the fixture (simulated designs).
design <- function(name, formula, random, make, data_changes = NULL,
                   strata = NULL, lmer = NULL, one_way = FALSE,
                   store_data = FALSE)
  list(name = name, formula = formula, random = random, make = make,
       data_changes = data_changes, strata = strata, lmer = lmer,
       one_way = one_way, store_data = store_data)

dataset <- function(name, modify = identity) function() modify(get_dataset(name))

## A balanced three-factor experiment (A fixed; B, C and all interactions
## random; 2 replicates) whose tests of A, B and C need synthesized
## denominators such as MS(A:B) + MS(A:C) - MS(A:B:C).
three_factor <- function() {
  set.seed(20240518)
  d <- expand.grid(rep = 1:2, C = factor(paste0("c", 1:3)),
                   B = factor(paste0("b", 1:4)), A = factor(paste0("a", 1:3)))
  d <- d[, c("A", "B", "C", "rep")]
  eff <- function(f, sd) rnorm(nlevels(f), sd = sd)[as.integer(f)]
  d$y <- 50 + c(-2, 0, 3)[as.integer(d$A)] + eff(d$B, 3) + eff(d$C, 2) +
    eff(interaction(d$A, d$B), 1.5) + eff(interaction(d$A, d$C), 1) +
    eff(interaction(d$B, d$C), 1.2) + eff(interaction(d$A, d$B, d$C), 0.8) +
    rnorm(nrow(d), sd = 1)
  d$y <- round(d$y, 2)
  rownames(d) <- NULL
  d
}

## Pinheiro & Bates (2000, sec. 2.2): Machines without 10 of its rows.
unbalanced_rows <- c(2, 3, 6, 8, 9, 12, 19, 20, 27, 33)

designs <- list(
  design("sires", "bw ~ sire", "sire",
         dataset("sires", function(d) { d$sire <- factor(d$sire); d }),
         data_changes = "sire converted with factor(sire)",
         strata = "bw ~ 1 + Error(sire)", lmer = "bw ~ 1 + (1 | sire)",
         one_way = TRUE),
  design("dyestuff", "Yield ~ Batch", "Batch", dataset("Dyestuff"),
         strata = "Yield ~ 1 + Error(Batch)", lmer = "Yield ~ 1 + (1 | Batch)",
         one_way = TRUE),
  design("dyestuff2", "Yield ~ Batch", "Batch", dataset("Dyestuff2"),
         strata = "Yield ~ 1 + Error(Batch)", lmer = "Yield ~ 1 + (1 | Batch)",
         one_way = TRUE),
  design("rail", "travel ~ Rail", "Rail", dataset("Rail"),
         strata = "travel ~ 1 + Error(Rail)", lmer = "travel ~ 1 + (1 | Rail)",
         one_way = TRUE),
  design("pastes", "strength ~ batch/cask", c("batch", "batch:cask"),
         dataset("Pastes"), strata = "strength ~ 1 + Error(batch/cask)",
         lmer = "strength ~ 1 + (1 | batch) + (1 | batch:cask)"),
  design("machines", "score ~ Machine * Worker", c("Worker", "Machine:Worker"),
         dataset("Machines"), strata = "score ~ Machine + Error(Worker/Machine)",
         lmer = "score ~ Machine + (1 | Worker) + (1 | Machine:Worker)"),
  design("oats", "yield ~ Block/Variety + Variety * nitroF",
         c("Block", "Block:Variety"),
         dataset("Oats", function(d) { d$nitroF <- factor(d$nitro); d }),
         data_changes = "new column nitroF = factor(nitro) (levels 0, 0.2, 0.4, 0.6)",
         strata = "yield ~ Variety * nitroF + Error(Block/Variety)",
         lmer = "yield ~ Variety * nitroF + (1 | Block) + (1 | Block:Variety)"),
  design("oats_covariate", "yield ~ Block/Variety + Variety * nitro",
         c("Block", "Block:Variety"), dataset("Oats"),
         strata = "yield ~ Variety * nitro + Error(Block/Variety)",
         lmer = "yield ~ Variety * nitro + (1 | Block) + (1 | Block:Variety)"),
  design("machines_unbalanced", "score ~ Machine * Worker",
         c("Worker", "Machine:Worker"),
         dataset("Machines", function(d) d[-unbalanced_rows, ]),
         data_changes = paste("rows", paste(unbalanced_rows, collapse = ", "),
                              "(1-based) removed"),
         lmer = "score ~ Machine + (1 | Worker) + (1 | Machine:Worker)"),
  design("three_factor", "y ~ A * B * C",
         c("B", "C", "A:B", "A:C", "B:C", "A:B:C"), three_factor,
         data_changes = "simulated in reference_aov.R (three_factor()); stored in `data`",
         lmer = paste("y ~ A + (1 | B) + (1 | C) + (1 | A:B) + (1 | A:C) +",
                      "(1 | B:C) + (1 | A:B:C)"),
         store_data = TRUE)
)
names(designs) <- vapply(designs, `[[`, character(1), "name")

## ---------------------------------------------------------------------------
## Helpers
## ---------------------------------------------------------------------------

projection <- function(X) {
  q <- qr(X)
  Q <- qr.Q(q)[, seq_len(q$rank), drop = FALSE]
  Q %*% t(Q)
}

## Quadratic forms of the sources (terms, then "Residuals") for SS type 1 or 3.
quadratic_forms <- function(fit, type) {
  X <- model.matrix(fit)
  assign <- attr(X, "assign")
  labels <- attr(terms(fit), "term.labels")
  forms <- list()
  if (type == 1) {
    previous <- projection(X[, assign == 0, drop = FALSE])
    for (k in seq_along(labels)) {
      current <- projection(X[, assign <= k, drop = FALSE])
      forms[[labels[k]]] <- current - previous
      previous <- current
    }
  } else {
    G <- solve(crossprod(X))
    for (k in seq_along(labels)) {
      S <- assign == k
      forms[[labels[k]]] <- X %*% G[, S, drop = FALSE] %*%
        solve(G[S, S, drop = FALSE], G[S, , drop = FALSE] %*% t(X))
    }
  }
  forms$Residuals <- diag(nrow(X)) - projection(X)
  forms
}

## Full-indicator ("cell") columns of a term, times its numeric variables:
## the columns PROC GLM's non-full-rank parameterization gives the term.
cell_matrix <- function(term, data)
  model.matrix(as.formula(paste("~ 0 +", term)), data)

## SS, df, MS, EMS coefficients and fixed Q() sets of every source.
expected_mean_squares <- function(fit, data, random, type) {
  forms <- quadratic_forms(fit, type)
  y <- model.response(model.frame(fit))
  labels <- attr(terms(fit), "term.labels")
  fixed <- setdiff(labels, random)
  cells <- lapply(setNames(c(labels), labels), cell_matrix, data = data)
  components <- c(random, "Error")
  sources <- names(forms)
  df <- vapply(forms, function(Q) round(sum(diag(Q))), numeric(1))
  ss <- vapply(forms, function(Q) drop(t(y) %*% Q %*% y), numeric(1))
  trace_of <- function(Q, F) sum(F * (Q %*% F))
  coef <- t(vapply(sources, function(s) {
    Q <- forms[[s]]
    c(vapply(random, function(u) trace_of(Q, cells[[u]]), numeric(1)) / df[[s]], 1)
  }, numeric(length(components))))
  dimnames(coef) <- list(sources, components)
  coef[abs(coef) < 1e-9] <- 0
  q_terms <- lapply(forms, function(Q)
    arr(Filter(function(f) trace_of(Q, cells[[f]]) > 1e-8 * sum(cells[[f]]^2), fixed)))
  list(sources = sources, components = components, df = df, ss = ss,
       ms = ss / df, coef = coef, q_terms = q_terms)
}

## PROC GLM RANDOM / TEST: the denominator of each source's F test.
mixed_tests <- function(e, random) {
  own <- setNames(c(random, "Residuals"), c(random, "Error"))  # component -> source
  rows <- lapply(setdiff(e$sources, "Residuals"), function(s) {
    target <- e$coef[s, ]
    if (s %in% random) target[[s]] <- 0
    needed <- names(target)[target != 0]
    den_sources <- unname(own[needed])
    M <- e$coef[den_sources, needed, drop = FALSE]
    w <- drop(solve(t(M), target[needed]))
    stopifnot(max(abs(drop(t(e$coef[den_sources, , drop = FALSE]) %*% w) - target)) < 1e-8)
    names(w) <- den_sources
    den_ms <- sum(w * e$ms[den_sources])
    den_df <- den_ms^2 / sum((w * e$ms[den_sources])^2 / e$df[den_sources])
    f <- e$ms[[s]] / den_ms
    list(source = s, df = e$df[[s]], mean_sq = e$ms[[s]],
         error_sources = arr(den_sources), error_weights = arr(w),
         den_mean_sq = den_ms, den_df = den_df, f_value = f,
         p_value = pf(f, e$df[[s]], den_df, lower.tail = FALSE))
  })
  rows
}

## Method of moments: the EMS equations of the random sources and Error.
moments <- function(e, random) {
  own <- c(random, "Residuals")
  est <- solve(e$coef[own, , drop = FALSE], e$ms[own])
  list(component = arr(e$components), estimate = arr(unname(est)))
}

ems_entry <- function(e) list(
  sources = arr(e$sources), components = arr(e$components),
  df = arr(unname(e$df)), sum_sq = arr(unname(e$ss)), mean_sq = arr(unname(e$ms)),
  coefficients = rows_of(e$coef), q_terms = unname(e$q_terms))

## The lecture's one-way random model (balanced: t groups of n).
one_way <- function(e, data, group, response, alpha = 0.05) {
  sizes <- table(data[[group]])
  stopifnot(length(unique(sizes)) == 1)
  n <- unname(sizes[1]); t <- length(sizes); N <- n * t
  ms_t <- e$ms[[group]]; ms_e <- e$ms[["Residuals"]]
  df_t <- e$df[[group]]; df_e <- e$df[["Residuals"]]
  mu <- mean(data[[response]])
  se <- sqrt(ms_t / N)
  q <- qt(1 - alpha / 2, df_t)
  s2_t <- (ms_t - ms_e) / n
  df_s <- (n * s2_t)^2 / (ms_t^2 / df_t + ms_e^2 / df_e)
  f <- ms_t / ms_e
  f_hi <- qf(1 - alpha / 2, df_t, df_e); f_lo <- qf(alpha / 2, df_t, df_e)
  total <- ms_e + s2_t
  list(alpha = alpha, groups = t, n_per_group = n, nobs = N,
       mean = list(estimate = mu, se = se, df = df_t,
                   lower = mu - q * se, upper = mu + q * se),
       error_variance = list(estimate = ms_e, df = df_e,
                             lower = df_e * ms_e / qchisq(1 - alpha / 2, df_e),
                             upper = df_e * ms_e / qchisq(alpha / 2, df_e)),
       group_variance = list(estimate = s2_t, df = df_s,
                             lower = df_s * s2_t / qchisq(1 - alpha / 2, df_s),
                             upper = df_s * s2_t / qchisq(alpha / 2, df_s)),
       icc = list(estimate = s2_t / total, f_value = f,
                  lower = (f / f_hi - 1) / (f / f_hi + n - 1),
                  upper = (f / f_lo - 1) / (f / f_lo + n - 1)),
       cv = sqrt(total) / mu,
       share = list(group = s2_t / total, error = ms_e / total))
}

## lme4's REML criterion depends on the coding of the fixed effects (through
## log det X'V^-1 X), so these fits use R's default treatment contrasts, as
## mm.lmer does; the variances do not depend on the coding.
reml_components <- function(d, data) {
  op <- options(contrasts = c("contr.treatment", "contr.poly"))
  on.exit(options(op))
  fit <- fit_best(spec(d$name, d$name, d$lmer), data)
  vc <- as.data.frame(VarCorr(fit$model))
  list(formula = d$lmer, optimizer = fit$optimizer,
       objective_spread = fit$objective_spread, reml_criterion = REMLcrit(fit$model),
       component = arr(vc$grp), variance = arr(vc$vcov),
       singular = isSingular(fit$model))
}

## aov() with Error(): one table per stratum.
strata_tables <- function(formula, data) {
  s <- summary(aov(as.formula(formula), data = data))
  lapply(names(s), function(nm) list(stratum = nm, table = table_of(s[[nm]][[1]])))
}

extract_design <- function(d) {
  data <- d$make()
  fit <- lm(as.formula(d$formula), data = data)
  stopifnot(!any(is.na(coef(fit))))  # Type III needs a full-rank design
  labels <- attr(terms(fit), "term.labels")
  stopifnot(all(d$random %in% labels))
  e <- lapply(c(type1 = 1, type3 = 3), function(type)
    expected_mean_squares(fit, data, d$random, type))
  ## the quadratic forms reproduce R's sums of squares
  a1 <- anova(fit)
  a3 <- Anova(fit, type = 3)
  stopifnot(max(abs(e$type1$ss - a1[["Sum Sq"]]) / a1[["Sum Sq"]]) < 1e-9,
            max(abs(e$type3$ss - a3[c(labels, "Residuals"), "Sum Sq"]) /
                  a3[c(labels, "Residuals"), "Sum Sq"]) < 1e-9)
  out <- list(
    name = d$name, formula = d$formula, random = arr(d$random),
    data_changes = d$data_changes, nobs = nrow(data),
    contrasts = arr(options()$contrasts),
    anova_type1 = table_of(a1),
    anova_type3 = table_of(a3),
    strata = if (!is.null(d$strata)) strata_tables(d$strata, data),
    strata_formula = d$strata,
    ems = lapply(e, ems_entry),
    tests = lapply(e, mixed_tests, random = d$random),
    moments = lapply(e, moments, random = d$random),
    reml = if (!is.null(d$lmer)) reml_components(d, data),
    one_way = if (d$one_way) one_way(e$type3, data, d$random,
                                     all.vars(as.formula(d$formula))[1]))
  if (d$store_data)
    out$data <- lapply(data, function(col) arr(if (is.factor(col)) as.character(col)
                                               else col))
  out
}

## ---------------------------------------------------------------------------
## Seed check: sires (seed 000), to the printed digits
## ---------------------------------------------------------------------------

check_sires_seed <- function(fx) {
  cat("sires vs seed 000:\n")
  e <- fx$ems$type3
  t1 <- fx$tests$type3[[1]]
  ow <- fx$one_way
  all(c(
    check_printed("SS sire", e$sum_sq[1], 5591.15, 2),
    check_printed("SS error", e$sum_sq[2], 16232.75, 2),
    check_printed("MS sire", e$mean_sq[1], 1397.7875, 4),
    check_printed("MS error", e$mean_sq[2], 463.79286, 5),
    check_printed("EMS coefficient", e$coefficients[[1]][1], 8, 4),
    check_printed("F", t1$f_value, 3.01, 2),
    check_printed("p", t1$p_value, 0.0309, 4),
    check_printed("mu", ow$mean$estimate, 82.55, 2),
    check_printed("mu lower", ow$mean$lower, 66.1373, 4),
    check_printed("mu upper", ow$mean$upper, 98.9627, 4),
    check_printed("sigma2", ow$error_variance$estimate, 463.79, 2),
    check_printed("sigma2 lower", ow$error_variance$lower, 305.11, 2),
    check_printed("sigma2 upper", ow$error_variance$upper, 789.17, 2),
    check_printed("sigma2_T", ow$group_variance$estimate, 116.75, 2),
    check_printed("Satterthwaite df", ow$group_variance$df, 1.76, 2),
    check_printed("sigma2_T lower", ow$group_variance$lower, 29.97, 2),
    check_printed("sigma2_T upper", ow$group_variance$upper, 7051.37, 2),
    check_printed("ICC", ow$icc$estimate, 0.20, 2),
    check_printed("ICC lower", ow$icc$lower, -0.01, 2),
    check_printed("ICC upper", ow$icc$upper, 0.75, 2),
    check_printed("CV", ow$cv, 0.29, 2)))
}

## ---------------------------------------------------------------------------
## Main loop
## ---------------------------------------------------------------------------

seed_ok <- TRUE
for (d in designs) {
  t0 <- proc.time()[["elapsed"]]
  fx <- extract_design(d)
  write_fixture(fx, file.path(fixture_dir, paste0(d$name, ".json")))
  cat(sprintf("%-22s %.1fs\n", d$name, proc.time()[["elapsed"]] - t0))
  if (d$name == "sires") seed_ok <- check_sires_seed(fx) && seed_ok
}
cat("\nFixtures written to", fixture_dir, "\n")
cat(versions_line(), "; car", format(packageVersion("car")), "\n")
if (!seed_ok) stop("some seed values were not reproduced (see above)")
