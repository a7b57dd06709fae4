//! PutParameter, GetParameter(s), DeleteParameter(s), GetParameterHistory, labels and tags.

use coffer_crypto::SecretBytes;
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use serde_json::{Value, json};

use crate::SsmEngine;
use crate::crypto;
use crate::input::{self, Input, check_enum, check_len, required, validation};
use crate::model::{
    ADVANCED, DEFAULT_KEY, INTELLIGENT_TIERING, ParameterRecord, SECURE_STRING, STANDARD, TIERS, TYPES, Tag,
    VersionRecord,
};
use crate::names::{self, NameRef, Selector};
use crate::policies;
use crate::render;

/// Versions AWS retains per parameter.
pub(crate) const VERSION_LIMIT: usize = 100;
const LABELS_PER_VERSION: usize = 10;
const TAGS_PER_RESOURCE: usize = 50;
const STANDARD_MAX_BYTES: usize = 4096;
const ADVANCED_MAX_BYTES: usize = 8192;
const STANDARD_PER_REGION: usize = 10_000;
const ADVANCED_PER_REGION: usize = 100_000;
const DATA_TYPES: &[&str] = &["text", "aws:ec2:image", "aws:ssm:integration"];

pub(crate) fn not_found(name: &str) -> AwsError {
    AwsError::new(AwsErrorCode::ParameterNotFound, format!("Parameter {name} not found."))
}

pub(crate) fn version_not_found(name: &str, version: i64) -> AwsError {
    AwsError::new(
        AwsErrorCode::ParameterVersionNotFound,
        format!("Systems Manager could not find version {version} of {name}. Verify the version and try again."),
    )
}

fn now_secs(ctx: &RequestContext) -> f64 {
    let ms = ctx.now.unix_timestamp_nanos() / 1_000_000;
    // Millisecond precision, as AWS reports timestamps.
    i64::try_from(ms).unwrap_or(0) as f64 / 1000.0
}

/// Compiles an `AllowedPattern` so that it must match the whole value.
fn compile_pattern(p: &str) -> Result<regex::Regex, AwsError> {
    regex::Regex::new(&format!("^(?:{p})$")).map_err(|_| {
        AwsError::new(
            AwsErrorCode::InvalidAllowedPatternException,
            "The request does not meet the regular expression requirement. The allowed pattern is not a valid regular expression.",
        )
    })
}

/// Whether a label is acceptable (invalid ones are reported in `InvalidLabels`).
fn valid_label(l: &str) -> bool {
    let lower = l.to_ascii_lowercase();
    !l.is_empty()
        && l.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !l.starts_with(|c: char| c.is_ascii_digit())
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
}

/// What a reference of GetParameter(s) resolved to.
pub(crate) enum Lookup {
    Found(Box<(ParameterRecord, VersionRecord, NameRef)>),
    NotFound,
    VersionNotFound(String, i64),
}

impl SsmEngine {
    /// The `Value` of one version: plaintext, or for SecureString the ciphertext unless
    /// `decrypt`.
    pub(crate) async fn value_of(
        &self,
        ctx: &RequestContext,
        rec: &ParameterRecord,
        v: &VersionRecord,
        decrypt: bool,
    ) -> Result<String, AwsError> {
        let stored = self.load_value(rec, v.version).await?;
        if v.param_type != SECURE_STRING {
            return String::from_utf8(stored.expose().to_vec())
                .map_err(|_| AwsError::internal("stored value is not UTF-8"));
        }
        if !decrypt {
            return Ok(crypto::ciphertext_value(&stored));
        }
        let arn = names::arn_in(&rec.account, &rec.region, &rec.name);
        let plain = crypto::open(self.keys.as_ref(), ctx, &arn, &stored).await?;
        Ok(plain.expose().to_string())
    }

