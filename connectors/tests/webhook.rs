//! The web hook sink against a real HTTP receiver on loopback that fails at first.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use pharmatwin_connectors::{influx::RetryConfig, Webhook};

/// A receiver answering 503 to the first `fail` requests, then 204; keeps the bodies.
fn receiver(fail: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let status = if n < fail {
                "503 Service Unavailable"
            } else {
                seen.lock().unwrap().push(String::from_utf8(body).unwrap());
                "204 No Content"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

fn fast() -> RetryConfig {
    RetryConfig {
        first: Duration::from_millis(20),
        max: Duration::from_millis(100),
    }
}

#[tokio::test]
async fn a_notification_refused_at_first_is_retried_until_delivered_whole() {
    let (url, got) = receiver(2);
    let hook = Webhook::new(&url).unwrap().with_retry(fast(), 5);
    let doc = serde_json::json!({"event": "raised", "alert": {"id": 7, "equipment": "press-01"}});
    let attempts = hook.deliver(&doc).await.unwrap();
    assert_eq!(attempts, 3);
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1);
    let back: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(back, doc);
}

#[tokio::test]
async fn a_receiver_that_never_answers_well_is_reported_after_the_last_attempt() {
    let (url, got) = receiver(usize::MAX);
    let hook = Webhook::new(&url).unwrap().with_retry(fast(), 3);
    let e = hook.deliver(&serde_json::json!({})).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("3 attempts") && msg.contains("503"), "{msg}");
    assert!(got.lock().unwrap().is_empty());
}

#[test]
fn a_url_that_is_not_http_is_refused() {
    let e = Webhook::new("ftp://example/hook").unwrap_err();
    assert!(e.to_string().contains("ftp://example/hook"));
}
