"""
Django's makemessages, finding the widget's words too.

Every word the widget shows goes through t() (uploads/static/uploads/js/words.js),
which xgettext does not know as a keyword: for the djangojs domain it is added,
so `makemessages -d djangojs` collects them into djangojs.po.
"""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    def handle(self, *args, **options):
        if options["domain"] == "djangojs":
            self.xgettext_options = [*self.xgettext_options, "--keyword=t"]
        super().handle(*args, **options)
