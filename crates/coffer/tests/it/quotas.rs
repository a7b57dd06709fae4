//! Vault's rate limit quotas against the real binary: `sys/quotas/rate-limit/:name` and
//! `sys/quotas/config` (CRUD, list, Vault's validation messages, root token), enforcement per
//! client IP (429, the rate limit headers, an audit line when configured, block_interval,
//! exempt paths, the global quota on the AWS API), and persistence across seal, unseal and
//! restart.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::limits::audited;
use crate::production::{Prod, init, unseal};
use crate::support::*;

/// A Vault client from a chosen local address (quotas count per client IP).
struct Vault {
    http: reqwest::Client,
    endpoint: String,
    token: String,
}

impl Vault {
    fn new(endpoint: &str, token: &str, source: &str) -> Self {
        let local: SocketAddr = format!("{source}:0").parse().unwrap();
        Self {
            http: reqwest::Client::builder().local_address(local.ip()).build().unwrap(),
            endpoint: endpoint.to_owned(),
            token: token.to_owned(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.endpoint))
            .header("x-vault-token", &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    /// Status and JSON body (`Null` for an empty body).
    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let resp = self.call(method, path, body).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn write(&self, path: &str, body: Value) {
        let (status, v) = self.json("POST", path, Some(body)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "write {path}: {v}");
    }
}

fn bad_request(message: &str) -> (StatusCode, Value) {
    (StatusCode::BAD_REQUEST, json!({ "errors": [message] }))
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn quotas_are_created_read_listed_and_deleted_with_vaults_answers() {
    let (_p, c) = start_dev(&[]);
    let v = Vault::new(&c.endpoint, &c.root_token, "127.0.0.1");

    // No quota: Vault's empty list is a 404 with no message, both list forms.
    assert_eq!(
        v.json("LIST", "sys/quotas/rate-limit", None).await,
        (StatusCode::NOT_FOUND, json!({ "errors": [] }))
    );
    assert_eq!(
        v.json("GET", "sys/quotas/rate-limit?list=true", None).await.0,
        StatusCode::NOT_FOUND
    );
    // Root token only.
    let anonymous = Vault::new(&c.endpoint, "", "127.0.0.1");
    let (status, body) = anonymous
        .json("POST", "sys/quotas/rate-limit/global", Some(json!({ "rate": 1 })))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::FORBIDDEN, json!({ "errors": ["permission denied"] }))
    );

    v.write("sys/quotas/rate-limit/global", json!({ "rate": 500 })).await;
    // The CLI's strings: rate, durations and booleans as text.
    v.write(
        "sys/quotas/rate-limit/sys-mount",
        json!({ "path": "sys", "rate": "50.5", "interval": "1m", "block_interval": "300", "inheritable": "true" }),
    )
    .await;
    let (status, read) = v.json("GET", "sys/quotas/rate-limit/sys-mount", None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(
        read["data"],
        json!({
            "name": "sys-mount", "path": "sys/", "type": "rate-limit", "role": "", "rate": 50.5,
            "interval": 60, "block_interval": 300, "inheritable": true,
        })
    );
    assert_eq!(read["lease_id"], "");
    let (_, global) = v.json("GET", "sys/quotas/rate-limit/global", None).await;
    assert_eq!(global["data"]["path"], "");
    assert_eq!(global["data"]["rate"], json!(500));
    assert_eq!(global["data"]["interval"], 1);
    assert_eq!(global["data"]["inheritable"], true);

    let (status, list) = v.json("LIST", "sys/quotas/rate-limit/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"]["keys"], json!(["global", "sys-mount"]));
    let (_, list) = v.json("GET", "sys/quotas/rate-limit?list=true", None).await;
    assert_eq!(list["data"]["keys"], json!(["global", "sys-mount"]));

    // Vault's 400s.
    let q = "sys/quotas/rate-limit/q";
    assert_eq!(
        v.json("POST", q, Some(json!({}))).await,
        bad_request("'rate' is invalid")
    );
    assert_eq!(
        v.json("POST", q, Some(json!({ "rate": -2 }))).await,
        bad_request("'rate' is invalid")
    );
    assert_eq!(
        v.json("POST", q, Some(json!({ "rate": 1, "block_interval": -1 })))
            .await,
        bad_request("'block' is invalid")
    );
    assert_eq!(
        v.json("POST", q, Some(json!({ "rate": 1, "path": "secret" }))).await,
        bad_request("invalid mount path \"secret/\"")
    );
    assert_eq!(
        v.json("POST", q, Some(json!({ "rate": 1, "role": "web" }))).await,
        bad_request(
            "Mount path \"\" is not a valid auth method and therefore unsuitable for use with role-based quotas"
        )
    );
    assert_eq!(
        v.json("POST", q, Some(json!({ "rate": 1, "path": "" }))).await,
        bad_request("quota rule with similar properties exists under the name \"global\"")
    );
    assert_eq!(
        v.json("POST", q, Some(json!({ "rate": 1, "interval": "soon" }))).await,
        bad_request("error converting input soon for field \"interval\": time: invalid duration \"soon\"")
    );
    assert_eq!(
        v.json("POST", q, Some(json!({ "rate": "fast" }))).await,
        bad_request(
            "error converting input fast for field \"rate\": strconv.ParseFloat: parsing \"fast\": invalid syntax"
        )
    );
    assert_eq!(
        v.json("GET", q, None).await,
        (StatusCode::NOT_FOUND, json!({ "errors": [] }))
    );

    // Updating a quota in place.
    v.write("sys/quotas/rate-limit/global", json!({ "rate": 700, "interval": 10 }))
        .await;
    let (_, global) = v.json("GET", "sys/quotas/rate-limit/global", None).await;
    assert_eq!(
        (global["data"]["rate"].clone(), global["data"]["interval"].clone()),
        (json!(700), json!(10))
    );

    // The configuration: Vault's default exempt list until written; a write sets every field.
    let (status, config) = v.json("GET", "sys/quotas/config", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        config["data"],
        json!({
            "enable_rate_limit_audit_logging": false,
            "enable_rate_limit_response_headers": false,
            "rate_limit_exempt_paths": [
                "sys/generate-recovery-token/attempt", "sys/generate-recovery-token/update",
                "sys/generate-root/attempt", "sys/generate-root/update",
                "sys/health", "sys/seal-status", "sys/unseal",
            ],
        })
    );
    v.write(
        "sys/quotas/config",
        json!({ "enable_rate_limit_response_headers": true }),
    )
    .await;
    let (_, config) = v.json("GET", "sys/quotas/config", None).await;
    assert_eq!(config["data"]["enable_rate_limit_response_headers"], true);
    assert_eq!(config["data"]["rate_limit_exempt_paths"], json!([]));

    // Delete (twice: deleting nothing succeeds, as in Vault).
    for _ in 0..2 {
        assert_eq!(
            v.call("DELETE", "sys/quotas/rate-limit/sys-mount", None).await.status(),
            204
        );
    }
    let (_, list) = v.json("LIST", "sys/quotas/rate-limit", None).await;
    assert_eq!(list["data"]["keys"], json!(["global"]));
}

#[tokio::test]
async fn a_quota_refuses_with_429_headers_and_an_audit_line_and_spares_exempt_paths() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let (_p, c) = start_dev(&["--audit-file", log.to_str().unwrap()]);
    let admin = Vault::new(&c.endpoint, &c.root_token, "127.0.0.1");
    let client = Vault::new(&c.endpoint, &c.root_token, "127.0.0.2");

