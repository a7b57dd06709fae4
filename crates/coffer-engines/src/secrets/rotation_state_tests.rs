//! The rotation state machine under faults and clock jumps, driven as the core's runner
//! drives it: [`SecretsEngine::background`] starts due rotations, the generic template's
//! steps run through the engine's API, [`SecretsEngine::finish_rotation`] records the end.
//!
//! * A storage write failing at each step (the placeholder, the pending value, the stage
//!   move, the record of the end): the failure surfaces as an error, AWSCURRENT always
//!   reads, and later passes finish the rotation exactly once.
//! * A clock earlier than the last rotation (a wall clock stepped back) starts nothing; a
//!   clock far ahead starts one rotation, not one per missed window, and purges once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use coffer_storage::fault::FailingStorage;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::*;
use crate::AwsErrorCode;
use crate::secrets::model::{AWSCURRENT, AWSPENDING};

const LAMBDA: &str = "arn:aws:lambda:us-east-1:123456789012:function:rot";

struct H {
    engine: SecretsEngine,
    storage: Arc<FailingStorage>,
    now: std::sync::Mutex<OffsetDateTime>,
    /// How many times finishSecret moved AWSCURRENT.
    moves: AtomicUsize,
}

impl H {
    /// A secret `s` = "old" with rotation every day configured (not started) at the start.
    async fn new() -> Self {
        let storage = Arc::new(FailingStorage::new());
        let h = Self {
            engine: SecretsEngine::new(storage.clone()),
            storage,
            now: std::sync::Mutex::new(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()),
            moves: AtomicUsize::new(0),
        };
        h.ok("CreateSecret", json!({"Name": "s", "SecretString": "old"})).await;
        h.ok(
            "RotateSecret",
            json!({"SecretId": "s", "RotationLambdaARN": LAMBDA,
                   "RotationRules": {"AutomaticallyAfterDays": 1}, "RotateImmediately": false}),
        )
        .await;
        h
    }

    fn ctx(&self) -> RequestContext {
        RequestContext {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            principal_arn: "arn:aws:iam::123456789012:root".into(),
            now: *self.now.lock().unwrap(),
        }
    }

    fn set_now(&self, t: OffsetDateTime) {
        *self.now.lock().unwrap() = t;
    }

    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap()
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, AwsError> {
        self.engine.handle(&self.ctx(), op, body).await
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        self.call(op, body).await.unwrap_or_else(|e| panic!("{op}: {e}"))
    }

    async fn stages(&self) -> serde_json::Map<String, Value> {
        let d = self.ok("DescribeSecret", json!({"SecretId": "s"})).await;
        d["VersionIdsToStages"].as_object().unwrap().clone()
    }

    async fn value(&self, stage: &str) -> String {
        let v = self
            .ok("GetSecretValue", json!({"SecretId": "s", "VersionStage": stage}))
            .await;
        v["SecretString"].as_str().unwrap().to_string()
    }

    /// One scheduler pass and a run of every rotation it returns, as the core's runner does.
    async fn pass(&self) -> Result<usize, AwsError> {
        let (_, tasks) = self.engine.background(&self.ctx()).await?;
        for task in &tasks {
            let outcome = match self.steps(&task.client_request_token).await {
                Ok(()) => RotationOutcome::Succeeded,
                Err((step, e)) => RotationOutcome::Failed {
                    step: step.into(),
                    message: e.to_string(),
                },
            };
            self.engine
                .finish_rotation(&self.ctx(), &task.secret_arn, &task.client_request_token, outcome)
                .await?;
        }
        Ok(tasks.len())
    }

