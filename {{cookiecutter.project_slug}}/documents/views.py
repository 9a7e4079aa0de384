"""The user's documents: a list, forms to add, change and delete one, and downloads."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from .forms import DocumentForm
from .models import Document


def _own_document(request, pk):
    """The user's document; anybody else's is a 404, as if it did not exist."""
    return get_object_or_404(Document, pk=pk, owner=request.user)


@login_required
def document_list(request):
    documents = Document.objects.filter(owner=request.user)
    return render(request, "documents/document_list.html", {"documents": documents})


@login_required
def document_create(request):
    form = DocumentForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        document = form.save(commit=False)
        document.owner = request.user
        document.save()
        messages.success(request, _("“%(title)s” is saved.") % {"title": document.title})
        return redirect("documents:list")
    return render(request, "documents/document_form.html", {"form": form})


@login_required
def document_update(request, pk):
    document = _own_document(request, pk)
    # A file left alone keeps the current one; a new upload replaces it.
    form = DocumentForm(request.POST or None, instance=document, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("“%(title)s” is saved.") % {"title": document.title})
        return redirect("documents:list")
    return render(request, "documents/document_form.html", {"form": form, "document": document})


@login_required
def document_delete(request, pk):
    document = _own_document(request, pk)
    if request.method == "POST":
        document.delete()
        # The file is the upload's: it stays in "Your uploads" until deleted there.
        messages.success(request, _("“%(title)s” is deleted.") % {"title": document.title})
        return redirect("documents:list")
    return render(request, "documents/document_confirm_delete.html", {"document": document})


@login_required
def download(request, pk):
    # Staff who may view documents in the admin follow its file links here too.
    if request.user.has_perm("documents.view_document"):
        document = get_object_or_404(Document, pk=pk)
    else:
        document = _own_document(request, pk)
    if not document.file:
        raise Http404("this document has no file")
    return FileResponse(document.file.open("rb"), as_attachment=True, filename=document.filename)