    admin
        .write(
            "sys/quotas/config",
            json!({
                "enable_rate_limit_response_headers": true,
                "enable_rate_limit_audit_logging": true,
                "rate_limit_exempt_paths": ["sys/health", "sys/seal-status"],
            }),
        )
        .await;
    // Two requests an hour on one path.
    admin
        .write(
            "sys/quotas/rate-limit/key-status",
            json!({ "path": "sys/key-status", "rate": 2, "interval": "1h" }),
        )
        .await;
    for remaining in ["1", "0"] {
        let resp = client.call("GET", "sys/key-status", None).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-ratelimit-limit").as_deref(), Some("2"));
        assert_eq!(header(&resp, "x-ratelimit-remaining").as_deref(), Some(remaining));
        assert!(header(&resp, "x-ratelimit-reset").is_some());
        assert_eq!(header(&resp, "retry-after"), None);
    }
    let resp = client.call("GET", "sys/key-status", None).await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = header(&resp, "retry-after").unwrap().parse().unwrap();
    assert!((1700..=1800).contains(&retry), "Retry-After {retry}");
    assert_eq!(header(&resp, "x-ratelimit-remaining").as_deref(), Some("0"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "errors": ["request path \"sys/key-status\": rate limit quota exceeded"] })
    );
    // Counted per client IP: the admin's address has its own bucket.
    assert_eq!(admin.call("GET", "sys/key-status", None).await.status(), 200);
    // Other paths are not under this quota, and exempt paths are never limited.
    assert_eq!(client.call("GET", "sys/leader", None).await.status(), 200);
    let lines = audited(&log, "RateLimitQuotaExceeded");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["requestParameters"]["path"], "sys/key-status");
    assert_eq!(lines[0]["sourceIPAddress"], "127.0.0.2");

    // A global quota of one request an hour: the exempt paths still answer, everything else
    // is refused after the first request.
    admin
        .write("sys/quotas/rate-limit/global", json!({ "rate": 1, "interval": "1h" }))
        .await;
    assert_eq!(client.call("GET", "sys/leader", None).await.status(), 200);
    let resp = client.call("GET", "sys/leader", None).await;
    assert_eq!(resp.status(), 429);
    for _ in 0..5 {
        assert_eq!(client.call("GET", "sys/health", None).await.status(), 200);
        assert_eq!(client.call("GET", "sys/seal-status", None).await.status(), 200);
    }
    // The more specific quota still decides for its path (its bucket is empty already).
    assert_eq!(client.call("GET", "sys/key-status", None).await.status(), 429);

    // The global quota covers the AWS API too, per client IP: ThrottlingException.
    let endpoint = &c.endpoint;
    let signed = |source: &'static str| {
        let (akid, secret) = (c.access_key_id.clone(), c.secret_access_key.clone());
        async move {
            let local: SocketAddr = format!("{source}:0").parse().unwrap();
            let http = reqwest::Client::builder().local_address(local.ip()).build().unwrap();
            let req = Signed {
                service: "secretsmanager",
                body: b"{}",
                time: SystemTime::now(),
                endpoint,
                akid: &akid,
                secret: &secret,
                target: "secretsmanager.ListSecrets",
            };
            signed_post_with(&http, &req).await
        }
    };
    let (status, text) = signed("127.0.0.2").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains(r#""__type":"ThrottlingException""#), "{text}");
    let (status, text) = signed("127.0.0.3").await;
    assert_eq!(status, 200, "{text}");
    let (status, _) = signed("127.0.0.3").await;
    assert_eq!(status, 400);
    assert!(!audited(&log, "ThrottlingException").is_empty());

    // Changes take effect at once: without the global quota, 127.0.0.3 is served again.
    assert_eq!(
        admin
            .call("DELETE", "sys/quotas/rate-limit/global", None)
            .await
            .status(),
        204
    );
    assert_eq!(signed("127.0.0.3").await.0, 200);
    assert_eq!(client.call("GET", "sys/leader", None).await.status(), 200);
}

