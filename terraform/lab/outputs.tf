output "controller" {
  description = "The controller: id, hostname, public_ip, private_ip."
  value = {
    id         = coalesce(terraform_data.controller.output.id, terraform_data.controller.id)
    hostname   = terraform_data.controller.output.hostname
    public_ip  = terraform_data.controller.output.public_ip
    private_ip = terraform_data.controller.output.private_ip
  }
}

# null with one controller, as terraform/aws's.
output "more_controllers" {
  description = "The controllers after the first, each with id, hostname, public_ip, private_ip; null with one."
  value = var.controllers > 1 ? [
    for c in terraform_data.controller_more : {
      id         = coalesce(c.output.id, c.id)
      hostname   = c.output.hostname
      public_ip  = c.output.public_ip
      private_ip = c.output.private_ip
    }
  ] : null
}

output "workers" {
  description = "The workers, each with id, hostname, public_ip, private_ip."
  value = [
    for w in terraform_data.worker : {
      id         = coalesce(w.output.id, w.id)
      hostname   = w.output.hostname
      public_ip  = w.output.public_ip
      private_ip = w.output.private_ip
    }
  ]
}
