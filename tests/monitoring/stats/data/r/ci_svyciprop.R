# Reference intervals for proportions: R's survey::svyciprop, methods "logit", "beta"
# and "mean" (the Wald interval with t on degf), overall and within domains (svyby),
# on the California API samples of tests/monitoring/stats/data.
#
#   Rscript tests/monitoring/stats/data/r/ci_svyciprop.R   # writes ci_svyciprop.csv here
#
# Read by tests/monitoring/stats/test_intervals.py.  The CSVs the tests use are checked
# against R's own data(api) first, so both sides see the same data.
suppressMessages(library(survey))
args <- commandArgs(FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
data_dir <- file.path(here, "..")
data(api)
read <- function(name) read.csv(file.path(data_dir, name), stringsAsFactors = FALSE)
c1 <- read("apiclus1.csv")
st <- read("apistrat.csv")
stopifnot(all.equal(c1$api00, apiclus1$api00), all.equal(c1$pw, apiclus1$pw),
          all(c1$stype == as.character(apiclus1$stype)),
          all(c1$awards == as.character(apiclus1$awards)), all(c1$dnum == apiclus1$dnum),
          all.equal(st$api00, apistrat$api00), all.equal(st$pw, apistrat$pw),
          all(st$stype == as.character(apistrat$stype)),
          all(st$awards == as.character(apistrat$awards)))

designs <- list(
  clus1 = svydesign(ids = ~dnum, weights = ~pw, fpc = ~fpc, data = c1),
  strat = svydesign(ids = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = st),
  clus1_jk1 = as.svrepdesign(svydesign(ids = ~dnum, weights = ~pw, data = c1),
                             type = "JK1", mse = TRUE)
)
# (design, variable as an R expression, by or "")
cases <- list(
  c("clus1", 'I(stype == "H")', ""),
  c("clus1", "I(api00 < 412)", ""),        # one school of 183: p = 0.0055
  c("clus1", 'I(awards == "Yes")', ""),
  c("strat", 'I(awards == "Yes")', ""),
  c("strat", "I(api00 < 450)", ""),
  c("clus1_jk1", 'I(stype == "H")', ""),
  c("clus1_jk1", 'I(awards == "Yes")', ""),
  c("clus1", "I(api00 < 600)", "stype"),   # domains across the 15 PSUs
  c("clus1", 'I(awards == "Yes")', "cname"),
  c("strat", 'I(awards == "Yes")', "stype"), # each domain is one stratum
  c("strat", "I(api00 < 600)", "stype")
)
num <- function(x) sprintf("%.17g", x)
rows <- list()
for (cs in cases) {
  d <- designs[[cs[1]]]
  f <- as.formula(paste("~", cs[2]))
  for (m in c("logit", "beta", "mean")) {
    if (cs[3] == "") {
      r <- svyciprop(f, d, method = m)
      ci <- attr(r, "ci")
      rows[[length(rows) + 1]] <- data.frame(
        design = cs[1], variable = cs[2], by = "", domain = "", method = m,
        estimate = num(as.numeric(r)), se = num(sqrt(as.numeric(attr(r, "var")))),
        ci_low = num(ci[1]), ci_high = num(ci[2]), df = num(degf(d)), n = nrow(d))
    } else {
      b <- svyby(f, as.formula(paste("~", cs[3])), d, svyciprop, method = m,
                 vartype = c("se", "ci"))
      for (k in seq_len(nrow(b))) {
        lab <- as.character(b[k, 1])
        sub <- d[d$variables[[cs[3]]] == lab, ]
        if (degf(sub) < 1) next   # one PSU: R's t has 0 df (NaN interval)
        rows[[length(rows) + 1]] <- data.frame(
          design = cs[1], variable = cs[2], by = cs[3], domain = lab, method = m,
          estimate = num(b[k, 2]), se = num(b[k, 3]), ci_low = num(b[k, 4]),
          ci_high = num(b[k, 5]), df = num(degf(sub)), n = nrow(sub))
      }
    }
  }
}
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "ci_svyciprop.csv"), row.names = FALSE)
cat(sprintf("R %s, survey %s: %d rows\n", getRversion(), packageVersion("survey"), nrow(out)))
