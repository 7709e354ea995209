# The local stand-in for terraform/aws: built-in resources only, so the real terraform binary
# runs on a machine with no cloud access. Its outputs have exactly the shape of the AWS
# configuration's outputs; the addresses are those of the lab's hosts (tests/lab).

terraform {
  required_version = ">= 1.4"
}

variable "project" {
  type        = string
  description = "Project name, as tagged on every AWS resource."
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Extra tags, kept on each host record as the AWS configuration puts them on each instance."
}

variable "controller" {
  type = object({
    id         = optional(string)
    hostname   = string
    public_ip  = string
    private_ip = string
  })
  description = "The lab's controller host; id (optional) stands for an EC2 instance id."
}

variable "controllers" {
  type        = number
  default     = 1
  description = "How many of the lab's controller hosts are the stack's (1, 3 or 5), as terraform/aws makes that many instances: the first is `controller`, the others the first of `more_controllers`."

  validation {
    condition     = contains([1, 3, 5], var.controllers)
    error_message = "controllers must be 1, 3 or 5."
  }
}

variable "more_controllers" {
  type = list(object({
    id         = optional(string)
    hostname   = string
    public_ip  = string
    private_ip = string
  }))
  default     = []
  description = "The lab's further controller hosts (`lab up --controllers N`), of which the stack takes controllers - 1."

  # A validation, not a resource precondition: terraform keeps a precondition's result in the
  # state under the resource's address even with no instance of it.
  validation {
    condition     = length(var.more_controllers) >= var.controllers - 1
    error_message = "controllers = ${var.controllers} needs ${var.controllers - 1} more controller host(s) and the lab has ${length(var.more_controllers)}: tests/lab/lab up --controllers ${var.controllers}."
  }
}

variable "workers" {
  type = list(object({
    id         = optional(string)
    hostname   = string
    public_ip  = string
    private_ip = string
  }))
  default     = []
  description = "The lab's worker hosts."
}

resource "terraform_data" "controller" {
  input = merge(var.controller, { role = "controller", project = var.project, tags = var.tags })
}

resource "terraform_data" "worker" {
  count = length(var.workers)
  input = merge(var.workers[count.index], { role = "worker", project = var.project, tags = var.tags })
}

resource "terraform_data" "controller_more" {
  count = var.controllers - 1
  input = merge(var.more_controllers[count.index], { role = "controller", project = var.project, tags = var.tags })
}
