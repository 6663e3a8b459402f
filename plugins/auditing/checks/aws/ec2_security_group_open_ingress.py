"""aws.ec2.security_group_open_ingress: security groups that let 0.0.0.0/0 or ::/0 in, on any port
outside the allowed ones (default 80 and 443); high when all traffic or a high-risk port (SSH, RDP,
databases …) is open, medium otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...check import Check, CheckContext
from ...constants import ALLOWED_PUBLIC_PORTS, HIGH_RISK_PORTS
from ...providers.aws import owner_of, tags_of
from ...records import CheckMeta, Result
from .common import aws

META = CheckMeta(
    id="aws.ec2.security_group_open_ingress",
    title="Security group open to the internet",
    severity="high",
    provider="aws",
    resource_type="AwsEc2SecurityGroup",
    risk="Anyone on the internet can reach the ports this group opens: scanners find them within minutes.",
    remediation="Restrict the rule's source to known address ranges, or reach the service through a VPN/bastion.",
    remediation_url="https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html",
    thresholds={"high_risk_ports": list(HIGH_RISK_PORTS), "allowed_ports": list(ALLOWED_PUBLIC_PORTS)},
)
WORLD = ("0.0.0.0/0", "::/0")
ICMP = ("icmp", "icmpv6", "1", "58")


def open_ranges(group: dict[str, Any]) -> Iterator[tuple[str, int, int, str]]:
    """(protocol, from port, to port, source) of every rule open to the world; all ports are 0–65535."""
    for perm in group.get("IpPermissions", []):
        sources = [r.get("CidrIp") for r in perm.get("IpRanges", [])]
        sources += [r.get("CidrIpv6") for r in perm.get("Ipv6Ranges", [])]
        proto = str(perm.get("IpProtocol", "-1"))
        for source in sources:
            if source not in WORLD:
                continue
            if proto == "-1" or "FromPort" not in perm or int(perm.get("FromPort", -1)) == -1:
                yield proto, 0, 65535, str(source)
            else:
                yield proto, int(perm["FromPort"]), int(perm["ToPort"]), str(source)


def judge(group: dict[str, Any], high_risk: set[int], allowed: set[int]) -> tuple[str, str, str]:
    """(status, severity, message) of one group."""
    bad: list[str] = []
    high = False
    for proto, lo, hi, source in open_ranges(group):
        if proto.lower() in ICMP:  # ping and path-MTU messages: no port to reach, medium
            bad.append(f"icmp from {source}")
            continue
        ports = set(range(lo, hi + 1)) if hi - lo < 1024 else None
        if ports is not None and ports <= allowed:
            continue
        if proto == "-1" or ports is None or ports & high_risk:
            high = True
        span = "all traffic" if proto == "-1" else (f"{proto} {lo}" if lo == hi else f"{proto} {lo}-{hi}")
        bad.append(f"{span} from {source}")
    name = f"{group['GroupId']} ({group.get('GroupName', '')})"
    if not bad:
        return "PASS", "", f"security group {name} opens nothing but allowed ports to the internet"
    return "FAIL", "high" if high else "medium", f"security group {name} opens {', '.join(bad)}"


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    api = aws(ctx)
    high_risk = {int(p) for p in ctx.threshold("high_risk_ports")}
    allowed = {int(p) for p in ctx.threshold("allowed_ports")}
    for region in api.regions():
        for group in api.security_groups(region):
            status, severity, msg = judge(group, high_risk, allowed)
            arn = f"arn:aws:ec2:{region}:{group.get('OwnerId', ctx.account)}:security-group/{group['GroupId']}"
            tags = tags_of(group.get("Tags"))
            yield Result(status, arn, msg, region=region, severity=severity, tags=tags, owner=owner_of(tags))


CHECK = Check(META, evaluate)