    pub(crate) async fn lookup(&self, ctx: &RequestContext, raw: &str) -> Result<Lookup, AwsError> {
        let Some(r) = names::parse_ref(ctx, raw) else {
            return Ok(Lookup::NotFound);
        };
        let Some(rec) = self.find(ctx, &r.name).await? else {
            return Ok(Lookup::NotFound);
        };
        let v = match &r.selector {
            Selector::Latest => Some(rec.latest()?.clone()),
            Selector::Version(n) => match rec.version(*n) {
                Some(v) => Some(v.clone()),
                None => return Ok(Lookup::VersionNotFound(r.name.clone(), *n)),
            },
            Selector::Label(l) => rec.labelled(l).cloned(),
        };
        Ok(match v {
            Some(v) => Lookup::Found(Box::new((rec, v, r))),
            None => Lookup::NotFound,
        })
    }

    /// Renders a found parameter as GetParameter returns it.
    async fn render_found(
        &self,
        ctx: &RequestContext,
        raw: &str,
        rec: &ParameterRecord,
        v: &VersionRecord,
        r: &NameRef,
        decrypt: bool,
    ) -> Result<Value, AwsError> {
        let value = self.value_of(ctx, rec, v, decrypt).await?;
        // The name as requested (AWS echoes `/x` for a parameter created as `x`); ARNs give
        // the stored name.
        let shown = if raw.trim().starts_with("arn:") {
            rec.name.clone()
        } else {
            r.name.clone()
        };
        let arn = names::arn_in(&rec.account, &rec.region, &rec.name);
        Ok(render::parameter(&shown, &arn, v, value, r.selector.render()))
    }

