"""
The errors the engine and the protocol adapters raise.

Each carries the HTTP status the spec gives it and a sentence for the client;
views turn them into `{"error": message}` responses, so no malformed request
ever reaches a 500.
"""

from django.utils.translation import gettext


class UploadError(Exception):
    status = 400
    # Seconds after which the client may retry (the Retry-After header), if it may.
    retry_after = None

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


class UploadCancelled(UploadGone):
    """Its owner cancelled it: a late chunk must not start it again."""


class TooLarge(UploadError):
    status = 413


class QuotaExceeded(TooLarge):
    """A new upload would take its owner past UPLOADS_USER_QUOTA."""


class TooManyUploads(UploadError):
    """Its owner already has UPLOADS_MAX_ACTIVE_UPLOADS unfinished uploads."""

    status = 429


class TypeNotAllowed(UploadError):
    status = 415


class InsufficientStorage(UploadError):
    """No room on the staging file system for this upload or this chunk; retry once there is."""

    status = 507


class FinishingFailed(UploadError):
    """Every byte was in, but the file could not be verified or stored (upload.error says why)."""

    status = 500


class Busy(UploadError):
    """Another request holds these bytes for longer than LOCK_TIMEOUT; retry later."""

    status = 503


class DatabaseUnavailable(UploadError):
    """The database does not answer: nothing was recorded, and the client retries."""

    status = 503
    retry_after = 5

    @classmethod
    def because(cls, exc):
        return cls(
            gettext(
                "the database is unavailable (%(reason)s); nothing of this request "
                "was recorded: retry in %(seconds)s seconds"
            )
            % {"reason": type(exc).__name__, "seconds": cls.retry_after}
        )


class StagingUnavailable(Busy):
    """The bucket that keeps unfinished uploads cannot be reached: nothing was
    recorded, and the same request may be sent again after `retry_after` seconds."""

    retry_after = 5


class BrokerUnavailable(UploadError):
    """The task queue's broker cannot take the finish of the file this chunk
    completes: nothing was recorded, and the same request may be sent again."""

    status = 503
    retry_after = 5
