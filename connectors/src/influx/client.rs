//! HTTP to InfluxDB: writes through the v1 API (reqwest) or the v2 API (`influxdb2`), and
//! InfluxQL reads over `/query`. One HTTP stack (reqwest 0.11, rustls) for all of it.

use std::{fmt, io::Write, time::Duration};

use flate2::{write::GzEncoder, Compression};
use reqwest::{header, StatusCode, Url};

use super::{
    config::{InfluxApi, InfluxConfig},
    InfluxError,
};

/// A secret read from the environment. Its Debug never shows it.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

fn secret_from_env(var: &str) -> Result<Secret, InfluxError> {
    match std::env::var(var) {
        Ok(v) => Ok(Secret(v)),
        Err(_) => Err(InfluxError::MissingSecret {
            var: var.to_string(),
        }),
    }
}

#[derive(Debug)]
enum Target {
    V1 {
        database: String,
        retention_policy: Option<String>,
        auth: Option<(String, Option<Secret>)>,
    },
    V2 {
        writer: influxdb2::Client,
        org: String,
        bucket: String,
        token: Secret,
        query_database: String,
    },
}

/// What InfluxDB made of one write request.
#[derive(Debug)]
pub(crate) enum Sent {
    Accepted,
    /// 400 / 422: something in the body is bad (a partial write, a type conflict, an
    /// unparsable line): find the bad point(s).
    Rejected {
        status: u16,
        body: String,
    },
    /// 413: split and send the halves.
    TooLarge,
    /// Anything else (unreachable, 5xx, 429, auth, missing database): retry later with
    /// the batch intact.
    Failed(InfluxError),
}

#[derive(Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: Url,
    target: Target,
    gzip_level: u32,
    create_database: bool,
    /// `url` and database or bucket, for logs and the status page; no secrets.
    pub(crate) label: String,
}

impl Client {
    pub(crate) fn new(config: &InfluxConfig) -> Result<Client, InfluxError> {
        let base = Url::parse(&config.url).map_err(|e| InfluxError::Config {
            key: "url".into(),
            reason: e.to_string(),
        })?;
        let builder = || {
            reqwest::Client::builder()
                .timeout(config.request_timeout)
                .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
        };
        let http = builder()
            .build()
            .map_err(|e| InfluxError::Client(e.to_string()))?;
        let gzip_level = config.batch.gzip_level;
        let (target, label, create_database) = match &config.api {
            InfluxApi::V1 {
                database,
                retention_policy,
                username,
                password_env,
                create_database,
            } => {
                let password = password_env.as_deref().map(secret_from_env).transpose()?;
                let auth = username.clone().map(|u| (u, password));
                let label = format!("{} db={database}", config.url);
                (
                    Target::V1 {
                        database: database.clone(),
                        retention_policy: retention_policy.clone(),
                        auth,
                    },
                    label,
                    *create_database,
                )
            }
            InfluxApi::V2 {
                org,
                bucket,
                token_env,
                query_database,
            } => {
                let token = secret_from_env(token_env)?;
                // The crate sends the body as given; this header says it is gzip.
                let mut headers = header::HeaderMap::new();
                if gzip_level > 0 {
                    headers.insert(
                        header::CONTENT_ENCODING,
                        header::HeaderValue::from_static("gzip"),
                    );
                }
                let writer = influxdb2::ClientBuilder::with_builder(
                    builder().default_headers(headers),
                    base.as_str(),
                    org.clone(),
                    token.0.clone(),
                )
                .build()
                .map_err(|e| InfluxError::Client(e.to_string()))?;
                let label = format!("{} org={org} bucket={bucket}", config.url);
                (
                    Target::V2 {
                        writer,
                        org: org.clone(),
                        bucket: bucket.clone(),
                        token,
                        query_database: query_database.clone().unwrap_or_else(|| bucket.clone()),
                    },
                    label,
                    false,
                )
            }
        };
        Ok(Client {
            http,
            base,
            target,
            gzip_level,
            create_database,
            label,
        })
    }

