"""Learning organisations: the register, evaluation standards, self-assessments, reviews.

A wing of ``monitoring`` (see ``monitoring/README.md``, "Learning organisations"):
``models.py`` (tables), ``register.py`` (organisations by kind and district, XLSX import),
``standards.py`` (evaluation standards authored as XLSX, versioned), ``selfassess.py``
(the organisation's self-assessment from a link), ``review.py`` (district review, city
confirmation), ``recognition.py`` (recognised status; the indicator provider),
``demo_content.py`` (demo loader) and ``views.py`` (pages).
"""
