//! What the benchmark binaries share: an HTTP/1 client for AWS JSON and Query calls signed
//! with SigV4 by the real `aws-sigv4` signer (so every request the server sees is verified
//! exactly as a real client's would be) and for Vault calls carrying `X-Vault-Token`.

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
    /// The token Vault calls carry.
    pub vault_token: String,
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
            vault_token: String::new(),
        })
    }

    /// The same endpoint, with the token Vault calls carry.
    pub fn with_vault_token(mut self, token: &str) -> Self {
        self.vault_token = token.to_string();
        self
    }
}

/// How a call authenticates.
#[derive(Clone, Copy)]
pub enum Auth {
    /// SigV4 with this signing name (`secretsmanager`, `ssm`, `kms`, `iam`).
    SigV4(&'static str),
    /// `X-Vault-Token` with the endpoint's token.
    VaultToken,
}

/// One HTTP call: what it is, before it is signed.
pub struct Call {
    pub method: &'static str,
    /// Path and query, e.g. `/` or `/v1/secret/data/app`.
    pub path: String,
    pub auth: Auth,
    /// Headers beside `host` and the authentication ones (content type, `x-amz-target`).
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
    /// A short name for error messages (`secretsmanager.GetSecretValue`, `GET /v1/...`).
    pub label: String,
}

impl Call {
    /// An AWS JSON call: `target` is the `X-Amz-Target` (`secretsmanager.GetSecretValue`,
    /// `AmazonSSM.GetParameter`, `TrentService.Encrypt`).
    pub fn aws_json(target: &'static str, body: &serde_json::Value) -> Self {
        let service = match target.split('.').next().unwrap_or_default() {
            "AmazonSSM" => "ssm",
            "TrentService" => "kms",
            _ => "secretsmanager",
        };
        Self {
            method: "POST",
            path: "/".to_string(),
            auth: Auth::SigV4(service),
            headers: vec![
                ("content-type", "application/x-amz-json-1.1".to_string()),
                ("x-amz-target", target.to_string()),
            ],
            body: Bytes::from(body.to_string()),
            label: target.to_string(),
        }
    }

    /// An AWS Query call (IAM, STS): `Action`, `Version` and the parameters, form-encoded.
    pub fn aws_query(service: &'static str, version: &str, action: &str, params: &[(&str, &str)]) -> Self {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action).append_pair("Version", version);
        for (k, v) in params {
            form.append_pair(k, v);
        }
        Self {
            method: "POST",
            path: "/".to_string(),
            auth: Auth::SigV4(service),
            headers: vec![(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            )],
            body: Bytes::from(form.finish()),
            label: format!("{service}.{action}"),
        }
    }

    /// A Vault call with `X-Vault-Token`, with a JSON body when there is one.
    pub fn vault(method: &'static str, path: &str, body: Option<&serde_json::Value>) -> Self {
        let (headers, body) = match body {
            Some(b) => (
                vec![("content-type", "application/json".to_string())],
                Bytes::from(b.to_string()),
            ),
            None => (Vec::new(), Bytes::new()),
        };
        Self {
            method,
            path: path.to_string(),
            auth: Auth::VaultToken,
            headers,
            body,
            label: format!("{method} {path}"),
        }
    }
}

/// A request ready to send: method, path, headers and body (a SigV4 signature stays valid
/// for five minutes).
pub struct Signed {
    method: &'static str,
    path: String,
    body: Bytes,
    headers: Vec<(String, String)>,
}

impl Signed {
    /// The body, as signed.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The headers, as the server receives them.
    pub fn header_map(&self) -> anyhow::Result<http::HeaderMap> {
        let mut map = http::HeaderMap::new();
        for (k, v) in &self.headers {
            map.append(
                http::HeaderName::try_from(k.as_str())?,
                http::HeaderValue::try_from(v.as_str())?,
            );
        }
        Ok(map)
    }
}

pub fn sign_call(ep: &Endpoint, call: &Call) -> anyhow::Result<Signed> {
    let mut headers: Vec<(String, String)> = call.headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    headers.push(("host".to_string(), ep.host.clone()));
    match call.auth {
        Auth::VaultToken => headers.push(("x-vault-token".to_string(), ep.vault_token.clone())),
        Auth::SigV4(service) => {
            let identity = Credentials::new(&ep.access_key, &ep.secret_key, None, None, "coffer-bench").into();
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region(&ep.region)
                .name(service)
                .time(SystemTime::now())
                .settings(SigningSettings::default())
                .build()?
                .into();
            let signable = SignableRequest::new(
                call.method,
                format!("{}{}", ep.url, call.path),
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                SignableBody::Bytes(&call.body),
            )?;
            let (instructions, _) = sign(signable, &params)?.into_parts();
            let signed: Vec<(String, String)> = instructions
                .headers()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            headers.extend(signed);
        }
    }
    Ok(Signed {
        method: call.method,
        path: call.path.clone(),
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
    let mut b = http::Request::builder().method(s.method).uri(s.path.as_str());
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

/// The text of the first `<tag>...</tag>` in an XML answer (IAM's CreateAccessKey, say).
pub fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + len])
}
