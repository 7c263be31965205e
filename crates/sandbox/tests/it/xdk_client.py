"""Drives the sandbox with X's own Python SDK (xdk): webhook create + list (app Bearer), X Activity
API subscriptions (app Bearer) and DM events (OAuth 2.0 user token). Prints one JSON object.

Usage: xdk_client.py BASE_URL APP_BEARER USER_ACCESS_TOKEN WEBHOOK_URL
"""

import json
import sys

from xdk import Client


def dump(model):
    return model.model_dump(exclude_none=True) if hasattr(model, "model_dump") else model


def main():
    base, bearer, access, hook_url = sys.argv[1:5]
    app = Client(base_url=base, bearer_token=bearer)
    created = dump(app.webhooks.create(body={"url": hook_url}))
    listed = dump(app.webhooks.get())
    subscriptions = [dump(page) for page in app.activity.get_subscriptions(max_results=10)]
    user = Client(base_url=base, access_token=access)
    pages = user.direct_messages.get_events(
        max_results=5, dm_event_fields=["id", "text", "sender_id"], expansions=["sender_id"]
    )
    events = dump(next(iter(pages)))
    print(json.dumps({
        "created": created,
        "listed": listed,
        "subscriptions": subscriptions,
        "events": events,
    }))


if __name__ == "__main__":
    main()
