"""Project-level views that belong to no app."""

from django.http import HttpResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request):
    """Liveness probe for load balancers; touches no database (the benchmark's ceiling)."""
    return HttpResponse("ok", content_type="text/plain")
