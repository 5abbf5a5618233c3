//! HMAC-SHA256 with the key schedule done once (RFC 2104), on sha2's block function.
//!
//! A verification hashes a short id, so the generic buffered HMAC wrappers cost as much as
//! the hashing itself. Here the two keyed states (after the `key ⊕ ipad` and `key ⊕ opad`
//! blocks) are computed once per key; a MAC is then the message blocks plus one padding
//! block on the inner state and exactly one block on the outer state, all through
//! [`compress256`], with no allocation. The result is checked against RFC 4231 and, by
//! property tests, against the `hmac` crate for every length around the block boundaries.

use sha2::block_api::compress256;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// SHA-256 initial hash value H(0) (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
const BLOCK: usize = 64;

/// HMAC-SHA256 keyed once; cloning copies 64 bytes.
#[derive(Clone)]
pub(crate) struct PreKeyedHmac {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl PreKeyedHmac {
    /// Runs the HMAC key schedule for `key` (of any length).
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut pad = [0u8; BLOCK];
        let mut keyed = |xor: u8| {
            for (p, k) in pad.iter_mut().zip(&block) {
                *p = k ^ xor;
            }
            let mut state = SHA256_IV;
            compress256(&mut state, core::slice::from_ref(&pad));
            state
        };
        let inner = keyed(0x36);
        let outer = keyed(0x5c);
        pad.zeroize();
        block.zeroize();
        Self { inner, outer }
    }

    /// `HMAC-SHA256(key, message)`.
    #[inline]
    pub(crate) fn mac(&self, message: &[u8]) -> [u8; 32] {
        // Inner hash: the message's whole blocks, then the tail with SHA-256 padding. The
        // length counts the ipad block already absorbed into `self.inner`.
        let mut state = self.inner;
        let (blocks, tail) = message.as_chunks::<BLOCK>();
        if !blocks.is_empty() {
            // An empty call still pays for loading and storing the state.
            compress256(&mut state, blocks);
        }
        let bits = (BLOCK as u64 + message.len() as u64).wrapping_mul(8);
        if tail.len() < BLOCK - 8 {
            // The usual case (ids are short): padding and length fit in the last block.
            let mut last = [0u8; BLOCK];
            last[..tail.len()].copy_from_slice(tail);
            last[tail.len()] = 0x80;
            last[BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
            compress256(&mut state, core::slice::from_ref(&last));
        } else {
            let mut last = [[0u8; BLOCK]; 2];
            last[0][..tail.len()].copy_from_slice(tail);
            last[0][tail.len()] = 0x80;
            last[1][BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
            compress256(&mut state, &last);
        }

        // Outer hash: one block holding the inner digest, padding and length (64 + 32 bytes).
        let mut block = [0u8; BLOCK];
        for (chunk, word) in block.as_chunks_mut::<4>().0.iter_mut().zip(state) {
            *chunk = word.to_be_bytes();
        }
        block[32] = 0x80;
        block[BLOCK - 8..].copy_from_slice(&((BLOCK as u64 + 32) * 8).to_be_bytes());
        let mut outer = self.outer;
        compress256(&mut outer, core::slice::from_ref(&block));

        let mut out = [0u8; 32];
        for (chunk, word) in out.as_chunks_mut::<4>().0.iter_mut().zip(outer) {
            *chunk = word.to_be_bytes();
        }
        out
    }
}

impl Drop for PreKeyedHmac {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

/// Constant-time equality of two MACs: the differences are OR-ed together over the whole
/// length, and only the final word is tested (through `subtle`).
#[inline]
pub(crate) fn macs_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u64;
    for (x, y) in a.as_chunks::<8>().0.iter().zip(b.as_chunks::<8>().0) {
        diff |= u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y);
    }
    diff.ct_eq(&0).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::digest::common::hazmat::SerializableState;

    #[test]
    fn iv_is_sha2s_own() {
        let serialized = Sha256::default().serialize();
        let words: Vec<u32> = serialized[..32]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(words, SHA256_IV);
    }

    #[test]
    fn matches_the_hmac_crate_for_every_length() {
        for key_len in [0, 1, 16, 57, 63, 64, 65, 200] {
            let key: Vec<u8> = (0..key_len).map(|i| (i * 13 + 1) as u8).collect();
            let fast = PreKeyedHmac::new(&key);
            for len in 0..=260 {
                let msg: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut reference = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
                reference.update(&msg);
                let want: [u8; 32] = reference.finalize().into_bytes().into();
                assert_eq!(fast.mac(&msg), want, "key {key_len} msg {len}");
            }
        }
    }

    #[test]
    fn equality_sees_every_byte() {
        let a = [7u8; 32];
        assert!(macs_equal(&a, &a));
        for i in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!macs_equal(&a, &b));
            }
        }
    }
}
