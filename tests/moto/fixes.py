"""The fixes listed in README.md (beside this file), applied to moto when this module is imported:
by server.py (moto_server with them) and by zygote.py (moto servers forked ready-imported)."""

from moto.ec2.models.security_groups import SecurityGroupRule
from moto.route53.exceptions import Route53ClientError
from moto.route53.models import Route53Backend
from moto.s3.responses import S3Response


def _description(rule):
    # AWS keeps the description of a rule that references a security group: it is the
    # `Description` of the rule's UserIdGroupPair (EC2 API reference, UserIdGroupPair), and
    # DescribeSecurityGroupRules answers it as the rule's `Description` (SecurityGroupRule).
    # moto (5.2.1, and getmoto/moto master at 0af643a, 2026-08-22) keeps it in `source_group` but answers only the
    # CIDR range's (moto/ec2/models/security_groups.py, SecurityGroupRule.description).
    return rule.ip_range.get("Description") or rule.source_group.get("Description")


SecurityGroupRule.description = property(_description)


def _get_bucket_versioning(self):
    # AWS answers GetBucketVersioning with the root element `VersioningConfiguration` (S3 API
    # reference, GetBucketVersioning, "Response Syntax"), empty while versioning was never set.
    # moto (5.2.1, and getmoto/moto master at 0af643a) serializes it as
    # `GetBucketVersioningResponse` (moto/s3/responses.py, `S3Response.get_bucket_versioning` →
    # `self.serialized(ActionResult(...))`), which the Go SDK reads and the Rust SDK refuses.
    status = self.backend.get_bucket_versioning(self.bucket_name)
    self.data["Action"] = "GetBucketVersioning"
    inner = f"<Status>{status}</Status>" if status else ""
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}'
            "</VersioningConfiguration>")
    return 200, {"Content-Type": "application/xml"}, body


S3Response.get_bucket_versioning = _get_bucket_versioning


def _create_health_check(self, caller_reference, health_check_args):
    # AWS (Route 53 API reference, CreateHealthCheck, `CallerReference`): the CallerReference of
    # an existing check with the same settings returns that check; with other settings, or the
    # CallerReference of a deleted check whatever the settings, HealthCheckAlreadyExists (until
    # Route 53 forgets a deleted check's reference, "after a number of days"). moto 5.2.1
    # (moto/route53/models.py, Route53Backend.create_health_check; unchanged on master at
    # 0af643a) makes a new check for any request.
    seen = self.__dict__.setdefault("_jeeves_references", {})
    if caller_reference in seen:
        check_id, args = seen[caller_reference]
        if check_id in self.health_checks and args == health_check_args:
            return self.health_checks[check_id]
        raise Route53ClientError(
            "HealthCheckAlreadyExists",
            f"A health check with CallerReference {caller_reference} already exists"
            + ("" if check_id in self.health_checks else " (deleted)")
            + ".",
        )
    check = _moto_create_health_check(self, caller_reference, health_check_args)
    seen[caller_reference] = (check.id, dict(health_check_args))
    return check


_moto_create_health_check = Route53Backend.create_health_check
Route53Backend.create_health_check = _create_health_check
