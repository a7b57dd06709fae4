//! Rotation through the real binary: an `http` rotation function served by this test (the
//! AWS generic template's four steps, written against the AWS SDK, checking Coffer's
//! signature on every call), failures and retries with backoff, a SIGKILL between steps,
//! and schedules driven by the dev clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager as sm;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use coffer_testkit::DevCredentials;
use parking_lot::Mutex;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::support::{DevOnFile, dev_client, err_code, signed_post, start_dev};

/// What the test's rotation function does and has seen.
#[derive(Default)]
pub(crate) struct FnState {
    /// Base64 signing secret from CreateFunction.
    signing_secret: Mutex<Option<String>>,
    /// Fail this many setSecret calls (500) before succeeding.
    fail_set: AtomicUsize,
    /// Block every setSecret call while set (the server is killed meanwhile).
    hang_set: AtomicBool,
    set_reached: AtomicUsize,
    pub(crate) bad_signatures: AtomicUsize,
    pub(crate) steps: Mutex<Vec<String>>,
    endpoint: Mutex<String>,
    creds: Mutex<(String, String)>,
    /// Secret name -> step: the first call of that step for that secret does its work, then
    /// blocks while `release` is unset (the fault tests kill the server meanwhile).
    pub(crate) hold: Mutex<std::collections::HashMap<String, String>>,
    /// The (secret name, step) pairs that reached their hold.
    pub(crate) held: Mutex<Vec<(String, String)>>,
    pub(crate) release: AtomicBool,
    /// The secret ARNs whose AWSCURRENT finishSecret moved (once per real move).
    pub(crate) moves: Mutex<Vec<String>>,
}

