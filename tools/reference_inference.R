## Reference values for inference on fitted linear mixed models (lmerTest,
## pbkrtest, lme4), written as JSON test fixtures.
##
## Run from the repository root:
##     Rscript tools/reference_inference.R
## Writes to tests/fixtures/inference/:
##   <model>.json             one per row of `models`: coefficient tables,
##                            anova (types 1-3, Satterthwaite and
##                            Kenward-Roger), ranova, contrasts (contest),
##                            Wald and profile confidence intervals, the
##                            Kenward-Roger adjusted vcov and the profile;
##   anova_<name>.json        one per row of `comparisons`: lme4's
##                            anova(m0, m1) likelihood-ratio tables;
##   ranova_cases.json        lmerTest's ranova for the `ranova_cases`;
##   sires_procmixed.json     SAS PROC MIXED's CL intervals for the variance
##                            components and the ESTIMATE of the mean for the
##                            sires data, computed by hand;
##   bootstrap_percentile.json  lme4's bootstrap percentile limits
##                            (confint.bootMer) for fixed replicate matrices.
##
## Data loading, tight fits (bobyqa and nloptwrap, lower objective kept) and
## exact JSON output come from reference_common.R.  lmerTest is attached after
## it, so the `lmer` in its fit_model() is lmerTest::lmer and every fit is an
## lmerModLmerTest.

source(file.path("tools", "reference_common.R"))
suppressPackageStartupMessages({
  library(lmerTest)
  library(pbkrtest)
})

fixture_dir <- file.path("tests", "fixtures", "inference")
dir.create(fixture_dir, recursive = TRUE, showWarnings = FALSE)

## ---------------------------------------------------------------------------
## Models
## ---------------------------------------------------------------------------

## A model row: a spec() of reference_common.R plus
##   contrasts  named list of L matrices for lmerTest::contest, each given as a
##              list of rows; a row is a named vector over fixef names (the
##              other entries are 0), see expand_L();
##   profile    whether to compute the (slow) profile and its intervals.
model <- function(name, dataset, formula, contrasts = list(), profile = TRUE,
                  modify = NULL, data_changes = NULL,
                  optimizers = c("bobyqa", "nloptwrap"))
  c(spec(name, dataset, formula, modify = modify, data_changes = data_changes,
         optimizers = optimizers),
    list(contrasts = contrasts, profile = profile))

na_rows <- function(column, rows) function(d) { d[[column]][rows] <- NA; d }

ort_int   <- "distance ~ age * Sex + (1 | Subject)"
ort_L <- list(
  girls_minus_boys_age11 = list(c(SexFemale = 1, `age:SexFemale` = 11)),
  sex = list(c(SexFemale = 1), c(`age:SexFemale` = 1)))
ss_L <- list(
  mean_day5 = list(c(`(Intercept)` = 1, Days = 5)),
  all = list(c(`(Intercept)` = 1), c(Days = 1)))
mean_L <- list(mean = list(c(`(Intercept)` = 1)))

