terraform {
  # 1.11: `use_lockfile` in the S3 backend (a lock object beside the state, no DynamoDB table)
  # left experimental in 1.10; older binaries fail `init` on it with an unrelated message.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }

  # State backend: pass its settings with [terraform.backend_config] in the pipeline file,
  # e.g. bucket, key, region, dynamodb_table (or use_lockfile) for S3.
  backend "s3" {}
}

provider "aws" {
  region = var.region

  # Every resource carries Project plus the pipeline's tags; Name and Role are set per resource.
  default_tags {
    tags = merge(var.tags, { Project = var.project })
  }
}
