"""The problem+json renderer, in a module of its own: DRF imports it from settings while rest_framework.views
is still loading, so it must import nothing but rest_framework.renderers."""

from rest_framework.renderers import JSONRenderer

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ProblemJSONRenderer(JSONRenderer):
    """Lets a client that asks only for application/problem+json still be answered."""

    media_type = PROBLEM_CONTENT_TYPE
