//! Hash indexes over the ledger that answer in time independent of its size.
//!
//! [`MultiMap`] maps a 64-bit key hash to a list of `u32` ids as a linked list threaded through
//! one vector: eight bytes per posting and one hash-table slot per distinct key, which keeps the
//! fuzzy index of a million invoices (about eight deletion variants each) near 150 MB where a
//! `HashMap<String, Vec<u32>>` would take several times that. Hash collisions are harmless:
//! every hit is verified by a similarity measure afterwards.

use rustc_hash::FxHashMap;

/// End of a posting list.
const NIL: u32 = u32::MAX;

/// FNV-1a over the bytes of a key given in parts: the same key gives the same hash however it
/// is split, so deletion variants are hashed without building their strings.
pub(crate) fn hash_parts(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Hash of a key string.
pub(crate) fn key_hash(s: &str) -> u64 {
    hash_parts(&[s.as_bytes()])
}

/// A multimap from key hashes to ids, append-only; removal is done by the caller filtering
/// (a closed invoice stays indexed and is skipped at lookup).
#[derive(Default, Debug)]
pub(crate) struct MultiMap {
    heads: FxHashMap<u64, u32>,
    /// (id, next posting) pairs.
    postings: Vec<(u32, u32)>,
}

impl MultiMap {
    /// Room for `keys` distinct keys and `postings` (key, id) pairs.
    pub(crate) fn with_capacities(keys: usize, postings: usize) -> Self {
        MultiMap {
            heads: FxHashMap::with_capacity_and_hasher(keys, Default::default()),
            postings: Vec::with_capacity(postings),
        }
    }

    pub(crate) fn insert(&mut self, key: u64, id: u32) {
        let slot = self.postings.len() as u32;
        let head = self.heads.entry(key).or_insert(NIL);
        // Skip an exact repeat at the head (the same id indexed twice under one key).
        if *head != NIL && self.postings[*head as usize].0 == id {
            return;
        }
        self.postings.push((id, *head));
        *head = slot;
    }

    /// The ids under a key, newest first.
    pub(crate) fn get(&self, key: u64) -> impl Iterator<Item = u32> + '_ {
        let mut at = self.heads.get(&key).copied().unwrap_or(NIL);
        std::iter::from_fn(move || {
            if at == NIL {
                return None;
            }
            let (id, next) = self.postings[at as usize];
            at = next;
            Some(id)
        })
    }

    /// Bytes held, for the memory figures.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.heads.capacity() * (std::mem::size_of::<(u64, u32)>() + 1)
            + self.postings.capacity() * std::mem::size_of::<(u32, u32)>()
    }
}

/// The hashes of the single-deletion variants of a key: each string with one character
/// removed. Two keys within one edit (substitution, insertion, deletion, adjacent transposition)
/// share a variant or one is a variant of the other, so looking these up finds typos without
/// scanning.
pub(crate) fn deletion_variants(key: &str) -> impl Iterator<Item = u64> + '_ {
    let b = key.as_bytes();
    (0..b.len()).filter_map(move |i| {
        // Removing either of two equal neighbours gives the same variant once.
        if i > 0 && b[i] == b[i - 1] {
            return None;
        }
        Some(hash_parts(&[&b[..i], &b[i + 1..]]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multimap_lists_every_id_under_a_key() {
        let mut m = MultiMap::default();
        m.insert(1, 10);
        m.insert(1, 11);
        m.insert(1, 11);
        m.insert(2, 20);
        assert_eq!(m.get(1).collect::<Vec<_>>(), [11, 10]);
        assert_eq!(m.get(2).collect::<Vec<_>>(), [20]);
        assert_eq!(m.get(3).count(), 0);
    }

    #[test]
    fn deletion_variants_meet_for_one_edit() {
        let has_common = |a: &str, b: &str| {
            let va: Vec<u64> = deletion_variants(a).chain([key_hash(a)]).collect();
            deletion_variants(b)
                .chain([key_hash(b)])
                .any(|v| va.contains(&v))
        };
        assert!(has_common("12345", "12354")); // transposition
        assert!(has_common("12345", "1245")); // deletion
        assert!(has_common("12345", "12945")); // substitution
        assert!(!has_common("12345", "67890"));
        assert_eq!(deletion_variants("1123").count(), 3);
    }
}
