"""The monitoring and survey fixtures, for the upload-route tests of test_importers.py."""
from tests.monitoring.conftest import make_campaign, monitoring_demo  # noqa: F401
from tests.surveys.conftest import surveys_demo  # noqa: F401
