//! Route 53: hosted zone choice, the domain's A record, UPSERT/DELETE and waiting for INSYNC.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};

use super::describe;

/// No hosted zone holds the domain (the tls stage then checks plain DNS resolution instead).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoZone(pub String);

/// A hosted zone; `name` without the trailing dot, lower case; `id` without `/hostedzone/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub id: String,
    pub name: String,
    pub private: bool,
}

/// The domain's current A record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ARecord {
    pub values: Vec<String>,
    pub ttl: Option<i64>,
    /// An alias record (to a load balancer, say) rather than plain addresses.
    pub alias: bool,
}

impl ARecord {
    /// True when the record is exactly `ip` with `ttl`.
    pub fn is(&self, ip: &str, ttl: i64) -> bool {
        !self.alias && self.values == [ip] && self.ttl == Some(ttl)
    }
}

/// The zone whose name is the longest suffix of `domain`; between a public and a private zone
/// of the same name, the public one (the record must resolve on the internet for ACME).
pub fn choose_zone<'a>(domain: &str, zones: &'a [Zone]) -> Option<&'a Zone> {
    zones
        .iter()
        .filter(|z| domain == z.name || domain.ends_with(&format!(".{}", z.name)))
        .max_by_key(|z| (z.name.len(), !z.private))
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

pub struct Route53 {
    client: aws_sdk_route53::Client,
}

impl Route53 {
    pub fn new(config: &aws_config::SdkConfig) -> Route53 {
        Route53 {
            client: aws_sdk_route53::Client::new(config),
        }
    }

    pub fn from_client(client: aws_sdk_route53::Client) -> Route53 {
        Route53 { client }
    }

    /// For the multivalue records and health checks (`aws::multivalue`).
    pub(super) fn client(&self) -> &aws_sdk_route53::Client {
        &self.client
    }

