"""The user an API request acts for."""

from typing import cast

from django.contrib.auth.models import User
from rest_framework.request import Request


def signed_in(request: Request) -> User:
    """The request's user, in a view that lets only signed-in users in (IsAuthenticated, the
    API's default permission): DRF types `request.user` as maybe anonymous."""
    return cast(User, request.user)
