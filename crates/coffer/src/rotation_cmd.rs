//! `coffer function ...` and `coffer secrets rotation-status|get`: the rotation API
//! (`X-Amz-Target: CofferRotation.*`) and Secrets Manager reads from the command line, signed
//! with SigV4 using the standard AWS environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`), so the caller's IAM policies
//! apply as to any request.

use std::time::SystemTime;

use anyhow::{Context, bail};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::{Value, json};

use crate::cli::{AwsClientArgs, FunctionCommand, SecretsCommand};

/// One signed `CofferRotation.<operation>` call; the JSON answer, or the AWS error as an error.
async fn call(client: &AwsClientArgs, operation: &str, input: Value) -> anyhow::Result<Value> {
    aws_call(client, "lambda", &format!("CofferRotation.{operation}"), input).await
}

/// One signed awsJson call with `X-Amz-Target: target`, in the credential scope of service
/// `signing_name`; the JSON answer, or the AWS error (`code: message`) as an error.
async fn aws_call(client: &AwsClientArgs, signing_name: &str, target: &str, input: Value) -> anyhow::Result<Value> {
    let akid = std::env::var("AWS_ACCESS_KEY_ID").context("AWS_ACCESS_KEY_ID is not set")?;
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").context("AWS_SECRET_ACCESS_KEY is not set")?;
    let token = std::env::var("AWS_SESSION_TOKEN").ok().filter(|t| !t.is_empty());
    let endpoint = client.endpoint_url.trim_end_matches('/').to_string();
    let url = reqwest::Url::parse(&endpoint).with_context(|| format!("{endpoint} is not a URL"))?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => bail!("{endpoint} has no host"),
    };
    let region = client
        .region
        .clone()
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".to_string());
    let body = serde_json::to_vec(&input)?;
    let identity = Credentials::new(akid, secret, token.clone(), None, "environment").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name(signing_name)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .context("building the signing parameters")?
        .into();
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("host", host.as_str()),
        ("x-amz-target", target),
    ];
    let signable = SignableRequest::new(
        "POST",
        format!("{endpoint}/"),
        headers.iter().copied(),
        SignableBody::Bytes(&body),
    )
    .context("signing the request")?;
    let (instructions, _) = sign(signable, &params).context("signing the request")?.into_parts();
    let mut builder = reqwest::Client::builder();
    if let Some(ca) = &client.ca_cert {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    let mut req = builder
        .build()?
        .post(format!("{endpoint}/"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", target)
        .body(body);
    for (k, v) in instructions.headers() {
        req = req.header(k, v);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| crate::operator::unreachable(&endpoint, e))?;
    let status = resp.status();
    let answer: Value = serde_json::from_str(&resp.text().await?).unwrap_or(Value::Null);
    if !status.is_success() {
        let code = answer.get("__type").and_then(Value::as_str).unwrap_or("error");
        let message = answer
            .get("message")
            .or_else(|| answer.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or("");
        bail!("{code}: {message}");
    }
    Ok(answer)
}

fn print(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn run_function(cmd: FunctionCommand) -> anyhow::Result<u8> {
    match cmd {
        FunctionCommand::Create {
            client,
            name,
            url,
            command,
            args,
            timeout,
            description,
        } => {
            let mut input = json!({ "FunctionName": name });
            match (url, command) {
                (Some(url), None) => input["Http"] = json!({ "Url": url, "TimeoutSeconds": timeout }),
                (None, Some(path)) => {
                    input["Command"] = json!({ "Path": path, "Args": args, "TimeoutSeconds": timeout });
                }
                _ => bail!("give exactly one of --url and --command"),
            }
            if let Some(d) = description {
                input["Description"] = json!(d);
            }
            let out = call(&client, "CreateFunction", input).await?;
            print(&out)?;
            if out.get("SigningSecret").is_some() {
                eprintln!("Keep SigningSecret: the receiver checks X-Coffer-Signature with it. It is not shown again.");
            }
        }
        FunctionCommand::Get { client, name } => {
            print(&call(&client, "GetFunction", json!({ "FunctionName": name })).await?)?
        }
        FunctionCommand::List { client } => print(&call(&client, "ListFunctions", json!({})).await?)?,
        FunctionCommand::Delete { client, name } => {
            call(&client, "DeleteFunction", json!({ "FunctionName": name })).await?;
        }
    }
    Ok(0)
}

pub async fn run_secrets(cmd: SecretsCommand) -> anyhow::Result<u8> {
    match cmd {
        SecretsCommand::RotationStatus { client, secret_id } => {
            print(&call(&client, "GetRotationStatus", json!({ "SecretId": secret_id })).await?)?;
        }
        SecretsCommand::Get {
            client,
            secret_id,
            version_stage,
            version_id,
            json_key,
        } => {
            let mut input = json!({ "SecretId": secret_id });
            if let Some(stage) = version_stage {
                input["VersionStage"] = json!(stage);
            }
            if let Some(id) = version_id {
                input["VersionId"] = json!(id);
            }
            let out = aws_call(&client, "secretsmanager", "secretsmanager.GetSecretValue", input).await?;
            let value = secret_value(out, json_key.as_deref())?;
            write_value(value.expose())?;
        }
    }
    Ok(0)
}

/// The bytes `coffer secrets get` prints: the SecretString, one key of it, or the decoded
/// SecretBinary. The answer is consumed so no other copy of the value outlives this.
fn secret_value(mut out: Value, json_key: Option<&str>) -> anyhow::Result<coffer_crypto::SecretBytes> {
    use base64::Engine as _;
    use coffer_crypto::SecretBytes;
    if let Some(Value::String(s)) = out.get_mut("SecretString").map(Value::take) {
        let s = coffer_crypto::SecretString::new(s);
        let Some(key) = json_key else {
            return Ok(SecretBytes::from_slice(s.expose().as_bytes()));
        };
        let mut doc: Value = serde_json::from_str(s.expose())
            .map_err(|_| anyhow::anyhow!("--json-key: the secret's value is not a JSON object"))?;
        return match doc.get_mut(key).map(Value::take) {
            Some(Value::String(v)) => Ok(SecretBytes::new(v.into_bytes())),
            Some(other) => Ok(SecretBytes::new(other.to_string().into_bytes())),
            None => bail!("--json-key: the secret has no key {key:?}"),
        };
    }
    if json_key.is_some() {
        bail!("--json-key: the secret has a SecretBinary, not a JSON SecretString");
    }
    let b64 = out
        .get("SecretBinary")
        .and_then(Value::as_str)
        .context("the answer has neither SecretString nor SecretBinary")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .context("SecretBinary is not base64")?;
    Ok(SecretBytes::new(bytes))
}

/// Writes the value to stdout as it is; a terminal also gets a newline after it.
fn write_value(value: &[u8]) -> anyhow::Result<()> {
    use std::io::{IsTerminal as _, Write as _};
    let mut out = std::io::stdout().lock();
    out.write_all(value)?;
    if out.is_terminal() {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
