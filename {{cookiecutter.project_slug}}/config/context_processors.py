"""
The site's name and description for every template. They are the answers given
to the template, kept here as data so that Django's autoescaping shows them as
typed: `<b>` as text, braces as braces.
"""

SITE_NAME = "{{ cookiecutter.project_name|quoted }}"
SITE_DESCRIPTION = "{{ cookiecutter.description|quoted }}"


def site(request):
    return {"site_name": SITE_NAME, "site_description": SITE_DESCRIPTION}
