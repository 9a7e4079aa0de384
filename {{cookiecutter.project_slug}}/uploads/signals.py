"""
Signals sent by the upload engine. Each is sent once per upload.

upload_started(sender=Upload, upload)    the upload's record was created
upload_completed(sender=Upload, upload)  the file is in storage, sha256 set
upload_failed(sender=Upload, upload, error)  finishing failed; `error` says why
"""

from django.dispatch import Signal

upload_started = Signal()
upload_completed = Signal()
upload_failed = Signal()
