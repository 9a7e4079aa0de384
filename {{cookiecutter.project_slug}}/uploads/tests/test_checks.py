"""System checks: a setting the app cannot use is reported by `manage.py check`."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("UPLOADS_EXPIRATION", "soon", "UPLOADS_EXPIRATION: 'soon' is not a duration"),
        ("UPLOADS_AUTH_RECHECK", "5 minutes", "UPLOADS_AUTH_RECHECK: '5 minutes' is not"),
        ("UPLOADS_CLIENT", "uppy", "UPLOADS_CLIENT must be one of flow.js, resumable.js"),
    ],
)
def test_a_setting_the_app_cannot_read_stops_manage_py_check(settings, setting, value, message):
    setattr(settings, setting, value)
    with pytest.raises(SystemCheckError, match="uploads.E004") as raised:
        call_command("check")
    assert message in str(raised.value)
