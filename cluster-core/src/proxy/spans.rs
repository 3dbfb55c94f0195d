//! Where the fields of a head parsed by httparse lie in its bytes, so that once the head is
//! split off its buffer (and frozen) each name and value can be a slice of it: no copy.

use smallvec::SmallVec;

/// One field: the offset and length of its name, then of its value.
pub(crate) type Span = (u32, u32, u32, u32);

/// The spans of a head's fields: on the stack for up to 32 fields (and not zeroed first, as
/// an array of httparse's 100 would be on every request).
pub(crate) type Spans = SmallVec<[Span; 32]>;

/// The spans of `fields`, parsed from a buffer that starts at `base`. The offsets fit in
/// 32 bits as long as the head does: callers refuse longer heads before using them.
pub(crate) fn of(base: *const u8, fields: &[httparse::Header<'_>]) -> Spans {
    let at = |p: *const u8| (p as usize - base as usize) as u32;
    fields
        .iter()
        .map(|h| {
            (at(h.name.as_ptr()), h.name.len() as u32, at(h.value.as_ptr()), h.value.len() as u32)
        })
        .collect()
}
