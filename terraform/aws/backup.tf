# Backups that outlive the cluster (issue 24): the bucket (backup_bucket/, kept by `jeeves
# down`), and the nodes' instance profile, which may list, read, write and delete only
# `<bucket>/<prefix>/*`. No access keys anywhere: pods reach the profile's credentials through
# IMDSv2, which the launch settings allow one hop further (instances.tf, hop limit 2).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  backup_bucket = var.backup_bucket != "" ? var.backup_bucket : lower("${var.project}-backup-${data.aws_caller_identity.current.account_id}")
  backup_prefix = var.backup_prefix != "" ? var.backup_prefix : var.project
  bucket_arn    = "arn:${data.aws_partition.current.partition}:s3:::${local.backup_bucket}"
}

module "backup_bucket" {
  source      = "./backup_bucket"
  name        = local.backup_bucket
  prefix      = local.backup_prefix
  kms_key_arn = var.backup_kms_key_arn
  expire_days = var.backup_expire_days
}

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "node_backup" {
  statement {
    sid       = "ListThePrefix"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.backup_prefix}/", "${local.backup_prefix}/*"]
    }
  }
  statement {
    sid = "ObjectsUnderThePrefix"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${local.bucket_arn}/${local.backup_prefix}/*"]
  }
  dynamic "statement" {
    for_each = var.backup_kms_key_arn == "" ? [] : [var.backup_kms_key_arn]
    content {
      sid       = "TheBucketKey"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.project}-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
}

resource "aws_iam_role_policy" "node_backup" {
  name   = "backup"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.node_backup.json
}

resource "aws_iam_instance_profile" "node" {
  name = "${var.project}-node"
  role = aws_iam_role.node.name
}
