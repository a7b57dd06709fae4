//! The rotation event: the four steps and the Lambda event that names one of them
//! (reference/aws-api.md §3.2).

use serde::{Deserialize, Serialize};

/// One of the four rotation steps, in the order Secrets Manager runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    CreateSecret,
    SetSecret,
    TestSecret,
    FinishSecret,
}

impl Step {
    /// The four steps in the order a rotation runs them.
    pub const ALL: [Step; 4] = [
        Step::CreateSecret,
        Step::SetSecret,
        Step::TestSecret,
        Step::FinishSecret,
    ];

    /// The name used in the event's `Step` field: `createSecret`, `setSecret`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Step::CreateSecret => "createSecret",
            Step::SetSecret => "setSecret",
            Step::TestSecret => "testSecret",
            Step::FinishSecret => "finishSecret",
        }
    }

    /// The step named by an event's `Step` field (exact, case-sensitive, as the templates compare it).
    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.as_str() == s)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Lambda event of one step: `{"Step", "SecretId", "ClientRequestToken", "RotationToken"}`.
///
/// `SecretId` is the secret's ARN or name; `ClientRequestToken` is the id of the AWSPENDING
/// version being built; `RotationToken` is passed back to `PutSecretValue` when not empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepEvent {
    pub step: String,
    pub secret_id: String,
    pub client_request_token: String,
    #[serde(default)]
    pub rotation_token: String,
}

impl StepEvent {
    /// The event for `step` of the rotation that fills version `client_request_token`.
    pub fn new(step: Step, secret_id: &str, client_request_token: &str, rotation_token: &str) -> Self {
        Self {
            step: step.as_str().to_string(),
            secret_id: secret_id.to_string(),
            client_request_token: client_request_token.to_string(),
            rotation_token: rotation_token.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn step_names_round_trip() {
        let names: Vec<&str> = Step::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["createSecret", "setSecret", "testSecret", "finishSecret"]);
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert_eq!(Step::parse("CreateSecret"), None);
        assert_eq!(Step::parse(""), None);
    }

    #[test]
    fn event_uses_the_lambda_keys() {
        let e = StepEvent::new(Step::SetSecret, "arn:x", "tok", "rt");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Step": "setSecret", "SecretId": "arn:x", "ClientRequestToken": "tok", "RotationToken": "rt"})
        );
        // Events from older senders have no RotationToken.
        let e: StepEvent =
            serde_json::from_str(r#"{"Step": "testSecret", "SecretId": "s", "ClientRequestToken": "t"}"#).unwrap();
        assert_eq!((e.step.as_str(), e.rotation_token.as_str()), ("testSecret", ""));
    }
}
