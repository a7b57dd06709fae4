//! What the AWS front end records about each request for the audit log: who (as far as the
//! signature got), what, from where, and the outcome. The audit crate redacts every secret
//! value before any device sees the event.

use std::net::SocketAddr;

use coffer_audit::{AuditEvent, IdentityType, UserIdentity};
use coffer_core::{AwsService, PrincipalKind, ResolvedKey};
use http::HeaderMap;
use serde_json::Value;

/// The facts about one request, filled in as it is served. Built with `capture = false` (no
/// audit device), it records nothing, so unaudited servers copy nothing.
pub(crate) struct Record {
    capture: bool,
    target: String,
    service: String,
    operation: String,
    region: String,
    claimed_key: Option<String>,
    identity: Option<UserIdentity>,
    input: Option<Value>,
}

impl Record {
    pub(crate) fn new(target: &str, capture: bool) -> Self {
        let (prefix, operation) = target.rsplit_once('.').unwrap_or((target, ""));
        let service = AwsService::from_target_prefix(prefix)
            .map(|s| s.signing_name().to_string())
            .unwrap_or_else(|| prefix.to_string());
        Self {
            capture,
            target: target.to_string(),
            service,
            operation: operation.to_string(),
            region: String::new(),
            claimed_key: None,
            identity: None,
            input: None,
        }
    }

    /// The access key id the request claims (before the signature is checked).
    /// Parses the request's `Authorization` header (once: authentication takes the result)
    /// and notes the access key, region and service it claims.
    pub(crate) fn note_claimed_key(
        &mut self,
        headers: &HeaderMap,
    ) -> Result<coffer_sigv4::AuthHeader, coffer_sigv4::SigV4Error> {
        let parsed = coffer_sigv4::parse_authorization(headers);
        if let Ok(auth) = &parsed {
            self.claimed_key = Some(auth.credential.access_key_id.clone());
            self.region = auth.credential.region.clone();
            if self.operation.is_empty() {
                self.service = auth.credential.service.clone();
            }
        }
        parsed
    }

    pub(crate) fn authenticated(&mut self, key: &ResolvedKey, region: &str) {
        let p = &key.principal;
        self.region = region.to_string();
        self.identity = Some(UserIdentity {
            identity_type: match p.kind {
                PrincipalKind::Root => IdentityType::Root,
                PrincipalKind::User { .. } => IdentityType::IamUser,
                PrincipalKind::AssumedRole { .. } => IdentityType::AssumedRole,
            },
            principal_id: Some(p.user_id()),
            arn: Some(p.arn.clone()),
            account_id: Some(p.account_id.clone()),
            access_key_id: Some(key.access_key_id.clone()),
            ..UserIdentity::default()
        });
    }

    pub(crate) fn set_service(&mut self, service: &str) {
        self.service = service.to_string();
    }

    pub(crate) fn set_input(&mut self, input: Value) {
        self.input = Some(input);
    }

    pub(crate) fn input(&mut self, service: AwsService, input: &Value) {
        self.service = service.signing_name().to_string();
        if self.capture {
            self.input = Some(input.clone());
        }
    }

    /// The audit event for this request and its outcome.
    pub(crate) fn into_event(
        self,
        request_id: &str,
        peer: SocketAddr,
        headers: &HeaderMap,
        response: Option<Value>,
        error: Option<(&str, &str)>,
    ) -> AuditEvent {
        let identity = self.identity.unwrap_or_else(|| UserIdentity {
            access_key_id: self.claimed_key.clone(),
            ..UserIdentity::default()
        });
        let account = identity.account_id.clone();
        let name = if self.operation.is_empty() {
            self.target.as_str()
        } else {
            self.operation.as_str()
        };
        let user_agent = headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut event = AuditEvent::aws(
            &self.service,
            name,
            identity,
            time::OffsetDateTime::now_utc(),
            request_id,
        )
        .region(self.region)
        .client(peer.ip().to_string(), user_agent);
        if let Some(input) = self.input {
            event = event.request(input);
        }
        if let Some(v) = response {
            if let Some(arn) = resource_arn(&v) {
                event = event.resource(arn, resource_type(&self.service), account.clone());
            }
            event = event.response(v);
        }
        if let Some((code, message)) = error {
            event = event.error(code, message);
        }
        event
    }
}

/// The ARN of the resource a response names, where it names one.
fn resource_arn(v: &Value) -> Option<String> {
    let s = |v: &Value| v.as_str().map(str::to_string);
    v.get("ARN")
        .and_then(s)
        .or_else(|| v.pointer("/KeyMetadata/Arn").and_then(s))
        .or_else(|| v.pointer("/Parameter/ARN").and_then(s))
        .or_else(|| v.get("KeyId").and_then(s).filter(|k| k.starts_with("arn:")))
}

fn resource_type(service: &str) -> &'static str {
    match service {
        "secretsmanager" => "AWS::SecretsManager::Secret",
        "kms" => "AWS::KMS::Key",
        "ssm" => "AWS::SSM::Parameter",
        _ => "",
    }
}