    /// The generic template's steps (setSecret and testSecret have nothing to store).
    async fn steps(&self, token: &str) -> Result<(), (&'static str, AwsError)> {
        let stages = self.stages().await;
        if stages[token].as_array().unwrap().iter().any(|s| s == AWSCURRENT) {
            return Ok(());
        }
        let pending = self
            .call(
                "GetSecretValue",
                json!({"SecretId": "s", "VersionId": token, "VersionStage": AWSPENDING}),
            )
            .await;
        if pending.is_err() {
            self.call(
                "PutSecretValue",
                json!({"SecretId": "s", "ClientRequestToken": token, "SecretString": "new",
                       "VersionStages": [AWSPENDING]}),
            )
            .await
            .map_err(|e| ("createSecret", e))?;
        }
        let current = stages
            .iter()
            .find(|(_, s)| s.as_array().unwrap().iter().any(|x| x == AWSCURRENT))
            .map(|(v, _)| v.clone())
            .unwrap();
        self.call(
            "UpdateSecretVersionStage",
            json!({"SecretId": "s", "VersionStage": AWSCURRENT, "MoveToVersionId": token,
                   "RemoveFromVersionId": current}),
        )
        .await
        .map_err(|e| ("finishSecret", e))?;
        self.moves.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Whether the rotation is recorded as finished: no AWSPENDING anywhere, a last date.
    async fn finished(&self) -> bool {
        let d = self.ok("DescribeSecret", json!({"SecretId": "s"})).await;
        let pending = d["VersionIdsToStages"]
            .as_object()
            .unwrap()
            .values()
            .any(|s| s.as_array().unwrap().iter().any(|x| x == AWSPENDING));
        !pending && d.get("LastRotatedDate").is_some()
    }
}

#[tokio::test]
async fn a_storage_failure_at_each_step_of_a_rotation_is_retried_to_one_finish() {
    let mut failed = 0;
    for n in 1..50u64 {
        let h = H::new().await;
        h.set_now(h.now() + Duration::days(2));
        let before = h.storage.writes();
        h.storage.fail_write_in(n);
        let r = h.pass().await;
        h.storage.fail_write_in(u64::MAX / 2);
        let injected = h.storage.writes() >= before + n;
        if !injected {
            r.unwrap();
            assert!(h.finished().await);
            assert!(failed > 0);
            return;
        }
        if r.is_err() {
            failed += 1;
        }
        // Whatever failed, AWSCURRENT reads and no version was added beyond the pending one.
        let current = h.value(AWSCURRENT).await;
        assert!(current == "old" || current == "new", "step {n}: {current}");
        assert!(h.stages().await.len() <= 2, "step {n}: {:?}", h.stages().await);
        // Later passes (after any backoff) finish it, exactly once.
        for _ in 0..4 {
            if h.finished().await {
                break;
            }
            h.set_now(h.now() + Duration::hours(2));
            h.pass().await.unwrap();
        }
        assert!(
            h.finished().await,
            "step {n}: the rotation never finished: {:?}",
            h.stages().await
        );
        assert_eq!(h.moves.load(Ordering::SeqCst), 1, "step {n}");
        assert_eq!(h.value(AWSCURRENT).await, "new", "step {n}");
        assert_eq!(h.value("AWSPREVIOUS").await, "old", "step {n}");
        assert_eq!(h.stages().await.len(), 2, "step {n}");
        let status = h
            .engine
            .rotation_status(&h.ctx(), json!({"SecretId": "s"}))
            .await
            .unwrap();
        assert_eq!(status["FailedAttempts"], json!(0), "step {n}: {status}");
    }
    panic!("the rotation never ran without meeting the fault");
}

#[tokio::test]
async fn a_clock_earlier_than_the_last_rotation_starts_nothing() {
    let h = H::new().await;
    h.set_now(h.now() + Duration::days(2));
    assert_eq!(h.pass().await.unwrap(), 1);
    assert!(h.finished().await);
    let rotated = h.now();
    let next = h.ok("DescribeSecret", json!({"SecretId": "s"})).await["NextRotationDate"].clone();

    // The wall clock steps back: a minute, a day, a year, to the epoch. No rotation starts,
    // nothing is written, nothing panics; the schedule still counts from the last rotation.
    let writes = h.storage.writes();
    for back in [
        Duration::minutes(1),
        Duration::days(1),
        Duration::days(365),
        rotated - OffsetDateTime::UNIX_EPOCH,
    ] {
        h.set_now(rotated - back);
        assert_eq!(h.pass().await.unwrap(), 0, "clock {back} back");
        assert_eq!(h.stages().await.len(), 2);
    }
    assert_eq!(h.storage.writes(), writes, "a pass with the clock back wrote something");
    assert_eq!(
        h.ok("DescribeSecret", json!({"SecretId": "s"})).await["NextRotationDate"],
        next
    );

    // The clock jumps far ahead (a thousand missed windows): one rotation, not a storm; a
    // second pass at the same time starts no other.
    h.set_now(rotated + Duration::days(1000));
    let (_, tasks) = h.engine.background(&h.ctx()).await.unwrap();
    assert_eq!(tasks.len(), 1);
    let (_, again) = h.engine.background(&h.ctx()).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].client_request_token, tasks[0].client_request_token);
    assert_eq!(h.stages().await.len(), 3, "one placeholder, not one per pass");

    // A recovery window that ends during the jump purges the secret once.
    h.ok("CreateSecret", json!({"Name": "gone", "SecretString": "x"})).await;
    h.ok("DeleteSecret", json!({"SecretId": "gone", "RecoveryWindowInDays": 7}))
        .await;
    h.set_now(h.now() + Duration::days(8));
    let (purged, _) = h.engine.background(&h.ctx()).await.unwrap();
    assert_eq!(purged, 1);
    let (purged, _) = h.engine.background(&h.ctx()).await.unwrap();
    assert_eq!(purged, 0);
    let e = h.call("DescribeSecret", json!({"SecretId": "gone"})).await.unwrap_err();
    assert_eq!(e.code, AwsErrorCode::ResourceNotFoundException);
}
