variable "project" {
  type        = string
  description = "Project name: the Project tag on every resource and the prefix of every Name."
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Extra tags for every resource."
}

variable "region" {
  type        = string
  default     = "eu-west-1"
  description = "AWS region."
}

variable "worker_count" {
  type        = number
  default     = 2
  description = "Number of MicroK8s worker nodes."

  validation {
    condition     = var.worker_count >= 0 && var.worker_count <= 1000 && floor(var.worker_count) == var.worker_count
    error_message = "worker_count must be a whole number from 0 to 1000."
  }
}

variable "controllers" {
  type        = number
  default     = 1
  description = "Number of MicroK8s controllers (full nodes of the control plane): 1, 3 or 5. From 3 on the datastore is highly available; the controllers after the first are spread over the VPC's availability zones."

  validation {
    condition     = contains([1, 3, 5], var.controllers)
    error_message = "controllers must be 1, 3 or 5."
  }
}

variable "controller_instance_type" {
  type        = string
  default     = "t3.large"
  description = "Instance type of the controller (MicroK8s control plane, HAProxy)."
}

variable "worker_instance_type" {
  type        = string
  default     = "t3.large"
  description = "Instance type of the workers."
}

variable "root_volume_gb" {
  type        = number
  default     = 40
  description = "Root volume size of every node, in GiB."
}

variable "admin_cidr" {
  type        = string
  description = "CIDR allowed to reach SSH (22), e.g. your office or Jenkins agent range. The MicroK8s API is never opened publicly: Jeeves reaches it through an SSH tunnel."

  validation {
    condition     = can(cidrhost(var.admin_cidr, 0))
    error_message = "admin_cidr must be a CIDR block such as 203.0.113.0/24."
  }
}

variable "ssh_public_key" {
  type        = string
  description = "OpenSSH public key installed for the login user (the private half is ssh.key_path)."
}

variable "create_vpc" {
  type        = bool
  default     = false
  description = "true: a new VPC with one public subnet; false: the region's default VPC."
}

variable "vpc_cidr" {
  type        = string
  default     = "10.42.0.0/16"
  description = "CIDR of the new VPC (create_vpc = true)."
}

variable "ami_id" {
  type        = string
  default     = ""
  description = "An explicit AMI for instances created from now on. Empty: the newest Canonical image of ubuntu_release. Existing instances keep the image they were created with (ignore_changes): moving one is a deliberate replacement."
}

variable "ubuntu_release" {
  type        = string
  default     = "noble-24.04"
  description = "Ubuntu release of the AMI (Canonical's images)."
}

variable "backup_bucket" {
  description = "The backup bucket's name; empty: <project>-backup-<account id>. It outlives `jeeves down`."
  type        = string
  default     = ""
}

variable "backup_prefix" {
  description = "The key prefix the nodes may use in the backup bucket; empty: the project name."
  type        = string
  default     = ""
}

variable "backup_kms_key_arn" {
  description = "A KMS key for the backup bucket's encryption (SSE-KMS); empty: SSE-S3 (AES256)."
  type        = string
  default     = ""
}

variable "backup_expire_days" {
  description = "Archives (and old versions) in the backup bucket expire after this many days; 0: never (retention by `[backup] keep` only)."
  type        = number
  default     = 0

  validation {
    condition     = var.backup_expire_days >= 0 && floor(var.backup_expire_days) == var.backup_expire_days
    error_message = "backup_expire_days must be a whole number of days, 0 for no expiry."
  }
}
