//! Response rendering: a small builder that omits members without a value, timestamps as
//! epoch seconds (JSON numbers), and the DescribeSecret / ListSecrets entry shapes (§2.4).

use serde_json::{Map, Value};

use crate::secrets::model::{DEFAULT_KMS_ALIAS, RotationRules, SecretRecord};

/// A JSON object under construction.
#[derive(Default)]
pub(crate) struct Out(Map<String, Value>);

/// Unix milliseconds as fractional epoch seconds.
pub(crate) fn ts(ms: i64) -> Value {
    Value::from(ms as f64 / 1000.0)
}

impl Out {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn s(mut self, k: &str, v: impl Into<String>) -> Self {
        self.0.insert(k.to_string(), Value::String(v.into()));
        self
    }

    pub(crate) fn opt_s(self, k: &str, v: Option<&str>) -> Self {
        match v {
            Some(v) => self.s(k, v),
            None => self,
        }
    }

    pub(crate) fn ts(mut self, k: &str, ms: i64) -> Self {
        self.0.insert(k.to_string(), ts(ms));
        self
    }

    pub(crate) fn opt_ts(self, k: &str, ms: Option<i64>) -> Self {
        match ms {
            Some(ms) => self.ts(k, ms),
            None => self,
        }
    }

    pub(crate) fn v(mut self, k: &str, v: Value) -> Self {
        self.0.insert(k.to_string(), v);
        self
    }

    pub(crate) fn opt_v(self, k: &str, v: Option<Value>) -> Self {
        match v {
            Some(v) => self.v(k, v),
            None => self,
        }
    }

    pub(crate) fn build(self) -> Value {
        Value::Object(self.0)
    }
}

pub(crate) fn string_list(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

pub(crate) fn rotation_rules(r: &RotationRules) -> Value {
    let mut o = Out::new()
        .opt_s("Duration", r.duration.as_deref())
        .opt_s("ScheduleExpression", r.schedule_expression.as_deref());
    if let Some(d) = r.automatically_after_days {
        o = o.v("AutomaticallyAfterDays", Value::from(d));
    }
    o.build()
}

/// `{version id: [labels]}` for the versions that carry labels.
fn versions_to_stages(rec: &SecretRecord) -> Option<Value> {
    let m: Map<String, Value> = rec
        .versions
        .iter()
        .filter(|(_, v)| !v.stages.is_empty())
        .map(|(id, v)| (id.clone(), string_list(&v.stages)))
        .collect();
    if m.is_empty() { None } else { Some(Value::Object(m)) }
}

/// The KmsKeyId to report: omitted for the default key.
pub(crate) fn reported_kms_key(k: Option<&str>) -> Option<&str> {
    k.filter(|k| !k.is_empty() && *k != DEFAULT_KMS_ALIAS)
}

fn replication_status(rec: &SecretRecord) -> Option<Value> {
    if rec.replicas.is_empty() {
        return None;
    }
    Some(Value::Array(
        rec.replicas
            .iter()
            .map(|r| {
                Out::new()
                    .s("Region", r.region.clone())
                    .opt_s("KmsKeyId", r.kms_key_id.as_deref())
                    .s("Status", r.status.clone())
                    .opt_s("StatusMessage", r.status_message.as_deref())
                    .build()
            })
            .collect(),
    ))
}

pub(crate) fn replication_status_list(rec: &SecretRecord) -> Value {
    replication_status(rec).unwrap_or_else(|| Value::Array(Vec::new()))
}

/// DescribeSecret's response (`list_entry = false`) or a ListSecrets `SecretListEntry`.
pub(crate) fn describe(rec: &SecretRecord, list_entry: bool) -> Value {
    let mut o = Out::new()
        .s("ARN", rec.arn.clone())
        .s("Name", rec.name.clone())
        .opt_s("Type", rec.secret_type.as_deref())
        .opt_s("Description", rec.description.as_deref())
        .opt_s("KmsKeyId", reported_kms_key(rec.kms_key_id.as_deref()));
    if let Some(rot) = &rec.rotation {
        o = o
            .v("RotationEnabled", Value::Bool(rot.enabled))
            .opt_s("RotationLambdaARN", rot.lambda_arn.as_deref())
            .opt_v("RotationRules", rot.rules.as_ref().map(rotation_rules))
            .opt_ts("LastRotatedDate", rot.last_rotated_ms);
    }
    o = o
        .ts("LastChangedDate", rec.changed_ms)
        .opt_ts("LastAccessedDate", rec.accessed_day_ms)
        .opt_ts("DeletedDate", rec.deleted_ms)
        .opt_ts("NextRotationDate", crate::secrets::schedule::next_rotation_ms(rec))
        .opt_v(
            "Tags",
            rec.tags
                .as_ref()
                .map(|t| serde_json::to_value(t).unwrap_or(Value::Null)),
        )
        .opt_v(
            if list_entry {
                "SecretVersionsToStages"
            } else {
                "VersionIdsToStages"
            },
            versions_to_stages(rec),
        )
        .opt_s("OwningService", rec.owning_service())
        .ts("CreatedDate", rec.created_ms)
        .opt_s("PrimaryRegion", rec.reported_primary_region());
    if !list_entry {
        o = o.opt_v("ReplicationStatus", replication_status(rec));
    }
    o.build()
}
