//! Fuzz targets of the offline audit readers: an audit file (sealed lines) given to
//! `verify_files`, `search` and the `LookupEvents` index, and the `LookupEvents` request
//! with its pagination token. See `docs/reliability.md`.

use coffer_audit::{
    DeviceKey, EventIndex, Filter, LookupEventsRequest, VerifyOptions, lookup_events, search, verify_files,
};
use coffer_fuzz::Fuzz;

use crate::write_log;

/// Property: reading a file never panics nor hangs, whatever its bytes; `verify_files` with
/// the chain key passes only a file whose lines are the first lines of the file the broker
/// wrote (any changed, dropped, reordered or inserted line is a problem).
#[test]
fn fuzz_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let mut seeds = Vec::new();
    for n in [1, 4] {
        let sub = dir.path().join(format!("log-{n}"));
        std::fs::create_dir_all(&sub).unwrap();
        let files = write_log(&sub, &key, n, 1 << 20);
        assert_eq!(files.len(), 1);
        seeds.push((format!("{n}-events.log"), std::fs::read(&files[0]).unwrap()));
    }
    let originals: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "audit_log")
        .seeds(seeds)
        .dictionary(&[
            "\n",
            "\"coffer\":",
            "\"seq\":",
            "\"prev\":",
            "\"mac\":",
            "\"hash\":",
            "hmac-sha256:",
            "}",
        ]);
    let path = dir.path().join("fuzz.log");
    let chain_key = key.chain_key();
    fuzz.run(|input| {
        std::fs::write(&path, input).unwrap();
        let files = [path.clone()];
        let _ = verify_files(&files, &VerifyOptions::default());
        let keyed = verify_files(
            &files,
            &VerifyOptions {
                key: Some(&chain_key),
                expected_head: None,
                require_genesis: true,
            },
        );
        if let Ok(events) = search(&files, &Filter::default()) {
            for e in events.flatten() {
                let _ = e.event.event_name;
            }
        }
        if let Ok(index) = EventIndex::from_files(&files) {
            let _ = lookup_events(&index, &LookupEventsRequest::default());
        }
        if keyed.is_ok_and(|r| r.is_ok()) && !input.is_empty() {
            let prefix_of_a_seed = originals.iter().any(|o| o.starts_with(input) && input.ends_with(b"\n"))
                || originals
                    .iter()
                    .any(|o| o.starts_with(input) && o.get(input.len()) == Some(&b'\n'));
            assert!(prefix_of_a_seed, "verify passed a file the broker did not write");
        }
    });
}

/// Property: any `LookupEvents` body decodes or is refused without panicking, and the
/// lookup (following up to four `NextToken`s) answers or errs without panicking.
#[test]
fn fuzz_lookup_request() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let files = write_log(dir.path(), &key, 60, 1 << 20);
    let index = EventIndex::from_files(&files).unwrap();
    let token = lookup_events(
        &index,
        &LookupEventsRequest {
            max_results: Some(7),
            ..Default::default()
        },
    )
    .unwrap()
    .next_token
    .unwrap();
    let seeds = [
        ("default", "{}".to_owned()),
        ("page-2", format!(r#"{{"MaxResults":7,"NextToken":"{token}"}}"#)),
        (
            "attribute-and-range",
            r#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"GetSecretValue"}],"StartTime":1714521600,"EndTime":"2024-05-01T00:00:30Z","MaxResults":50}"#.to_owned(),
        ),
        (
            "resource-name",
            r#"{"LookupAttributes":[{"AttributeKey":"ResourceName","AttributeValue":"arn:aws:secretsmanager:us-east-1:111122223333:secret:app-1-AbCdEf"}],"StartTime":1714521600.5}"#.to_owned(),
        ),
        (
            "username-readonly",
            r#"{"LookupAttributes":[{"AttributeKey":"Username","AttributeValue":"alice"},{"AttributeKey":"ReadOnly","AttributeValue":"true"}],"EventCategory":"insight"}"#.to_owned(),
        ),
    ];
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "lookup_request")
        .seeds(seeds)
        .dictionary(&[
            "EventId",
            "EventName",
            "ReadOnly",
            "Username",
            "ResourceType",
            "ResourceName",
            "EventSource",
            "AccessKeyId",
            "NextToken",
            "MaxResults",
            "1e300",
            "-62135596800",
            "253402300800",
        ]);
    fuzz.run(|input| {
        let Ok(mut req) = serde_json::from_slice::<LookupEventsRequest>(input) else {
            return;
        };
        for _ in 0..5 {
            match lookup_events(&index, &req) {
                Ok(resp) => match resp.next_token {
                    Some(t) => req.next_token = Some(t),
                    None => break,
                },
                Err(e) => {
                    let _ = (e.code(), e.kind);
                    break;
                }
            }
        }
    });
}
