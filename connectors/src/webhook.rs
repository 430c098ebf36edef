//! A sink for notifications: JSON documents POSTed to a web hook (a ticketing system, a
//! chat channel, a CMMS), in order, each retried with capped backoff until the receiver
//! takes it with a 2xx answer or the attempts run out.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::influx::RetryConfig;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("web hook {url}: {attempts} attempts failed, the last with: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        last: String,
    },
    #[error("web hook URL `{0}` is not an http(s) URL")]
    BadUrl(String),
}

/// Where and how persistently notifications are delivered.
#[derive(Debug, Clone)]
pub struct Webhook {
    url: String,
    client: reqwest::Client,
    retry: RetryConfig,
    attempts: u32,
}

impl Webhook {
    pub fn new(url: &str) -> Result<Webhook, WebhookError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(WebhookError::BadUrl(url.into()));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| WebhookError::BadUrl(format!("{url}: {e}")))?;
        Ok(Webhook {
            url: url.into(),
            client,
            retry: RetryConfig {
                first: Duration::from_millis(500),
                max: Duration::from_secs(60),
            },
            attempts: 10,
        })
    }

    /// Retries: first delay, largest delay, and how many attempts in all.
    pub fn with_retry(mut self, retry: RetryConfig, attempts: u32) -> Webhook {
        self.retry = retry;
        self.attempts = attempts.max(1);
        self
    }

    /// Delivers one document; returns how many attempts it took.
    pub async fn deliver(&self, body: &serde_json::Value) -> Result<u32, WebhookError> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let mut delay = self.retry.first;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            let sent = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .body(bytes.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => return Ok(attempt),
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = e.to_string(),
            }
            tracing::warn!(url = %self.url, attempt, error = %last, "web hook delivery failed; retrying");
            if attempt < self.attempts {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(self.retry.max);
            }
        }
        Err(WebhookError::GaveUp {
            url: self.url.clone(),
            attempts: self.attempts,
            last,
        })
    }

    /// Delivers what arrives on the channel, in order, until every sender is dropped.
    pub async fn run(self, mut rx: mpsc::Receiver<serde_json::Value>) {
        while let Some(doc) = rx.recv().await {
            match self.deliver(&doc).await {
                Ok(attempts) => tracing::info!(url = %self.url, attempts, "web hook delivered"),
                Err(e) => tracing::error!(error = %e, "web hook notification dropped"),
            }
        }
    }
}
