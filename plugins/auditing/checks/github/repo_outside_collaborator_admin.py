"""github.repo.outside_collaborator_admin: outside collaborators with admin rights on a repository."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...records import CheckMeta, Result
from .common import github

META = CheckMeta(
    id="github.repo.outside_collaborator_admin",
    title="Outside collaborator is an admin of a repository",
    severity="high",
    provider="github",
    resource_type="GitHubRepository",
    risk="Someone outside the organisation can change the repository's settings, secrets access and branch rules.",
    remediation="Lower the collaborator's permission to write or read, or make them a member under the org's rules.",
    remediation_url="https://docs.github.com/en/organizations/managing-user-access-to-your-organizations-repositories/managing-outside-collaborators",
)


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    for repo, login, admin in github(ctx).outside_collaborators():
        rid = f"{repo}/{login}"
        if admin:
            yield Result("FAIL", rid, f"outside collaborator {login} is an admin of {repo}")
        else:
            yield Result("PASS", rid, f"outside collaborator {login} is not an admin of {repo}")


CHECK = Check(META, evaluate)