models <- list(
  model("orthodont_intercept", "Orthodont", ort_int, ort_L),
  ## lme4's profile of this model is degenerate (.sigma upper limit Inf, "bad
  ## spline fit" warnings) and takes minutes, so it is not recorded.
  model("orthodont_slope", "Orthodont", "distance ~ age * Sex + (age | Subject)",
        ort_L, profile = FALSE),
  model("orthodont_missing", "Orthodont", ort_int, ort_L,
        modify = na_rows("distance", c(5, 17, 40, 77, 90)),
        data_changes = paste("distance set to NA at rows 5, 17, 40, 77, 90",
                             "(1-based); na.action = na.omit")),
  model("sleepstudy_slope", "sleepstudy", "Reaction ~ Days + (Days | Subject)",
        ss_L),
  model("sleepstudy_missing_intercept", "sleepstudy",
        "Reaction ~ Days + (1 | Subject)", ss_L,
        modify = na_rows("Reaction", c(3, 20, 77)),
        data_changes = paste("Reaction set to NA at rows 3, 20, 77 (1-based);",
                             "na.action = na.omit")),
  model("sleepstudy_missing_factor", "sleepstudy",
        "Reaction ~ DaysF + (1 | Subject)",
        list(day9_minus_day0 = list(c(DaysF9 = 1)),
             days_1_2 = list(c(DaysF1 = 1), c(DaysF2 = 1))),
        profile = FALSE,
        modify = function(d) {
          d <- na_rows("Reaction", c(3, 20, 77))(d)
          d$DaysF <- factor(d$Days, levels = 0:9)
          d
        },
        data_changes = paste("Reaction set to NA at rows 3, 20, 77 (1-based);",
                             "na.action = na.omit; new column DaysF =",
                             "factor(Days) with levels 0..9")),
  model("dyestuff", "Dyestuff", "Yield ~ 1 + (1 | Batch)", mean_L),
  model("penicillin", "Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)",
        mean_L),
  model("pastes", "Pastes", "strength ~ 1 + (1 | batch/cask)", mean_L),
  model("machines", "Machines",
        "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)",
        list(C_minus_B = list(c(MachineB = -1, MachineC = 1)),
             machine = list(c(MachineB = 1), c(MachineC = 1))),
        profile = FALSE),
  ## a 3 x 3 unstructured term: profiles of correlations (lme4's spline limits
  ## for these are off near +-1; the tests compare the traces' points).
  ## nloptwrap only: profile() inherits the fit's optimizer settings, and with
  ## minqa's bobyqa (rhoend 1e-12) it had not finished after 12 minutes.
  model("machines_us", "Machines", "score ~ Machine + (0 + Machine | Worker)",
        list(C_minus_B = list(c(MachineB = -1, MachineC = 1))),
        optimizers = "nloptwrap"),
  model("cake", "cake", "angle ~ recipe * temperature + (1 | recipe:replicate)",
        list(C_minus_B = list(c(recipeB = -1, recipeC = 1)),
             recipe_linear_trend = list(c(`recipeB:temperature.L` = 1),
                                        c(`recipeC:temperature.L` = 1))),
        profile = FALSE),
  model("oats", "Oats", "yield ~ Variety * nitro + (1 | Block/Variety)",
        list(victory_nitro_slope = list(c(nitro = 1, `VarietyVictory:nitro` = 1)),
             variety = list(c(VarietyMarvellous = 1), c(VarietyVictory = 1))),
        profile = FALSE),
  model("sires", "sires", "bw ~ 1 + (1 | sire)", mean_L,
        modify = function(d) { d$sire <- factor(d$sire); d },
        data_changes = "sire converted with factor(sire) (levels 177, 200, 201, 202, 203)"),
  ## singular fits (a variance estimated as 0): the whole model (its profile of
  ## .sig01 starts at the bound), and one of two terms
  model("dyestuff2_singular", "Dyestuff2", "Yield ~ 1 + (1 | Batch)", mean_L),
  model("sleepstudy_singular_term", "sleepstudy",
        "Reaction ~ Days + (1 | Subject) + (1 | g)", ss_L, profile = FALSE,
        modify = function(d) { d$g <- factor(rep(1:9, length.out = nrow(d))); d },
        data_changes = "new column g = factor(rep(1:9, length.out = 180)), levels 1..9"),
  ## a term repeated: the variance parameters are not identified, the Hessian of the deviance and
  ## pbkrtest's information matrix are singular (lmerTest's and pbkrtest's generalized inverses)
  model("sleepstudy_duplicate_term", "sleepstudy",
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject) + (1 | Subject)", ss_L,
        profile = FALSE)
)
names(models) <- vapply(models, `[[`, character(1), "name")

## Likelihood-ratio comparisons: lme4's anova(m0, m1) on REML fits, by
## default refitted with ML (refit = TRUE) and as fitted (refit = FALSE).
comparison <- function(name, dataset, formulas)
  list(name = name, dataset = dataset, formulas = formulas)

comparisons <- list(
  comparison("anova_sleepstudy", "sleepstudy",
             c(m0 = "Reaction ~ Days + (1 | Subject)",
               m1 = "Reaction ~ Days + (Days | Subject)")),
  comparison("anova_orthodont", "Orthodont",
             c(m0 = "distance ~ age + (1 | Subject)", m1 = ort_int)),
  comparison("anova_penicillin", "Penicillin",
             c(m0 = "diameter ~ 1 + (1 | plate)",
               m1 = "diameter ~ 1 + (1 | plate) + (1 | sample)"))
)

