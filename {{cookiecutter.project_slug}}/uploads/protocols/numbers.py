"""
The one way every adapter reads a whole number from a parameter or a header.

int() takes " 12", "1_000", "١٢" and a million digits; what flow.js,
resumable.js, tus and Content-Range send are ASCII digits. Every such number
ends up in a bigint column (sizes, offsets), so one past 2**63 - 1 is refused
here, as a 400 that names the field, rather than by the database as a 500.
"""

import re

from django.utils.translation import gettext

from ..errors import BadRequest

MAX_VALUE = 2**63 - 1  # PostgreSQL's bigint
# Longer strings are refused before int() reads them: int() of thousands of
# digits is slow, and past 4300 digits it raises.
MAX_DIGITS = len(str(MAX_VALUE))
DIGITS = re.compile(r"[0-9]+")


def whole_number(value, field):
    """`value`, a string of ASCII digits, as an int; a BadRequest naming `field` otherwise."""
    if not DIGITS.fullmatch(value):
        if value[:1] == "-" and DIGITS.fullmatch(value[1:]):
            raise BadRequest(gettext("%(field)s must not be negative") % {"field": field})
        raise BadRequest(
            gettext("%(field)s must be a whole number, not %(value)r")
            % {"field": field, "value": value[:40]}
        )
    if len(value) > MAX_DIGITS or int(value) > MAX_VALUE:
        raise BadRequest(
            gettext("%(field)s is too large: the largest accepted is %(max)s")
            % {"field": field, "max": MAX_VALUE}
        )
    return int(value)
