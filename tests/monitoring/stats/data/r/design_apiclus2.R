# Reference values for the two-stage design with fpc at both stages (apiclus2: 40 of 757
# districts, then up to 5 schools of fpc2 in each), plain, post-stratified on school type
# and with a lonely second-stage unit (tests/monitoring/stats/test_design.py).
# Run from this directory:  Rscript design_apiclus2.R
# Writes design_apiclus2.csv and design_apiclus2_extra.csv (snum, stype: the school type,
# which ../apiclus2.csv does not carry).
suppressMessages(library(survey))
data(api)
num <- function(x) sprintf("%.17g", x)
rows <- list()
rec <- function(case, option, stat, variable, by, level, est, se) {
  rows[[length(rows) + 1]] <<- data.frame(case = case, option = option, stat = stat,
    variable = variable, by = by, level = as.character(level), estimate = num(est),
    se = num(se))
}
record <- function(case, d, option) {
  for (v in c("api00", "enroll")) {
    f <- as.formula(paste0("~", v))
    for (stat in c("mean", "total")) {
      FUN <- if (stat == "mean") svymean else svytotal
      e <- FUN(f, d, na.rm = TRUE)
      rec(case, option, stat, v, "", "", coef(e), SE(e))
      b <- svyby(f, ~high, d, FUN, na.rm = TRUE)
      rec(case, option, stat, v, "high", b$high, coef(b), SE(b))
    }
  }
}
write.csv(data.frame(snum = apiclus2$snum, stype = apiclus2$stype),
          "design_apiclus2_extra.csv", row.names = FALSE)
a2 <- apiclus2
a2$high <- a2$api00 >= 700   # a domain crossing the districts
options(survey.lonely.psu = "fail")
d2 <- svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2, data = a2)
record("clus2", d2, "fail")
pop_stype <- data.frame(stype = c("E", "H", "M"), Freq = c(4421, 755, 1018))
record("clus2_ps_stype", postStratify(d2, ~stype, pop_stype), "fail")
# the districts with one sampled school get fpc2 = 2 (one of two sampled): a lonely
# second-stage unit in each of them
m <- ave(rep(1, nrow(a2)), a2$dnum, FUN = sum)
a2$fpc2b <- ifelse(m == 1, 2, a2$fpc2)
for (opt in c("certainty", "remove", "adjust")) {
  options(survey.lonely.psu = opt)
  record("clus2_lonely_ssu", svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2b, data = a2), opt)
}
write.csv(do.call(rbind, rows), "design_apiclus2.csv", row.names = FALSE)
cat(R.version.string, "survey", as.character(packageVersion("survey")), "\n")