## lmerTest's ranova on sleepstudy models with random terms the `models` above
## do not have: double-bar terms, (0 + x | g) (which ranova reduces to
## (1 | g)), a term with three effects, an ML fit, reduce.terms = FALSE, and
## prior weights with an offset.
ranova_case <- function(name, formula, reml = TRUE, reduce_terms = TRUE,
                        weights = NULL)
  c(spec(name, "sleepstudy", formula, reml = reml, weights = weights,
         modify = function(d) { d$w <- 1 + d$Days %% 3; d$off <- 2.5 * d$Days; d },
         data_changes = "new columns w = 1 + (Days %% 3) and off = 2.5 * Days"),
    list(reduce_terms = reduce_terms))

ranova_cases <- list(
  ranova_case("double_bar", "Reaction ~ Days + (Days || Subject)"),
  ranova_case("slope_only", "Reaction ~ Days + (0 + Days | Subject)"),
  ranova_case("quadratic", "Reaction ~ Days + (1 + Days + I(Days^2) | Subject)"),
  ranova_case("slope_ml", "Reaction ~ Days + (Days | Subject)", reml = FALSE),
  ranova_case("whole_terms", "Reaction ~ Days + (Days | Subject)",
              reduce_terms = FALSE),
  ranova_case("weights_offset", "Reaction ~ Days + (1 | Subject) + offset(off)",
              weights = "w")
)

## ---------------------------------------------------------------------------
## Helpers
## ---------------------------------------------------------------------------

## Fit a spec with fit_best() and check that it is an lmerTest fit.
fit_lmertest <- function(s, data) {
  fit <- fit_best(s, data)
  stopifnot(inherits(fit$model, "lmerModLmerTest"))
  fit
}

## Evaluate expr; record the value through `extract` and the messages and
## warnings, or the error message instead of a value.
recorded <- function(expr, extract = table_of) {
  r <- tryCatch(with_conditions(expr),
                error = function(e) list(error = conditionMessage(e)))
  if (!is.null(r$error)) return(list(error = r$error))
  list(value = extract(r$value), messages = arr(r$messages))
}

## Named rows over fixef names -> L matrix (one row per list element).
expand_L <- function(rows, coef_names) {
  L <- t(vapply(rows, function(r) {
    stopifnot(!is.null(names(r)), all(names(r) %in% coef_names))
    v <- setNames(numeric(length(coef_names)), coef_names)
    v[names(r)] <- r
    v
  }, numeric(length(coef_names))))
  matrix(L, nrow = length(rows), dimnames = list(NULL, coef_names))
}

ddfs <- c(satterthwaite = "Satterthwaite", kenward_roger = "Kenward-Roger")
per_ddf <- function(f) lapply(ddfs, f)

## lmerTest::contest for one L: the joint F test, and for a single row also
## the t test (contest1D: estimate, SE, df, t, CI, p), for both ddf methods.
extract_contrast <- function(m, rows) {
  L <- expand_L(rows, names(fixef(m)))
  out <- list(L = rows_of(L),
              f_test = per_ddf(function(d)
                recorded(contest(m, L, joint = TRUE, ddf = d))))
  if (nrow(L) == 1)
    out$t_test <- per_ddf(function(d)
      recorded(contest(m, L, joint = FALSE, ddf = d)))
  out
}

## Profile data frame -> per parameter (.par): its zeta and focal values and
## the values of all parameters along the profile.
extract_profile <- function(pp) {
  d <- as.data.frame(pp)
  params <- setdiff(names(d), c(".zeta", ".par", ".focal"))
  lapply(split(d, d$.par), function(x)
    list(zeta = arr(x$.zeta), focal = arr(x$.focal),
         params = lapply(x[params], arr)))
}

