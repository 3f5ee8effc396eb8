"""The analysis file of a closed campaign: what a researcher needs to re-run its published
cells elsewhere (``learningcity campaign export-analysis CODE --out DIR``).

:func:`export_analysis` writes, into one directory:

``respondents.csv`` and ``respondents.sav``
    the de-identified respondent table: one row per respondent (``rid`` 1..n, no invitation
    id, code, contact data, street or free text), the design (``stratum``, ``psu``, ``ssu``,
    the population sizes ``fpc`` and ``fpc2`` at each stage, ``weight`` the final weight),
    the reporting variables (district, group flags, age band, sex, education, occupation),
    every indicator as a 0/1 variable ``ind_<code>`` (missing outside its population), the
    survey answers and scale scores, and the plausible values ``pv1..pvM``;
``codebook.csv``
    every variable with its type and zh-CN / English labels, and the values of coded ones;
``margins.csv``
    the calibration margins (``variable, level, total``; empty but for the header when the
    weights were not calibrated);
``cells_population.csv``
    the population totals of the calibration's cells (when the weights were calibrated),
    what R's ``postStratify`` takes;
``levels.csv``
    the proficiency levels on the reporting scale (``level, min, max``);
``published.csv``
    the campaign's cells as the monitoring database holds them;
``reproduce.R``
    R (``survey`` + ``mitools``) that rebuilds the design, estimates every published cell
    and compares: it writes ``reproduced_r.csv`` and stops with an error if a cell differs
    by more than 1e-6 (relative);
``reproduce.sps``
    SPSS syntax (Complex Samples) for the same design and the plain estimates;
``README.txt``
    what the files are, in Chinese and English.

The estimator settings written into the scripts are those of
:mod:`monitoring.results.aggregate` (:data:`~monitoring.results.aggregate.ESTIMATION`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity.i18n import translator
from learningcity.people import CHOICES, GROUP_LABELS
from monitoring.fieldwork.models import Campaign
from monitoring.results import aggregate as agg
from monitoring.results.ability import PV_COLUMNS
from monitoring.results.indicators import load_catalogue
from monitoring.results.respondents import RespondentData, respondent_table
from monitoring.results.warehouse import Aggregate
from scoring.io import atomic_write
from tabular.writing import write_table

#: columns of the respondent table never written to the analysis file
PRIVATE_COLUMNS = ("respondent", "street")
#: cell columns of published.csv
PUBLISHED_COLUMNS = ("measure", "kind", "dimension", "group_value", "district", "n",
                     "estimate", "se", "ci_low", "ci_high", "suppressed",
                     "suppression_reason", "method")


class AnalysisExportError(ValueError):
    """The campaign cannot be exported (unknown, not closed, not aggregated)."""


@dataclass(frozen=True)
class AnalysisExport:
    """What was written: the directory, its files and the table's size."""

    directory: Path
    files: tuple[str, ...]
    n_respondents: int
    n_variables: int
    n_published: int


# ------------------------------------------------------------------ the table


def analysis_table(data: RespondentData, catalogue: Any) -> pd.DataFrame:
    """The de-identified respondent table with the indicator variables (module docstring)."""
    frame = data.frame.reset_index(drop=True)
    out = frame.drop(columns=[c for c in PRIVATE_COLUMNS if c in frame.columns])
    rid = np.arange(1, len(frame) + 1)
    out.insert(0, "rid", rid)
    if "psu" in out.columns:  # a unit design's PSU is the respondent: its row id, not the code
        own = frame["psu"].astype(str) == frame["respondent"].astype(str)
        out["psu"] = np.where(own, "r" + pd.Series(rid).astype(str), frame["psu"].astype(str))
    if "ssu" in out.columns:  # the second-stage unit is the respondent: its row id
        out["ssu"] = rid
    for ind, y in agg.indicator_values(frame, catalogue).items():
        out[f"ind_{ind}"] = y
    return out


