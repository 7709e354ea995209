data "aws_availability_zones" "available" {
  state = "available"
}

# Either the default VPC ...
data "aws_vpc" "default" {
  count   = var.create_vpc ? 0 : 1
  default = true
}

data "aws_subnets" "default" {
  count = var.create_vpc ? 0 : 1

  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default[0].id]
  }

  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

# ... or a new one with a single public subnet.
resource "aws_vpc" "this" {
  count                = var.create_vpc ? 1 : 0
  cidr_block           = var.vpc_cidr
  enable_dns_hostnames = true
  enable_dns_support   = true

  tags = { Name = "${var.project}-vpc" }
}

resource "aws_internet_gateway" "this" {
  count  = var.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id

  tags = { Name = "${var.project}-igw" }
}

resource "aws_subnet" "public" {
  count                   = var.create_vpc ? 1 : 0
  vpc_id                  = aws_vpc.this[0].id
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, 1)
  availability_zone       = data.aws_availability_zones.available.names[0]
  map_public_ip_on_launch = true

  tags = { Name = "${var.project}-public" }
}

# More controllers, more zones: a subnet in each further zone the region offers (up to one per
# controller), so that losing a zone takes at most one voter of the datastore. None with one
# controller, so a single-controller stack's network is unchanged.
resource "aws_subnet" "controller" {
  count                   = var.create_vpc ? min(var.controllers, length(data.aws_availability_zones.available.names)) - 1 : 0
  vpc_id                  = aws_vpc.this[0].id
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, 2 + count.index)
  availability_zone       = data.aws_availability_zones.available.names[1 + count.index]
  map_public_ip_on_launch = true

  tags = { Name = "${var.project}-public-${count.index + 2}" }
}

resource "aws_route_table_association" "controller" {
  count          = length(aws_subnet.controller)
  subnet_id      = aws_subnet.controller[count.index].id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_route_table" "public" {
  count  = var.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this[0].id
  }

  tags = { Name = "${var.project}-public" }
}

resource "aws_route_table_association" "public" {
  count          = var.create_vpc ? 1 : 0
  subnet_id      = aws_subnet.public[0].id
  route_table_id = aws_route_table.public[0].id
}

locals {
  vpc_id    = var.create_vpc ? aws_vpc.this[0].id : data.aws_vpc.default[0].id
  subnet_id = var.create_vpc ? aws_subnet.public[0].id : sort(data.aws_subnets.default[0].ids)[0]
  # Where the controllers go, one zone after another (the default VPC has one default subnet per
  # zone); the first controller is in subnet_id, the first of them.
  controller_subnet_ids = var.create_vpc ? concat([aws_subnet.public[0].id], aws_subnet.controller[*].id) : sort(data.aws_subnets.default[0].ids)
}
