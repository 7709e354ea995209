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
