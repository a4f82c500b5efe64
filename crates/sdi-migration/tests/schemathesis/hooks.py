"""Schemathesis hooks for sdi-migration's API.

The OpenAPI schema carries every rule the API enforces except one that JSON
Schema cannot express across two fields: a migration's `source_node` and
`target_node` must differ (the API answers 400 "Validation failed"). A
generated body that is valid field by field but names the same node twice is
given a different target before it is sent, so "schema-valid" means valid.
"""

import schemathesis


def _other(name):
    # Same length and shape (DNS-1123), another last character.
    return name[:-1] + ("b" if name[-1] == "a" else "a")


@schemathesis.hook
def before_call(ctx, case, kwargs):
    body = case.body
    if (
        case.operation.method.upper() == "POST"
        and case.operation.path == "/api/v1/migrations"
        and isinstance(body, dict)
        and isinstance(body.get("source_node"), str)
        and body.get("source_node")
        and body.get("source_node") == body.get("target_node")
    ):
        body["target_node"] = _other(body["source_node"])
