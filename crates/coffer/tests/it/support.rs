//! Shared helpers: start servers, build SDK clients, sign raw requests.

use std::path::Path;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sdk_secretsmanager as sm;
use coffer_testkit::{CofferProcess, DevCredentials};

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_coffer"))
}

pub fn start_dev(extra: &[&str]) -> (CofferProcess, DevCredentials) {
    CofferProcess::start_dev(bin(), extra).expect("start coffer server --dev")
}

pub fn sm_client(endpoint: &str, akid: &str, secret: &str) -> sm::Client {
    sm_client_region(endpoint, akid, secret, "us-east-1")
}

pub fn sm_client_region(endpoint: &str, akid: &str, secret: &str, region: &str) -> sm::Client {
    let creds = Credentials::new(akid, secret, None, None, "coffer-tests");
    let conf = sm::Config::builder()
        .behavior_version(sm::config::BehaviorVersion::latest())
        .region(sm::config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .retry_config(sm::config::retry::RetryConfig::disabled())
        .build();
    sm::Client::from_conf(conf)
}

pub fn dev_client(c: &DevCredentials) -> sm::Client {
    sm_client(&c.endpoint, &c.access_key_id, &c.secret_access_key)
}

/// The AWS error code of an SDK error (`ResourceNotFoundException`...).
pub fn err_code<E, R>(e: &sm::error::SdkError<E, R>) -> String
where
    E: sm::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match e {
        sm::error::SdkError::ServiceError(se) => se.err().code().unwrap_or("").to_string(),
        other => format!("not a service error: {other:?}"),
    }
}

/// A raw HTTP response.
pub struct Raw {
    pub status: u16,
    pub body: serde_json::Value,
    pub text: String,
}

/// Sends `body` to `POST /` with `X-Amz-Target: target`, SigV4-signed by the real
/// `aws-sigv4` signer with the given credentials and scope.
pub async fn signed_post(
    endpoint: &str,
    akid: &str,
    secret: &str,
    service: &str,
    target: &str,
    body: &[u8],
    time: SystemTime,
) -> Raw {
    let client = reqwest::Client::new();
    let req = Signed {
        endpoint,
        akid,
        secret,
        service,
        target,
        body,
        time,
    };
    let (status, text) = signed_post_with(&client, &req).await;
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Raw { status, body, text }
}

/// Sends a form-encoded Query-protocol request (IAM, STS) to `POST /`, SigV4-signed by the real
/// signer. Returns the status and the XML text.
pub async fn signed_query(endpoint: &str, akid: &str, secret: &str, service: &str, form: &str) -> (u16, String) {
    let req = Signed {
        endpoint,
        akid,
        secret,
        service,
        target: "",
        body: form.as_bytes(),
        time: SystemTime::now(),
    };
    signed_post_with(&reqwest::Client::new(), &req).await
}

/// What [`signed_post_with`] sends: an awsJson call to `target`, or with an empty `target` a
/// form-encoded Query-protocol call.
pub struct Signed<'a> {
    pub endpoint: &'a str,
    pub akid: &'a str,
    pub secret: &'a str,
    pub service: &'a str,
    pub target: &'a str,
    pub body: &'a [u8],
    pub time: SystemTime,
}

/// [`signed_post`] through `client`; returns the status and the body's text.
pub async fn signed_post_with(client: &reqwest::Client, req: &Signed<'_>) -> (u16, String) {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let host = req
        .endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let identity = Credentials::new(req.akid, req.secret, None, None, "t").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(req.service)
        .time(req.time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let mut headers = vec![("host", host)];
    if req.target.is_empty() {
        headers.push(("content-type", "application/x-www-form-urlencoded; charset=utf-8"));
    } else {
        headers.push(("content-type", "application/x-amz-json-1.1"));
        headers.push(("x-amz-target", req.target));
    }
    let signable = SignableRequest::new(
        "POST",
        format!("{}/", req.endpoint),
        headers.iter().copied(),
        SignableBody::Bytes(req.body),
    )
    .unwrap();
    let (instructions, _sig) = sign(signable, &params).unwrap().into_parts();
    let mut http = client.post(format!("{}/", req.endpoint)).body(req.body.to_vec());
    for (k, v) in headers.iter().copied().skip(1).chain(instructions.headers()) {
        http = http.header(k, v);
    }
    let resp = http.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

pub async fn dev_post(c: &DevCredentials, target: &str, body: &str) -> Raw {
    signed_post(
        &c.endpoint,
        &c.access_key_id,
        &c.secret_access_key,
        "secretsmanager",
        target,
        body.as_bytes(),
        SystemTime::now(),
    )
    .await
}

/// An SSM client for the dev server's root credentials.
pub fn ssm_client(c: &DevCredentials) -> aws_sdk_ssm::Client {
    use aws_sdk_ssm as ssm;
    let creds = Credentials::new(&c.access_key_id, &c.secret_access_key, None, None, "coffer-tests");
    let conf = ssm::Config::builder()
        .behavior_version(ssm::config::BehaviorVersion::latest())
        .region(ssm::config::Region::new("us-east-1"))
        .endpoint_url(&c.endpoint)
        .credentials_provider(creds)
        .retry_config(ssm::config::retry::RetryConfig::disabled())
        .build();
    ssm::Client::from_conf(conf)
}

/// A self-signed certificate for `localhost` and `127.0.0.1` and its key, written to
/// `dir/cert.pem` and `dir/key.pem`; with `ca`, the certificate says CA:TRUE (which TLS
/// clients refuse as a server's own certificate).
pub fn self_signed_tls(dir: &Path, ca: bool) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    let cert = params.self_signed(&key).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// A dev server that keeps its data in a file and listens on a fixed port, so a test can kill
/// it and start it again on the same data (dev mode unseals itself at start).
pub struct DevOnFile {
    pub storage: std::path::PathBuf,
    args: Vec<String>,
    listen: String,
}

impl DevOnFile {
    pub fn new(storage: std::path::PathBuf, extra: &[&str]) -> Self {
        let port = coffer_testkit::free_port().unwrap();
        let listen = format!("127.0.0.1:{port}");
        let mut args: Vec<String> = ["server", "--dev", "--listen", listen.as_str(), "--dev-storage"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(storage.to_str().unwrap().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        Self { storage, args, listen }
    }

    /// Starts the server and waits until it serves.
    pub fn start(&self) -> CofferProcess {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut p = CofferProcess::start(bin(), &args, &[]).unwrap();
        p.wait_for_line("get-secret-value --secret-id", std::time::Duration::from_secs(20))
            .unwrap();
        p
    }

    /// The credentials the first start wrote next to the data file.
    pub fn creds(&self) -> DevCredentials {
        let file = format!("{}.dev-credentials.json", self.storage.display());
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let s = |k: &str| v[k].as_str().unwrap().to_string();
        DevCredentials {
            endpoint: format!("http://{}", self.listen),
            account_id: s("account_id"),
            access_key_id: s("access_key_id"),
            secret_access_key: s("secret_access_key"),
            root_token: s("root_token"),
            unseal_key: s("unseal_key"),
        }
    }
}
