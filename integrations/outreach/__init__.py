"""Outreach: what the platform sends a consumer on a lender's behalf once a lead is sold. The first touch
(e-mail, and a text when the consent covers texts, within seconds of the sale), the lender's sequence (the
first 24 hours as a routine of call tasks, e-mails and texts) and the consumer's confirmation. Sent through
integrations.channels; quiet hours in quiet.py, merge fields in merge.py."""
