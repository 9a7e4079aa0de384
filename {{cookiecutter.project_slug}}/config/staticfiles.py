"""The site's static files storage: WhiteNoise's, with ES module imports hashed too."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """
    collectstatic gives every file a name with its content's hash, and rewrites
    the references inside CSS to match. The upload widget's ES modules import
    each other by relative path (`./core.js`): without the same rewriting, a
    hashed main.js would import the unhashed core.js, which browsers may cache
    across releases. Django can do it but leaves it off by default:
    https://docs.djangoproject.com/en/5.2/ref/contrib/staticfiles/#manifeststaticfilesstorage
    """

    support_js_module_import_aggregation = True
