# Read only when no ami_id is set: an account or partition without Canonical's images (or an
# emulator) has nothing to match, and the plan would fail on a lookup whose answer goes unused.
data "aws_ami" "ubuntu" {
  count       = var.ami_id == "" ? 1 : 0
  most_recent = true
  owners      = ["099720109477"] # Canonical

  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd-gp3/ubuntu-${var.ubuntu_release}-amd64-server-*"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

# The lookup above moves the day Canonical publishes a newer image; instances must not follow it
# on their own (that replaces every node, and the cluster's data with it): they ignore AMI
# changes once created. New instances (a worker added) get var.ami_id, or the newest image.
locals {
  ami = var.ami_id != "" ? var.ami_id : data.aws_ami.ubuntu[0].id
}

resource "aws_key_pair" "this" {
  key_name   = "${var.project}-jeeves"
  public_key = var.ssh_public_key
}

# Tags used by Jeeves: Project = var.project and Role = controller | worker (the dns stage finds
# the controller by exactly these when state is missing).
resource "aws_instance" "controller" {
  ami                    = local.ami
  instance_type          = var.controller_instance_type
  subnet_id              = local.subnet_id
  key_name               = aws_key_pair.this.key_name
  vpc_security_group_ids = [aws_security_group.cluster.id, aws_security_group.web.id]

  root_block_device {
    volume_size = var.root_volume_gb
    volume_type = "gp3"
    encrypted   = true
  }

  iam_instance_profile = aws_iam_instance_profile.node.name

  # IMDSv2 only; hop limit 2 so that a pod (one hop behind the node's network) reaches the
  # instance profile's credentials (backup.tf).
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  tags = {
    Name = "${var.project}-controller"
    Role = "controller"
  }

  lifecycle {
    ignore_changes = [ami]
  }
}

# The controllers after the first (`controllers` 3 or 5), each in the next zone: they join the
# first as full nodes of the control plane. The first keeps its address in the configuration
# (aws_instance.controller), so going from 1 to 3 adds instances and replaces none.
resource "aws_instance" "controller_more" {
  count                  = var.controllers - 1
  ami                    = local.ami
  instance_type          = var.controller_instance_type
  subnet_id              = local.controller_subnet_ids[(count.index + 1) % length(local.controller_subnet_ids)]
  key_name               = aws_key_pair.this.key_name
  vpc_security_group_ids = [aws_security_group.cluster.id, aws_security_group.web.id]

  root_block_device {
    volume_size = var.root_volume_gb
    volume_type = "gp3"
    encrypted   = true
  }

  iam_instance_profile = aws_iam_instance_profile.node.name

  # As the first controller's (above).
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  tags = {
    Name = "${var.project}-controller-${count.index + 2}"
    Role = "controller"
  }

  lifecycle {
    ignore_changes = [ami]
  }
}

resource "aws_instance" "worker" {
  count                  = var.worker_count
  ami                    = local.ami
  instance_type          = var.worker_instance_type
  subnet_id              = local.subnet_id
  key_name               = aws_key_pair.this.key_name
  vpc_security_group_ids = [aws_security_group.cluster.id]

  root_block_device {
    volume_size = var.root_volume_gb
    volume_type = "gp3"
    encrypted   = true
  }

  iam_instance_profile = aws_iam_instance_profile.node.name

  # IMDSv2 only; hop limit 2 so that a pod (one hop behind the node's network) reaches the
  # instance profile's credentials (backup.tf).
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  tags = {
    Name = "${var.project}-worker-${count.index + 1}"
    Role = "worker"
  }

  lifecycle {
    ignore_changes = [ami]
  }
}

# A stable public address for the controller: DNS points at it and it survives stop/start.
resource "aws_eip" "controller" {
  domain   = "vpc"
  instance = aws_instance.controller.id

  tags = {
    Name = "${var.project}-controller"
    Role = "controller"
  }
}

resource "aws_eip" "controller_more" {
  count    = var.controllers - 1
  domain   = "vpc"
  instance = aws_instance.controller_more[count.index].id

  tags = {
    Name = "${var.project}-controller-${count.index + 2}"
    Role = "controller"
  }
}
