"""What ships: the marketplace's first-touch wording (staff may change it in admin) and the first-24-hours
routine every lender starts with (and may change in the portal).

The first touch opens with what the consumer was pre-qualified for, as the playbook says ("Based on your
income and credit, you may qualify for up to $350,000. Are you looking at homes in that range?").
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST_TOUCH_SUBJECT = "{{first_name}}, about your mortgage request with {{lender_name}}"
# A template keeps each paragraph on one line: a line whose merge field has no value is left out whole
# (merge.render), so a sentence must not be split across lines.
FIRST_TOUCH_EMAIL = "\n".join(
    (
        "Hi {{first_name}},",
        "",
        "I'm {{officer_name}}, a loan officer with {{lender_name}} (NMLS #{{officer_nmls}}). "
        "Thank you for your request.",
        "",
        "Based on your income and credit, you may qualify for up to {{estimate}} with a {{best_product}} "
        "loan. Are you looking at homes in that range?",
        "",
        "I will call you shortly from {{officer_phone}}.",
        "If another time suits you better, book a call here: {{booking_url}}",
        "",
        "{{officer_name}}",
        "{{lender_name}}",
    )
)
FIRST_TOUCH_TEXT = (
    "Hi {{first_name}}, this is {{officer_name}} at {{lender_name}} about your mortgage request: you may "
    "qualify for up to {{estimate}}. I'll call you shortly. Reply STOP to opt out."
)

# Every automated text says how to stop (CTIA's guidance): added when a template leaves it out.
STOP_LINE = "Reply STOP to opt out."


@dataclass(frozen=True)
class ShippedStep:
    action: str
    delay_minutes: int = 0
    timing: str = "after"
    skip_if_reached: bool = False
    subject: str = ""
    body: str = ""


SHIPPED_SEQUENCE_NAME = "First 24 hours"
# Call now, e-mail at 5 min if not reached, text at 1 h, call at 4 h, e-mail next morning, call at 24 h.
SHIPPED_STEPS: tuple[ShippedStep, ...] = (
    ShippedStep(
        "call", 0, body="Open with the estimate: up to {{estimate}}. Are they looking in that range?"
    ),
    ShippedStep(
        "email",
        5,
        skip_if_reached=True,
        subject="Sorry I missed you, {{first_name}}",
        body="\n".join(
            (
                "Hi {{first_name}},",
                "",
                "I tried to reach you about your mortgage request. You may qualify for up to {{estimate}}; "
                "I'd be glad to go through your options and answer any questions.",
                "",
                "Book a call at a time that suits you: {{booking_url}}",
                "Or call me at {{officer_phone}}.",
                "",
                "{{officer_name}}, {{lender_name}}",
                "NMLS #{{officer_nmls}}",
            )
        ),
    ),
    ShippedStep(
        "text",
        60,
        skip_if_reached=True,
        body="Hi {{first_name}}, {{officer_name}} at {{lender_name}} again. When is a good time for a "
        "quick call about your mortgage options? Reply STOP to opt out.",
    ),
    ShippedStep(
        "call", 240, skip_if_reached=True, body="Second attempt: leave a voicemail if there is no answer."
    ),
    ShippedStep(
        "email",
        timing="next_morning",
        skip_if_reached=True,
        subject="Your mortgage options, {{first_name}}",
        body="\n".join(
            (
                "Good morning {{first_name}},",
                "",
                "A quick follow-up on your request: with a {{best_product}} loan you may qualify for up to "
                "{{estimate}}. Most of our clients start with a 15-minute call.",
                "",
                "{{booking_url}}",
                "{{officer_phone}}",
                "",
                "{{officer_name}}, {{lender_name}}",
            )
        ),
    ),
    ShippedStep("call", 24 * 60, skip_if_reached=True, body="Last call of the first day."),
)
