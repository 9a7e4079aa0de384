"""System checks: a setting the app cannot use is reported by `manage.py check`."""

import pytest

from uploads.checks import check_staging


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("UPLOADS_EXPIRATION", "soon", "UPLOADS_EXPIRATION: 'soon' is not a duration"),
        ("UPLOADS_AUTH_RECHECK", "5 minutes", "UPLOADS_AUTH_RECHECK: '5 minutes' is not"),
        ("UPLOADS_CLIENT", "uppy", "UPLOADS_CLIENT must be one of flow.js, resumable.js"),
    ],
)
def test_a_setting_the_app_cannot_read_is_a_check_error(settings, setting, value, message):
    setattr(settings, setting, value)
    errors = [error for error in check_staging(None) if error.id == "uploads.E004"]
    assert len(errors) == 1
    assert message in errors[0].msg


def test_the_default_settings_pass_the_checks():
    assert check_staging(None) == []