## Profile intervals, and the profile itself (same as confint(m,
## method = "profile"), which calls profile(m, signames = oldNames)).
extract_profile_ci <- function(m) {
  pp <- with_conditions(profile(m, signames = TRUE))
  ci <- with_conditions(confint(pp$value))
  list(confint = table_of(ci$value),
       profile = extract_profile(pp$value),
       messages = arr(c(pp$messages, ci$messages)))
}

extract_fit <- function(m, fit) {
  theta <- getME(m, "theta")
  list(optimizer = fit$optimizer, objective_spread = fit$objective_spread,
       reml_criterion = REMLcrit(m),
       theta = arr(theta), theta_names = arr(names(theta)),
       fixef = list(names = arr(names(fixef(m))), values = arr(fixef(m))),
       sigma = sigma(m), vcov = rows_of(as.matrix(vcov(m))),
       nobs = nobs(m),
       rows_used = arr(as.integer(rownames(model.frame(m)))),
       messages = arr(fit$messages))
}

## `data` (the model's data) is needed here: when ranova() drops the last
## random-effect term it refits with lm(..., data = data), evaluated in the
## frame that called ranova().
extract_fixture <- function(s, fit, data) {
  m <- fit$model
  wald <- confint(m, method = "Wald", oldNames = TRUE)
  wald_new <- confint(m, method = "Wald", oldNames = FALSE)
  prof <- if (s$profile) extract_profile_ci(m)
  if (!is.null(prof))  # profile and Wald list the parameters in the same order
    stopifnot(identical(prof$confint$rownames, arr(rownames(wald))))
  list(
    name = s$name, dataset = s$dataset, formula = s$formula, reml = s$reml,
    data_changes = s$data_changes,
    fit = extract_fit(m, fit),
    coef_table = per_ddf(function(d) table_of(summary(m, ddf = d)$coefficients)),
    anova = lapply(setNames(1:3, paste0("type", 1:3)), function(type)
      per_ddf(function(d) recorded(anova(m, type = type, ddf = d)))),
    anova_lme4 = recorded(anova(m, ddf = "lme4")),
    ranova = recorded(ranova(m)),
    contrasts = lapply(s$contrasts, function(rows) extract_contrast(m, rows)),
    confint_names = list(old = arr(rownames(wald)), new = arr(rownames(wald_new))),
    confint_wald = table_of(wald),
    confint_profile = prof,
    vcov_kenward_roger = rows_of(as.matrix(vcovAdj(m)))
  )
}

## ---------------------------------------------------------------------------
## Likelihood-ratio tables
## ---------------------------------------------------------------------------

## anova(m0, m1, refit = refit) called with the models as named variables, so
## that lme4 uses those names as row names.
lr_table <- function(fits, refit) {
  cl <- as.call(c(list(as.name("anova")), lapply(names(fits), as.name),
                  list(refit = refit)))
  recorded(eval(cl, fits))
}

extract_comparison <- function(cmp) {
  data <- get_dataset(cmp$dataset)
  specs_of <- lapply(names(cmp$formulas), function(nm)
    spec(paste(cmp$name, nm), cmp$dataset, cmp$formulas[[nm]]))
  names(specs_of) <- names(cmp$formulas)
  fits <- lapply(specs_of, function(s) fit_lmertest(s, data))
  models <- lapply(fits, `[[`, "model")
  ## the ML optimum with tight settings, to compare with anova's refitML()
  ml <- lapply(specs_of, function(s) {
    s$reml <- FALSE
    m <- fit_best(s, data)$model
    list(deviance = deviance(m), theta = arr(getME(m, "theta")))
  })
  list(name = cmp$name, dataset = cmp$dataset, formulas = as.list(cmp$formulas),
       fits = lapply(fits, function(f) extract_fit(f$model, f)),
       tight_ml_fits = ml,
       refit_true = lr_table(models, TRUE),
       refit_false = lr_table(models, FALSE))
}

## ranova() refits the reduced models with update(), which evaluates the call
## in the formula's environment (fit_model's frame: data and the tight
## control), and the fixed-effects lm() in this frame, hence `data` here.
extract_ranova_case <- function(s) {
  data <- model_data(s)
  fit <- fit_lmertest(s, data)
  list(name = s$name, formula = s$formula, reml = s$reml, weights = s$weights,
       reduce_terms = s$reduce_terms, data_changes = s$data_changes,
       fit = extract_fit(fit$model, fit),
       ranova = recorded(ranova(fit$model, reduce.terms = s$reduce_terms)))
}

