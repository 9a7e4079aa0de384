"""
Signals sent by the upload engine. Each is sent once per upload.

upload_started(sender=Upload, upload)    the upload's record was created
upload_completed(sender=Upload, upload)  the file is in storage, sha256 set
upload_failed(sender=Upload, upload, error)  finishing failed; `error` says why
upload_expired(sender=Upload, upload)    no chunk arrived within UPLOADS_EXPIRATION;
                                         the staged bytes are gone, the record stays

Each is sent by the one request or command whose database transaction moved
the upload to that status, so racing workers and two copies of
cleanup_uploads cannot send it twice. Receivers run in that process (a gunicorn
worker or the command): keep them quick, or hand the work to a queue.
"""

from django.dispatch import Signal

upload_started = Signal()
upload_completed = Signal()
upload_failed = Signal()
upload_expired = Signal()
