"""
The largest request body this site ever asks a client to send, written once.

A reverse proxy in front of the site must accept it on the upload endpoints
(nginx's `client_max_body_size`), or uploads fail at their last chunk:

- flow.js and resumable.js send `UPLOADS_CHUNK_SIZE` bytes per chunk, except
  the last, which takes the rest of the file: up to 2 x chunk size - 1 bytes;
- the README's tus and Content-Range examples (tuspy, the curl loops) send
  pieces of PIECE_SIZE bytes, one request each;
- a multipart chunk carries its form fields (names, a relative path) beside
  the bytes.

`python manage.py upload_limits` prints the nginx line for these settings;
deploy/nginx.conf holds it for the defaults, and uploads/tests/test_deploy_kit.py
keeps the two, and the README's pieces, together.
"""

from .conf import upload_settings

# The tus PATCH and Content-Range piece the README recommends to scripts.
PIECE_SIZE = 64 * 1024**2
# Room for a multipart chunk's other fields: parameter names and values, and a
# relative path as long as a file system allows (PATH_MAX is 4096 bytes).
MULTIPART_OVERHEAD = 64 * 1024

MiB = 1024**2


def last_chunk_size():
    """The largest chunk the upload page sends: the last one takes the rest."""
    return 2 * upload_settings.CHUNK_SIZE - 1


def largest_request_body():
    """Bytes of the largest request body a client is asked to send."""
    return max(last_chunk_size(), PIECE_SIZE) + MULTIPART_OVERHEAD


def nginx_client_max_body_size():
    """largest_request_body() as nginx's directive, in whole megabytes rounded up."""
    return f"client_max_body_size {-(-largest_request_body() // MiB)}m;"
