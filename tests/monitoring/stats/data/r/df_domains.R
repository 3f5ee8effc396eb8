# Reference domain degrees of freedom: degf(subset(design, domain)) -- PSUs with a
# domain member minus their strata -- and the t interval of a domain mean with that df,
# confint(svymean(~api00, subset(design, domain)), df = degf(subset(...))), against the
# whole design's degf; on the California API samples of tests/monitoring/stats/data.
#
#   Rscript tests/monitoring/stats/data/r/df_domains.R   # writes df_domains.csv here
#
# Read by tests/monitoring/stats/test_intervals.py.  The CSVs the tests use are checked
# against R's own data(api) first.
suppressMessages(library(survey))
args <- commandArgs(FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
data_dir <- file.path(here, "..")
data(api)
read <- function(name) read.csv(file.path(data_dir, name), stringsAsFactors = FALSE)
c1 <- read("apiclus1.csv")
st <- read("apistrat.csv")
c2 <- read("apiclus2.csv")
stopifnot(all.equal(c1$api00, apiclus1$api00), all(c1$cname == as.character(apiclus1$cname)),
          all(c1$dnum == apiclus1$dnum), all.equal(st$api00, apistrat$api00),
          all(st$stype == as.character(apistrat$stype)),
          all(st$awards == as.character(apistrat$awards)),
          all.equal(c2$api00, apiclus2$api00), all(c2$dnum == apiclus2$dnum),
          all(c2$snum == apiclus2$snum))
c2$level <- ifelse(c2$api00 >= 700, "high", "low")

designs <- list(
  strat = svydesign(ids = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = st),
  clus1 = svydesign(ids = ~dnum, weights = ~pw, fpc = ~fpc, data = c1),
  clus2 = svydesign(ids = ~dnum + snum, fpc = ~fpc1 + fpc2, data = c2)
)
cases <- list(c("strat", "stype"),    # each domain is a whole stratum, as a district
              c("strat", "awards"),   # domains cutting across the strata
              c("clus1", "cname"),    # counties hold 1-3 of the 15 sampled districts
              c("clus2", "level"))    # two stages; a domain misses some districts
num <- function(x) sprintf("%.17g", x)
rows <- list()
for (cs in cases) {
  d <- designs[[cs[1]]]
  for (lab in sort(unique(d$variables[[cs[2]]]))) {
    sub <- d[d$variables[[cs[2]]] == lab, ]
    k <- degf(sub)
    m <- svymean(~api00, sub)
    dom <- if (k >= 1) confint(m, df = k) else c(NaN, NaN)
    whole <- confint(m, df = degf(d))
    rows[[length(rows) + 1]] <- data.frame(
      design = cs[1], by = cs[2], domain = lab, design_df = degf(d), domain_df = k,
      n = nrow(sub), estimate = num(coef(m)), se = num(SE(m)),
      ci_low = num(dom[1]), ci_high = num(dom[2]),
      ci_low_design_df = num(whole[1]), ci_high_design_df = num(whole[2]))
  }
}
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "df_domains.csv"), row.names = FALSE)
cat(sprintf("R %s, survey %s: %d rows\n", getRversion(), packageVersion("survey"), nrow(out)))