impl FnState {
    /// Blocks the first `step` call for the secret `arn` after its work, if it is held.
    async fn hold_point(&self, arn: &str, step: &str) {
        let held = {
            let mut hold = self.hold.lock();
            let name = hold
                .iter()
                .find(|(name, s)| s.as_str() == step && arn.contains(&format!(":secret:{name}-")))
                .map(|(name, _)| name.clone());
            name.inspect(|n| {
                hold.remove(n);
            })
        };
        if let Some(name) = held {
            self.held.lock().push((name, step.to_string()));
            while !self.release.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn client_for(state: &FnState) -> sm::Client {
    let (akid, secret) = state.creds.lock().clone();
    crate::support::sm_client(&state.endpoint.lock().clone(), &akid, &secret)
}

fn verify(state: &FnState, headers: &HeaderMap, body: &[u8]) -> bool {
    use base64::Engine as _;
    let Some(secret) = state.signing_secret.lock().clone() else {
        return false;
    };
    let key = base64::engine::general_purpose::STANDARD.decode(secret).unwrap();
    let ts = headers
        .get("x-coffer-timestamp")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let sig = headers
        .get("x-coffer-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut msg = ts.as_bytes().to_vec();
    msg.push(b'.');
    msg.extend_from_slice(body);
    let expected = format!("v1={}", hex_hmac(&key, &msg));
    sig == expected
}

fn hex_hmac(key: &[u8], msg: &[u8]) -> String {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&k, msg)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The generic rotation template's steps, as a Lambda would run them.
async fn handle_step(state: Arc<FnState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if !verify(&state, &headers, &body) {
        state.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    let event: Value = serde_json::from_slice(&body).unwrap();
    let step = event["Step"].as_str().unwrap().to_string();
    let arn = event["SecretId"].as_str().unwrap().to_string();
    let token = event["ClientRequestToken"].as_str().unwrap().to_string();
    assert!(!event["RotationToken"].as_str().unwrap().is_empty());
    state.steps.lock().push(step.clone());
    let sm = client_for(&state);
    // Every step first checks the version is pending, as the templates do.
    let meta = sm.describe_secret().secret_id(&arn).send().await.unwrap();
    assert_eq!(meta.rotation_enabled(), Some(true));
    let stages = meta
        .version_ids_to_stages()
        .unwrap()
        .get(&token)
        .cloned()
        .unwrap_or_default();
    if stages.iter().any(|s| s == "AWSCURRENT") {
        return StatusCode::OK;
    }
    assert!(stages.iter().any(|s| s == "AWSPENDING"), "{step}: {stages:?}");
    match step.as_str() {
        "createSecret" => {
            sm.get_secret_value()
                .secret_id(&arn)
                .version_stage("AWSCURRENT")
                .send()
                .await
                .unwrap();
            let pending = sm
                .get_secret_value()
                .secret_id(&arn)
                .version_id(&token)
                .version_stage("AWSPENDING")
                .send()
                .await;
            if let Err(e) = pending {
                assert_eq!(err_code(&e), "ResourceNotFoundException");
                let pw = sm.get_random_password().password_length(24).send().await.unwrap();
                sm.put_secret_value()
                    .secret_id(&arn)
                    .client_request_token(&token)
                    .secret_string(pw.random_password().unwrap())
                    .version_stages("AWSPENDING")
                    .send()
                    .await
                    .unwrap();
            }
        }
        "setSecret" => {
            state.set_reached.fetch_add(1, Ordering::SeqCst);
            while state.hang_set.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if state
                .fail_set
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
        }
        "testSecret" => {}
        "finishSecret" => {
            let current = meta
                .version_ids_to_stages()
                .unwrap()
                .iter()
                .find(|(_, s)| s.iter().any(|x| x == "AWSCURRENT"))
                .map(|(v, _)| v.clone())
                .unwrap();
            sm.update_secret_version_stage()
                .secret_id(&arn)
                .version_stage("AWSCURRENT")
                .move_to_version_id(&token)
                .remove_from_version_id(current)
                .send()
                .await
                .unwrap();
            state.moves.lock().push(arn.clone());
        }
        other => panic!("unknown step {other}"),
    }
    state.hold_point(&arn, &step).await;
    StatusCode::OK
}

/// Serves the rotation function on a free port; returns its URL.
pub(crate) async fn serve_function(state: Arc<FnState>) -> String {
    let app = axum::Router::new().route(
        "/rotate",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| handle_step(state.clone(), headers, body)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}/rotate")
}

pub(crate) async fn rotation_call(c: &DevCredentials, op: &str, body: Value) -> crate::support::Raw {
    signed_post(
        &c.endpoint,
        &c.access_key_id,
        &c.secret_access_key,
        "lambda",
        &format!("CofferRotation.{op}"),
        body.to_string().as_bytes(),
        std::time::SystemTime::now(),
    )
    .await
}

/// Registers the test's function and points it at the server.
pub(crate) async fn register(c: &DevCredentials, state: &Arc<FnState>, url: &str, name: &str) -> String {
    *state.endpoint.lock() = c.endpoint.clone();
    *state.creds.lock() = (c.access_key_id.clone(), c.secret_access_key.clone());
    let r = rotation_call(
        c,
        "CreateFunction",
        json!({ "FunctionName": name, "Http": { "Url": url, "TimeoutSeconds": 30 } }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    *state.signing_secret.lock() = Some(r.body["SigningSecret"].as_str().unwrap().to_string());
    r.body["FunctionArn"].as_str().unwrap().to_string()
}

pub(crate) async fn status(c: &DevCredentials, secret: &str) -> Value {
    let r = rotation_call(c, "GetRotationStatus", json!({ "SecretId": secret })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

pub(crate) async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

pub(crate) async fn current_value(sm: &sm::Client, id: &str) -> String {
    sm.get_secret_value()
        .secret_id(id)
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_string()
}

pub(crate) async fn advance_clock(c: &DevCredentials, secs: i64) {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/sys/coffer/clock", c.endpoint))
        .json(&json!({ "advance_seconds": secs }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// The four steps run in order through an http function; a failing setSecret leaves
/// AWSCURRENT alone, is recorded, and is retried after the backoff until it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_function_rotates_and_failed_steps_are_retried() {
    let (_p, c) = start_dev(&["--dev-allow-reset"]);
    let state = Arc::new(FnState::default());
    let url = serve_function(state.clone()).await;
    let arn = register(&c, &state, &url, "generic-rotator").await;
    let sm = dev_client(&c);

    // Unknown functions are refused at configuration time, as AWS does.
    sm.create_secret()
        .name("app/token")
        .secret_string("v1-token")
        .send()
        .await
        .unwrap();
    let e = sm
        .rotate_secret()
        .secret_id("app/token")
        .rotation_lambda_arn(format!("arn:aws:lambda:us-east-1:{}:function:nope", c.account_id))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDeniedException");
    assert_eq!(
        sm.describe_secret()
            .secret_id("app/token")
            .send()
            .await
            .unwrap()
            .rotation_enabled(),
        None
    );

    state.fail_set.store(1, Ordering::SeqCst);
    let out = sm
        .rotate_secret()
        .secret_id("app/token")
        .rotation_lambda_arn(&arn)
        .rotation_rules(
            sm::types::RotationRulesType::builder()
                .automatically_after_days(30)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let token = out.version_id().unwrap().to_string();

    // The first attempt fails at setSecret: recorded, AWSCURRENT untouched, AWSPENDING kept.
    wait_for("the failed attempt", Duration::from_secs(20), || async {
        status(&c, "app/token").await["FailedAttempts"] == json!(1)
    })
    .await;
    let s = status(&c, "app/token").await;
    assert_eq!(s["LastError"]["Step"], "setSecret");
    assert!(s["LastError"]["Message"].as_str().unwrap().contains("500"), "{s}");
    assert_eq!(s["PendingVersionId"], json!(token));
    assert!(s["NextAttemptDate"].is_number());
    assert_eq!(current_value(&sm, "app/token").await, "v1-token");
    let d = sm.describe_secret().secret_id("app/token").send().await.unwrap();
    assert_eq!(
        d.version_ids_to_stages().unwrap()[&token],
        vec!["AWSPENDING".to_string()]
    );
    assert!(d.last_rotated_date().is_none());
    // A second rotation may not start while this one is pending.
    let e = sm.rotate_secret().secret_id("app/token").send().await.unwrap_err();
    assert_eq!(err_code(&e), "InvalidRequestException");

    // After the backoff the scheduler retries the same version, which now succeeds.
    advance_clock(&c, 31).await;
    wait_for("the retried rotation", Duration::from_secs(20), || async {
        current_value(&sm, "app/token").await != "v1-token"
    })
    .await;
    let d = sm.describe_secret().secret_id("app/token").send().await.unwrap();
    let stages = d.version_ids_to_stages().unwrap();
    assert_eq!(stages[&token], vec!["AWSCURRENT".to_string()]);
    assert_eq!(stages.len(), 2);
    assert!(stages.values().any(|s| s == &vec!["AWSPREVIOUS".to_string()]));
    assert!(d.last_rotated_date().is_some());
    let prev = sm
        .get_secret_value()
        .secret_id("app/token")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(prev.secret_string(), Some("v1-token"));
    let s = status(&c, "app/token").await;
    assert_eq!(s["FailedAttempts"], json!(0));
    assert!(
        s.get("LastError").is_none() && s.get("PendingVersionId").is_none(),
        "{s}"
    );
    assert_eq!(
        *state.steps.lock(),
        [
            "createSecret",
            "setSecret",
            "createSecret",
            "setSecret",
            "testSecret",
            "finishSecret"
        ]
    );
    assert_eq!(state.bad_signatures.load(Ordering::SeqCst), 0);

    // The failure and the success are counted for the operator's monitoring.
    let metrics = reqwest::Client::new()
        .get(format!("{}/v1/sys/metrics", c.endpoint))
        .header("x-vault-token", &c.root_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("coffer_rotations_failed_total 1"), "{metrics}");
    assert!(metrics.contains("coffer_rotations_succeeded_total 1"), "{metrics}");
}

/// Schedules that AWS refuses are refused when rotation is configured, with AWS's errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_schedules_are_refused_at_configuration() {
    let (_p, c) = start_dev(&[]);
    let state = Arc::new(FnState::default());
    let url = serve_function(state.clone()).await;
    let arn = register(&c, &state, &url, "any-rotator").await;
    let sm = dev_client(&c);
    sm.create_secret()
        .name("bad/schedules")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    // (ScheduleExpression, AutomaticallyAfterDays, Duration): each one InvalidParameterException.
    type Rules<'a> = (Option<&'a str>, Option<i32>, Option<&'a str>);
    let cases: [Rules<'_>; 6] = [
        (Some("rate(2 hours)"), None, None),
        (Some("rate(4 weeks)"), None, None),
        (Some("cron(0 3 * * * *)"), None, None),
        (Some("cron(0 22 ? * SUN *)"), None, Some("4h")),
        (Some("rate(4 hours)"), None, Some("5h")),
        (Some("rate(10 days)"), Some(10), None),
    ];
    for (expr, days, duration) in cases {
        let mut rules = sm::types::RotationRulesType::builder();
        if let Some(e) = expr {
            rules = rules.schedule_expression(e);
        }
        if let Some(d) = days {
            rules = rules.automatically_after_days(i64::from(d));
        }
        if let Some(d) = duration {
            rules = rules.duration(d);
        }
        let e = sm
            .rotate_secret()
            .secret_id("bad/schedules")
            .rotation_lambda_arn(&arn)
            .rotation_rules(rules.build())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            "InvalidParameterException",
            "{expr:?} {days:?} {duration:?}"
        );
    }
    // Nothing was stored by the refused calls.
    let d = sm.describe_secret().secret_id("bad/schedules").send().await.unwrap();
    assert!(d.rotation_enabled().is_none() && d.rotation_rules().is_none());
    assert!(state.steps.lock().is_empty());
}

/// SIGKILL while a step is running, then restart: AWSCURRENT was never lost and the rotation
/// is resumed to completion with the same version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_steps_resumes_the_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevOnFile::new(dir.path().join("coffer.redb"), &[]);
    let start = || server.start();
    let mut p = start();
    let c = server.creds();
    let state = Arc::new(FnState::default());
    let url = serve_function(state.clone()).await;
    let arn = register(&c, &state, &url, "slow-rotator").await;
    let sm = dev_client(&c);
    sm.create_secret()
        .name("db/app")
        .secret_string("before")
        .send()
        .await
        .unwrap();

    state.hang_set.store(true, Ordering::SeqCst);
    let token = sm
        .rotate_secret()
        .secret_id("db/app")
        .rotation_lambda_arn(&arn)
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    wait_for("setSecret to start", Duration::from_secs(20), || async {
        state.set_reached.load(Ordering::SeqCst) > 0
    })
    .await;
    p.kill();
    state.hang_set.store(false, Ordering::SeqCst);

    let _p = start();
    // AWSCURRENT was never lost: readable at once after the restart.
    let first = current_value(&sm, "db/app").await;
    assert!(first == "before" || state.steps.lock().contains(&"finishSecret".to_string()));
    wait_for("the resumed rotation", Duration::from_secs(30), || async {
        current_value(&sm, "db/app").await != "before"
    })
    .await;
    let d = sm.describe_secret().secret_id("db/app").send().await.unwrap();
    assert_eq!(
        d.version_ids_to_stages().unwrap()[&token],
        vec!["AWSCURRENT".to_string()]
    );
    let prev = sm
        .get_secret_value()
        .secret_id("db/app")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(prev.secret_string(), Some("before"));
    // The resumed run started again from createSecret, which found the pending value
    // already written and kept it.
    let steps = state.steps.lock().clone();
    assert_eq!(steps.iter().filter(|s| *s == "finishSecret").count(), 1, "{steps:?}");
}

fn ts(d: &sm::primitives::DateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(d.secs()).unwrap()
}

/// Reads the server's current time (wall clock plus the dev clock's offset).
async fn server_now(c: &DevCredentials) -> OffsetDateTime {
    let r: Value = reqwest::Client::new()
        .post(format!("{}/v1/sys/coffer/clock", c.endpoint))
        .json(&json!({ "advance_seconds": 0 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    OffsetDateTime::now_utc() + time::Duration::seconds(r["offset_seconds"].as_i64().unwrap())
}

/// Moves the dev clock to `t`.
async fn advance_to(c: &DevCredentials, t: OffsetDateTime) {
    let now = server_now(c).await;
    let secs = (t - now).whole_seconds();
    assert!(secs >= 0, "the clock only moves forward");
    advance_clock(c, secs).await;
}

/// Configures a schedule without rotating now and checks the NextRotationDate it reports and
/// that the rotation happens inside that window, not before it.
async fn check_schedule(
    c: &DevCredentials,
    sm: &sm::Client,
    arn: &str,
    name: &str,
    rules: sm::types::RotationRulesType,
    window: impl Fn(OffsetDateTime) -> (OffsetDateTime, OffsetDateTime),
) {
    sm.create_secret()
        .name(name)
        .secret_string("initial")
        .send()
        .await
        .unwrap();
    let configured = server_now(c).await;
    sm.rotate_secret()
        .secret_id(name)
        .rotation_lambda_arn(arn)
        .rotation_rules(rules)
        .rotate_immediately(false)
        .send()
        .await
        .unwrap();
    let (start, end) = window(configured);
    let d = sm.describe_secret().secret_id(name).send().await.unwrap();
    assert_eq!(
        ts(d.next_rotation_date().unwrap()),
        end - time::Duration::seconds(1),
        "{name}"
    );
    assert!(d.last_rotated_date().is_none());

    // Just before the window: nothing happens.
    advance_to(c, start - time::Duration::seconds(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        current_value(sm, name).await,
        "initial",
        "{name} rotated before its window"
    );
    // By the end of the window it has rotated, inside the window.
    advance_to(c, end - time::Duration::seconds(1)).await;
    wait_for(name, Duration::from_secs(20), || async {
        current_value(sm, name).await != "initial"
    })
    .await;
    let d = sm.describe_secret().secret_id(name).send().await.unwrap();
    let last = ts(d.last_rotated_date().unwrap());
    assert!(
        last >= start && last < end,
        "{name}: rotated at {last}, window {start}..{end}"
    );
    // The next date is in the following window.
    assert!(ts(d.next_rotation_date().unwrap()) > end, "{name}");
}

fn floor_hour(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_minute(0)
        .unwrap()
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap()
}

fn midnight(t: OffsetDateTime) -> OffsetDateTime {
    t.date().midnight().assume_utc()
}

/// `rate(4 hours)`, `cron(0 3 ? * SUN *)` with a two-hour window, and
/// `AutomaticallyAfterDays 30` each report the right NextRotationDate and rotate inside their
/// window, driven by the dev clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_rotate_inside_their_windows() {
    let (_p, c) = start_dev(&["--dev-allow-reset"]);
    let state = Arc::new(FnState::default());
    let url = serve_function(state.clone()).await;
    let arn = register(&c, &state, &url, "scheduled-rotator").await;
    let sm = dev_client(&c);

    // rate(4 hours): windows start on the hour four hours after configuration and last an hour.
    check_schedule(
        &c,
        &sm,
        &arn,
        "sched/rate",
        sm::types::RotationRulesType::builder()
            .schedule_expression("rate(4 hours)")
            .build(),
        |t| {
            let start = floor_hour(t) + time::Duration::hours(4);
            let end = (start + time::Duration::hours(1)).min(midnight(start) + time::Duration::days(1));
            (start, end)
        },
    )
    .await;

    // Sundays at 03:00 UTC, for two hours.
    check_schedule(
        &c,
        &sm,
        &arn,
        "sched/cron",
        sm::types::RotationRulesType::builder()
            .schedule_expression("cron(0 3 ? * SUN *)")
            .duration("2h")
            .build(),
        |t| {
            let mut day = midnight(t) + time::Duration::hours(3);
            while day <= t || day.weekday() != time::Weekday::Sunday {
                day += time::Duration::days(1);
            }
            (day, day + time::Duration::hours(2))
        },
    )
    .await;

    // Every 30 days: the whole UTC day 30 days after the last change.
    check_schedule(
        &c,
        &sm,
        &arn,
        "sched/days",
        sm::types::RotationRulesType::builder()
            .automatically_after_days(30)
            .build(),
        |t| {
            let start = midnight(t) + time::Duration::days(30);
            (start, start + time::Duration::days(1))
        },
    )
    .await;
}
