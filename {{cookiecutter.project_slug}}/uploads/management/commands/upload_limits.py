"""Print the request body limit a reverse proxy needs for this site's settings."""

from django.core.management.base import BaseCommand

from uploads import limits


class Command(BaseCommand):
    help = (
        "Print the largest request body the site asks a client to send, as the "
        "client_max_body_size line for nginx's upload locations (deploy/nginx.conf)."
    )

    def handle(self, *, verbosity, **options):
        if verbosity >= 1:
            # nginx comments, so that the whole output can be pasted into its config.
            self.stdout.write(
                f"# The largest request body: {limits.largest_request_body()} bytes, from\n"
                f"#   the upload page's last chunk (2 x UPLOADS_CHUNK_SIZE - 1): "
                f"{limits.last_chunk_size()}\n"
                f"#   a tus PATCH or Content-Range piece as the README sends them: "
                f"{limits.PIECE_SIZE}\n"
                f"#   plus room for a multipart chunk's fields: {limits.MULTIPART_OVERHEAD}"
            )
        self.stdout.write(limits.nginx_client_max_body_size())
