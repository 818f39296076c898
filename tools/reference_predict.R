## Reference predictions and coefficients from R's lme4, written as JSON test
## fixtures.
##
## Run from the repository root:
##     Rscript tools/reference_predict.R
## Writes one file per model to tests/fixtures/lme4_predict/<name>.json.
##
## The models are rows of `specs` in reference_common.R (the same data, data
## changes and tight fits as the lme4 fixtures).  Each case below adds a new
## data frame and the predict() calls to record: with newdata (and
## allow.new.levels = TRUE, as every newdata here has unseen levels) or on the
## data used in the fit, for re.form NULL (all random effects), NA (none) or a
## formula (a subset).

source(file.path("tools", "reference_common.R"))

fixture_dir <- file.path("tests", "fixtures", "lme4_predict")
dir.create(fixture_dir, recursive = TRUE, showWarnings = FALSE)

## One predict() call: re.form, and whether it is on the case's newdata.
pred <- function(re.form = NULL, newdata = TRUE)
  list(re.form = re.form, newdata = newdata)

## One fixture: a model of `specs`, a function of the fit data returning the
## new data, the predictions, and whether to record coef(m).
case <- function(model, newdata, predictions, coef = FALSE, note = NULL)
  list(model = model, newdata = newdata, predictions = predictions,
       coef = coef, note = note)

cases <- list(
  case("sleepstudy_slope",
       function(d) data.frame(Subject = rep(c("308", "999", "372"), each = 3),
                              Days = rep(c(0, 2.5, 9), 3)),
       ## ~(1 | Subject) is part of the (Days | Subject) term: lme4 uses the
       ## intercepts only.
       list(pred(), pred(NA), pred(~ (1 | Subject))),
       coef = TRUE),
  case("penicillin",
       function(d) expand.grid(plate = c("a", "new", "x"), sample = c("A", "F"),
                               stringsAsFactors = FALSE),
       list(pred(~ (1 | plate), newdata = FALSE), pred(~ (1 | sample), newdata = FALSE),
            pred(), pred(~ (1 | plate)), pred(~ (1 | sample)), pred(NA)),
       coef = TRUE),
  case("ort7",
       function(d) data.frame(Subject = rep(c("M01", "F05", "M99", "F99"), each = 2),
                              Sex = rep(c("Male", "Female", "Male", "Female"), each = 2),
                              age = rep(c(9, 11), 4)),
       list(pred(), pred(NA))),
  case("cake",
       function(d) {
         nd <- expand.grid(temperature = c("185", "215"), replicate = c("3", "16"),
                           recipe = c("A", "C"), stringsAsFactors = FALSE)
         ## all 6 levels, ordered, so the polynomial contrasts line up
         nd$temperature <- factor(nd$temperature, levels = levels(d$temperature),
                                  ordered = TRUE)
         nd
       },
       list(pred(), pred(NA)),
       note = "replicate 16 is unseen, so recipe:replicate A:16 and C:16 are new levels"),
  case("sleepstudy_offset",
       function(d) data.frame(Subject = rep(c("308", "999"), each = 3),
                              Days = rep(c(0, 4.5, 9), 2),
                              off = seq(-5, 5, length.out = 6)),
       list(pred(), pred(NA)),
       note = "off in newdata is not 2.5 * Days, so it must be read from newdata")
)

## re.form as the string the Python API takes: null = all, "~0" = none.
re_form_text <- function(f) {
  if (is.null(f)) return(NULL)
  if (!inherits(f, "formula") && is.na(f)) return("~0")
  paste(deparse(f), collapse = "")
}

## Data frame -> {column: array}; factors as their labels.
columns_of <- function(d)
  lapply(d, function(x) arr(if (is.numeric(x)) as.numeric(x) else as.character(x)))

extract_coef <- function(m)
  lapply(names(coef(m)), function(g) {
    x <- coef(m)[[g]]
    list(group = g, levels = arr(rownames(x)), columns = arr(colnames(x)),
         values = rows_of(x))
  })

for (cs in cases) {
  s <- specs[[cs$model]]
  data <- model_data(s)
  fit <- fit_best(s, data)
  m <- fit$model
  nd <- cs$newdata(data)
  predictions <- lapply(cs$predictions, function(p) {
    args <- list(m, re.form = p$re.form)
    if (p$newdata) args <- c(args, list(newdata = nd, allow.new.levels = TRUE))
    list(re_form = re_form_text(p$re.form), newdata = p$newdata,
         allow_new_levels = p$newdata, values = arr(do.call(predict, args)))
  })
  out <- list(
    name = s$name, dataset = s$dataset, formula = s$formula, reml = s$reml,
    data_changes = s$data_changes, note = cs$note,
    optimizer = fit$optimizer, objective_spread = fit$objective_spread,
    fixef = list(names = arr(names(fixef(m))), values = arr(fixef(m))),
    theta = arr(getME(m, "theta")),
    newdata = columns_of(nd),
    predictions = predictions,
    coef = if (cs$coef) extract_coef(m) else NULL)
  write_fixture(out, file.path(fixture_dir, paste0(s$name, ".json")))
  cat(sprintf("%-18s best=%-9s spread=%.1e  %d predictions%s\n", s$name,
              fit$optimizer, fit$objective_spread, length(predictions),
              if (cs$coef) " + coef" else ""))
}
cat("\nFixtures written to", fixture_dir, "\n")
cat(versions_line(), "\n")
