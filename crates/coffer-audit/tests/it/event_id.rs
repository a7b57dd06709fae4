//! Event ids: unique across threads, shaped like version-4 UUIDs.

use std::collections::HashSet;

use coffer_audit::next_event_id;

#[test]
fn event_ids_are_unique_and_uuid_shaped() {
    let threads: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| (0..5000).map(|_| next_event_id()).collect::<Vec<_>>()))
        .collect();
    let ids: Vec<String> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    for id in &ids {
        let b = id.as_bytes();
        assert_eq!(b.len(), 36, "{id}");
        for (i, c) in b.iter().enumerate() {
            match i {
                8 | 13 | 18 | 23 => assert_eq!(*c, b'-', "{id}"),
                _ => assert!(c.is_ascii_digit() || (b'a'..=b'f').contains(c), "{id}"),
            }
        }
        assert_eq!(b[14], b'4', "version 4: {id}");
        assert!(b"89ab".contains(&b[19]), "RFC 4122 variant: {id}");
    }
}