    /// Every hosted zone, across all pages.
    pub async fn zones(&self, page_size: i32) -> Result<Vec<Zone>> {
        let mut zones = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_hosted_zones()
                .max_items(page_size)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(describe)
                .context("Route 53 ListHostedZones failed")?;
            zones.extend(page.hosted_zones().iter().map(|z| Zone {
                id: z.id().trim_start_matches("/hostedzone/").to_string(),
                name: normalize(z.name()),
                private: z.config().is_some_and(|c| c.private_zone()),
            }));
            match (page.is_truncated(), page.next_marker()) {
                (true, Some(next)) => marker = Some(next.to_string()),
                _ => return Ok(zones),
            }
        }
    }

    /// The zone for `domain`: `zone_id` when given (it must contain the domain), else the
    /// longest-suffix zone.
    pub async fn find_zone(&self, domain: &str, zone_id: Option<&str>) -> Result<Zone> {
        if let Some(id) = zone_id {
            let reply = self
                .client
                .get_hosted_zone()
                .id(id)
                .send()
                .await
                .map_err(describe)
                .with_context(|| format!("cannot read hosted zone {id} (dns.zone_id)"))?;
            let z = reply
                .hosted_zone()
                .context("GetHostedZone returned no zone")?;
            let zone = Zone {
                id: id.to_string(),
                name: normalize(z.name()),
                private: z.config().is_some_and(|c| c.private_zone()),
            };
            if choose_zone(domain, std::slice::from_ref(&zone)).is_none() {
                bail!(
                    "hosted zone {id} ({}) does not contain {domain} (dns.zone_id)",
                    zone.name
                );
            }
            return Ok(zone);
        }
        let zones = self.zones(100).await?;
        match choose_zone(domain, &zones) {
            Some(z) => Ok(z.clone()),
            None => bail!(NoZone(format!(
                "no Route 53 hosted zone contains {domain} (looked at {} zone(s)); create the zone, or set dns.zone_id",
                zones.len()
            ))),
        }
    }

    /// The A record named exactly `domain`, if any. ListResourceRecordSets starts at a name
    /// and type; it is not a filter, so the answer is compared exactly.
    pub async fn a_record(&self, zone: &Zone, domain: &str) -> Result<Option<ARecord>> {
        let reply = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(&zone.id)
            .start_record_name(domain)
            .start_record_type(RrType::A)
            .max_items(1)
            .send()
            .await
            .map_err(describe)
            .with_context(|| format!("cannot list records of zone {} ({})", zone.name, zone.id))?;
        let Some(set) = reply
            .resource_record_sets()
            .first()
            .filter(|s| normalize(s.name()) == domain && *s.r#type() == RrType::A)
        else {
            return Ok(None);
        };
        if set.set_identifier().is_some() {
            bail!(
                "the A record {domain} in zone {} uses a routing policy (set identifier); Jeeves manages simple records only",
                zone.name
            );
        }
        Ok(Some(ARecord {
            values: set
                .resource_records()
                .iter()
                .map(|r| r.value().to_string())
                .collect(),
            ttl: set.ttl(),
            alias: set.alias_target().is_some(),
        }))
    }

    /// UPSERTs `domain A ip` and returns the change id.
    pub async fn upsert_a(
        &self,
        zone: &Zone,
        domain: &str,
        ip: &str,
        ttl: i64,
        comment: &str,
    ) -> Result<String> {
        let set = ResourceRecordSet::builder()
            .name(domain)
            .r#type(RrType::A)
            .ttl(ttl)
            .resource_records(ResourceRecord::builder().value(ip).build()?)
            .build()?;
        self.change(zone, ChangeAction::Upsert, set, comment).await
    }

    /// DELETEs the record exactly as it is now (Route 53 requires the current values and TTL).
    pub async fn delete_a(
        &self,
        zone: &Zone,
        domain: &str,
        record: &ARecord,
        comment: &str,
    ) -> Result<String> {
        let mut set = ResourceRecordSet::builder()
            .name(domain)
            .r#type(RrType::A)
            .set_ttl(record.ttl);
        for v in &record.values {
            set = set.resource_records(ResourceRecord::builder().value(v).build()?);
        }
        self.change(zone, ChangeAction::Delete, set.build()?, comment)
            .await
    }

    async fn change(
        &self,
        zone: &Zone,
        action: ChangeAction,
        set: ResourceRecordSet,
        comment: &str,
    ) -> Result<String> {
        let what = format!("{} {} A in zone {}", action.as_str(), set.name(), zone.name);
        let batch = ChangeBatch::builder()
            .comment(comment)
            .changes(
                Change::builder()
                    .action(action)
                    .resource_record_set(set)
                    .build()?,
            )
            .build()?;
        let reply = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(&zone.id)
            .change_batch(batch)
            .send()
            .await
            .map_err(describe)
            .with_context(|| format!("Route 53 refused to {what}"))?;
        Ok(reply
            .change_info()
            .map(|c| c.id().to_string())
            .unwrap_or_default())
    }

    /// Polls GetChange until INSYNC, backing off from 1 s to 10 s, for at most `timeout`.
    pub async fn wait_insync(&self, change_id: &str, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let mut delay = Duration::from_secs(1);
        loop {
            let reply = self
                .client
                .get_change()
                .id(change_id)
                .send()
                .await
                .map_err(describe)
                .with_context(|| format!("Route 53 GetChange {change_id} failed"))?;
            if reply
                .change_info()
                .is_some_and(|c| *c.status() == ChangeStatus::Insync)
            {
                return Ok(());
            }
            if started.elapsed() + delay > timeout {
                bail!(
                    "change {change_id} was accepted but is not INSYNC after {}s (dns.wait_timeout); Route 53 will still apply it — re-run to check",
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str, private: bool) -> Zone {
        Zone {
            id: format!("Z{}{}", name.len(), private),
            name: name.into(),
            private,
        }
    }

    #[test]
    fn the_longest_suffix_zone_wins_and_public_beats_private() {
        let zones = [
            zone("example.com", false),
            zone("eu.example.com", true),
            zone("eu.example.com", false),
            zone("ample.com", false),
        ];
        assert_eq!(choose_zone("chat.eu.example.com", &zones), Some(&zones[2]));
        assert_eq!(choose_zone("chat.example.com", &zones), Some(&zones[0]));
        assert_eq!(choose_zone("eu.example.com", &zones), Some(&zones[2]));
        assert_eq!(
            choose_zone("chat.sample.com", &zones),
            None,
            "suffix must match whole labels"
        );
        assert_eq!(choose_zone("chat.example.org", &zones), None);
        let only_private = [zone("example.com", true)];
        assert_eq!(
            choose_zone("chat.example.com", &only_private),
            Some(&only_private[0])
        );
    }

    #[test]
    fn a_record_comparison_is_exact() {
        let r = ARecord {
            values: vec!["203.0.113.10".into()],
            ttl: Some(60),
            alias: false,
        };
        assert!(r.is("203.0.113.10", 60));
        assert!(!r.is("203.0.113.10", 300));
        assert!(!r.is("203.0.113.11", 60));
        let two = ARecord {
            values: vec!["203.0.113.10".into(), "203.0.113.11".into()],
            ttl: Some(60),
            alias: false,
        };
        assert!(!two.is("203.0.113.10", 60));
    }

    /// A local HTTP server answering with canned Route 53 responses, counting requests.
    struct Responder {
        port: u16,
        hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Responder {
        async fn start(responses: Vec<(u16, &'static str)>) -> Responder {
            use std::sync::atomic::Ordering;
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counter = hits.clone();
            tokio::spawn(async move {
                loop {
                    let (mut sock, _) = listener.accept().await.unwrap();
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = responses[n.min(responses.len() - 1)];
                    // GetChange has no body: the request ends with its header block.
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        let read = sock.read(&mut buf).await.unwrap();
                        if read == 0 {
                            break;
                        }
                        req.extend_from_slice(&buf[..read]);
                    }
                    let reason = if status == 200 { "OK" } else { "Bad Request" };
                    let reply = format!(
                        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    sock.write_all(reply.as_bytes()).await.unwrap();
                    let _ = sock.shutdown().await;
                }
            });
            Responder { port, hits }
        }

        fn client(&self) -> Route53 {
            use aws_sdk_route53::config::{BehaviorVersion, Credentials, Region};
            let config = aws_sdk_route53::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(format!("http://127.0.0.1:{}", self.port))
                .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
                .retry_config(
                    crate::aws::retry_config().with_initial_backoff(Duration::from_millis(10)),
                )
                .build();
            Route53::from_client(aws_sdk_route53::Client::from_conf(config))
        }

        fn hits(&self) -> usize {
            self.hits.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    const THROTTLED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r1</RequestId></ErrorResponse>"#;
    const DENIED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to perform route53:GetChange</Message></Error><RequestId>r2</RequestId></ErrorResponse>"#;
    const INSYNC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<GetChangeResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeInfo><Id>/change/C1</Id><Status>INSYNC</Status><SubmittedAt>2026-11-22T00:00:00Z</SubmittedAt></ChangeInfo></GetChangeResponse>"#;

    #[tokio::test]
    async fn throttling_is_retried_with_backoff_until_it_succeeds() {
        let server =
            Responder::start(vec![(400, THROTTLED), (400, THROTTLED), (200, INSYNC)]).await;
        server
            .client()
            .wait_insync("C1", Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(server.hits(), 3, "two throttled answers, then success");
    }

    const PRIOR: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>PriorRequestNotComplete</Code><Message>The request was rejected because Route 53 was still processing a prior request.</Message></Error><RequestId>r3</RequestId></ErrorResponse>"#;

    #[tokio::test]
    async fn prior_request_not_complete_is_retried() {
        let server = Responder::start(vec![(400, PRIOR), (200, INSYNC)]).await;
        server
            .client()
            .wait_insync("C1", Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(server.hits(), 2);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried_and_carry_code_and_message() {
        let server = Responder::start(vec![(400, DENIED), (200, INSYNC)]).await;
        let err = server
            .client()
            .wait_insync("C1", Duration::from_secs(30))
            .await
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("AccessDenied: User is not authorized"),
            "{text}"
        );
        assert_eq!(server.hits(), 1);
    }
}
