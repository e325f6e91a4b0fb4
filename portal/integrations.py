"""Integrations (owners and managers): the lender's API keys and webhook endpoints with their delivery log.

Owners and managers only. Every object is fetched through the member's lender, so another lender's is a 404.
A new key or secret is put in the session and shown once on the next page, then forgotten.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from integrations import services
from integrations.models import ApiKey, WebhookAttempt, WebhookEndpoint, WebhookMessage
from integrations.webhooks import webhook_endpoint_disable

from .forms import ApiKeyForm, WebhookEndpointForm
from .permissions import PortalRequest, manager_required

SHOW_ONCE = "integrations_show_once"
LOG_SIZE = 50


def _ctx(request: PortalRequest, **extra: Any) -> dict[str, Any]:
    return {"membership": request.membership, "nav": "integrations", **extra}


def _show_once(request: HttpRequest, **values: str) -> None:
    request.session[SHOW_ONCE] = values


def _pop_shown(request: HttpRequest) -> dict[str, str]:
    return request.session.pop(SHOW_ONCE, {}) or {}


def _key_or_404(request: PortalRequest, key_id: int) -> ApiKey:
    key = ApiKey.objects.for_lender(request.membership.lender).filter(pk=key_id).first()
    if key is None:
        raise Http404("No such key.")
    return key


def _endpoint_or_404(request: PortalRequest, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.for_lender(request.membership.lender).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise Http404("No such endpoint.")
    return endpoint


@manager_required
@require_http_methods(["GET", "POST"])
def api_keys(request: PortalRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        new = services.api_key_create(
            lender=request.membership.lender, user=request.user, **form.cleaned_data
        )
        _show_once(request, key=new.key, key_id=str(new.api_key.pk))
        return redirect("portal:api_keys")
    keys = ApiKey.objects.for_lender(request.membership.lender).select_related("created_by")
    return render(
        request,
        "portal/integrations/api_keys.html",
        _ctx(request, form=form, keys=keys, shown=_pop_shown(request)),
        status=400 if form.is_bound else 200,
    )


@manager_required
@require_POST
def api_key_revoke(request: PortalRequest, key_id: int) -> HttpResponse:
    key = services.api_key_revoke(api_key=_key_or_404(request, key_id))
    messages.success(request, f"Key {key.prefix}… is revoked: requests with it now get 401.")
    return redirect("portal:api_keys")


@manager_required
@require_http_methods(["GET", "POST"])
def webhooks(request: PortalRequest) -> HttpResponse:
    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.webhook_endpoint_create(lender=request.membership.lender, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None if exc.code == "endpoint_cap" else "url", exc.messages[0])
        else:
            _show_once(request, secret=endpoint.secret)
            return redirect("portal:webhook_detail", endpoint.pk)
    endpoints = WebhookEndpoint.objects.for_lender(request.membership.lender)
    return render(
        request,
        "portal/integrations/webhooks.html",
        _ctx(request, form=form, endpoints=endpoints),
        status=400 if form.is_bound else 200,
    )


@manager_required
@require_http_methods(["GET", "POST"])
def webhook_detail(request: PortalRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    initial = {"url": endpoint.url, "description": endpoint.description, "events": endpoint.events}
    form = WebhookEndpointForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.webhook_endpoint_update(endpoint=endpoint, **form.cleaned_data)
        messages.success(request, "Endpoint saved.")
        return redirect("portal:webhook_detail", endpoint.pk)
    log = endpoint.messages.prefetch_related(
        Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("-attempted_at", "-id"))
    ).order_by("-created_at", "-id")[:LOG_SIZE]
    return render(
        request,
        "portal/integrations/webhook_detail.html",
        _ctx(request, endpoint=endpoint, form=form, log=log, shown=_pop_shown(request)),
        status=400 if form.is_bound else 200,
    )


@manager_required
@require_POST
def webhook_rotate(request: PortalRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    _show_once(request, secret=services.webhook_endpoint_rotate_secret(endpoint=endpoint))
    messages.success(request, "New secret made. We sign with both the new and the old secret for 24 hours.")
    return redirect("portal:webhook_detail", endpoint.pk)


@manager_required
@require_POST
def webhook_toggle(request: PortalRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    if endpoint.is_active:
        webhook_endpoint_disable(endpoint_id=endpoint.pk, reason="Disabled in the portal.")
        messages.success(request, "Endpoint disabled: no events are sent to it.")
    else:
        services.webhook_endpoint_enable(endpoint=endpoint)
        messages.success(request, "Endpoint enabled.")
    return redirect("portal:webhook_detail", endpoint.pk)


@manager_required
@require_POST
def webhook_resend(request: PortalRequest, endpoint_id: int, message_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    message = WebhookMessage.objects.filter(endpoint=endpoint, pk=message_id).first()
    if message is None:
        raise Http404("No such message.")
    if not endpoint.is_active:
        messages.error(request, "Enable the endpoint first.")
    else:
        try:
            services.webhook_message_resend(message=message)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Message {message.event_id} queued again.")
    return redirect("portal:webhook_detail", endpoint.pk)
