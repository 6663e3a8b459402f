"""slack.users.member_without_2fa: workspace members (people, not bots) without two-factor
authentication. Slack exposes ``has_2fa`` only to admins' tokens on plans that show it; when it
does not, the check is an ERROR saying so, never a pass."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...errors import CheckFailed
from ...providers.slack import SlackApi
from ...records import CheckMeta, Result

META = CheckMeta(
    id="slack.users.member_without_2fa",
    title="Slack member without two-factor authentication",
    severity="medium",
    provider="slack",
    resource_type="SlackUser",
    risk="A phished password alone opens the member's channels, messages and files.",
    remediation="Ask the member to turn on 2FA, or require it for the workspace (Settings > Authentication).",
    remediation_url="https://slack.com/help/articles/212221668",
)


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    if not isinstance(ctx.api, SlackApi):
        raise TypeError(f"a slack check needs a SlackApi, got {type(ctx.api).__name__}")
    people = [m for m in ctx.api.members()
              if not m.get("deleted") and not m.get("is_bot") and m.get("id") != "USLACKBOT"]  # fmt: skip
    if people and all("has_2fa" not in m for m in people):
        raise CheckFailed("Slack does not show has_2fa to this token (an admin's token on a plan that exposes it)")
    for m in people:
        name = m.get("name") or m["id"]
        owner = str((m.get("profile") or {}).get("email") or "")
        rid = f"{ctx.account}/{m['id']}"
        if "has_2fa" not in m:
            yield Result("ERROR", rid, f"member {name}: Slack did not say whether they use 2FA")
        elif m["has_2fa"]:
            yield Result("PASS", rid, f"member {name} uses 2FA", owner=owner)
        else:
            yield Result("FAIL", rid, f"member {name} has no 2FA", owner=owner)


CHECK = Check(META, evaluate)