## ---------------------------------------------------------------------------
## SAS PROC MIXED (CL, ESTIMATE) for the sires data
## ---------------------------------------------------------------------------

## Variance-components model y = X b + sum_k Z_k u_k + e: REML estimates of
## the variances (one per (1 | g) term, then the residual) with their
## asymptotic covariance 2 H^{-1}, H the Hessian of -2 REML log-likelihood
## w.r.t. the variances, observed or expected:
##   expected  H_ij = tr(P V_i P V_j)
##   observed  H_ij = -tr(P V_i P V_j) + 2 y' P V_i P V_j P y
## with V_i = Z_i Z_i' (I for the residual) and
## P = V^-1 - V^-1 X (X' V^-1 X)^-1 X' V^-1.
variance_components <- function(m) {
  stopifnot(all(lengths(m@cnms) == 1))
  X <- getME(m, "X")
  y <- getME(m, "y")
  Zt <- as.matrix(getME(m, "Zt"))
  Gp <- getME(m, "Gp")
  Vk <- c(lapply(seq_along(m@cnms), function(k) {
            Z <- t(Zt[(Gp[k] + 1):Gp[k + 1], , drop = FALSE])
            Z %*% t(Z)
          }), list(diag(nrow(X))))
  est <- c((getME(m, "theta") * sigma(m))^2, sigma(m)^2)
  names(est) <- c(names(m@cnms), "Residual")
  V <- Reduce(`+`, Map(`*`, est, Vk))
  Vi <- solve(V)
  P <- Vi - Vi %*% X %*% solve(t(X) %*% Vi %*% X, t(X) %*% Vi)
  PV <- lapply(Vk, function(A) P %*% A)
  Py <- P %*% y
  nv <- length(Vk)
  tr <- outer(seq_len(nv), seq_len(nv),
              Vectorize(function(i, j) sum(t(PV[[i]]) * PV[[j]])))
  yq <- outer(seq_len(nv), seq_len(nv),
              Vectorize(function(i, j) drop(t(Py) %*% Vk[[i]] %*% PV[[j]] %*% Py)))
  hessian <- list(expected = tr, observed = -tr + 2 * yq)
  list(estimate = est, Vk = Vk, X = X, y = y,
       asycov = lapply(hessian, function(H) 2 * solve(H)))
}

## -2 REML log-likelihood as a function of the variances (for a numerical
## check of the observed Hessian).
minus2_reml <- function(vc) function(v) {
  V <- Reduce(`+`, Map(`*`, v, vc$Vk))
  Vi <- solve(V)
  XtViX <- t(vc$X) %*% Vi %*% vc$X
  r <- vc$y - vc$X %*% solve(XtViX, t(vc$X) %*% Vi %*% vc$y)
  drop(determinant(V)$modulus + determinant(XtViX)$modulus + t(r) %*% Vi %*% r)
}

## PROC MIXED CL: Satterthwaite df = 2 (est / SE)^2, chi-square limits.
## SAS's default ASYCOV is 2 H^-1 with the observed Hessian H of -2 REML
## log-likelihood (the expected one only with SCORING=).  For the balanced,
## interior sires fit the two are equal at the REML optimum and both reproduce
## the seed; both are written.
satterthwaite_cl <- function(est, se, alpha = 0.05) {
  df <- 2 * (est / se)^2
  list(estimate = est, se = se, df = df,
       lower = df * est / qchisq(1 - alpha / 2, df),
       upper = df * est / qchisq(alpha / 2, df))
}