    pub(crate) async fn put_parameter(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let name = required(input.string("Name")?, "Name")?.trim().to_string();
        let value = required(input.secret_string("Value")?, "Value")?;
        let param_type = input.string("Type")?;
        if let Some(t) = &param_type {
            check_enum(t, TYPES, "Type")?;
        }
        let description = input.string("Description")?;
        if let Some(d) = &description {
            check_len(d.chars().count(), 0, 1024, "Description")?;
        }
        let key_id = input.string("KeyId")?;
        if let Some(k) = &key_id {
            check_len(k.chars().count(), 1, 256, "KeyId")?;
            if !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '_' | '-'))
            {
                return Err(validation(
                    "Value at 'keyId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([a-zA-Z0-9:/_-]+)$",
                ));
            }
        }
        let overwrite = input.bool("Overwrite")?.unwrap_or(false);
        let allowed_pattern = input.string("AllowedPattern")?;
        if let Some(p) = &allowed_pattern {
            check_len(p.chars().count(), 0, 1024, "AllowedPattern")?;
        }
        let tags = input::tags(input, "Tags")?;
        let tier = input.string("Tier")?;
        if let Some(t) = &tier {
            check_enum(t, TIERS, "Tier")?;
        }
        let policies_text = input.string("Policies")?;
        let data_type = input.string("DataType")?;
        if let Some(d) = &data_type {
            check_len(d.chars().count(), 0, 128, "DataType")?;
            if !DATA_TYPES.contains(&d.as_str()) {
                return Err(AwsError::validation(format!(
                    "The following data type is not supported: {d} (Data type names are all lowercase.)"
                )));
            }
        }
        if value.is_empty() {
            return Err(validation(
                "Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1.",
            ));
        }
        names::validate_new_name(ctx, &name)?;
        if tags.is_some() && overwrite {
            return Err(AwsError::validation(
                "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
            ));
        }
        if let Some(t) = &tags
            && t.len() > TAGS_PER_RESOURCE
        {
            return Err(AwsError::new(AwsErrorCode::TooManyTagsError, ""));
        }

        let _guard = self.lock(ctx, &name).await;
        let existing = self.load(&ctx.account_id, &ctx.region, &name).await?;
        let prev = match &existing {
            Some(_) if !overwrite => {
                return Err(AwsError::new(
                    AwsErrorCode::ParameterAlreadyExists,
                    "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
                ));
            }
            Some(rec) => Some(rec.latest()?.clone()),
            None => None,
        };
        let param_type = match (&param_type, &prev) {
            (Some(t), Some(p)) if *t != p.param_type => {
                return Err(AwsError::new(
                    AwsErrorCode::HierarchyTypeMismatchException,
                    "Parameter Store can't change the type of an existing parameter. For example, you can't change a String parameter to a SecureString parameter. To change the type, delete the parameter and create a new one.",
                ));
            }
            (Some(t), _) => t.clone(),
            (None, Some(p)) => p.param_type.clone(),
            (None, None) => {
                return Err(AwsError::validation(
                    "A parameter type is required when you create a parameter.",
                ));
            }
        };
        let description = description.or_else(|| prev.as_ref().and_then(|p| p.description.clone()));
        let allowed_pattern = allowed_pattern.or_else(|| prev.as_ref().and_then(|p| p.allowed_pattern.clone()));
        let data_type = data_type
            .or_else(|| prev.as_ref().map(|p| p.data_type.clone()))
            .unwrap_or_else(|| "text".to_string());
        let key_id = if param_type == SECURE_STRING {
            Some(
                key_id
                    .or_else(|| prev.as_ref().and_then(|p| p.key_id.clone()))
                    .unwrap_or_else(|| DEFAULT_KEY.to_string()),
            )
        } else {
            None
        };
        let policies = match &policies_text {
            Some(t) => policies::parse(t, ctx.now)?,
            None => prev.as_ref().map(|p| p.policies.clone()).unwrap_or_default(),
        };

        // Tier: Standard→Advanced only; Intelligent-Tiering picks what the value needs.
        let size = value.len();
        let was_advanced = prev.as_ref().is_some_and(|p| p.tier == ADVANCED);
        let tier = match tier.as_deref() {
            Some(ADVANCED) => ADVANCED,
            Some(STANDARD) if was_advanced => {
                return Err(AwsError::validation(
                    "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.",
                ));
            }
            Some(INTELLIGENT_TIERING) if was_advanced || size > STANDARD_MAX_BYTES || !policies.is_empty() => ADVANCED,
            Some(_) => STANDARD,
            None if was_advanced => ADVANCED,
            None => STANDARD,
        };
        if size > ADVANCED_MAX_BYTES {
            return Err(AwsError::validation(
                "Advanced tier parameters support a maximum parameter value of 8192 characters.",
            ));
        }
        if tier == STANDARD && size > STANDARD_MAX_BYTES {
            return Err(AwsError::validation(
                "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.",
            ));
        }
        if tier == STANDARD && !policies.is_empty() {
            return Err(AwsError::validation(
                "Standard tier parameters don't support parameter policies. To use parameter policies, create or update the parameter in the advanced-parameter tier or use intelligent-tiering.",
            ));
        }
        if let Some(p) = &allowed_pattern
            && !compile_pattern(p)?.is_match(value.expose())
        {
            return Err(AwsError::new(
                AwsErrorCode::ParameterPatternMismatchException,
                format!("Parameter value failed to satisfy constraint specified by allowedPattern: {p}"),
            ));
        }
        if data_type == "aws:ec2:image" && param_type != crate::model::STRING {
            return Err(AwsError::validation(
                "The aws:ec2:image data type is supported only for String parameters.",
            ));
        }

        // Version bookkeeping and limits.
        let mut rec = existing.unwrap_or_else(|| ParameterRecord {
            name: name.clone(),
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            versions: Vec::new(),
            tags: Vec::new(),
        });
        if rec.versions.is_empty() {
            self.check_count_limit(ctx, tier).await?;
        }
        let mut pruned = Vec::new();
        if rec.versions.len() >= VERSION_LIMIT {
            let oldest = &rec.versions[0];
            if !oldest.labels.is_empty() {
                return Err(AwsError::new(
                    AwsErrorCode::ParameterMaxVersionLimitExceeded,
                    format!(
                        "You attempted to create a new version of {} by calling the PutParameter API with the overwrite flag. Version {}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.",
                        rec.name, oldest.version
                    ),
                ));
            }
            pruned.push(oldest.version);
            rec.versions.remove(0);
        }
        let version = rec.versions.last().map_or(1, |v| v.version + 1);
        let arn = names::arn(ctx, &rec.name);
        let stored = match &key_id {
            Some(k) => crypto::seal(self.keys.as_ref(), ctx, k, &arn, &value).await?,
            None => SecretBytes::from_slice(value.expose().as_bytes()),
        };
        drop(value);
        rec.versions.push(VersionRecord {
            version,
            param_type,
            tier: tier.to_string(),
            data_type,
            description,
            allowed_pattern,
            key_id,
            policies,
            labels: Vec::new(),
            last_modified: now_secs(ctx),
            last_modified_user: ctx.principal_arn.clone(),
        });
        if let Some(t) = tags {
            merge_tags(&mut rec.tags, t);
        }
        self.commit(&rec, Some((version, stored)), &pruned).await?;
        Ok(json!({"Version": version, "Tier": tier}))
    }

    /// `ParameterLimitExceeded` when a region is full.
    async fn check_count_limit(&self, ctx: &RequestContext, tier: &str) -> Result<(), AwsError> {
        let total = self.count_in_region(&ctx.account_id, &ctx.region).await?;
        let full = if total >= ADVANCED_PER_REGION {
            true
        } else if tier == STANDARD && total >= STANDARD_PER_REGION {
            let recs = self.records_in_region(&ctx.account_id, &ctx.region).await?;
            recs.iter()
                .filter(|r| r.versions.last().is_some_and(|v| v.tier == STANDARD))
                .count()
                >= STANDARD_PER_REGION
        } else {
            false
        };
        if full {
            return Err(AwsError::new(
                AwsErrorCode::ParameterLimitExceeded,
                "You have exceeded the number of parameters for this AWS account. Delete one or more parameters and try again.",
            ));
        }
        Ok(())
    }

    pub(crate) async fn get_parameter(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let raw = required(input.string("Name")?, "Name")?;
        let decrypt = input.bool("WithDecryption")?.unwrap_or(false);
        if raw.trim().starts_with(names::REFERENCE_PREFIX) {
            let p = self.get_reference(ctx, raw.trim(), decrypt).await?;
            return Ok(json!({ "Parameter": p }));
        }
        match self.lookup(ctx, &raw).await? {
            Lookup::Found(found) => {
                let (rec, v, r) = *found;
                let p = self.render_found(ctx, &raw, &rec, &v, &r, decrypt).await?;
                Ok(json!({ "Parameter": p }))
            }
            Lookup::NotFound => Err(not_found(&raw)),
            Lookup::VersionNotFound(name, n) => Err(version_not_found(&name, n)),
        }
    }

    pub(crate) async fn get_parameters(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let names_in = required(input.string_list("Names")?, "Names")?;
        let decrypt = input.bool("WithDecryption")?.unwrap_or(false);
        if names_in.is_empty() || names_in.len() > 10 {
            let bound = if names_in.is_empty() {
                "greater than or equal to 1"
            } else {
                "less than or equal to 10"
            };
            return Err(validation(format!(
                "Value '[{}]' at 'names' failed to satisfy constraint: Member must have length {bound}.",
                names_in.join(", ")
            )));
        }
        let mut seen = std::collections::HashSet::new();
        let mut found: Vec<(String, Value)> = Vec::new();
        let mut invalid = Vec::new();
        for raw in names_in {
            if !seen.insert(raw.clone()) {
                continue;
            }
            if raw.trim().starts_with(names::REFERENCE_PREFIX) {
                match self.get_reference(ctx, raw.trim(), decrypt).await {
                    Ok(p) => found.push((raw.clone(), p)),
                    Err(e) if e.code == AwsErrorCode::ParameterNotFound => invalid.push(raw),
                    Err(e) => return Err(e),
                }
                continue;
            }
            match self.lookup(ctx, &raw).await? {
                Lookup::Found(hit) => {
                    let (rec, v, r) = *hit;
                    let p = self.render_found(ctx, &raw, &rec, &v, &r, decrypt).await?;
                    found.push((names::as_path(&r.name), p));
                }
                Lookup::NotFound | Lookup::VersionNotFound(..) => invalid.push(raw),
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(json!({
            "Parameters": found.into_iter().map(|(_, p)| p).collect::<Vec<_>>(),
            "InvalidParameters": invalid,
        }))
    }

    pub(crate) async fn delete_parameter(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let name = required(input.string("Name")?, "Name")?;
        if self.delete_one(ctx, &name).await? {
            Ok(json!({}))
        } else {
            Err(not_found(&name))
        }
    }

    async fn delete_one(&self, ctx: &RequestContext, name: &str) -> Result<bool, AwsError> {
        let name = name.trim();
        if !names::plausible(name) {
            return Ok(false);
        }
        let _guard = self.lock(ctx, name).await;
        match self.find(ctx, name).await? {
            Some(rec) => {
                self.erase(&ctx.account_id, &ctx.region, &rec.name).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub(crate) async fn delete_parameters(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let names_in = required(input.string_list("Names")?, "Names")?;
        check_len(names_in.len(), 1, 10, "Names")?;
        let mut deleted = Vec::new();
        let mut invalid = Vec::new();
        for n in names_in {
            if self.delete_one(ctx, &n).await? {
                deleted.push(n);
            } else {
                invalid.push(n);
            }
        }
        Ok(json!({"DeletedParameters": deleted, "InvalidParameters": invalid}))
    }

    /// The parameter `name` (no selector) or `ParameterNotFound`.
    async fn find_required(&self, ctx: &RequestContext, raw: &str) -> Result<ParameterRecord, AwsError> {
        let r = names::parse_ref(ctx, raw).filter(|r| r.selector == Selector::Latest);
        match r {
            Some(r) => self.find(ctx, &r.name).await?.ok_or_else(|| not_found(raw)),
            None => Err(not_found(raw)),
        }
    }

    pub(crate) async fn get_parameter_history(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let raw = required(input.string("Name")?, "Name")?;
        let decrypt = input.bool("WithDecryption")?.unwrap_or(false);
        let max = match input.int("MaxResults")? {
            Some(v) if v > 50 => {
                return Err(validation(format!(
                    "Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50."
                )));
            }
            _ => input::max_results(input, 50, 50)?,
        };
        let start = crate::describe::decode_token(input)?;
        let rec = self.find_required(ctx, &raw).await?;
        let page: Vec<&VersionRecord> = rec.versions.iter().skip(start).take(max).collect();
        let mut out = Vec::with_capacity(page.len());
        for v in &page {
            let value = self.value_of(ctx, &rec, v, decrypt).await?;
            out.push(render::history(&rec, v, value));
        }
        let mut resp = json!({ "Parameters": out });
        if page.len() == max && start + max < rec.versions.len() {
            resp["NextToken"] = json!((start + max).to_string());
        }
        Ok(resp)
    }

    pub(crate) async fn label_parameter_version(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let raw = required(input.string("Name")?, "Name")?;
        let version = input.int("ParameterVersion")?;
        let labels = required(input.string_list("Labels")?, "Labels")?;
        if labels.is_empty() {
            return Err(validation(
                "Value '[]' at 'labels' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        if let Some(bad) = labels.iter().find(|l| l.is_empty() || l.chars().count() > 100) {
            return Err(validation(format!(
                "Value '[{bad}]' at 'labels' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 100, Member must have length greater than or equal to 1]"
            )));
        }
        let name = names::parse_ref(ctx, &raw)
            .map(|r| r.name)
            .unwrap_or_else(|| raw.clone());
        let _guard = self.lock(ctx, &name).await;
        let mut rec = self.find_required(ctx, &raw).await?;
        let target = match version {
            Some(n) => n,
            None => rec.latest()?.version,
        };
        if rec.version(target).is_none() {
            return Err(version_not_found(&raw, target));
        }
        let (valid, invalid): (Vec<String>, Vec<String>) = labels.into_iter().partition(|l| valid_label(l));
        let mut after: Vec<String> = rec.version(target).map(|v| v.labels.clone()).unwrap_or_default();
        for l in &valid {
            if !after.contains(l) {
                after.push(l.clone());
            }
        }
        if after.len() > LABELS_PER_VERSION {
            return Err(AwsError::new(
                AwsErrorCode::ParameterVersionLabelLimitExceeded,
                // AWS's text as moto's tests record it, prefix included.
                "An error occurred (ParameterVersionLabelLimitExceeded) when calling the LabelParameterVersion operation: A parameter version can have maximum 10 labels.Move one or more labels to another version and try again.",
            ));
        }
        for v in &mut rec.versions {
            if v.version == target {
                v.labels = after.clone();
            } else {
                v.labels.retain(|l| !valid.contains(l));
            }
        }
        self.write_record(&rec).await?;
        Ok(json!({"InvalidLabels": invalid, "ParameterVersion": target}))
    }

    pub(crate) async fn unlabel_parameter_version(
        &self,
        ctx: &RequestContext,
        input: &Input,
    ) -> Result<Value, AwsError> {
        let raw = required(input.string("Name")?, "Name")?;
        let version = required(input.int("ParameterVersion")?, "ParameterVersion")?;
        let labels = required(input.string_list("Labels")?, "Labels")?;
        check_len(labels.len(), 1, 10, "Labels")?;
        let name = names::parse_ref(ctx, &raw)
            .map(|r| r.name)
            .unwrap_or_else(|| raw.clone());
        let _guard = self.lock(ctx, &name).await;
        let mut rec = self.find_required(ctx, &raw).await?;
        let Some(v) = rec.versions.iter_mut().find(|v| v.version == version) else {
            return Err(version_not_found(&raw, version));
        };
        let (removed, invalid): (Vec<String>, Vec<String>) = labels.into_iter().partition(|l| v.labels.contains(l));
        v.labels.retain(|l| !removed.contains(l));
        if !removed.is_empty() {
            self.write_record(&rec).await?;
        }
        Ok(json!({"RemovedLabels": removed, "InvalidLabels": invalid}))
    }

    /// The parameter a tagging call names, under its lock.
    async fn tag_target(
        &self,
        ctx: &RequestContext,
        input: &Input,
    ) -> Result<(String, Option<ParameterRecord>), AwsError> {
        let rtype = required(input.string("ResourceType")?, "ResourceType")?;
        let id = required(input.string("ResourceId")?, "ResourceId")?;
        if rtype != "Parameter" {
            return Err(AwsError::new(AwsErrorCode::InvalidResourceType, ""));
        }
        let name = names::parse_ref(ctx, &id)
            .filter(|r| r.selector == Selector::Latest)
            .map(|r| r.name);
        match name {
            Some(n) => {
                let rec = self.find(ctx, &n).await?;
                Ok((n, rec))
            }
            None => Ok((id, None)),
        }
    }

    pub(crate) async fn add_tags(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let tags = required(input::tags(input, "Tags")?, "Tags")?;
        let (name, _) = self.tag_target(ctx, input).await?;
        let _guard = self.lock(ctx, &name).await;
        let Some(mut rec) = self.find(ctx, &name).await? else {
            return Err(AwsError::new(AwsErrorCode::InvalidResourceId, ""));
        };
        merge_tags(&mut rec.tags, tags);
        if rec.tags.len() > TAGS_PER_RESOURCE {
            return Err(AwsError::new(AwsErrorCode::TooManyTagsError, ""));
        }
        self.write_record(&rec).await?;
        Ok(json!({}))
    }

    pub(crate) async fn remove_tags(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let keys = required(input.string_list("TagKeys")?, "TagKeys")?;
        let (name, _) = self.tag_target(ctx, input).await?;
        let _guard = self.lock(ctx, &name).await;
        let Some(mut rec) = self.find(ctx, &name).await? else {
            return Err(AwsError::new(AwsErrorCode::InvalidResourceId, ""));
        };
        let before = rec.tags.len();
        rec.tags.retain(|t| !keys.contains(&t.key));
        if rec.tags.len() != before {
            self.write_record(&rec).await?;
        }
        Ok(json!({}))
    }

    pub(crate) async fn list_tags(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        match self.tag_target(ctx, input).await? {
            (_, Some(rec)) => Ok(json!({"TagList": render::tags(&rec.tags)})),
            (_, None) => Err(AwsError::new(AwsErrorCode::InvalidResourceId, "")),
        }
    }
}

/// Adds tags, replacing the value of keys already present.
fn merge_tags(into: &mut Vec<Tag>, tags: Vec<(String, String)>) {
    for (key, value) in tags {
        match into.iter_mut().find(|t| t.key == key) {
            Some(t) => t.value = value,
            None => into.push(Tag { key, value }),
        }
    }
}
