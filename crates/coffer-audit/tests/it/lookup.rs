//! CloudTrail `LookupEvents`: pagination, time range, attributes, errors, wire names.

use coffer_audit::{
    EventIndex, LookupAttribute, LookupErrorKind, LookupEventsRequest, LookupEventsResponse, lookup_events,
};
use serde_json::json;

use crate::{AuditEvent, DeviceKey, at, user, write_log};

fn index(n: i64) -> (tempfile::TempDir, EventIndex) {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let files = write_log(dir.path(), &key, n, 50_000);
    let idx = EventIndex::from_files(&files).unwrap();
    (dir, idx)
}

fn attr(k: &str, v: &str) -> Vec<LookupAttribute> {
    vec![LookupAttribute {
        attribute_key: k.into(),
        attribute_value: v.into(),
    }]
}

fn err(idx: &EventIndex, req: LookupEventsRequest) -> LookupErrorKind {
    lookup_events(idx, &req).unwrap_err().kind
}

#[test]
fn pages_newest_first_without_gaps_or_duplicates() {
    let (_d, idx) = index(120);
    assert_eq!(idx.len(), 120);
    let mut seen = Vec::new();
    let mut req = LookupEventsRequest::default();
    let mut pages = Vec::new();
    loop {
        let resp = lookup_events(&idx, &req).unwrap();
        pages.push(resp.events.len());
        seen.extend(resp.events.iter().map(|e| e.event_time));
        match resp.next_token {
            Some(t) => req.next_token = Some(t),
            None => break,
        }
    }
    assert_eq!(pages, [50, 50, 20]);
    let expected: Vec<_> = (0..120).rev().map(at).collect();
    assert_eq!(seen, expected);

    let resp = lookup_events(
        &idx,
        &LookupEventsRequest {
            max_results: Some(7),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(resp.events.len(), 7);
    assert!(resp.next_token.is_some());
    // Exactly one page: no token.
    let (_d, small) = index(5);
    let resp = lookup_events(
        &small,
        &LookupEventsRequest {
            max_results: Some(5),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((resp.events.len(), resp.next_token), (5, None));
}

#[test]
fn time_range_is_inclusive() {
    let (_d, idx) = index(30);
    let req = LookupEventsRequest {
        start_time: Some(at(10)),
        end_time: Some(at(14)),
        ..Default::default()
    };
    let resp = lookup_events(&idx, &req).unwrap();
    let times: Vec<_> = resp.events.iter().map(|e| e.event_time).collect();
    assert_eq!(times, [at(14), at(13), at(12), at(11), at(10)]);
}

#[test]
fn attribute_filters() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let (broker, dev) = crate::file_broker(dir.path(), &key, 0);
    for i in 0..6 {
        broker.log(&crate::get_secret_value(i)).unwrap();
    }
    let put = AuditEvent::aws("secretsmanager", "PutSecretValue", user("bob"), at(50), "req-put")
        .request(json!({ "SecretId": "app-1", "SecretString": "canary" }))
        .resource(crate::secret_arn("app-1"), "AWS::SecretsManager::Secret", None);
    let put_id = put.event_id.clone();
    broker.log(&put).unwrap();
    let idx = EventIndex::from_files(&dev.files().unwrap()).unwrap();
    let count = |k: &str, v: &str| {
        lookup_events(
            &idx,
            &LookupEventsRequest {
                lookup_attributes: attr(k, v),
                ..Default::default()
            },
        )
        .unwrap()
        .events
        .len()
    };
    assert_eq!(count("EventName", "GetSecretValue"), 6);
    assert_eq!(count("EventName", "PutSecretValue"), 1);
    assert_eq!(count("Username", "bob"), 1);
    assert_eq!(count("Username", "alice"), 6);
    assert_eq!(count("AccessKeyId", "AKIABOB"), 1);
    assert_eq!(count("EventId", &put_id), 1);
    assert_eq!(count("ReadOnly", "true"), 6);
    assert_eq!(count("ReadOnly", "false"), 1);
    assert_eq!(count("EventSource", "secretsmanager.amazonaws.com"), 7);
    assert_eq!(count("EventSource", "kms.amazonaws.com"), 0);
    assert_eq!(count("ResourceType", "AWS::SecretsManager::Secret"), 7);
    assert_eq!(count("ResourceName", &crate::secret_arn("app-1")), 3);
    assert_eq!(count("ResourceName", "app-2-AbCdEf"), 2);

    let resp = lookup_events(
        &idx,
        &LookupEventsRequest {
            lookup_attributes: attr("EventName", "PutSecretValue"),
            ..Default::default()
        },
    )
    .unwrap();
    let e = &resp.events[0];
    assert_eq!((e.read_only.as_str(), e.username.as_deref()), ("false", Some("bob")));
    assert_eq!(e.resources[0].resource_name, crate::secret_arn("app-1"));
    assert!(!e.cloud_trail_event.contains("canary"));
    let inner: serde_json::Value = serde_json::from_str(&e.cloud_trail_event).unwrap();
    assert_eq!(inner["eventID"], put_id.as_str());
    assert!(inner.get("coffer").is_none());
}

#[test]
fn errors() {
    let (_d, idx) = index(3);
    let two = vec![
        LookupAttribute {
            attribute_key: "EventName".into(),
            attribute_value: "A".into(),
        },
        LookupAttribute {
            attribute_key: "Username".into(),
            attribute_value: "b".into(),
        },
    ];
    use LookupErrorKind::*;
    let req = |r: LookupEventsRequest| r;
    assert_eq!(
        err(
            &idx,
            req(LookupEventsRequest {
                lookup_attributes: two,
                ..Default::default()
            })
        ),
        InvalidLookupAttributes
    );
    assert_eq!(
        err(
            &idx,
            LookupEventsRequest {
                lookup_attributes: attr("Color", "red"),
                ..Default::default()
            }
        ),
        InvalidLookupAttributes
    );
    assert_eq!(
        err(
            &idx,
            LookupEventsRequest {
                lookup_attributes: attr("ReadOnly", "maybe"),
                ..Default::default()
            }
        ),
        InvalidLookupAttributes
    );
    assert_eq!(
        err(
            &idx,
            LookupEventsRequest {
                lookup_attributes: attr("EventName", ""),
                ..Default::default()
            }
        ),
        InvalidLookupAttributes
    );
    assert_eq!(
        err(
            &idx,
            LookupEventsRequest {
                start_time: Some(at(10)),
                end_time: Some(at(5)),
                ..Default::default()
            }
        ),
        InvalidTimeRange
    );
    for bad in [0, 51, -1] {
        assert_eq!(
            err(
                &idx,
                LookupEventsRequest {
                    max_results: Some(bad),
                    ..Default::default()
                }
            ),
            InvalidMaxResults
        );
    }
    assert_eq!(
        err(
            &idx,
            LookupEventsRequest {
                next_token: Some("garbage!".into()),
                ..Default::default()
            }
        ),
        InvalidNextToken
    );
    // A token only works with the parameters it came from.
    let first = lookup_events(
        &idx,
        &LookupEventsRequest {
            max_results: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let token = first.next_token.unwrap();
    let other = LookupEventsRequest {
        lookup_attributes: attr("EventName", "GetSecretValue"),
        max_results: Some(1),
        next_token: Some(token.clone()),
        ..Default::default()
    };
    assert_eq!(err(&idx, other), InvalidNextToken);
    // MaxResults may change between pages.
    let next = LookupEventsRequest {
        max_results: Some(2),
        next_token: Some(token),
        ..Default::default()
    };
    assert_eq!(lookup_events(&idx, &next).unwrap().events.len(), 2);
    assert_eq!(
        err(
            &idx,
            LookupEventsRequest {
                event_category: Some("data".into()),
                ..Default::default()
            }
        ),
        InvalidEventCategory
    );
    let insight = LookupEventsRequest {
        event_category: Some("insight".into()),
        ..Default::default()
    };
    assert!(lookup_events(&idx, &insight).unwrap().events.is_empty());

    let e = lookup_events(
        &idx,
        &LookupEventsRequest {
            max_results: Some(0),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "InvalidMaxResultsException");
}

#[test]
fn wire_format_is_cloudtrails() {
    let (_d, idx) = index(3);
    // What `aws cloudtrail lookup-events --lookup-attributes ... --start-time ...` sends.
    let req: LookupEventsRequest = serde_json::from_value(json!({
        "LookupAttributes": [{ "AttributeKey": "EventName", "AttributeValue": "GetSecretValue" }],
        "StartTime": at(1).unix_timestamp() as f64,
        "EndTime": "2024-05-01T00:00:02Z",
        "MaxResults": 1
    }))
    .unwrap();
    let resp = lookup_events(&idx, &req).unwrap();
    let wire = serde_json::to_value(&resp).unwrap();
    let ev = &wire["Events"][0];
    assert_eq!(ev["EventName"], "GetSecretValue");
    assert_eq!(ev["EventTime"], at(2).unix_timestamp());
    assert_eq!(ev["ReadOnly"], "true");
    assert_eq!(ev["Username"], "alice");
    assert_eq!(ev["AccessKeyId"], "AKIAALICE");
    assert_eq!(ev["EventSource"], "secretsmanager.amazonaws.com");
    assert!(ev["Resources"][0]["ResourceType"].is_string() && ev["Resources"][0]["ResourceName"].is_string());
    assert!(ev["CloudTrailEvent"].is_string());
    assert!(ev["EventId"].is_string());
    assert!(wire["NextToken"].is_string());
    let back: LookupEventsResponse = serde_json::from_value(wire).unwrap();
    assert_eq!(back, resp);
}
