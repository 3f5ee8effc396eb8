# Reference values for single-PSU ("lonely") strata, every option of
# options(survey.lonely.psu=) with and without survey.adjust.domain.lonely, the design
# degrees of freedom with zero-weight PSUs, and the JKn replicate variance
# (tests/monitoring/stats/test_design.py).  Run from this directory:  Rscript lonely_api.R
# Writes lonely_api.csv.
suppressMessages(library(survey))
data(api)
num <- function(x) sprintf("%.17g", x)
rows <- list()
rec <- function(case, option, domain_lonely, stat, variable, by, level, est, se, df = NA) {
  rows[[length(rows) + 1]] <<- data.frame(case = case, option = option,
    domain_lonely = domain_lonely, stat = stat, variable = variable, by = by,
    level = as.character(level), estimate = num(est), se = num(se), df = df)
}
record <- function(case, d, option, dl, vars = c("api00", "enroll"), by = "stype") {
  for (v in vars) {
    f <- as.formula(paste0("~", v))
    for (stat in c("mean", "total")) {
      FUN <- if (stat == "mean") svymean else svytotal
      e <- suppressWarnings(FUN(f, d))
      rec(case, option, dl, stat, v, "", "", coef(e), SE(e), degf(d))
      if (!is.null(by)) {
        b <- suppressWarnings(svyby(f, as.formula(paste0("~", by)), d, FUN))
        rec(case, option, dl, stat, v, by, b[[by]], coef(b), SE(b), degf(d))
      }
    }
  }
}

# R's own tests/lonely.psu.R design: apiclus1 stratified by district, 413 has one school
# (stratum 413 has one PSU; several districts have schools of one type only, so svyby by
# stype makes PSUs lonely within a domain).
# apistrat with the high schools cut to one: a lonely stratum with fpc (f = 1/755).
one_h <- apistrat[apistrat$stype != "H" | apistrat$snum == apistrat$snum[apistrat$stype == "H"][1], ]
write.csv(data.frame(snum = one_h$snum), "lonely_apistrat_rows.csv", row.names = FALSE)
for (dl in c(FALSE, TRUE)) {
  options(survey.adjust.domain.lonely = dl)
  for (opt in c("certainty", "remove", "adjust", "average")) {
    options(survey.lonely.psu = opt)
    ds <- svydesign(id = ~1, weights = ~pw, strata = ~dnum, data = apiclus1)
    record("clus1_by_dnum", ds, opt, dl)
    dh <- svydesign(id = ~1, weights = ~pw, strata = ~stype, fpc = ~fpc, data = one_h)
    record("strat_one_h", dh, opt, dl, by = "awards")
    # clustered: districts as PSUs within strata of county; some counties have one district
    dc <- svydesign(id = ~dnum, weights = ~pw, strata = ~cname, data = apiclus1)
    record("clus1_dnum_in_cname", dc, opt, dl, by = "stype")
  }
}
options(survey.adjust.domain.lonely = FALSE)

# zero-weight PSUs: degf counts PSUs (and strata) with a non-zero weight; n_h does not change
options(survey.lonely.psu = "certainty")
z <- apiclus1
z$pw0 <- ifelse(z$dnum %in% c(61, 135), 0, z$pw)
dz <- svydesign(id = ~dnum, weights = ~pw0, data = z, fpc = ~fpc)
record("clus1_zero_weight_psus", dz, "certainty", FALSE, by = NULL)

# jackknife (JKn) with a lonely stratum: no replicate for it; mse = TRUE / FALSE
for (opt in c("certainty", "remove", "average")) {
  options(survey.lonely.psu = opt)
  ds <- svydesign(id = ~1, weights = ~pw, strata = ~dnum, data = apiclus1)
  for (mse in c(TRUE, FALSE)) {
    r <- as.svrepdesign(ds, type = "JKn", mse = mse)
    record(paste0("clus1_by_dnum_jkn_", if (mse) "mse" else "nomse"), r, opt, FALSE)
  }
  dh <- svydesign(id = ~1, weights = ~pw, strata = ~stype, fpc = ~fpc, data = one_h)
  for (mse in c(TRUE, FALSE)) {
    r <- as.svrepdesign(dh, type = "JKn", mse = mse)
    record(paste0("strat_one_h_jkn_", if (mse) "mse" else "nomse"), r, opt, FALSE,
           by = "awards")
  }
}

write.csv(do.call(rbind, rows), "lonely_api.csv", row.names = FALSE)
cat(R.version.string, "survey", as.character(packageVersion("survey")), "\n")
