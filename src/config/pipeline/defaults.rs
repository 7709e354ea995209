//! The pipeline file's defaults, one function per value (serde wants functions).

pub fn templates() -> String {
    "../templates".into()
}
pub fn terraform_dir() -> String {
    "../terraform/aws".into()
}
pub fn ssh_user() -> String {
    "ubuntu".into()
}
pub fn ssh_key() -> String {
    "~/.ssh/id_ed25519".into()
}
pub fn ssh_port() -> u16 {
    22
}
pub fn connect_timeout() -> String {
    "10m".into()
}
pub fn command_timeout() -> String {
    "20m".into()
}
pub fn keepalive() -> String {
    "30s".into()
}
pub fn yes() -> bool {
    true
}
pub fn channel() -> String {
    "1.32/stable".into()
}
pub fn addons() -> Vec<String> {
    vec!["dns".into(), "hostpath-storage".into(), "rbac".into()]
}
pub fn token_ttl() -> String {
    "10m".into()
}
pub fn terraform_timeout() -> String {
    "60m".into()
}
pub fn ready_timeout() -> String {
    "10m".into()
}
pub fn drain_timeout() -> String {
    "5m".into()
}
pub fn concurrency() -> u32 {
    16
}
pub fn controllers() -> u32 {
    1
}
pub fn renew_before() -> String {
    "30days".into()
}
pub fn haproxy_cfg() -> String {
    "/etc/haproxy/haproxy.cfg".into()
}
/// HAProxy needs `rise 2` checks `inter 5s` apart (templates/haproxy.cfg.hbs) once Traefik
/// answers; the rest is margin for pods that pass their readiness probes a little later.
pub fn site_ready_timeout() -> String {
    "2m".into()
}
pub fn loopback() -> String {
    "127.0.0.1".into()
}
pub fn api_port() -> u16 {
    16443
}
pub fn traefik_image() -> String {
    "docker.io/library/traefik:v3.3.4".into()
}
pub fn traefik_crds() -> String {
    "https://raw.githubusercontent.com/traefik/traefik/v3.3.4/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml".into()
}
pub fn traefik_ns() -> String {
    "traefik".into()
}
pub fn web_nodeport() -> u16 {
    30080
}
pub fn websecure_nodeport() -> u16 {
    30443
}
pub fn one() -> u32 {
    1
}
pub fn storage_class() -> String {
    "microk8s-hostpath".into()
}
pub fn storage_size() -> String {
    "1Gi".into()
}
/// MicroK8s' pod network (Calico's default IP pool), the AWS default VPC, and the VPC the
/// AWS module creates (`vpc_cidr`): where HAProxy's connections to the NodePort come from.
pub fn trusted_ips() -> Vec<String> {
    ["10.1.0.0/16", "172.31.0.0/16", "10.42.0.0/16"]
        .map(String::from)
        .to_vec()
}
pub fn chart_repo() -> String {
    "https://rocketchat.github.io/helm-charts".into()
}
pub fn chart() -> String {
    "rocketchat".into()
}
pub fn chart_version() -> String {
    crate::chart::DEFAULT_VERSION.into()
}
pub fn release() -> String {
    "rocketchat".into()
}
pub fn app_ns() -> String {
    "psautoinfra".into()
}
pub fn helm_timeout() -> String {
    "15m".into()
}
pub fn mongodb() -> String {
    "external".into()
}
pub fn mongodb_secret() -> String {
    "rocketchat-mongodb".into()
}
pub fn ttl() -> u32 {
    60
}
pub fn image_prune_every() -> String {
    "24h".into()
}
pub fn image_prune_image() -> String {
    "docker.io/library/alpine:3.21".into()
}
pub fn dns_wait() -> String {
    "120s".into()
}
pub fn state_backend() -> String {
    "local".into()
}
pub fn terraform() -> String {
    "terraform".into()
}
pub fn helm() -> String {
    "helm".into()
}
pub fn kubectl() -> String {
    "kubectl".into()
}
pub fn backup_schedule() -> String {
    "0 3 * * *".into()
}
pub fn backup_keep() -> u32 {
    7
}
/// The official image (docker-library/mongo, `7.0/Dockerfile`: Ubuntu jammy with
/// `mongodb-org-tools`, i.e. mongodump); MongoDB 7.0 is one Rocket.Chat 7.x supports, and
/// the database tools dump servers 4.2 to 8.0 alike.
pub fn backup_image() -> String {
    "docker.io/library/mongo:7.0.28".into()
}
pub fn backup_storage_size() -> String {
    "10Gi".into()
}
pub fn backup_timeout() -> String {
    "30m".into()
}
pub fn backup_destination() -> String {
    "volume".into()
}
/// The aws CLI v2's own image (aws/aws-cli, `docker/Dockerfile`: Amazon Linux 2, `aws` and a
/// shell); 2.13 and later read the S3 endpoint from `AWS_ENDPOINT_URL_S3`.
pub fn backup_upload_image() -> String {
    "docker.io/amazon/aws-cli:2.27.9".into()
}
pub fn restart_window() -> String {
    "15m".into()
}
pub fn max_disk_use() -> u32 {
    85
}
pub fn cert_min_remaining() -> String {
    "7days".into()
}
