# The backup bucket: versioned, encrypted, public access blocked, optionally expiring what it
# holds. A module of its own so that `jeeves down` can leave it standing: down destroys every
# resource of the root except `module.backup_bucket` (src/terraform, `KEPT_MODULE`), so the
# archives outlive the cluster they back up (the drill: up, backup, down, up, restore). The
# bucket stays in the terraform state, and the next `up` finds it there.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "name" {
  type = string
}

variable "prefix" {
  type = string
}

variable "kms_key_arn" {
  type = string
}

variable "expire_days" {
  type = number
}

resource "aws_s3_bucket" "this" {
  bucket = var.name
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = "Enabled"
  }
}

# SSE-S3 (AES256) by default; SSE-KMS with a key of the account's when kms_key_arn is set.
resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == "" ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn == "" ? null : var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != ""
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Uploads cut short are dropped after a week; with expire_days, archives (and the versions a
# deletion leaves behind) expire too.
resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {
      prefix = "${var.prefix}/"
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  dynamic "rule" {
    for_each = var.expire_days > 0 ? [var.expire_days] : []
    content {
      id     = "expire-archives"
      status = "Enabled"
      filter {
        prefix = "${var.prefix}/"
      }
      expiration {
        days = rule.value
      }
      noncurrent_version_expiration {
        noncurrent_days = rule.value
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

output "name" {
  value = aws_s3_bucket.this.id
}

output "arn" {
  value = aws_s3_bucket.this.arn
}
