"""The web page: one signed-in page whose scripts speak to the API (/api/) from the browser.

Plain Django views, not DRF ones, so that they stay out of the OpenAPI schema.
"""

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024


@login_required
@ensure_csrf_cookie  # the scripts send this cookie's token as X-CSRFToken on unsafe API calls
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "web/home.html", {"chunk_bytes": DEFAULT_CHUNK_BYTES})


class SignInView(LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True


def signed_in_wrong_too_often(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """django-axes' answer once an account was given the wrong password too often from this
    client: the sign-in page saying so (429), or JSON for a client that asks for it."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    message = (
        f"Too many wrong passwords for this account from here. Try again in {minutes} "
        "minutes; other accounts, and this one from elsewhere, are not affected."
    )
    if "text/html" not in request.headers.get("Accept", ""):
        return JsonResponse({"detail": message, "retry_after": minutes * 60}, status=429)
    form = SignInView.form_class(request, data=request.POST or None)
    context = {"form": form, "locked_out": message, "next": request.POST.get("next", "")}
    return render(request, SignInView.template_name, context, status=429)
