//! What the benchmark binaries share: an HTTP/1 client for AWS JSON calls signed with SigV4 by
//! the real `aws-sigv4` signer, so every request the server sees is verified exactly as a real
//! client's would be.

use std::time::SystemTime;

use anyhow::Context;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// Where to send requests and as whom.
#[derive(Clone)]
pub struct Endpoint {
    /// `http://host:port`.
    pub url: String,
    /// `host:port`, for connecting and the `Host` header.
    pub host: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl Endpoint {
    pub fn new(url: &str, access_key: &str, secret_key: &str, region: &str) -> anyhow::Result<Self> {
        let host = url
            .strip_prefix("http://")
            .context("only http:// endpoints are supported")?
            .trim_end_matches('/')
            .to_string();
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            host,
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            region: region.to_string(),
        })
    }
}

/// One AWS JSON call: `X-Amz-Target` and body.
pub struct Call {
    pub target: &'static str,
    pub body: Bytes,
}

/// A request ready to send: body and the SigV4 headers (valid for five minutes).
pub struct Signed {
    body: Bytes,
    headers: Vec<(String, String)>,
}

pub fn sign_call(ep: &Endpoint, call: &Call) -> anyhow::Result<Signed> {
    let service = call.target.split('.').next().unwrap_or_default();
    let identity = Credentials::new(&ep.access_key, &ep.secret_key, None, None, "coffer-bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&ep.region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let base = [
        ("content-type", "application/x-amz-json-1.1"),
        ("host", ep.host.as_str()),
        ("x-amz-target", call.target),
    ];
    let signable = SignableRequest::new(
        "POST",
        format!("{}/", ep.url),
        base.iter().copied(),
        SignableBody::Bytes(&call.body),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    let mut headers: Vec<(String, String)> = base.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    headers.extend(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())));
    Ok(Signed {
        body: call.body.clone(),
        headers,
    })
}

pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

pub async fn connect(addr: &str) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request. A server that closes the connection after each answer (moto's does)
/// costs a reconnect, which is timed like any other part of the request, not an error.
pub async fn send(sender: &mut Sender, addr: &str, s: &Signed) -> anyhow::Result<(u16, Bytes)> {
    let mut b = http::Request::builder().method("POST").uri("/");
    for (k, v) in &s.headers {
        b = b.header(k, v);
    }
    if sender.is_closed() || sender.ready().await.is_err() {
        *sender = connect(addr).await?;
        sender.ready().await?;
    }
    let resp = sender.send_request(b.body(Full::new(s.body.clone()))?).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Signs and sends one call on a fresh connection.
pub async fn call_once(ep: &Endpoint, call: &Call) -> anyhow::Result<(u16, Bytes)> {
    let mut sender = connect(&ep.host).await?;
    send(&mut sender, &ep.host, &sign_call(ep, call)?).await
}
