//! `NextToken` pagination over sorted lists.
//!
//! Every listed item has a sort key (a string whose byte order is the list order). The token
//! is the base64url form of the last returned key, so a page continues strictly after it
//! even if items were added or removed in between. [`FirstPage`] selects a page from items
//! offered in any order, holding only a page of them.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{AwsError, AwsErrorCode};

fn invalid_token() -> AwsError {
    AwsError::new(
        AwsErrorCode::InvalidNextTokenException,
        "The NextToken value is invalid.",
    )
}

pub(crate) fn encode_token(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

pub(crate) fn decode_token(token: &str) -> Result<String, AwsError> {
    let bytes = URL_SAFE_NO_PAD.decode(token.as_bytes()).map_err(|_| invalid_token())?;
    String::from_utf8(bytes).map_err(|_| invalid_token())
}

/// Returns one page of `items` (in any order) in the requested direction after `token`, and
/// the token of the next page if more items follow.
pub(crate) fn page<T>(
    items: Vec<(String, T)>,
    ascending: bool,
    token: Option<&str>,
    max: usize,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let mut page = FirstPage::new(ascending, token, max)?;
    for (key, item) in items {
        page.offer(key, item);
    }
    Ok(page.finish())
}

/// One page of a list whose items are offered one at a time, in any order: it keeps only the
/// `max + 1` first items after the token, so a page of a million-item list holds a page of
/// items in memory, not the list.
pub(crate) struct FirstPage<T> {
    /// The kept items; the top is the one that comes last in list order.
    heap: BinaryHeap<Ranked<T>>,
    ascending: bool,
    after: Option<String>,
    max: usize,
}

/// An item and its sort key, ordered by list order (the key reversed for a descending list).
struct Ranked<T> {
    key: String,
    ascending: bool,
    item: T,
}

impl<T> Ord for Ranked<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        let by_key = self.key.cmp(&other.key);
        if self.ascending { by_key } else { by_key.reverse() }
    }
}

impl<T> PartialOrd for Ranked<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> PartialEq for Ranked<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<T> Eq for Ranked<T> {}

impl<T> FirstPage<T> {
    /// A page of at most `max` items strictly after `token` (a `NextToken`) in the direction.
    pub(crate) fn new(ascending: bool, token: Option<&str>, max: usize) -> Result<Self, AwsError> {
        Ok(Self {
            heap: BinaryHeap::new(),
            ascending,
            after: token.map(decode_token).transpose()?,
            max,
        })
    }

    /// Whether an item with this key would be kept now: it follows the token and, once the
    /// page is full, comes before the last kept item. Lets a caller skip building items.
    pub(crate) fn wants(&self, key: &str) -> bool {
        let after_token = match &self.after {
            None => true,
            Some(a) if self.ascending => key > a.as_str(),
            Some(a) => key < a.as_str(),
        };
        let before_last = match self.heap.peek() {
            Some(last) if self.heap.len() > self.max => {
                if self.ascending {
                    key < last.key.as_str()
                } else {
                    key > last.key.as_str()
                }
            }
            _ => true,
        };
        after_token && before_last
    }

    pub(crate) fn offer(&mut self, key: String, item: T) {
        if !self.wants(&key) {
            return;
        }
        self.heap.push(Ranked {
            key,
            ascending: self.ascending,
            item,
        });
        // One more than a page is kept: it tells whether a next page exists.
        if self.heap.len() > self.max.saturating_add(1) {
            self.heap.pop();
        }
    }

    /// The page in list order, and the token of the next page if more items follow.
    pub(crate) fn finish(self) -> (Vec<T>, Option<String>) {
        let mut ranked = self.heap.into_sorted_vec();
        let more = ranked.len() > self.max;
        ranked.truncate(self.max);
        let next = if more {
            ranked.last().map(|r| encode_token(&r.key))
        } else {
            None
        };
        (ranked.into_iter().map(|r| r.item).collect(), next)
    }
}

/// A sort key for a number that orders correctly as a string (non-negative values).
pub(crate) fn num_key(n: i64) -> String {
    format!("{:020}", n.max(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_tokens() {
        let items: Vec<(String, u32)> = (0..7).map(|i| (num_key(i), i as u32)).collect();
        let (p1, t1) = page(items.clone(), true, None, 3).unwrap();
        assert_eq!(p1, vec![0, 1, 2]);
        let (p2, t2) = page(items.clone(), true, t1.as_deref(), 3).unwrap();
        assert_eq!(p2, vec![3, 4, 5]);
        let (p3, t3) = page(items, true, t2.as_deref(), 3).unwrap();
        assert_eq!(p3, vec![6]);
        assert!(t3.is_none());
        assert_eq!(
            page(Vec::<(String, u32)>::new(), true, Some("%%%"), 3)
                .err()
                .unwrap()
                .code,
            AwsErrorCode::InvalidNextTokenException
        );
    }

    /// Items offered in any order page exactly like the sorted list, both ways.
    #[test]
    fn pages_of_unsorted_items_in_both_directions() {
        // A fixed shuffle of 0..50.
        let shuffled: Vec<i64> = (0..50).map(|i| (i * 37 + 11) % 50).collect();
        for ascending in [true, false] {
            let mut expected: Vec<i64> = (0..50).collect();
            if !ascending {
                expected.reverse();
            }
            let mut got = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let items: Vec<(String, i64)> = shuffled.iter().map(|i| (num_key(*i), *i)).collect();
                let (p, next) = page(items, ascending, token.as_deref(), 7).unwrap();
                assert!(p.len() <= 7);
                got.extend(p);
                match next {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            assert_eq!(got, expected, "ascending: {ascending}");
        }
        // Exactly a page: no token.
        let items: Vec<(String, i64)> = (0..7).map(|i| (num_key(i), i)).collect();
        assert_eq!(page(items, true, None, 7).unwrap(), ((0..7).collect(), None));
    }
}