def _labels(column: str, catalogue: Any, zh: Any, en: Any) -> tuple[str, str, str]:
    """(type, label zh, label en) of an analysis-table column."""
    fixed = {
        "rid": ("id", "受访者序号", "Respondent row number"),
        "district": ("code", "区县", "District"), "stratum": ("code", "层", "Stratum"),
        "psu": ("code", "初级抽样单元（街道、社区）", "Primary sampling unit (street, community)"),
        "ssu": ("code", "二级抽样单元", "Second-stage unit"),
        "fpc": ("number", "第一阶段总体规模（层内单元数；整群设计为 n_h / 平均入样概率）",
                "First-stage population size (units in the stratum; for a cluster design "
                "n_h / mean first-stage probability, 1 for a certainty cluster)"),
        "fpc2": ("number", "第二阶段总体规模（单元内人数）",
                 "Second-stage population size (persons in the PSU)"),
        "weight": ("number", "最终权重", "Final weight"),
        "w_design": ("number", "设计权重", "Design weight"),
        "group": ("code", "首要人群", "First population group"),
        "score": ("number", "能力分数（测评）", "Ability score (the test's)"),
        "level": ("code", "能力水平（测评）", "Ability level (the test's)"),
    }
    if column in fixed:
        return fixed[column]
    if column in CHOICES:
        question = CHOICES[column][0]
        return "code", zh(question), en(question)
    if column.startswith("group__"):
        code = column.split("__", 1)[1]
        label = GROUP_LABELS.get(code, code)
        return "0/1", f"属于：{zh(label)}", f"Member: {en(label)}"
    if column in PV_COLUMNS:
        m = column[2:]
        return "number", f"能力可能值 {m}", f"Ability plausible value {m}"
    if column.startswith("ind_"):
        ind = next((i for i in catalogue if i.code == column[4:]), None)
        if ind is not None:
            return "0/1", f"指标：{ind.name_zh}", f"Indicator: {ind.name_en}"
    if column.startswith("scale_"):
        return "number", f"量表分：{column[6:]}", f"Scale score: {column[6:]}"
    if "__" in column:
        q, choice = column.split("__", 1)
        return "0/1", f"{q}：选择 {choice}", f"{q}: chose {choice}"
    return "answer", column, column


def codebook(table: pd.DataFrame, catalogue: Any) -> pd.DataFrame:
    """One row per variable: name, type, labels and (for coded variables) the values."""
    zh, en = translator("zh-CN"), translator("en")
    rows = []
    for col in table.columns:
        kind, label_zh, label_en = _labels(str(col), catalogue, zh, en)
        values = ""
        if kind in ("code", "answer") and col not in ("rid", "psu", "ssu"):
            present = sorted({str(v) for v in table[col].dropna()})
            values = "; ".join(present[:60])
        rows.append({"variable": col, "type": kind, "label_zh": label_zh,
                     "label_en": label_en, "values": values})
    return pd.DataFrame(rows)


def margins_table(design: dict[str, Any]) -> pd.DataFrame:
    """The calibration margins as ``variable, level, total`` (one row per category)."""
    cal = (design or {}).get("calibration") or {}
    rows = []
    totals = cal.get("totals")
    if totals is not None:
        t = pd.DataFrame(totals)
        for var in cal.get("variables", []):
            for level, total in t.groupby(var)["total"].sum().items():
                rows.append({"variable": var, "level": str(level), "total": float(total)})
    return pd.DataFrame(rows, columns=["variable", "level", "total"])


def published_cells(mdb: Session, campaign_code: str) -> pd.DataFrame:
    """The campaign's cells in the monitoring database, in a stable order."""
    rows = mdb.execute(sa.select(*[getattr(Aggregate, c) for c in PUBLISHED_COLUMNS]).where(
        Aggregate.campaign == campaign_code).order_by(
        Aggregate.measure, Aggregate.dimension, Aggregate.district, Aggregate.group_value)).all()
    return pd.DataFrame([dict(r._mapping) for r in rows], columns=list(PUBLISHED_COLUMNS))


# ------------------------------------------------------------------ the scripts


