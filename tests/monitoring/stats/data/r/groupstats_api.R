# Reference values for `learningcity groupstats --calibrate` and the proportion intervals
# (tests/monitoring/stats/test_groupstats.py), on apiclus1 (tests/monitoring/stats/data).
#
#   Rscript tests/monitoring/stats/data/r/groupstats_api.R
#
# Writes, next to this script:
#   groupstats_margins_stype.csv        post-stratification margins (variable, level, total):
#                                       the population of schools by stype (data(apipop))
#   groupstats_margins_stype_awards.csv raking margins: stype and awards (data(apipop))
#   groupstats_api.csv                  estimates, SEs and intervals (17 digits)
# R 4.2.2 and survey 4.1-1 made the outputs.
#
# Designs (dclus1 = svydesign(ids = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1)):
#   clus1       dclus1 itself (no calibration)
#   ps_stype    postStratify(dclus1, ~stype, pop_stype)
#   rake        rake(dclus1, list(~stype, ~awards), ..., control = tight)
#   jk1_ps      postStratify(as.svrepdesign(dclus1, "JK1", mse = TRUE), ~stype, pop_stype)
# Statistics: svymean(~api00) with confint(df = ...); svyciprop of I(api00 >= 700) and
# I(awards == "Yes") with methods "logit", "beta" and "mean" (Wald); overall and by stype
# and awards (svyby), with the design's df (df = degf(design)) or the domain's own
# (degf(subset(design, domain)), svyciprop's default inside svyby).
#
# Some Korn-Graubard ("beta") rows of domains are not svyciprop's own output, which
# differs from the definition there in two ways: svyciprop takes n = nrow(design), and
# the subset of a calibrated design keeps every row (weight 0 outside the domain), so R
# uses the whole sample's n = 183 (for an uncalibrated design the subset drops the rows
# and n is the domain's); and it takes degf(design) of the subset, whatever df= says.
# Those rows (source "kg_formula") apply svyciprop's own formula to R's svymean of the
# domain with n = the domain's respondents and the df asked for, as Korn & Graubard
# (1998) and the project define them.
suppressMessages(library(survey))
args <- commandArgs(FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
data(api)
c1 <- read.csv(file.path(here, "..", "apiclus1.csv"), stringsAsFactors = FALSE)
stopifnot(all.equal(c1$api00, apiclus1$api00), all.equal(c1$pw, apiclus1$pw),
          all(c1$stype == as.character(apiclus1$stype)),
          all(c1$awards == as.character(apiclus1$awards)), all(c1$dnum == apiclus1$dnum))
options(survey.lonely.psu = "fail")
tight <- list(maxit = 500, epsilon = 1e-13)  # R's default epsilon = 1 is loose
num <- function(x) sprintf("%.17g", x)

pop_stype <- data.frame(stype = c("E", "H", "M"), Freq = c(4421, 755, 1018))
stopifnot(all(pop_stype$Freq == as.vector(table(apipop$stype)[pop_stype$stype])))
tab <- table(apipop$awards)
pop_awards <- data.frame(awards = names(tab), Freq = as.vector(tab))
margins <- function(...) {
  do.call(rbind, lapply(list(...), function(p) data.frame(
    variable = names(p)[1], level = as.character(p[[1]]), total = p$Freq)))
}
write.csv(margins(pop_stype), file.path(here, "groupstats_margins_stype.csv"),
          row.names = FALSE, quote = FALSE)
write.csv(margins(pop_stype, pop_awards),
          file.path(here, "groupstats_margins_stype_awards.csv"),
          row.names = FALSE, quote = FALSE)

dclus1 <- svydesign(ids = ~dnum, weights = ~pw, fpc = ~fpc, data = c1)
designs <- list(
  clus1 = dclus1,
  ps_stype = postStratify(dclus1, ~stype, pop_stype),
  rake = rake(dclus1, list(~stype, ~awards), list(pop_stype, pop_awards), control = tight),
  jk1_ps = postStratify(as.svrepdesign(dclus1, type = "JK1", mse = TRUE), ~stype, pop_stype)
)
replicate <- c(jk1_ps = TRUE)
# proportions: (R expression, the name the test gives it); awards is fixed by raking
props <- list(c("I(api00 >= 700)", "hi700"), c('I(awards == "Yes")', "awards=Yes"))

rows <- list()
add <- function(...) rows[[length(rows) + 1]] <<- data.frame(...)

kg <- function(p, v, n, df, level = 0.95) {   # svyciprop(method = "beta")'s formula
  alpha <- 1 - level
  n.eff <- p * (1 - p) / v * (qt(alpha / 2, n - 1) / qt(alpha / 2, df))^2
  c(qbeta(alpha / 2, n.eff * p, n.eff * (1 - p) + 1),
    qbeta(1 - alpha / 2, n.eff * p + 1, n.eff * (1 - p)))
}
respondents <- function(d) sum(weights(d, "sampling") != 0)

for (name in names(designs)) {
  d <- designs[[name]]
  rep <- isTRUE(replicate[name])
  dfd <- degf(d)
  df_methods <- if (rep) "design" else c("design", "domain")
  # means
  m <- svymean(~api00, d)
  ci <- confint(m, df = dfd)
  add(case = name, stat = "mean", variable = "api00", by = "", domain = "",
      ci_method = "wald", df_method = "design", estimate = num(coef(m)), se = num(SE(m)),
      ci_low = num(ci[1]), ci_high = num(ci[2]), df = num(dfd), n = nrow(c1),
      source = "confint")
  for (by in c("stype", "awards")) {
    for (dm in df_methods) {
      for (lab in sort(unique(c1[[by]]))) {
        sub <- d[c1[[by]] == lab, ]
        dfs <- if (dm == "design") dfd else degf(sub)
        ms <- svymean(~api00, sub)
        ci <- confint(ms, df = dfs)
        add(case = name, stat = "mean", variable = "api00", by = by, domain = lab,
            ci_method = "wald", df_method = dm, estimate = num(coef(ms)),
            se = num(SE(ms)), ci_low = num(ci[1]), ci_high = num(ci[2]), df = num(dfs),
            n = sum(c1[[by]] == lab), source = "confint")
      }
      # the svyby estimates are the subset ones (checked, so the table above is svyby's)
      b <- svyby(~api00, as.formula(paste0("~", by)), d, svymean)
      own <- sapply(sort(unique(c1[[by]])), function(l) coef(svymean(~api00, d[c1[[by]] == l, ])))
      stopifnot(isTRUE(all.equal(unname(coef(b)), unname(own), tolerance = 1e-12)))
    }
  }
  # proportions
  for (pr in props) {
    if (name == "rake" && pr[2] == "awards=Yes") next
    f <- as.formula(paste("~", pr[1]))
    for (method in c("logit", "beta", "mean")) {
      r <- svyciprop(f, d, method = method)
      ci <- attr(r, "ci")
      add(case = name, stat = "proportion", variable = pr[2], by = "", domain = "",
          ci_method = if (method == "mean") "wald" else method, df_method = "design",
          estimate = num(as.numeric(r)), se = num(sqrt(as.numeric(attr(r, "var")))),
          ci_low = num(ci[1]), ci_high = num(ci[2]), df = num(dfd), n = nrow(c1),
          source = "svyciprop")
      for (by in c("stype", "awards")) {
        if (by == "awards" && pr[2] == "awards=Yes") next
        for (dm in df_methods) {
          b <- if (dm == "design") {
            svyby(f, as.formula(paste0("~", by)), d, svyciprop, method = method,
                  df = dfd, vartype = c("se", "ci"))
          } else {
            svyby(f, as.formula(paste0("~", by)), d, svyciprop, method = method,
                  vartype = c("se", "ci"))
          }
          for (k in seq_len(nrow(b))) {
            lab <- as.character(b[k, 1])
            sub <- d[c1[[by]] == lab, ]
            dfs <- if (dm == "design") dfd else degf(sub)
            nd <- respondents(sub)
            lo <- b[k, 4]
            hi <- b[k, 5]
            src <- "svyciprop"
            if (method == "beta" && (nrow(sub) != nd || degf(sub) != dfs)) {
              lim <- kg(b[k, 2], b[k, 3]^2, nd, dfs)
              lo <- lim[1]
              hi <- lim[2]
              src <- "kg_formula"
            }
            add(case = name, stat = "proportion", variable = pr[2], by = by, domain = lab,
                ci_method = if (method == "mean") "wald" else method, df_method = dm,
                estimate = num(b[k, 2]), se = num(b[k, 3]), ci_low = num(lo),
                ci_high = num(hi), df = num(dfs), n = nd, source = src)
          }
        }
      }
    }
  }
}
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "groupstats_api.csv"), row.names = FALSE)
cat(sprintf("R %s, survey %s: %d rows\n", getRversion(), packageVersion("survey"), nrow(out)))
