## Shared by the reference scripts (reference_lme4.R, reference_predict.R,
## reference_inference.R, reference_aov.R): data loading, the table of models,
## tight lmer fits, exact JSON output and the seed checks' comparison.
##
## Not run on its own: the scripts source() it from the repository root.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

data_dir <- file.path("src", "mixedmodels", "datasets", "data")
if (!dir.exists(data_dir))
  stop("run this script from the repository root (", data_dir, " not found)")

## ---------------------------------------------------------------------------
## Data
## ---------------------------------------------------------------------------

factor_info <- fromJSON(file.path(data_dir, "factor_levels.json"),
                        simplifyVector = FALSE)

## Read <name>.csv; factor columns are read as character and converted with
## the level order / ordered flag from factor_levels.json.
read_dataset <- function(name) {
  file <- paste0(name, ".csv")
  facs <- factor_info[[file]]$factors
  col_classes <- NA
  if (length(facs))
    col_classes <- setNames(rep("character", length(facs)), names(facs))
  d <- read.csv(file.path(data_dir, file), na.strings = "",
                stringsAsFactors = FALSE, check.names = FALSE,
                colClasses = col_classes)
  for (f in names(facs)) {
    lev <- unlist(facs[[f]]$levels)
    stopifnot(all(d[[f]] %in% lev))
    d[[f]] <- factor(d[[f]], levels = lev, ordered = isTRUE(facs[[f]]$ordered))
  }
  d
}

dataset_cache <- new.env()
get_dataset <- function(name) {
  if (is.null(dataset_cache[[name]])) dataset_cache[[name]] <- read_dataset(name)
  dataset_cache[[name]]
}

## The data a model is fitted to: the dataset with the spec's changes applied.
model_data <- function(s) {
  d <- get_dataset(s$dataset)
  if (is.null(s$modify)) d else s$modify(d)
}

## ---------------------------------------------------------------------------
## Models: one row per lme4 fixture (tests/fixtures/lme4/<name>.json)
## ---------------------------------------------------------------------------

spec <- function(name, dataset, formula, reml = TRUE, weights = NULL,
                 modify = NULL, data_changes = NULL, thin = NULL,
                 optimizers = c("bobyqa", "nloptwrap")) {
  list(name = name, dataset = dataset, formula = formula, reml = reml,
       weights = weights, modify = modify, data_changes = data_changes,
       thin = thin, optimizers = optimizers)
}

ss_slope <- "Reaction ~ Days + (Days | Subject)"
ort_fix  <- "distance ~ age * Sex"

specs <- list(
  spec("sleepstudy_slope",     "sleepstudy", ss_slope),
  spec("sleepstudy_uncorr",    "sleepstudy", "Reaction ~ Days + (Days || Subject)"),
  spec("sleepstudy_intercept", "sleepstudy", "Reaction ~ Days + (1 | Subject)"),
  spec("sleepstudy_slope_ml",  "sleepstudy", ss_slope, reml = FALSE),
  spec("dyestuff",    "Dyestuff",  "Yield ~ 1 + (1 | Batch)"),
  spec("dyestuff_ml", "Dyestuff",  "Yield ~ 1 + (1 | Batch)", reml = FALSE),
  spec("dyestuff2",   "Dyestuff2", "Yield ~ 1 + (1 | Batch)"),
  spec("penicillin",    "Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  spec("penicillin_ml", "Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)",
       reml = FALSE),
  spec("pastes",    "Pastes", "strength ~ 1 + (1 | batch/cask)"),
  spec("pastes_ml", "Pastes", "strength ~ 1 + (1 | batch/cask)", reml = FALSE),
  spec("cake", "cake", "angle ~ recipe * temperature + (1 | recipe:replicate)"),
  spec("ort7",    "Orthodont", paste(ort_fix, "+ (age | Subject)")),
  spec("ort7_ml", "Orthodont", paste(ort_fix, "+ (age | Subject)"), reml = FALSE),
  spec("ort6",    "Orthodont", paste(ort_fix, "+ (1 | Subject) + (0 + age | Subject)")),
  spec("machines", "Machines",
       "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)"),
  spec("machines_factor_slope", "Machines", "score ~ Machine + (0 + Machine | Worker)"),
  spec("insteval", "InstEval", "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)",
       thin = 100),
  spec("sleepstudy_weights", "sleepstudy", ss_slope, weights = "w",
       modify = function(d) { d$w <- 1 + (d$Days %% 3); d },
       data_changes = "new column w = 1 + (Days %% 3), used as prior weights"),
  spec("sleepstudy_offset", "sleepstudy",
       "Reaction ~ Days + (1 | Subject) + offset(off)",
       modify = function(d) { d$off <- 2.5 * d$Days; d },
       data_changes = "new column off = 2.5 * Days, used as offset"),
  spec("sleepstudy_missing", "sleepstudy", ss_slope,
       modify = function(d) {
         d$Reaction[c(3, 20, 77)] <- NA
         d$Days[100] <- NA
         d
       },
       data_changes = paste("Reaction set to NA at rows 3, 20, 77 and Days set",
                            "to NA at row 100 (1-based); na.action = na.omit")),
  spec("sleepstudy_rankdef", "sleepstudy", "Reaction ~ Days + Days2 + (1 | Subject)",
       modify = function(d) { d$Days2 <- 2 * d$Days; d },
       data_changes = "new column Days2 = 2 * Days (collinear with Days)"),
  spec("orthodont_ml_intercept", "Orthodont", paste(ort_fix, "+ (1 | Subject)"),
       reml = FALSE)
)
names(specs) <- vapply(specs, `[[`, character(1), "name")

## ---------------------------------------------------------------------------
## Fitting
## ---------------------------------------------------------------------------