def r_script(design: dict[str, Any], settings: dict[str, Any]) -> str:
    """R code (survey + mitools) that re-estimates published.csv from respondents.csv."""
    ids = "~psu" + ("+ssu" if design.get("ssu") else "")
    fpc = ("~fpc" + ("+fpc2" if design.get("fpc2") else "")) if design.get("fpc") else "NULL"
    cal = (design.get("calibration") or {}).get("method")
    lines = [
        "# Re-estimates the campaign's published cells (published.csv) from the analysis file",
        "# with R's survey and mitools; written by learningcity campaign export-analysis.",
        "# Run in this directory: Rscript reproduce.R",
        "suppressPackageStartupMessages({library(survey); library(mitools)})",
        f"options(survey.lonely.psu = \"{settings['lonely_psu']}\")",
        "d <- read.csv(\"respondents.csv\", fileEncoding = \"UTF-8-BOM\", skip = 0,",
        "              stringsAsFactors = FALSE, na.strings = \"\")",
        "cells <- read.csv(\"published.csv\", fileEncoding = \"UTF-8-BOM\",",
        "                  stringsAsFactors = FALSE, na.strings = \"\")",
        "levels_tab <- read.csv(\"levels.csv\", fileEncoding = \"UTF-8-BOM\",",
        "                       stringsAsFactors = FALSE, na.strings = \"\")",
        "d$stratum <- as.character(d$stratum); d$psu <- as.character(d$psu)",
        f"des <- svydesign(ids = {ids}, strata = ~stratum, fpc = {fpc}, weights = ~weight,",
        "                 data = d, nest = TRUE)",
    ]
    if cal in ("poststratify", "rake"):
        lines += [
            "m <- read.csv(\"margins.csv\", fileEncoding = \"UTF-8-BOM\",",
            "              stringsAsFactors = FALSE, na.strings = \"\")",
            "vars <- unique(m$variable)",
            "for (v in vars) d[[v]] <- as.character(d[[v]])",
        ]
        if cal == "poststratify":
            lines += [
                "# the final weights already meet the margins: postStratify registers the",
                "# calibration for the variance (the weights stay as they are)",
                "pop <- read.csv(\"cells_population.csv\", fileEncoding = \"UTF-8-BOM\",",
                "                stringsAsFactors = FALSE, na.strings = \"\")",
                "for (v in vars) pop[[v]] <- as.character(pop[[v]])",
                "names(pop)[names(pop) == \"total\"] <- \"Freq\"",
                "strata_f <- as.formula(paste(\"~\", paste(vars, collapse = \"+\")))",
                "des <- postStratify(des, strata_f, pop)",
            ]
        else:
            lines += [
                "smar <- lapply(vars, function(v) as.formula(paste(\"~\", v)))",
                "pmar <- lapply(vars, function(v) {",
                "  x <- m[m$variable == v, c(\"level\", \"total\")]",
                "  names(x) <- c(v, \"Freq\"); x })",
                "des <- rake(des, smar, pmar, control = list(maxit = 200, epsilon = 1e-10))",
            ]
    lines += [
        "domain <- function(dim, value, district) {",
        "  if (dim == \"all\") return(rep(TRUE, nrow(d)))",
        "  if (dim == \"district\") return(!is.na(d$district) & d$district == value)",
        "  if (dim == \"group\") {",
        "    flag <- paste0(\"group__\", value)",
        "    if (flag %in% names(d)) return(!is.na(d[[flag]]) & d[[flag]] == 1)",
        "    return(!is.na(d$group) & d$group == value)",
        "  }",
        "  if (dim == \"group_x_district\") return(domain(\"group\", value, district) &",
        "                                         domain(\"district\", district, district))",
        "  x <- d[[dim]]; !is.na(x) & as.character(x) == value",
        "}",
        "pvs <- grep(\"^pv[0-9]+$\", names(d), value = TRUE)",
        "pvs <- pvs[order(as.integer(sub(\"pv\", \"\", pvs)))]",
        f"df_rule <- \"{settings['df']}\"",
        f"prop_ci <- \"{settings['proportion_ci']}\"",
        "dfs <- function(sub) if (df_rule == \"domain\") degf(sub) else degf(des)",
        "w_all <- weights(des)",
        "# a withheld cell is checked for its n only (its numbers are not published)",
        "one <- function(y, dom, need) {",
        "  ok <- dom & !is.na(y)",
        "  list(sub = if (need) subset(des, ok) else NULL, n = sum(ok & w_all > 0))",
        "}",
        "withheld <- function(n) c(n = n, estimate = NA, se = NA, ci_low = NA, ci_high = NA)",
        "# Barnard & Rubin (1999) df as published; mitools' MIcombine uses B/(U + B) for",
        "# the observed-data share, not (1 + 1/M) B / T, so its df differs a little",
        "br_df <- function(q, u, nu_com) {",
        "  M <- length(q); U <- mean(u); B <- var(q); T <- U + (1 + 1 / M) * B",
        "  lam <- if (T > 0) (1 + 1 / M) * B / T else 0",
        "  nu_obs <- (nu_com + 1) / (nu_com + 3) * nu_com * (1 - lam)",
        "  if (lam == 0) return(nu_obs)",
        "  1 / (lam^2 / (M - 1) + 1 / nu_obs)",
        "}",
        "estimate_cell <- function(cell) {",
        "  dom <- domain(cell$dimension, cell$group_value, cell$district)",
        "  k <- cell$kind",
        "  need <- cell$suppressed %in% c(0, FALSE, \"False\", \"FALSE\")",
        "  if (k %in% c(\"indicator\", \"share\", \"scale\")) {",
        "    var <- if (k == \"indicator\") paste0(\"ind_\", cell$measure) else cell$measure",
        "    if (!(var %in% names(d))) return(NULL)",
        "    y <- d[[var]]",
        "    s <- one(y, dom, need)",
        "    if (s$n == 0) return(NULL)",
        "    if (!need) return(withheld(s$n))",
        "    des2 <- update(s$sub, .y = s$sub$variables[[var]])",
        "    f <- svymean(~.y, des2)",
        "    est <- unname(coef(f)); se <- unname(SE(f))",
        "    if (k == \"scale\" || prop_ci == \"wald\") {",
        "      q <- qt(0.975, dfs(des2)); ci <- c(est - q * se, est + q * se)",
        "    } else {",
        "      if (est > 0 && est < 1) {",
        "        cp <- svyciprop(~.y, des2, method = prop_ci, df = dfs(des2))",
        "        ci <- as.numeric(attr(cp, \"ci\"))",
        "      } else ci <- c(NA, NA)  # 0 or 1: the project uses Korn-Graubard limits",
        "    }",
        "    return(c(n = s$n, estimate = est, se = se, ci_low = ci[1], ci_high = ci[2]))",
        "  }",
        "  if (k %in% c(\"ability\", \"level_share\") && length(pvs) >= 2) {",
        "    s <- one(d[[pvs[1]]], dom, need)",
        "    if (s$n == 0) return(NULL)",
        "    if (!need) return(withheld(s$n))",
        "    if (k == \"level_share\") {",
        "      code <- sub(\"^ability_level_\", \"\", cell$measure)",
        "      lv <- levels_tab[levels_tab$level == code, ]",
        "      lo <- if (is.na(lv$min)) -Inf else lv$min; hi <- if (is.na(lv$max)) Inf else lv$max",
        "    }",
        "    fits <- lapply(pvs, function(p) {",
        "      v <- s$sub$variables[[p]]",
        "      y <- if (k == \"ability\") v else as.numeric(v >= lo & v < hi)",
        "      svymean(~.y, update(s$sub, .y = y))",
        "    })",
        "    r <- MIcombine(fits, df.complete = dfs(s$sub))",
        "    est <- unname(coef(r)); se <- unname(sqrt(diag(vcov(r))))",
        "    q <- qt(0.975, br_df(sapply(fits, coef), sapply(fits, vcov), dfs(s$sub)))",
        "    ci <- c(est - q * se, est + q * se)",
        "    if (k == \"level_share\" && prop_ci == \"logit\") {",
        "      # Rubin's rules on the logit scale, back with the inverse logit",
        "      ps <- sapply(fits, coef); vs <- sapply(fits, function(f) as.numeric(vcov(f)))",
        "      if (all(ps > 0 & ps < 1)) {",
        "        lr <- MIcombine(as.list(log(ps / (1 - ps))), as.list(vs / (ps * (1 - ps))^2),",
        "                        df.complete = dfs(s$sub))",
        "        lq <- qt(0.975, br_df(log(ps / (1 - ps)), vs / (ps * (1 - ps))^2, dfs(s$sub)))",
        "        lc <- unname(coef(lr)); ls <- sqrt(vcov(lr)[1, 1])",
        "        ci <- plogis(c(lc - lq * ls, lc + lq * ls))",
        "      } else ci <- c(NA, NA)",
        "    }",
        "    return(c(n = s$n, estimate = est, se = se, ci_low = ci[1], ci_high = ci[2]))",
        "  }",
        "  NULL",
        "}",
        "out <- NULL",
        "for (i in seq_len(nrow(cells))) {",
        "  cell <- cells[i, ]",
        "  if (is.na(cell$group_value)) cell$group_value <- \"\"",
        "  r <- estimate_cell(cell)",
        "  if (is.null(r)) next",
        "  out <- rbind(out, data.frame(measure = cell$measure, dimension = cell$dimension,",
        "    group_value = cell$group_value, district = cell$district, n_published = cell$n,",
        "    n = r[[\"n\"]], published = cell$estimate, estimate = r[[\"estimate\"]],",
        "    se_published = cell$se, se = r[[\"se\"]], ci_low_published = cell$ci_low,",
        "    ci_low = r[[\"ci_low\"]], ci_high_published = cell$ci_high,",
        "    ci_high = r[[\"ci_high\"]],",
        "    suppressed = cell$suppressed, stringsAsFactors = FALSE))",
        "}",
        "write.csv(out, \"reproduced_r.csv\", row.names = FALSE, fileEncoding = \"UTF-8\")",
        "# a limit R leaves out (a share of 0 or 1) is not compared",
        "rel <- function(a, b) ifelse(is.na(b) | is.na(a), 0, abs(a - b) / pmax(abs(b), 1e-12))",
        "shown <- out$suppressed %in% c(0, FALSE, \"False\", \"FALSE\")",
        "worst <- max(c(0, rel(out$estimate[shown], out$published[shown]),",
        "  rel(out$se[shown], out$se_published[shown]),",
        "  rel(out$ci_low[shown], out$ci_low_published[shown]),",
        "  rel(out$ci_high[shown], out$ci_high_published[shown])), na.rm = FALSE)",
        "bad_n <- sum(out$n != out$n_published)",
        "cat(sprintf(\"cells compared: %d (published %d); largest relative difference %.3g; \",",
        "            nrow(out), sum(shown), worst))",
        "cat(sprintf(\"cells with another n: %d\\n\", bad_n))",
        "if (!is.finite(worst) || worst > 1e-6 || bad_n > 0) stop(\"R does not reproduce the \",",
        "  \"published cells (see reproduced_r.csv)\")",
    ]
    return "\n".join(lines) + "\n"


