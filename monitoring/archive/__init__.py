"""The yearly learning-city archive: one dated, checksummed bundle of a year's material.

``bundle.py`` builds and verifies a bundle (``learning-city-archive-YEAR/`` with
``manifest.json`` and ``SHA256SUMS``) from the contributors registered under the
entry-point group ``learningcity.archive_sections``; ``sections.py`` holds the
contributors for monitoring results, campaigns and learning organisations; ``cli.py``
is ``learningcity archive build|verify``. See ``monitoring/README.md``, "Yearly archive".
"""
