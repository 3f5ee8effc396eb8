"""Tables in and out: one reader (CSV in UTF-8, UTF-8 with BOM or GBK; XLSX), one export-writer registry
(CSV with BOM and the formula guard, XLSX, SPSS .sav) and the spreadsheet formula guard.

Depends on nothing of ours, so every package (scoring's file front-end included) may use it.
"""