def spss_syntax(design: dict[str, Any], measures: list[str]) -> str:
    """SPSS Complex Samples syntax for the design and the plain (non-PV) estimates."""
    two_stage = bool(design.get("ssu") and design.get("fpc2"))
    lines = [
        "* Campaign analysis file: the design and the plain estimates in SPSS Complex Samples.",
        "* Written by learningcity campaign export-analysis. Open respondents.sav first.",
        "* Plausible values (pv1..pvM) need one run per value, combined by Rubin's rules.",
        "GET FILE='respondents.sav'.",
        "CSPLAN ANALYSIS",
        "  /PLAN FILE='campaign.csaplan'",
        "  /PLANVARS ANALYSISWEIGHT=weight",
        "  /PRINT PLAN",
        "  /DESIGN STRATA=stratum CLUSTER=psu",
        "  /ESTIMATOR TYPE=EQUAL_WOR" if design.get("fpc") else "  /ESTIMATOR TYPE=WR",
    ]
    if design.get("fpc"):
        lines.append("  /POPSIZE VARIABLE=fpc")
    if two_stage:
        lines += ["  /DESIGN CLUSTER=ssu", "  /ESTIMATOR TYPE=EQUAL_WOR",
                  "  /POPSIZE VARIABLE=fpc2"]
    lines[-1] += "."
    if measures:
        lines += ["CSDESCRIPTIVES", "  /PLAN FILE='campaign.csaplan'",
                  "  /SUMMARY VARIABLES=" + " ".join(measures),
                  "  /SUBPOP TABLE=district",
                  "  /MEAN", "  /STATISTICS SE CIN(95) COUNT DEFF",
                  "  /MISSING SCOPE=ANALYSIS CLASSMISSING=EXCLUDE."]
    return "\n".join(lines) + "\n"


