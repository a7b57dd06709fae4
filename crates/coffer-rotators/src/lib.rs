//! Interface stub; the implementation lands from the rotators branch.

/// One of the four rotation steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    CreateSecret,
    SetSecret,
    TestSecret,
    FinishSecret,
}

impl Step {
    pub const ALL: [Step; 4] = [
        Step::CreateSecret,
        Step::SetSecret,
        Step::TestSecret,
        Step::FinishSecret,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Step::CreateSecret => "createSecret",
            Step::SetSecret => "setSecret",
            Step::TestSecret => "testSecret",
            Step::FinishSecret => "finishSecret",
        }
    }
    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepEvent {
    pub step: String,
    pub secret_id: String,
    pub client_request_token: String,
    pub rotation_token: String,
}

#[async_trait::async_trait]
pub trait SecretsApi: Send + Sync {
    async fn call(&self, operation: &str, input: serde_json::Value) -> Result<serde_json::Value, ApiError>;
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltIn {
    PostgresSingleUser,
    PostgresAlternatingUsers,
    MysqlSingleUser,
    MysqlAlternatingUsers,
}

impl BuiltIn {
    pub const ALL: [BuiltIn; 4] = [
        BuiltIn::PostgresSingleUser,
        BuiltIn::PostgresAlternatingUsers,
        BuiltIn::MysqlSingleUser,
        BuiltIn::MysqlAlternatingUsers,
    ];
    pub fn function_name(self) -> &'static str {
        match self {
            BuiltIn::PostgresSingleUser => "coffer-postgresql-single-user",
            BuiltIn::PostgresAlternatingUsers => "coffer-postgresql-alternating-users",
            BuiltIn::MysqlSingleUser => "coffer-mysql-single-user",
            BuiltIn::MysqlAlternatingUsers => "coffer-mysql-alternating-users",
        }
    }
    pub fn from_function_name(name: &str) -> Option<BuiltIn> {
        BuiltIn::ALL.into_iter().find(|b| b.function_name() == name)
    }
    pub fn check_secret_shape(self, _secret_string: &str) -> Result<(), String> {
        Ok(())
    }
    pub async fn run_step(self, _api: &dyn SecretsApi, _event: &StepEvent) -> Result<(), StepError> {
        Err(StepError::Failed("not built yet".into()))
    }
}
