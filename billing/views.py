"""Project-level views that belong to no app."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def healthz(request):
    """Liveness probe for load balancers; touches no database (the benchmark's ceiling)."""
    return HttpResponse("ok", content_type="text/plain")


@require_GET
def home(request):
    """`/` (and the admin's "View site"): where to go from here. Reads nothing."""
    return render(request, "home.html")