## Tight settings so the reference is the optimum to ~1e-8 or better.
controls <- list(
  bobyqa    = lmerControl(optimizer = "bobyqa",
                          optCtrl = list(rhoend = 1e-12, maxfun = 1e6)),
  nloptwrap = lmerControl(optimizer = "nloptwrap",
                          optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14,
                                         xtol_rel = 1e-12, ftol_rel = 1e-14,
                                         maxeval = 1e5))
)

## Evaluate expr, collecting (and muffling) messages and warnings.
with_conditions <- function(expr) {
  msgs <- character(0)
  value <- withCallingHandlers(expr,
    message = function(m) {
      msgs <<- c(msgs, sub("\n$", "", conditionMessage(m)))
      invokeRestart("muffleMessage")
    },
    warning = function(w) {
      msgs <<- c(msgs, paste("Warning:", conditionMessage(w)))
      invokeRestart("muffleWarning")
    })
  list(value = value, messages = msgs)
}

## lmer(...) with the given control; weights are passed by column name so
## that they are evaluated in `data` exactly as in an interactive call.
fit_model <- function(s, data, control, devFunOnly = FALSE) {
  cl <- call("lmer", formula = as.formula(s$formula), data = quote(data),
             REML = s$reml, control = quote(control), devFunOnly = devFunOnly)
  if (!is.null(s$weights)) cl$weights <- as.name(s$weights)
  env <- environment()
  with_conditions(eval(cl, envir = env))
}

objective <- function(m) if (isREML(m)) REMLcrit(m) else deviance(m)

## Fit with every optimizer, keep the lowest objective.
fit_best <- function(s, data) {
  fits <- lapply(setNames(s$optimizers, s$optimizers), function(opt) {
    t0 <- proc.time()[["elapsed"]]
    f <- fit_model(s, data, controls[[opt]])
    f$objective <- objective(f$value)
    f$seconds <- proc.time()[["elapsed"]] - t0
    f
  })
  objs <- vapply(fits, `[[`, numeric(1), "objective")
  best <- names(which.min(objs))
  ## largest relative theta difference between optimizers (console only)
  thetas <- lapply(fits, function(f) getME(f$value, "theta"))
  theta_spread <- max(vapply(thetas, function(t)
    max(abs(t - thetas[[best]]) / pmax(abs(thetas[[best]]), 1e-3)), numeric(1)))
  list(model = fits[[best]]$value, messages = fits[[best]]$messages,
       optimizer = best, objectives = objs,
       objective_spread = if (length(objs) > 1) max(objs) - min(objs) else NA_real_,
       theta_spread = theta_spread,
       all_messages = lapply(fits, `[[`, "messages"),
       seconds = vapply(fits, `[[`, numeric(1), "seconds"))
}

## ---------------------------------------------------------------------------
## JSON output with full double precision
## ---------------------------------------------------------------------------

## Arrays that must stay arrays in JSON even when of length 1.
arr <- function(x) I(unname(x))

## Matrix -> list of rows (row-major), each row an array.
rows_of <- function(m) {
  m <- as.matrix(m)
  lapply(seq_len(nrow(m)), function(i) arr(m[i, ]))
}

## Shortest of %.15g/%.16g/%.17g that reads back to the identical double.
num_to_json <- function(x) {
  vapply(x, function(v) {
    if (is.na(v)) return("null")
    if (!is.finite(v)) stop("non-finite value cannot be written to JSON")
    for (p in 15:17) {
      s <- sprintf(paste0("%.", p, "g"), v)
      if (as.numeric(s) == v) return(s)
    }
    s
  }, character(1))
}

## jsonlite's digits = NA stops at 15 significant digits, so doubles are
## pre-rendered and passed through verbatim (class "json").  Length-1 doubles
## become scalars unless wrapped in I() (then arrays), like auto_unbox.
precise <- function(x) {
  if (is.list(x)) {
    attrs <- attributes(x)
    x <- lapply(x, precise)
    attributes(x) <- attrs
    return(x)
  }
  if (is.double(x)) {
    s <- num_to_json(x)
    txt <- if (length(x) == 1 && !inherits(x, "AsIs")) s
           else paste0("[", paste(s, collapse = ","), "]")
    return(structure(txt, class = "json"))
  }
  x
}

write_fixture <- function(x, path) {
  write_json(precise(x), path, json_verbatim = TRUE, auto_unbox = TRUE,
             pretty = FALSE, null = "null", na = "null")
}

versions_line <- function() {
  paste(R.version.string, "; lme4", format(packageVersion("lme4")),
        "; Matrix", format(packageVersion("Matrix")),
        "; minqa", format(packageVersion("minqa")),
        "; nloptr", format(packageVersion("nloptr")),
        "; jsonlite", format(packageVersion("jsonlite")))
}

## Data frame or matrix -> {rownames, columns, values: {column: array}}.
## Column names are kept verbatim ("Pr(>|t|)", "2.5 %", ...); row names are
## trimmed (summary.aov pads them); NA -> null.
table_of <- function(x) {
  x <- as.data.frame(x, check.names = FALSE, stringsAsFactors = FALSE)
  list(rownames = arr(trimws(rownames(x))), columns = arr(colnames(x)),
       values = lapply(x, function(col) arr(if (is.numeric(col)) as.double(col)
                                            else col)))
}

## Seed checks: |printed - computed| within half a unit of the printed last
## digit; prints one line and returns TRUE/FALSE.
check_printed <- function(label, computed, printed, decimals) {
  ok <- abs(computed - printed) <= 0.5 * 10^-decimals + 1e-12
  cat(sprintf("  %-28s computed %-14.8g printed %-10s %s\n", label, computed,
              formatC(printed, format = "f", digits = decimals),
              if (ok) "ok" else "MISMATCH"))
  ok
}
