"""API keys on the wire: `Authorization: Bearer <key>`, found by SHA-256; permissions by holder and scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from .models import ApiKey

# last_used_at is written at most this often per key: one UPDATE per request would serialise busy clients.
LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class ApiClient:
    """request.user for API calls: the key's holder (a partner or a lender), never a person."""

    key: ApiKey
    is_authenticated: bool = True
    is_staff: bool = False

    @property
    def pk(self) -> str:
        return self.holder

    @property
    def holder(self) -> str:
        return f"source:{self.key.source_id}" if self.key.is_partner else f"lender:{self.key.lender_id}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the header as `Authorization: Bearer <key>`.")
        try:
            raw = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("The API key is not valid.") from None
        key = (
            ApiKey.objects.active()
            .select_related("source", "lender")
            .filter(key_sha256=ApiKey.hash(raw))
            .first()
        )
        if key is None:
            raise exceptions.AuthenticationFailed("The API key is not valid, or it was revoked.")
        if key.source_id and not key.source.is_active:
            raise exceptions.AuthenticationFailed("This partner's access is suspended.")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_GRANULARITY:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return ApiClient(key=key), key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (with WWW-Authenticate) rather than 403 when no key is sent.
        return 'Bearer realm="api"'


def _key(request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


class IsPartner(permissions.BasePermission):
    message = "This endpoint needs a partner (lead source) key."

    def has_permission(self, request, view) -> bool:
        key = _key(request)
        return key is not None and key.is_partner


class IsLender(permissions.BasePermission):
    """A lender key; writes (POST, PATCH, ...) need the write scope."""

    message = "This endpoint needs a lender key."

    def has_permission(self, request, view) -> bool:
        key = _key(request)
        if key is None or key.is_partner:
            return False
        if request.method not in permissions.SAFE_METHODS and key.scope != ApiKey.Scope.WRITE:
            self.message = "This key is read-only; use a key with the write scope."
            return False
        return True
