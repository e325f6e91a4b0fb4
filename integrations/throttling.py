"""Rate limits per API key, counted in the cache (Redis when configured, so every web process shares them)."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def __init__(self) -> None:
        # The rate is chosen per request (partner or lender), so nothing is read here.
        pass

    def allow_request(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True  # unauthenticated requests fail before they count
        self.rate = settings.API_RATE_LIMITS["partner" if key.is_partner else "lender"]
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
