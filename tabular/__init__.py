"""Tables in and out, for every package: one reader (CSV in UTF-8, UTF-8 with BOM or GBK;
XLSX) in :mod:`tabular.reading`, one export-writer registry (CSV with BOM and the formula
guard, XLSX, SPSS .sav) in :mod:`tabular.writing`, and the spreadsheet formula guard in
:mod:`tabular.guard`. See ``tabular/README.md``.

Depends on nothing of ours (numpy, pandas, openpyxl, pyreadstat only), so every package
may use it. Nothing is imported here: a CSV reader does not pay for pandas or openpyxl.
"""
