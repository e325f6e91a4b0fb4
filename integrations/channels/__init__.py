"""The channels the platform reaches consumers through, real and swappable: e-mail (Django's backends or a
provider through django-anymail, with one-click unsubscribe on marketing mail), SMS (a provider interface:
console or Twilio) and what comes back (Twilio's signed inbound and status webhooks: STOP, HELP, START,
replies). The opt-outs themselves are compliance's (compliance.services.optout_record)."""
