//! `coffer operator ...`: talks to a running server's `/v1/sys/*` API, as `vault operator`
//! does, so the same commands work against a local or a remote server.

use std::io::BufRead as _;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::{AccountCommand, ClientArgs, OperatorCommand};

pub async fn run(cmd: OperatorCommand) -> anyhow::Result<u8> {
    match cmd {
        OperatorCommand::Init {
            client,
            shares,
            threshold,
            json,
        } => init(&client, shares, threshold, json).await,
        OperatorCommand::Unseal { client, key, reset } => unseal(&client, key, reset).await,
        OperatorCommand::Seal { client } => {
            let c = Client::new(&client)?;
            c.send(reqwest::Method::PUT, "sys/seal", None, true).await?;
            println!("Coffer is sealed.");
            Ok(0)
        }
        OperatorCommand::Status { client } => {
            let c = Client::new(&client)?;
            let s = c.send(reqwest::Method::GET, "sys/seal-status", None, false).await?;
            print_status(&s);
            Ok(if s.get("sealed").and_then(Value::as_bool) == Some(false) {
                0
            } else {
                2
            })
        }
        OperatorCommand::Rotate { client } => {
            let c = Client::new(&client)?;
            let r = c.send(reqwest::Method::PUT, "sys/rotate", None, true).await?;
            let term = r.get("term").and_then(Value::as_u64).unwrap_or(0);
            println!("Rotated the encryption key: new writes use key term {term}; older data stays readable.");
            Ok(0)
        }
        OperatorCommand::Snapshot(cmd) => crate::snapshot_cmd::run(cmd).await,
        OperatorCommand::Account(AccountCommand::Create { client, json }) => {
            let c = Client::new(&client)?;
            let r = c.send(reqwest::Method::POST, "sys/coffer/accounts", None, true).await?;
            let data = r.get("data").cloned().unwrap_or(Value::Null);
            if json {
                println!("{data}");
            } else {
                let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                println!("Account id:             {}", s("account_id"));
                println!("Root access key id:     {}", s("access_key_id"));
                println!("Root secret access key: {}", s("secret_access_key"));
                println!();
                println!("The secret access key is shown only this once.");
            }
            Ok(0)
        }
    }
}

/// A client of the server's `/v1/` API (the operator and audit commands).
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub(crate) fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let mut b = reqwest::Client::builder();
        if let Some(ca) = args.ca_cert() {
            let pem = std::fs::read(&ca).with_context(|| format!("reading {}", ca.display()))?;
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).context("parsing the CA certificate")?);
        }
        Ok(Self {
            http: b.build()?,
            base: args.address().trim_end_matches('/').to_string(),
            token: args.token(),
        })
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        auth: bool,
    ) -> anyhow::Result<Value> {
        let url = self.url(path);
        let mut req = self.http.request(method, &url);
        if auth {
            req = req.header("X-Vault-Token", self.required_token()?);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| unreachable(&url, e))?;
        json_answer(&url, resp).await
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.base)
    }

    /// A request to `/v1/{path}` that carries the token when there is one.
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match &self.token {
            Some(t) => req.header("X-Vault-Token", t),
            None => req,
        }
    }

    pub(crate) fn required_token(&self) -> anyhow::Result<&str> {
        match &self.token {
            Some(t) => Ok(t),
            None => bail!("this command needs the root token: pass --token or set COFFER_TOKEN"),
        }
    }
}

/// The JSON of a response, or an error with its status and the `{"errors": [...]}` messages.
pub(crate) async fn json_answer(url: &str, resp: reqwest::Response) -> anyhow::Result<Value> {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let v: Value = if text.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(&text).unwrap_or(json!({}))
    };
    if !status.is_success() {
        let msgs = v
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
            .unwrap_or_default();
        bail!("{url}: {status}: {msgs}");
    }
    Ok(v)
}

async fn init(args: &ClientArgs, shares: u8, threshold: u8, as_json: bool) -> anyhow::Result<u8> {
    let c = Client::new(args)?;
    let r = c
        .send(
            reqwest::Method::PUT,
            "sys/init",
            Some(json!({ "secret_shares": shares, "secret_threshold": threshold })),
            false,
        )
        .await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(keys) = r.get("keys_base64").and_then(Value::as_array) {
        for (i, k) in keys.iter().enumerate() {
            println!("Unseal Key {}: {}", i + 1, k.as_str().unwrap_or(""));
        }
    }
    println!();
    println!("Account id:             {}", s("account_id"));
    println!("Root access key id:     {}", s("root_access_key_id"));
    println!("Root secret access key: {}", s("root_secret_access_key"));
    println!("Root token:             {}", s("root_token"));
    println!();
    println!(
        "Coffer is initialized with {shares} key shares and a threshold of {threshold}. These keys and \
         credentials are shown only this once: store each share with a different person. Coffer is \
         sealed; unseal it with `coffer operator unseal` {threshold} times, each time with a different share."
    );
    Ok(0)
}

async fn unseal(args: &ClientArgs, key: Option<String>, reset: bool) -> anyhow::Result<u8> {
    let c = Client::new(args)?;
    let body = if reset {
        json!({ "reset": true })
    } else {
        let key = match key {
            Some(k) => k,
            None => {
                eprint!("Unseal key share: ");
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                line.trim().to_string()
            }
        };
        if key.is_empty() {
            bail!("no unseal key given");
        }
        json!({ "key": key })
    };
    let s = c.send(reqwest::Method::PUT, "sys/unseal", Some(body), false).await?;
    print_status(&s);
    Ok(if s.get("sealed").and_then(Value::as_bool) == Some(false) {
        0
    } else {
        2
    })
}

fn print_status(s: &Value) {
    let b = |k: &str| s.get(k).and_then(Value::as_bool).unwrap_or(false);
    let n = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
    println!("Initialized:  {}", b("initialized"));
    println!("Sealed:       {}", b("sealed"));
    println!("Shares:       {}", n("n"));
    println!("Threshold:    {}", n("t"));
    if b("sealed") {
        println!("Progress:     {}/{}", n("progress"), n("t"));
    }
}

/// Why `url` could not be reached, in words an operator can act on. A self-signed CA
/// certificate used as the server's own certificate is refused by rustls (`CaUsedAsEndEntity`),
/// whose message alone does not say what to do.
pub(crate) fn unreachable(url: &str, e: reqwest::Error) -> anyhow::Error {
    let debug = format!("{e:?}");
    let chain = format!("{:#}", anyhow::Error::new(e));
    if debug.contains("CaUsedAsEndEntity") || chain.contains("CaUsedAsEndEntity") {
        anyhow::anyhow!(
            "cannot reach {url}: the server presents a CA certificate (basicConstraints CA:TRUE) as its own \
             certificate, which TLS clients such as rustls refuse. Issue the server a leaf certificate signed \
             by that CA and trust the CA (--ca-cert / COFFER_CACERT): see \"A test CA and server certificate\" \
             in the README"
        )
    } else {
        anyhow::anyhow!("cannot reach {url}: {chain}")
    }
}
