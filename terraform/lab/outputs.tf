output "controller" {
  description = "The controller: id, hostname, public_ip, private_ip."
  value = {
    id         = coalesce(terraform_data.controller.output.id, terraform_data.controller.id)
    hostname   = terraform_data.controller.output.hostname
    public_ip  = terraform_data.controller.output.public_ip
    private_ip = terraform_data.controller.output.private_ip
  }
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
