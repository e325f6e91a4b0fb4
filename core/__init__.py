"""Plumbing with no domain words, shared by every app and importing none of them: bulk SQL writers, queueing
on commit and the sweeper helpers, batch isolation, the client IP, rate limits, append-only querysets, admin
mixins, problem+json, CSV writing, HTTP hardening."""
