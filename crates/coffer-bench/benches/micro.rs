//! criterion micro-benchmarks of the request path's building blocks (PERFORMANCE.md):
//! SigV4 verification, the barrier's seal/open (a put and a get through it), policy
//! evaluation, and storage get/put (memory and redb with its fsync). Run with
//! `cargo bench -p coffer-bench --bench micro`; numbers are for comparing changes on one
//! machine, never asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use coffer_barrier::Barrier;
use coffer_bench::{Call, Endpoint, sign_call};
use coffer_crypto::SecretBytes;
use coffer_policy::{AuthzRequest, PolicyKind, Principal, compile_json, evaluate};
use coffer_storage::memory::{MemoryBackend, MemoryStorage};
use coffer_storage::redb_backend::RedbBackend;
use coffer_storage::{PhysicalBackend, Storage};
use criterion::{Criterion, criterion_group, criterion_main};
use time::OffsetDateTime;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn sigv4(c: &mut Criterion) {
    // A GetSecretValue request signed now by the AWS SDK's signer, as the server receives it.
    let ep = Endpoint::new("http://127.0.0.1:8200", "AKIDCOFFERBENCH00001", SECRET, "us-east-1").unwrap();
    let call = Call::aws_json(
        "secretsmanager.GetSecretValue",
        &serde_json::json!({ "SecretId": "ci/docker-password" }),
    );
    let signed = sign_call(&ep, &call).unwrap();
    let headers = signed.header_map().unwrap();
    let secret = SecretBytes::from_slice(SECRET.as_bytes());
    let cache = coffer_sigv4::SigningKeyCache::new();
    let at = OffsetDateTime::now_utc();
    c.bench_function("sigv4/parse+verify (cached signing key)", |b| {
        b.iter(|| {
            let auth = coffer_sigv4::parse_authorization(&headers).unwrap();
            let req = coffer_sigv4::SignedRequest {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                body: signed.body(),
            };
            coffer_sigv4::verify(&req, &auth, &secret, at, &cache).unwrap();
            black_box(auth);
        })
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn barrier(c: &mut Criterion) {
    let rt = runtime();
    let barrier = Barrier::new(Arc::new(MemoryBackend::new()));
    rt.block_on(barrier.initialize_dev()).unwrap();
    let value = SecretBytes::new(vec![7u8; 256]);
    rt.block_on(barrier.put("bench/key", value.clone())).unwrap();
    c.bench_function("barrier/put 256 B (seal, memory backend)", |b| {
        b.iter(|| rt.block_on(barrier.put("bench/key", value.clone())).unwrap())
    });
    c.bench_function("barrier/get 256 B (open, memory backend)", |b| {
        b.iter(|| black_box(rt.block_on(barrier.get("bench/key")).unwrap()))
    });
}

fn policy(c: &mut Criterion) {
    let doc = r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
         "Resource": "arn:aws:secretsmanager:*:111122223333:secret:ci/*",
         "Condition": {"StringEquals": {"aws:ResourceTag/team": "ci"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
        {"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "arn:aws:secretsmanager:*:111122223333:secret:prod/*"},
        {"Effect": "Allow", "Action": "ssm:GetParameter*", "Resource": "arn:aws:ssm:*:111122223333:parameter/ci/*"}
    ]}"#;
    let policy = compile_json(doc, PolicyKind::Identity, "ci-read").unwrap();
    let mut principal = Principal::root("111122223333");
    principal.arn = "arn:aws:iam::111122223333:user/ci-pipeline".into();
    principal.is_root = false;
    principal.username = Some("ci-pipeline".into());
    let mut request = AuthzRequest::new(
        principal,
        "secretsmanager:GetSecretValue",
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:ci/docker-password-AbCdEf",
        "111122223333",
    );
    request.context.insert("aws:ResourceTag/team", "ci");
    request.context.insert("aws:SourceIp", "10.1.2.3");
    request.context.set_current_time(OffsetDateTime::now_utc());
    c.bench_function("policy/evaluate (3 statements, 2 conditions)", |b| {
        b.iter(|| black_box(evaluate(&request, &[&policy], None, None)))
    });
}

fn storage(c: &mut Criterion) {
    let rt = runtime();
    let memory = MemoryStorage::new();
    let value = SecretBytes::new(vec![7u8; 512]);
    rt.block_on(memory.put("k", value.clone())).unwrap();
    c.bench_function("storage/memory get", |b| {
        b.iter(|| black_box(rt.block_on(memory.get("k")).unwrap()))
    });
    let dir = tempfile::tempdir().unwrap();
    let redb = RedbBackend::open(dir.path().join("bench.redb")).unwrap();
    rt.block_on(redb.put("k", vec![7u8; 512])).unwrap();
    c.bench_function("storage/redb get", |b| {
        b.iter(|| black_box(rt.block_on(redb.get("k")).unwrap()))
    });
    let mut group = c.benchmark_group("storage/redb");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    group.bench_function("put (durable: one fsync per write)", |b| {
        b.iter(|| rt.block_on(redb.put("k", vec![7u8; 512])).unwrap())
    });
    group.finish();
}

criterion_group!(benches, sigv4, barrier, policy, storage);
criterion_main!(benches);
