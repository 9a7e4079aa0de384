"""Turning a client's file name into one that is safe to store and to serve."""

import unicodedata

MAX_NAME_LENGTH = 200
_FORBIDDEN = set('<>:"/\\|?*')


def clean_filename(name):
    """
    The last path component of `name`, without control characters, reserved
    characters, leading dots or trailing spaces; never empty, '.' or '..'.
    """
    name = unicodedata.normalize("NFC", str(name))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        "_" if ch in _FORBIDDEN else ch
        for ch in name
        if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    name = name.strip().lstrip(".").strip()
    if not name:
        return "file"
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_NAME_LENGTH - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_NAME_LENGTH]
    return name


def extension(name):
    """Lower-case extension without the dot ('' when there is none)."""
    stem, dot, ext = clean_filename(name).rpartition(".")
    return ext.lower() if dot and stem else ""
