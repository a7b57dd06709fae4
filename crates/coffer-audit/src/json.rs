//! The few JSON writing primitives the audit line needs, appending straight to a byte buffer.
//!
//! Strings are escaped exactly as `serde_json` escapes them (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`,
//! `\t`, other control characters as lowercase `\u00xx`; `/` and non-ASCII as they are), so a
//! line's bytes do not depend on which writer produced it. What differs is speed: audit lines
//! are mostly ARNs, ids and hex, with nothing to escape, and [`push_str`] checks 16 bytes at a
//! time and copies clean runs whole instead of deciding byte by byte.

/// Appends `s` as a quoted, escaped JSON string.
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut clean = 0; // start of the run not yet copied
    let mut i = 0;
    while i < bytes.len() {
        // A fixed-size chunk and a branch-free test, so the compiler checks it with SIMD.
        if let Some(chunk) = bytes[i..].first_chunk::<16>()
            && chunk.iter().fold(0u8, |any, &b| any | u8::from(needs_escape(b))) == 0
        {
            i += 16;
            continue;
        }
        let b = bytes[i];
        if needs_escape(b) {
            out.extend_from_slice(&bytes[clean..i]);
            push_escape(out, b);
            clean = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[clean..]);
    out.push(b'"');
}

/// Appends `,"key":` (or `"key":` for the first member, when `first` is set; it is cleared).
pub(crate) fn push_key(out: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    push_str(out, key);
    out.push(b':');
}

/// Appends `true` or `false`.
pub(crate) fn push_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

fn push_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0x0f)]);
            return;
        }
    };
    out.push(b'\\');
    out.push(short);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        push_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_exactly_like_serde_json() {
        let mut cases: Vec<String> = (0u32..0x80).filter_map(char::from_u32).map(String::from).collect();
        cases.extend(
            [
                "",
                "plain arn:aws:secretsmanager:us-east-1:111122223333:secret:app-AbCdEf",
                "quote \" backslash \\ slash / tab \t newline \n nul \0 del \u{7f}",
                "unicode é € 🦀 and \u{2028}",
                "0123456789abcdef\"0123456789abcdef\\",
                "exactly sixteen!",
                "\u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{e}\u{f}\u{10}\u{1f}",
            ]
            .map(String::from),
        );
        // Every escape at every offset around the 16-byte chunk boundaries.
        for len in 0..40 {
            for special in ['"', '\\', '\n', '\u{1}', 'é'] {
                let mut s = "x".repeat(len);
                s.push(special);
                s.push_str(&"y".repeat(20));
                cases.push(s);
            }
        }
        for s in &cases {
            assert_eq!(ours(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }
}
