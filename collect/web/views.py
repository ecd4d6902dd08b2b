"""The web page: one signed-in page whose scripts speak to the API (/api/) from the browser.

Plain Django views, not DRF ones, so that they stay out of the OpenAPI schema.
"""

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024


@login_required
@ensure_csrf_cookie  # the scripts send this cookie's token as X-CSRFToken on unsafe API calls
def home(request):
    return render(request, "web/home.html", {"chunk_bytes": DEFAULT_CHUNK_BYTES})


class SignInView(LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True
