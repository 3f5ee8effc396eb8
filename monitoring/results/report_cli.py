"""``learningcity monitoring report``: the yearly monitoring report as PDF or HTML."""
from __future__ import annotations

import click


@click.command("report")
@click.option("--year", type=int, required=True, help="Campaign year the report covers.")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True,
              help="File to write: .pdf or .html.")
def report(year: int, out: str) -> None:
    """Write the monitoring report of one campaign year."""
    raise click.ClickException("the monitoring report is not built yet")
