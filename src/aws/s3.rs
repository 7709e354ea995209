//! Objects in one S3 bucket under one key prefix: read, write (server-side encryption requested
//! on every write), create only if absent (a conditional write, `If-None-Match: *`), delete,
//! list. Plain bytes in and out; what the objects mean is the caller's business.

use anyhow::{Context, Result};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use super::describe;

#[derive(Debug, Clone)]
pub struct Bucket {
    client: aws_sdk_s3::Client,
    pub name: String,
    /// Without a trailing `/`.
    pub prefix: String,
}

/// What a conditional create found.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Yes,
    /// An object already has the key (S3 answered 412 PreconditionFailed, or 409
    /// ConditionalRequestConflict while another conditional write to the key is in flight).
    AlreadyExists,
}

impl Bucket {
    /// The bucket through the standard AWS configuration; `region` overrides its region. With a
    /// custom endpoint (`AWS_ENDPOINT_URL`: moto, MinIO) buckets are addressed path-style, as
    /// those servers expect.
    pub async fn open(name: &str, prefix: &str, region: Option<&str>) -> Result<Bucket> {
        let config = super::sdk_config().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&config);
        if let Some(r) = region {
            builder = builder.region(aws_sdk_s3::config::Region::new(r.to_string()));
        } else if config.region().is_none() {
            anyhow::bail!(
                "no AWS region for the bucket {name}: set its region in the pipeline file (state.region, backup.region) or AWS_REGION"
            );
        }
        if config.endpoint_url().is_some() {
            builder = builder.force_path_style(true);
        }
        Ok(Bucket {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            name: name.to_string(),
            prefix: prefix.trim_end_matches('/').to_string(),
        })
    }

    /// As `open`, with an S3 endpoint of its own (MinIO, moto) when `endpoint` is given, and
    /// the AWS configuration's region when `region` is empty.
    pub async fn open_at(
        name: &str,
        prefix: &str,
        region: &str,
        endpoint: Option<&str>,
    ) -> Result<Bucket> {
        let region = (!region.is_empty()).then_some(region);
        let mut bucket = Bucket::open(name, prefix, region).await?;
        if let Some(url) = endpoint {
            let conf = bucket
                .client
                .config()
                .to_builder()
                .endpoint_url(url)
                .force_path_style(true)
                .build();
            bucket.client = aws_sdk_s3::Client::from_conf(conf);
        }
        Ok(bucket)
    }

    /// The objects directly under `<prefix>/` whose names start with `start`, with their sizes
    /// in bytes.
    pub async fn objects(&self, start: &str) -> Result<Vec<(String, u64)>> {
        let mut found = self
            .listing(start)
            .await
            .with_context(|| format!("cannot list {}", self.url(start)))?;
        found.retain(|(name, _)| !name.contains('/'));
        Ok(found)
    }

    /// Every object whose key starts with `<prefix>/<start>`: its name relative to the prefix
    /// and its size in bytes, page after page.
    async fn listing(&self, start: &str) -> Result<Vec<(String, u64)>> {
        let base = format!("{}/", self.prefix);
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.name)
                .prefix(self.key(start))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(describe)?;
            found.extend(out.contents().iter().filter_map(|o| {
                let name = o.key()?.strip_prefix(&base)?;
                Some((name.to_string(), o.size().unwrap_or(0).max(0) as u64))
            }));
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => return Ok(found),
            }
        }
    }

    /// The object's key: `<prefix>/<name>`.
    pub fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// `s3://bucket/prefix/name`, for messages.
    pub fn url(&self, name: &str) -> String {
        format!("s3://{}/{}", self.name, self.key(name))
    }

    /// The object's bytes, or None when there is none.
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let reply = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(self.key(name))
            .send()
            .await;
        let out = match reply {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                return Err(describe(e)).with_context(|| format!("cannot read {}", self.url(name)));
            }
        };
        let bytes = out
            .body
            .collect()
            .await
            .with_context(|| format!("cannot read {}", self.url(name)))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    /// Writes the object, encrypted at rest by S3 (SSE-S3, AES256).
    pub async fn put(&self, name: &str, body: Vec<u8>) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.name)
            .key(self.key(name))
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(describe)
            .with_context(|| format!("cannot write {}", self.url(name)))?;
        Ok(())
    }

    /// Creates the object only if no object has its key (`If-None-Match: *`), atomically on
    /// S3's side: of two writers exactly one gets `Created::Yes`.
    pub async fn create(&self, name: &str, body: Vec<u8>) -> Result<Created> {
        let reply = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(self.key(name))
            .if_none_match("*")
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(body))
            .send()
            .await;
        match reply {
            Ok(_) => Ok(Created::Yes),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                if matches!(status, Some(412 | 409)) {
                    Ok(Created::AlreadyExists)
                } else {
                    Err(describe(e)).with_context(|| format!("cannot create {}", self.url(name)))
                }
            }
        }
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.name)
            .key(self.key(name))
            .send()
            .await
            .map_err(describe)
            .with_context(|| format!("cannot delete {}", self.url(name)))?;
        Ok(())
    }

    /// The names (relative to the prefix) of the objects under `<prefix>/<dir>/`.
    pub async fn list(&self, dir: &str) -> Result<Vec<String>> {
        let found = self
            .listing(&format!("{dir}/"))
            .await
            .with_context(|| format!("cannot list {}/", self.url(dir)))?;
        Ok(found.into_iter().map(|(name, _)| name).collect())
    }
}