sires_procmixed <- function(fit, alpha = 0.05) {
  m <- fit$model
  vc <- variance_components(m)
  num_hess <- numDeriv::hessian(minus2_reml(vc), unname(vc$estimate))
  obs_hess <- 2 * solve(vc$asycov$observed)
  stopifnot(max(abs(num_hess - obs_hess) / abs(obs_hess)) < 1e-5)
  cl <- lapply(vc$asycov, function(A) {
    r <- satterthwaite_cl(vc$estimate, sqrt(diag(A)), alpha)
    c(list(parameter = arr(names(vc$estimate)), asycov = rows_of(A)),
      lapply(r, arr))
  })
  ## ESTIMATE "mean" intercept 1 / cl, containment df: the rank contribution
  ## of the sire effect, rank([X Z]) - rank(X).
  X <- getME(m, "X")
  Z <- t(as.matrix(getME(m, "Zt")))
  df <- qr(cbind(X, Z))$rank - qr(X)$rank
  est <- unname(fixef(m))
  se <- sqrt(vcov(m)[1, 1])
  tval <- est / se
  q <- qt(1 - alpha / 2, df)
  ## classical one-way ANOVA (balanced: t sires, n calves each)
  a <- anova(lm(bw ~ sire, data = model.frame(m)))
  n <- unique(table(model.frame(m)$sire))
  ms <- a[["Mean Sq"]]
  ## the lecture's Satterthwaite df for (MS_sire - MS_error) / n
  df_ms <- (ms[1] - ms[2])^2 / (ms[1]^2 / a$Df[1] + ms[2]^2 / a$Df[2])
  stopifnot(abs(df_ms / cl$observed$df[1] - 1) < 1e-6)
  list(
    name = "sires_procmixed", formula = "bw ~ 1 + (1 | sire)",
    data_changes = "sire converted with factor(sire)", alpha = alpha,
    fit = extract_fit(m, fit),
    covparms_cl = cl,
    estimate_mean = list(label = "mean", L = arr(1), estimate = est, se = se,
                         df = df, t_value = tval,
                         p_value = 2 * pt(-abs(tval), df),
                         lower = est - q * se, upper = est + q * se),
    anova_one_way = list(ms_sire = ms[1], ms_error = ms[2],
                         df_sire = a$Df[1], df_error = a$Df[2],
                         n_per_sire = n, satterthwaite_df_sire = df_ms),
    ## the numbers printed in the seed (lecture notes, SAS output)
    seed = list(sire = list(estimate = 116.75, lower = 29.9707, upper = 7051.37),
                residual = list(estimate = 463.79, lower = 305.11, upper = 789.17),
                mean = list(estimate = 82.55, se = 5.9114, df = 4, t_value = 13.96,
                            p_value = 0.0002, lower = 66.1373, upper = 98.9627))
  )
}

## ---------------------------------------------------------------------------
## Bootstrap percentile intervals
## ---------------------------------------------------------------------------

## lme4's confint(method = "boot") limits (confint.bootMer -> boot.ci(type =
## "perc"), order statistics interpolated on the normal scale) for fixed
## replicate matrices, so that the interval rule is checked without sharing
## R's random numbers.  Columns: exp(sin(i)) and cos(3 i)^3 (ties-free,
## skewed); the "with_na" case has failed replicates (NA), which boot drops.
bootstrap_percentile <- function() {
  sizes <- c(9, 20, 99, 200, 1000)
  levels <- c(0.5, 0.9, 0.95, 0.99)
  one_case <- function(t) {
    fake <- structure(list(t0 = c(a = 1, b = 1), t = t, R = nrow(t),
                           sim = "parametric", call = quote(bootMer())),
                      class = c("bootMer", "boot"))
    list(t = lapply(seq_len(ncol(t)), function(j) arr(t[, j])),
         limits = lapply(setNames(levels, paste0("level_", levels)), function(l)
           recorded(lme4:::confint.bootMer(fake, level = l))))
  }
  cases <- lapply(setNames(sizes, paste0("R_", sizes)), function(R) {
    i <- seq_len(R)
    one_case(cbind(exp(sin(i)), cos(3 * i)^3))
  })
  i <- seq_len(50)
  t <- cbind(exp(sin(i)), cos(3 * i)^3)
  t[c(3, 17, 40), 1] <- NA
  t[c(8, 9), 2] <- NA
  cases$with_na <- one_case(t)
  list(name = "bootstrap_percentile", levels = arr(levels), cases = cases)
}

## ---------------------------------------------------------------------------
## Seed checks (console; stop on mismatch)
## ---------------------------------------------------------------------------

