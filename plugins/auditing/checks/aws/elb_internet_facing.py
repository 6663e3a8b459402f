"""aws.elb.internet_facing: load balancers (classic, application, network) reachable from the internet."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...providers.aws import owner_of
from ...records import CheckMeta, Result
from .common import aws

META = CheckMeta(
    id="aws.elb.internet_facing",
    title="Load balancer is internet-facing",
    severity="medium",
    provider="aws",
    resource_type="AwsElbLoadBalancer",
    risk="An internet-facing load balancer exposes its targets; each one should be meant to be public.",
    remediation="Make the load balancer internal, or mute it with the reason it must be public.",
    remediation_url="https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html",
)


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    api = aws(ctx)
    for region in api.regions():
        lbs = api.load_balancers(region)
        public = [lb for lb in lbs if lb.get("Scheme") == "internet-facing"]
        tags = api.load_balancer_tags(region, public) if public else {}  # for mutes and owners
        for lb in lbs:
            arn = lb["LoadBalancerArn"]
            what = f"{lb.get('Type', 'application')} load balancer {lb['LoadBalancerName']} ({lb.get('DNSName', '')})"
            if lb.get("Scheme") == "internet-facing":
                t = tags.get(arn, {})
                yield Result("FAIL", arn, f"{what} is internet-facing", region=region, tags=t, owner=owner_of(t))
            else:
                yield Result("PASS", arn, f"{what} is internal", region=region)


CHECK = Check(META, evaluate)