    fn endpoint(&self, name: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(name);
        }
        url
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.target {
            Target::V1 {
                auth: Some((user, password)),
                ..
            } => req.basic_auth(user, password.as_ref().map(|p| &p.0)),
            Target::V1 { auth: None, .. } => req,
            Target::V2 { token, .. } => {
                req.header(header::AUTHORIZATION, format!("Token {}", token.0))
            }
        }
    }

    /// The request body: lines joined by line feeds, gzip-compressed unless level 0.
    pub(crate) fn body<'a>(&self, lines: impl Iterator<Item = &'a str>) -> Vec<u8> {
        let mut raw = Vec::with_capacity(64 * 1024);
        for l in lines {
            raw.extend_from_slice(l.as_bytes());
            raw.push(b'\n');
        }
        if self.gzip_level == 0 {
            return raw;
        }
        let mut gz = GzEncoder::new(
            Vec::with_capacity(raw.len() / 6 + 64),
            Compression::new(self.gzip_level),
        );
        // Writing into a Vec cannot fail.
        match gz.write_all(&raw).and_then(|_| gz.finish()) {
            Ok(compressed) => compressed,
            Err(_) => raw,
        }
    }

    /// Sends one body of line protocol (from [`Client::body`]).
    pub(crate) async fn write(&self, body: Vec<u8>) -> Sent {
        match &self.target {
            Target::V1 {
                database,
                retention_policy,
                ..
            } => {
                let url = self.endpoint("write");
                let mut query = vec![("db", database.as_str()), ("precision", "ns")];
                if let Some(rp) = retention_policy {
                    query.push(("rp", rp.as_str()));
                }
                let mut req = self.authorize(self.http.post(url.clone()).query(&query));
                if self.gzip_level > 0 {
                    req = req.header(header::CONTENT_ENCODING, "gzip");
                }
                match req.body(body).send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let text = resp.text().await.unwrap_or_default();
                        classify(status, text)
                    }
                    Err(e) => Sent::Failed(transport(&url, &e)),
                }
            }
            Target::V2 {
                writer,
                org,
                bucket,
                ..
            } => {
                use influxdb2::{api::write::TimestampPrecision, RequestError};
                let result = writer
                    .write_line_protocol_with_precision(
                        org,
                        bucket,
                        body,
                        TimestampPrecision::Nanoseconds,
                    )
                    .await;
                match result {
                    Ok(()) => Sent::Accepted,
                    Err(RequestError::Http { status, text }) => classify(status, text),
                    Err(RequestError::ReqwestProcessing { source }) => {
                        Sent::Failed(transport(&self.endpoint("api/v2/write"), &source))
                    }
                    Err(other) => Sent::Failed(InfluxError::Transport {
                        url: self.label.clone(),
                        message: other.to_string(),
                    }),
                }
            }
        }
    }

    /// `GET /ping` (1.x, 2.x and 3.x answer it): whether the server is reachable.
    pub(crate) async fn ping(&self) -> bool {
        let req = self.authorize(self.http.get(self.endpoint("ping")));
        matches!(req.send().await, Ok(resp) if resp.status().is_success())
    }

    /// Runs `CREATE DATABASE` when the settings ask for it (v1 only; idempotent).
    pub(crate) async fn ensure_database(&self) -> Result<(), InfluxError> {
        let Target::V1 { database, .. } = &self.target else {
            return Ok(());
        };
        if !self.create_database {
            return Ok(());
        }
        let q = format!("CREATE DATABASE {}", super::query::ident(database));
        let url = self.endpoint("query");
        let resp = self
            .authorize(self.http.post(url.clone()).form(&[("q", q.as_str())]))
            .send()
            .await
            .map_err(|e| transport(&url, &e))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(InfluxError::Status {
                what: "CREATE DATABASE",
                status: status.as_u16(),
                body: text,
            });
        }
        super::query::check_errors(&text)
    }

    /// Runs one InfluxQL statement; returns the JSON answer's text.
    pub(crate) async fn query(&self, influxql: &str) -> Result<String, InfluxError> {
        let url = self.endpoint("query");
        let (db, rp) = match &self.target {
            Target::V1 {
                database,
                retention_policy,
                ..
            } => (database.as_str(), retention_policy.as_deref()),
            Target::V2 { query_database, .. } => (query_database.as_str(), None),
        };
        let mut params = vec![("db", db), ("q", influxql), ("epoch", "ns")];
        if let Some(rp) = rp {
            params.push(("rp", rp));
        }
        let resp = self
            .authorize(self.http.get(url.clone()).query(&params))
            .send()
            .await
            .map_err(|e| transport(&url, &e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| transport(&url, &e))?;
        if !status.is_success() {
            return Err(InfluxError::Status {
                what: "query",
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(text)
    }
}

fn classify(status: StatusCode, body: String) -> Sent {
    match status.as_u16() {
        200..=299 => Sent::Accepted,
        400 | 422 => Sent::Rejected {
            status: status.as_u16(),
            body,
        },
        413 => Sent::TooLarge,
        code => Sent::Failed(InfluxError::Status {
            what: "write",
            status: code,
            body,
        }),
    }
}

/// A transport error without the query string (it can hold a user name) in the URL.
fn transport(url: &Url, e: &reqwest::Error) -> InfluxError {
    let mut shown = url.clone();
    shown.set_query(None);
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    InfluxError::Transport {
        url: shown.to_string(),
        message,
    }
}
