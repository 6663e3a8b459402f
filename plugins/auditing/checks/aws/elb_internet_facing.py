"""aws.elb.internet_facing: load balancers (classic, application, network) reachable from the internet."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
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
        for lb in api.load_balancers(region):
            arn = lb["LoadBalancerArn"]
            what = f"{lb.get('Type', 'application')} load balancer {lb['LoadBalancerName']} ({lb.get('DNSName', '')})"
            if lb.get("Scheme") == "internet-facing":
                yield Result("FAIL", arn, f"{what} is internet-facing", region=region)
            else:
                yield Result("PASS", arn, f"{what} is internal", region=region)


CHECK = Check(META, evaluate)