#[tokio::test]
async fn block_interval_keeps_a_client_out_after_the_bucket_refills() {
    let (_p, c) = start_dev(&[]);
    let admin = Vault::new(&c.endpoint, &c.root_token, "127.0.0.1");
    let client = Vault::new(&c.endpoint, &c.root_token, "127.0.0.2");
    admin
        .write(
            "sys/quotas/rate-limit/blocking",
            json!({ "path": "sys/leader", "rate": 1, "interval": "1s", "block_interval": "3s" }),
        )
        .await;
    assert_eq!(client.call("GET", "sys/leader", None).await.status(), 200);
    assert_eq!(client.call("GET", "sys/leader", None).await.status(), 429);
    // The bucket refills after a second; the block lasts three.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(client.call("GET", "sys/leader", None).await.status(), 429);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(client.call("GET", "sys/leader", None).await.status(), 200);
    // Response headers are off: a refusal carries no rate limit headers.
    let resp = client.call("GET", "sys/leader", None).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), None);
}

#[tokio::test]
async fn quotas_persist_across_seal_unseal_and_restart() {
    let prod = Prod::plaintext();
    let mut p = prod.start();
    let keys = init(&prod, "1", "1");
    unseal(&prod, &keys.keys);
    let admin = Vault::new(&prod.endpoint, &keys.token, "127.0.0.1");
    let client = Vault::new(&prod.endpoint, &keys.token, "127.0.0.2");
    admin
        .write(
            "sys/quotas/rate-limit/leader",
            json!({ "path": "sys/leader", "rate": 1, "interval": "1h" }),
        )
        .await;
    admin
        .write(
            "sys/quotas/config",
            json!({ "enable_rate_limit_response_headers": true }),
        )
        .await;

    // Sealed: no quota is readable (the records are behind the barrier).
    assert_eq!(admin.call("PUT", "sys/seal", None).await.status(), 204);
    assert_eq!(admin.json("GET", "sys/quotas/rate-limit/leader", None).await.0, 503);
    unseal(&prod, &keys.keys);
    let (_, read) = admin.json("GET", "sys/quotas/rate-limit/leader", None).await;
    assert_eq!(read["data"]["path"], "sys/leader");
    assert_eq!(client.call("GET", "sys/leader", None).await.status(), 200);
    let resp = client.call("GET", "sys/leader", None).await;
    assert_eq!(resp.status(), 429);
    assert!(header(&resp, "retry-after").is_some());

    // Restart: loaded again at unseal.
    p.kill();
    drop(p);
    let _p = prod.start();
    unseal(&prod, &keys.keys);
    // New clients: the old ones' pooled connections went with the old process.
    let admin = Vault::new(&prod.endpoint, &keys.token, "127.0.0.1");
    let client = Vault::new(&prod.endpoint, &keys.token, "127.0.0.2");
    let (_, list) = admin.json("LIST", "sys/quotas/rate-limit", None).await;
    assert_eq!(list["data"]["keys"], json!(["leader"]));
    let (_, config) = admin.json("GET", "sys/quotas/config", None).await;
    assert_eq!(config["data"]["enable_rate_limit_response_headers"], true);
    assert_eq!(client.call("GET", "sys/leader", None).await.status(), 200);
    assert_eq!(client.call("GET", "sys/leader", None).await.status(), 429);
}
