from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView, TemplateView
from django.views.i18n import JavaScriptCatalog


class FaviconView(RedirectView):
    """Browsers ask for /favicon.ico on every page, the admin's included."""

    permanent = False  # the target is a hashed name that changes with the file

    def get_redirect_url(self, *args, **kwargs):
        return static("favicon.svg")


urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("uploads/", include("uploads.urls")),
    path("documents/", include("documents.urls")),
    path("admin/", admin.site.urls),
    path("favicon.ico", FaviconView.as_view()),
    # The widget's words in the page's language (window.gettext, used by its t()).
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
]
