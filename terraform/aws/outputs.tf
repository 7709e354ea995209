# The shape Jeeves reads (terraform/lab has the same): `controller`, `more_controllers` and
# `workers`, each host with id, hostname (the node name MicroK8s uses), public_ip and private_ip.

output "controller" {
  description = "The controller: id, hostname, public_ip, private_ip."
  value = {
    id         = aws_instance.controller.id
    hostname   = split(".", aws_instance.controller.private_dns)[0]
    public_ip  = aws_eip.controller.public_ip
    private_ip = aws_instance.controller.private_ip
  }
}

# null with one controller: terraform keeps no null output, so a single-controller stack's plan
# and outputs stay as they were.
output "more_controllers" {
  description = "The controllers after the first (controllers 3 or 5), each with id, hostname, public_ip, private_ip; null with one."
  value = var.controllers > 1 ? [
    for i, c in aws_instance.controller_more : {
      id         = c.id
      hostname   = split(".", c.private_dns)[0]
      public_ip  = aws_eip.controller_more[i].public_ip
      private_ip = c.private_ip
    }
  ] : null
}

output "workers" {
  description = "The workers, each with id, hostname, public_ip, private_ip."
  value = [
    for w in aws_instance.worker : {
      id         = w.id
      hostname   = split(".", w.private_dns)[0]
      public_ip  = w.public_ip
      private_ip = w.private_ip
    }
  ]
}

output "backup_bucket" {
  description = "The backup bucket (kept by `jeeves down`); the nodes may use only backup_prefix in it."
  value       = module.backup_bucket.name
}

output "backup_prefix" {
  description = "The key prefix the nodes' instance profile allows in backup_bucket."
  value       = local.backup_prefix
}
