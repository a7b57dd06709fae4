//! [`CanaryAlloc`]: the global allocator, the only `unsafe` code in the workspace.
//!
//! Every allocation is zero-filled (`alloc_zeroed`), and the part a `realloc` adds is zeroed,
//! so each byte of a live region was written at least once before the scan reads it; the scan
//! reads through raw pointers with `read_volatile`, so the compiler cannot reason about (or
//! elide) reads of bytes a program left uninitialized.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

pub(crate) const PATTERN_LEN: usize = 32;

/// How many leaked region sizes are kept for the report.
pub(crate) const MAX_RECORDED: usize = 16;

static WATCHING: AtomicBool = AtomicBool::new(false);
static PATTERN: [AtomicU8; PATTERN_LEN] = [const { AtomicU8::new(0) }; PATTERN_LEN];
static LEAKS: AtomicUsize = AtomicUsize::new(0);
static SIZES: [AtomicUsize; MAX_RECORDED] = [const { AtomicUsize::new(0) }; MAX_RECORDED];
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// The checking allocator. Install it with `#[global_allocator] static A: CanaryAlloc =
/// CanaryAlloc;` in a test binary, then use [`crate::watch`].
pub struct CanaryAlloc;

// SAFETY: every method forwards to `System`, which upholds the `GlobalAlloc` contract, with
// layouts it accepts: the same layout the caller gave, or for the moving `realloc` a layout of
// the caller's new size and the old alignment (which `realloc`'s contract makes valid). The
// extra work (zero-filling, scanning, counting) neither allocates nor touches memory outside
// the regions the caller passed in.
unsafe impl GlobalAlloc for CanaryAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller guarantees `layout` has a non-zero size.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if WATCHING.load(Ordering::Acquire) {
            // SAFETY: `ptr` is a live region of `layout.size()` bytes (the caller's guarantee).
            unsafe { check(ptr, layout.size()) };
        }
        // SAFETY: `ptr` was allocated by `System` with `layout` (we only hand out System's).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        if !WATCHING.load(Ordering::Acquire) {
            // SAFETY: the caller's guarantees for `realloc` are System's.
            let new = unsafe { System.realloc(ptr, layout, new_size) };
            if !new.is_null() && new_size > layout.size() {
                // SAFETY: `new` has `new_size` bytes; zero the part past the old size.
                unsafe { new.add(layout.size()).write_bytes(0, new_size - layout.size()) };
            }
            return new;
        }
        // While watching, always move, as the system allocator may: the old region is then
        // checked like any freed one (growing or shrinking in place would hide the old bytes).
        // SAFETY: the caller guarantees `new_size` is non-zero and, rounded up to the
        // alignment, does not overflow, so this layout is valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_layout` has a non-zero size.
        let new = unsafe { System.alloc_zeroed(new_layout) };
        if new.is_null() {
            // The old region stays the caller's, as `realloc` promises on failure.
            return new;
        }
        // SAFETY: both regions are live, distinct and at least this long.
        unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        // SAFETY: `ptr` is live for `layout.size()` bytes, and was System's with `layout`.
        unsafe {
            check(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
        new
    }
}

/// Counts the region `ptr..ptr + len` as a leak if it holds the pattern anywhere.
///
/// # Safety
/// `ptr` must be valid for reads of `len` bytes.
unsafe fn check(ptr: *const u8, len: usize) {
    let mut pattern = [0u8; PATTERN_LEN];
    for (p, a) in pattern.iter_mut().zip(&PATTERN) {
        *p = a.load(Ordering::Relaxed);
    }
    let Some(last_start) = len.checked_sub(PATTERN_LEN) else {
        return;
    };
    for start in 0..=last_start {
        // Compare byte by byte, stopping at the first difference.
        let found = pattern.iter().enumerate().all(|(i, &b)| {
            // SAFETY: `start + i < start + PATTERN_LEN <= len`, inside the readable region.
            unsafe { ptr.add(start + i).read_volatile() == b }
        });
        if found {
            let n = LEAKS.fetch_add(1, Ordering::Relaxed);
            if let Some(slot) = SIZES.get(n) {
                slot.store(len, Ordering::Relaxed);
            }
            return;
        }
    }
}

/// Sets the pattern, clears the counters and starts watching.
pub(crate) fn start(pattern: &[u8; PATTERN_LEN]) {
    for (a, &b) in PATTERN.iter().zip(pattern) {
        a.store(b, Ordering::Relaxed);
    }
    LEAKS.store(0, Ordering::Relaxed);
    WATCHING.store(true, Ordering::Release);
}

/// Stops watching.
pub(crate) fn stop() {
    WATCHING.store(false, Ordering::Release);
}

/// The number of leaked regions and the first sizes, after [`stop`].
pub(crate) fn results() -> (usize, Vec<usize>) {
    let leaks = LEAKS.load(Ordering::Relaxed);
    let sizes = SIZES[..leaks.min(MAX_RECORDED)]
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .collect();
    (leaks, sizes)
}

/// Allocations so far (to tell whether this allocator is installed).
pub(crate) fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::Relaxed)
}
