//! Every integration test, as modules of one test binary (Cargo.toml `[[test]] suite`):
//! one crate to build and link, not one per file (docs/tests.md, "Where the time goes").
//! nextest still runs each test in a process of its own; a file's tests are `<file>::…`.

mod common;

mod backup;
mod bootstrap;
mod charts;
mod check;
mod cli;
mod deploy;
mod dns;
mod dns_multivalue;
mod docs;
mod drill;
mod everyday;
mod faults;
mod fleet;
mod ha;
mod host_pinning;
mod jenkinsfile;
mod lab;
mod liveness;
mod maintenance;
mod power;
mod power_lab;
mod render;
mod saved_plan;
mod ssh;
mod state_s3;
mod terraform;
mod terraform_aws;
mod terraform_aws_ha;
mod tls;
mod tunnel;
mod tunnel_stage;
