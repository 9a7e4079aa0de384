"""The user's documents: a list, a form to add one, and downloads."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render

from .forms import DocumentForm
from .models import Document


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
        messages.success(request, f"“{document.title}” is saved.")
        return redirect("documents:list")
    return render(request, "documents/document_form.html", {"form": form})


@login_required
def download(request, pk):
    document = get_object_or_404(Document, pk=pk, owner=request.user)
    if not document.file:
        raise Http404("this document has no file")
    return FileResponse(document.file.open("rb"), as_attachment=True, filename=document.filename)
