"""
The headers of tus 1.0 that a browser on another origin must be allowed to
send and to read. Apart from tus.py, which needs the app registry, so that
config/settings.py can build its CORS lists from them.
"""

# Sent by tus clients (tus-js-client, Uppy), beside the usual ones.
REQUEST_HEADERS = (
    "tus-resumable",
    "upload-length",
    "upload-offset",
    "upload-metadata",
    "upload-checksum",
    "upload-defer-length",
    "upload-concat",
    "x-http-method-override",
)

# Answered by tus.py and read by the clients.
RESPONSE_HEADERS = (
    "Location",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Expires",
    "Upload-Defer-Length",
    "Upload-Concat",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
)