README_TEXT = """学习型城市监测：活动分析文件 / Learning-city monitoring: campaign analysis file

respondents.csv / respondents.sav  去标识的受访者表（不含邀请码、联系方式、街道和自由文本）
                                   de-identified respondent table (no codes, contacts, street
                                   or free text)
codebook.csv     变量说明（中文、英文）/ variables with Chinese and English labels
margins.csv      校准用总体边际 / calibration margins (variable, level, total)
levels.csv       能力水平分界 / proficiency levels on the reporting scale
published.csv    监测数据库中已发布的单元格 / the cells published in the monitoring database
reproduce.R      用 R survey + mitools 重算已发布单元格并比对 / re-estimates and compares
reproduce.sps    SPSS 复杂抽样语法 / SPSS Complex Samples syntax

设计 / design: {design}
"""


def export_analysis(db: Session, mdb: Session, campaign_code: str,
                    out_dir: str | Path) -> AnalysisExport:
    """Write the analysis file of a closed, aggregated campaign into ``out_dir`` (made if
    needed; files there are replaced one by one, atomically)."""
    status = db.scalar(sa.select(Campaign.status).where(Campaign.code == campaign_code))
    if status is None:
        raise AnalysisExportError(f"no campaign {campaign_code!r}")
    if status != "closed":
        raise AnalysisExportError(f"campaign {campaign_code} is {status}: only a closed "
                                  "campaign has an analysis file")
    published = published_cells(mdb, campaign_code)
    if published.empty:
        raise AnalysisExportError(f"campaign {campaign_code} has no published cells: "
                                  "aggregate it first (learningcity monitoring aggregate)")
    data = respondent_table(db, campaign_code)
    catalogue = load_catalogue(db)
    table = analysis_table(data, catalogue)
    book = codebook(table, catalogue)
    design = dict(data.design or {})
    settings = agg.ESTIMATION
    cuts, codes, _names = agg.level_scheme()
    bounds = [None, *cuts, None]
    levels = pd.DataFrame({"level": codes, "min": bounds[:-1], "max": bounds[1:]})
    plain = [c for c in table.columns if str(c).startswith(("ind_", "scale_"))]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = dict(zip(book["variable"], book["label_zh"], strict=True))
    files: dict[str, bytes] = {
        "respondents.csv": write_table("csv", table),
        "respondents.sav": write_table("sav", _sav_ready(table), variable_labels=labels,
                                       file_label=f"campaign {campaign_code}"),
        "codebook.csv": write_table("csv", book),
        "margins.csv": write_table("csv", margins_table(design)),
        "levels.csv": write_table("csv", levels),
        "published.csv": write_table("csv", published),
        "reproduce.R": r_script(design, settings).encode("utf-8"),
        "reproduce.sps": spss_syntax(design, plain).encode("utf-8"),
        "README.txt": README_TEXT.format(design=json.dumps(
            {k: v for k, v in design.items() if k != "calibration"}, ensure_ascii=False)
        ).encode("utf-8"),
    }
    cal = design.get("calibration") or {}
    if cal.get("totals") is not None:
        files["cells_population.csv"] = write_table("csv", pd.DataFrame(cal["totals"]))
    for name, body in files.items():
        with atomic_write(out / name, "wb") as fh:
            fh.write(body)
    return AnalysisExport(directory=out, files=tuple(files), n_respondents=len(table),
                          n_variables=table.shape[1], n_published=len(published))


def _sav_ready(table: pd.DataFrame) -> pd.DataFrame:
    """SPSS variable names are at most 64 bytes: longer ones are cut (the CSV keeps them)."""
    return table.rename(columns={c: str(c)[:64] for c in table.columns})
