"""
Make an API token for a user and print it, once: only its hash is kept.

    python manage.py create_upload_token alice --name "nightly backup" --expires-in 90d
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from uploads import tokens

from ._options import duration


class Command(BaseCommand):
    help = "Create an API token that uploads as USERNAME (Authorization: Bearer <token>)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. a script")
        parser.add_argument(
            "--expires-in",
            type=duration,
            help="refuse the token after this long: 90s, 15m, 6h, 30d, 52w (default: never)",
        )

    def handle(self, username, name, expires_in, **options):
        User = get_user_model()
        try:
            owner = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"there is no user {username!r}") from None
        if not owner.is_active:
            raise CommandError(f"the user {username!r} is not active")
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters")
        expires = timezone.now() + expires_in if expires_in else None
        record, token = tokens.create(owner, name, expires=expires)
        until = f", until {expires.isoformat()}" if expires else ""
        self.stderr.write(f"Token {record.name!r} for {username}{until}. It is shown only now:")
        self.stdout.write(token)
