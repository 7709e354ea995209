# All cluster nodes share one group; traffic between its members is open (MicroK8s needs
# 16443, 25000, 10250, 12379, VXLAN and more between nodes).
resource "aws_security_group" "cluster" {
  name        = "${var.project}-cluster"
  description = "MicroK8s nodes of ${var.project}"
  vpc_id      = local.vpc_id

  tags = { Name = "${var.project}-cluster" }
}

resource "aws_vpc_security_group_ingress_rule" "cluster_internal" {
  security_group_id            = aws_security_group.cluster.id
  referenced_security_group_id = aws_security_group.cluster.id
  ip_protocol                  = "-1"
  description                  = "All traffic between cluster nodes"
}

resource "aws_vpc_security_group_ingress_rule" "ssh_admin" {
  security_group_id = aws_security_group.cluster.id
  cidr_ipv4         = var.admin_cidr
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  description       = "SSH from the admin network (Jeeves, and its tunnel to the API)"
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.cluster.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
  description       = "Outbound: packages, images, ACME"
}

# HTTP and HTTPS reach only the controller, where HAProxy listens.
resource "aws_security_group" "web" {
  name        = "${var.project}-web"
  description = "Public HTTP/HTTPS to the controller of ${var.project}"
  vpc_id      = local.vpc_id

  tags = { Name = "${var.project}-web" }
}

resource "aws_vpc_security_group_ingress_rule" "http" {
  security_group_id = aws_security_group.web.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  description       = "HTTP (redirect to HTTPS; ACME HTTP-01)"
}

resource "aws_vpc_security_group_ingress_rule" "https" {
  security_group_id = aws_security_group.web.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  description       = "HTTPS"
}
