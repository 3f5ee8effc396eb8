"""Pure statistics of monitoring: sampling, weights and design-based estimates (numpy, scipy,
pandas; no database, no web), and `learningcity groupstats` on plain files."""
