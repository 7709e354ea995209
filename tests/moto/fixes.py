"""The fixes listed in README.md (beside this file), applied to moto when this module is imported:
by server.py (moto_server with them) and by zygote.py (moto servers forked ready-imported)."""

from moto.ec2.models.security_groups import SecurityGroupRule
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
