//! The request decoding Secrets Manager uses: the shared AWS input decoder.

pub(crate) use crate::input::*;
