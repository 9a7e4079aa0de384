"""
The errors the engine and the protocol adapters raise.

Each carries the HTTP status the spec gives it and a sentence for the client;
views turn them into `{"error": message}` responses, so no malformed request
ever reaches a 500.
"""


class UploadError(Exception):
    status = 400

    def __init__(self, message, *, status=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(UploadError):
    """Missing or malformed parameters, or a body that does not match them."""

    status = 400


class NotAuthenticated(UploadError):
    status = 403


class UploadNotFound(UploadError):
    status = 404


class ChunkConflict(UploadError):
    """The chunk would change bytes already received, or the upload is not taking chunks."""

    status = 409


class OffsetMismatch(ChunkConflict):
    """Bytes sent for an offset other than where the received bytes end (tus, Content-Range)."""

    def __init__(self, message, *, offset, status=None):
        super().__init__(message, status=status)
        self.offset = offset


class ChecksumMismatch(UploadError):
    """The bytes of a request do not match the checksum sent with them (tus: 460)."""

    status = 460


class UploadGone(UploadError):
    """The upload was cancelled or expired: the client must start again."""

    status = 410


class TooLarge(UploadError):
    status = 413


class TypeNotAllowed(UploadError):
    status = 415


class FinishingFailed(UploadError):
    """Every byte was in, but the file could not be verified or stored (upload.error says why)."""

    status = 500


class Busy(UploadError):
    """Another request holds these bytes for longer than LOCK_TIMEOUT; retry later."""

    status = 503
