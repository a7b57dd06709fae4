//! Test support that checks, rather than assumes, that secret material is wiped before its
//! memory is freed.
//!
//! [`CanaryAlloc`] is a global allocator over [`std::alloc::System`]. A test installs it in its
//! own binary (`#[global_allocator]`), puts a known 32-byte pattern (a canary, or the bytes of a
//! key it knows) into the code under test and calls [`watch`]: while the closure runs, every
//! region being freed, and every region `realloc` moves away from, is searched for the pattern
//! before it goes back to the system allocator. The [`Report`] counts the regions that still
//! held it. A region wiped before it was freed (`zeroize`, `Zeroizing`, `SecretBytes`) does not
//! count; a plain `Vec<u8>` dropped with the canary in it does.
//!
//! What it cannot see: memory allocated outside the Rust global allocator (aws-lc's own
//! `malloc` calls), stack copies, registers, copies the kernel makes (pipes, sockets, page
//! cache), swapped pages and core dumps. See "Zeroization" in `docs/reliability.md`.
//!
//! Unlike every other crate, this one does not opt into the workspace lints, which forbid
//! `unsafe`: an allocator cannot be written without it. The `unsafe` is confined to
//! [`alloc`](crate::alloc); the rest of the crate denies it.

#![deny(unsafe_code, unsafe_op_in_unsafe_fn, unused_must_use)]
#![warn(rust_2018_idioms, missing_docs)]

#[allow(unsafe_code)]
mod alloc;

pub use alloc::CanaryAlloc;

use std::sync::Mutex;

/// Length of the pattern [`watch`] searches for.
pub const PATTERN_LEN: usize = alloc::PATTERN_LEN;

/// A canary that is valid UTF-8 (so it can be a `String` too) and 32 bytes long (so it can be
/// a `Key256` too), and unlikely to occur by chance.
pub const CANARY: [u8; PATTERN_LEN] = *b"coffer-zeroize-canary-0123456789";

/// What one [`watch`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Regions freed or moved away by `realloc` that still held the pattern.
    pub leaks: usize,
    /// The sizes of the first of those regions (at most 16), to help
    /// find where a leak comes from.
    pub sizes: Vec<usize>,
}

/// One watch at a time: the switch is global (frees on every thread are checked, so work the
/// closure hands to other threads is covered), so tests that watch must not overlap.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `f` with the allocator searching every freed region for `pattern`, and reports what it
/// found. Everything `f` creates and drops is checked; what outlives `f` is not.
///
/// Only meaningful in a binary whose global allocator is [`CanaryAlloc`]; elsewhere the report
/// is always empty (see [`installed`]).
pub fn watch<R>(pattern: &[u8; PATTERN_LEN], f: impl FnOnce() -> R) -> (R, Report) {
    // A test that panicked inside a watch poisons the lock; the state it guards is reset below.
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    alloc::start(pattern);
    // Stops watching even if `f` panics, so a failed test does not disturb the next one.
    struct Stop;
    impl Drop for Stop {
        fn drop(&mut self) {
            alloc::stop();
        }
    }
    let stop = Stop;
    let out = f();
    drop(stop);
    let (leaks, sizes) = alloc::results();
    (out, Report { leaks, sizes })
}

/// Whether [`CanaryAlloc`] is this binary's global allocator (it counts every allocation).
pub fn installed() -> bool {
    let before = alloc::allocations();
    drop(std::hint::black_box(Box::new(0u64)));
    alloc::allocations() != before
}
