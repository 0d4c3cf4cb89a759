//! Canonical header names told apart quickly. The layers look canonical headers up several
//! times a message; comparing names a byte at a time, ignoring case, was most of a lookup.
//! Here a name is matched with two 8-byte words: every canonical name is 9 to 15 bytes of
//! lowercase letters and hyphens, and a letter differs from its other case only in bit 0x20.

use super::names;

/// Places in [`names::ALL`] of the three a new correlation sets.
pub(super) const MESSAGE_ID: usize = 0;
pub(super) const CORRELATION_ID: usize = 1;
pub(super) const TIMESTAMP: usize = 9;

/// A canonical name's first and last eight bytes, and where in them its letters are (0x20 in
/// each letter's byte).
struct Pattern {
    words: [u64; 2],
    letters: [u64; 2],
}

const fn word(b: &[u8], at: usize, letters_only: bool) -> u64 {
    let mut w = 0u64;
    let mut i = 0;
    while i < 8 {
        let byte = b[at + i];
        assert!(!byte.is_ascii_uppercase(), "canonical names are lowercase");
        let v = if letters_only {
            if byte.is_ascii_lowercase() {
                0x20
            } else {
                0
            }
        } else {
            byte
        };
        w |= (v as u64) << (8 * i);
        i += 1;
    }
    w
}

const PATTERNS: [Pattern; names::ALL.len()] = {
    let mut out = [const {
        Pattern {
            words: [0; 2],
            letters: [0; 2],
        }
    }; names::ALL.len()];
    let mut i = 0;
    while i < names::ALL.len() {
        let b = names::ALL[i].as_bytes();
        assert!(b.len() >= 8, "canonical names are at least 8 bytes");
        let last = b.len() - 8;
        out[i] = Pattern {
            words: [word(b, 0, false), word(b, last, false)],
            letters: [word(b, 0, true), word(b, last, true)],
        };
        i += 1;
    }
    out
};

/// The place of `name` in [`names::ALL`], ignoring ASCII case.
pub(super) fn index(name: &str) -> Option<usize> {
    // By length first: at most three names share one.
    let candidates: &[usize] = match name.len() {
        9 => &[9],
        10 => &[0, 4, 7],
        11 => &[6],
        12 => &[2, 8],
        13 => &[5],
        14 => &[1],
        15 => &[3],
        _ => return None,
    };
    let b = name.as_bytes();
    let first = u64::from_le_bytes(b[..8].try_into().ok()?);
    let last = u64::from_le_bytes(b[b.len() - 8..].try_into().ok()?);
    candidates.iter().copied().find(|&i| {
        let p = &PATTERNS[i];
        // Equal ignoring case: every differing bit is a letter's case bit.
        ((first ^ p.words[0]) & !p.letters[0]) | ((last ^ p.words[1]) & !p.letters[1]) == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_canonical_name_is_found_by_its_place_whatever_the_case() {
        for (i, name) in names::ALL.iter().enumerate() {
            assert_eq!(index(name), Some(i), "{name}");
            assert_eq!(index(&name.to_ascii_uppercase()), Some(i));
            let mixed: String = name
                .chars()
                .enumerate()
                .map(|(k, c)| {
                    if k % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            assert_eq!(index(&mixed), Some(i), "{mixed}");
        }
        assert_eq!(names::ALL[MESSAGE_ID], names::MESSAGE_ID);
        assert_eq!(names::ALL[CORRELATION_ID], names::CORRELATION_ID);
        assert_eq!(names::ALL[TIMESTAMP], names::TIMESTAMP);
    }

    #[test]
    fn other_names_are_not_canonical() {
        // A hyphen and a carriage return differ in bit 0x20 too: only letters may.
        for other in [
            "",
            "x-tenant",
            "message-ie",
            "message\rid",
            "timestamps",
            "traceparenT2",
            "message_id",
            "messageXid",
            "év-type1",
        ] {
            assert_eq!(index(other), None, "{other:?}");
        }
        // Each name with one byte changed, at every place.
        for name in names::ALL {
            for at in 0..name.len() {
                let mut b = name.as_bytes().to_vec();
                b[at] ^= 0x01;
                let changed = String::from_utf8(b).unwrap();
                assert_eq!(index(&changed), None, "{changed:?}");
            }
        }
    }
}
