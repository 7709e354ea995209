#!/usr/bin/env python3
"""moto_server with the fixes listed in README.md (beside this file) applied; same arguments."""

import sys

from moto.ec2.models.security_groups import SecurityGroupRule
from moto.server import main


def _description(rule):
    # AWS keeps the description of a rule that references a security group: it is the
    # `Description` of the rule's UserIdGroupPair (EC2 API reference, UserIdGroupPair), and
    # DescribeSecurityGroupRules answers it as the rule's `Description` (SecurityGroupRule).
    # moto (5.2.1, and getmoto/moto master at 0af643a, 2026-08-22) keeps it in `source_group` but answers only the
    # CIDR range's (moto/ec2/models/security_groups.py, SecurityGroupRule.description).
    return rule.ip_range.get("Description") or rule.source_group.get("Description")


SecurityGroupRule.description = property(_description)

if __name__ == "__main__":
    sys.exit(main())
