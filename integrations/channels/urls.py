"""The channels' public URLs: Twilio's webhooks and the e-mail unsubscribe link (`/u/<token>`)."""

from django.urls import path

from . import views

app_name = "channels"

urlpatterns = [
    # Set in Twilio's console as the number's (or messaging service's) "A message comes in" webhook.
    path("hooks/twilio/sms", views.twilio_inbound, name="twilio_inbound"),
    # Sent with each text as its StatusCallback; nothing to set in Twilio's console.
    path("hooks/twilio/status/<int:text_id>", views.twilio_status, name="twilio_status"),
    path("u/<str:token>", views.unsubscribe, name="unsubscribe"),
]