check_orthodont_seed <- function(fx) {
  cat("Orthodont type III Satterthwaite vs seed 003:\n")
  t3 <- fx$anova$type3$satterthwaite$value$values
  seed <- list(F = c(108.3559, 0.4507, 6.3027), DenDF = c(79.00, 103.99, 79.00))
  ok <- c(Map(function(term, i) check_printed(paste(term, "F"), t3$`F value`[i],
                                              seed$F[i], 4),
              fx$anova$type3$satterthwaite$value$rownames, 1:3),
          Map(function(term, i) check_printed(paste(term, "DenDF"), t3$DenDF[i],
                                              seed$DenDF[i], 2),
              fx$anova$type3$satterthwaite$value$rownames, 1:3))
  all(unlist(ok))
}

check_sires_seed <- function(sp) {
  cat("sires PROC MIXED vs seed 000:\n")
  ok <- c()
  for (h in names(sp$covparms_cl)) {
    cl <- sp$covparms_cl[[h]]
    cat(sprintf(" (%s information) df = %s\n", h,
                paste(sprintf("%.6g", cl$df), collapse = ", ")))
    for (i in 1:2) {
      s <- sp$seed[[c("sire", "residual")[i]]]
      dec <- if (i == 1) c(2, 4, 2) else c(2, 2, 2)
      ok <- c(ok, check_printed(paste(cl$parameter[i], "estimate"),
                                cl$estimate[i], s[["estimate"]], dec[1]),
              check_printed(paste(cl$parameter[i], "lower"), cl$lower[i],
                            s[["lower"]], dec[2]),
              check_printed(paste(cl$parameter[i], "upper"), cl$upper[i],
                            s[["upper"]], dec[3]))
    }
  }
  e <- sp$estimate_mean
  s <- sp$seed$mean
  ok <- c(ok, check_printed("mean estimate", e$estimate, s[["estimate"]], 4),
          check_printed("mean SE", e$se, s[["se"]], 4),
          check_printed("mean df", e$df, s[["df"]], 0),
          check_printed("mean t", e$t_value, s[["t_value"]], 2),
          check_printed("mean p", e$p_value, s[["p_value"]], 4),
          check_printed("mean lower", e$lower, s[["lower"]], 4),
          check_printed("mean upper", e$upper, s[["upper"]], 4))
  all(ok)
}

## ---------------------------------------------------------------------------
## Main loop
## ---------------------------------------------------------------------------

write_to <- function(x, name) write_fixture(x, file.path(fixture_dir, paste0(name, ".json")))

seed_ok <- TRUE
for (s in models) {
  t0 <- proc.time()[["elapsed"]]
  data <- model_data(s)
  fit <- fit_lmertest(s, data)
  fx <- extract_fixture(s, fit, data)
  write_to(fx, s$name)
  cat(sprintf("%-30s best=%-9s spread=%.1e  %.1fs%s\n", s$name, fit$optimizer,
              fit$objective_spread, proc.time()[["elapsed"]] - t0,
              if (s$profile) "  (with profile)" else ""))
  if (s$name == "orthodont_intercept") seed_ok <- check_orthodont_seed(fx) && seed_ok
  if (s$name == "sires") {
    sp <- sires_procmixed(fit)
    write_to(sp, "sires_procmixed")
    seed_ok <- check_sires_seed(sp) && seed_ok
  }
}
write_to(bootstrap_percentile(), "bootstrap_percentile")
for (cmp in comparisons) {
  write_to(extract_comparison(cmp), cmp$name)
  cat(sprintf("%-30s written\n", cmp$name))
}
write_to(lapply(setNames(ranova_cases, vapply(ranova_cases, `[[`, "", "name")),
                extract_ranova_case), "ranova_cases")
cat(sprintf("%-30s written\n", "ranova_cases"))
cat("\nFixtures written to", fixture_dir, "\n")
cat(versions_line(), "; lmerTest", format(packageVersion("lmerTest")),
    "; pbkrtest", format(packageVersion("pbkrtest")),
    "; numDeriv", format(packageVersion("numDeriv")), "\n")
if (!seed_ok) stop("some seed values were not reproduced (see above)")
