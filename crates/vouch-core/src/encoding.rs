//! Signature encodings: hex (either case), standard base64 (padded), base64url (unpadded).
//!
//! Decoding runs in constant time with respect to the characters of the signature, so
//! timing tells an attacker nothing about how close a guess was.

use base64ct::{Base64, Base64UrlUnpadded, Encoding};

use crate::error::ProofError;

/// How a 32-byte HMAC-SHA256 is written as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureEncoding {
    /// 64 lowercase hex characters (uppercase is accepted when verifying).
    Hex,
    /// 44 characters of standard base64 with `=` padding.
    Base64,
    /// 43 characters of URL-safe base64 without padding.
    Base64Url,
}

/// The forms a signature may take, for error messages.
const ACCEPTED: &str = "a signature must be HMAC-SHA256 written as 64 hex characters, \
    44 characters of standard base64 (with = padding) or 43 characters of URL-safe base64 \
    (no padding)";

/// Decodes one hex digit without branching on its value: `0..=15`, or `-1` when `c` is not a
/// hex digit (either case).
#[inline(always)]
fn hex_nibble(c: u8) -> i16 {
    let c = i16::from(c);
    // Each range test yields an all-ones mask (via the sign bit of the product of two
    // differences) when `c` is inside the range, and zero otherwise.
    let digit = ((0x2f - c) & (c - 0x3a)) >> 8; // '0'..='9'
    let lower = c | 0x20; // folds 'A'..='F' onto 'a'..='f'
    let letter = ((0x60 - lower) & (lower - 0x67)) >> 8; // 'a'..='f'
    -1 + (digit & (c - 0x2f)) + (letter & (lower - 0x56))
}

/// Branch-free decoding of 64 hex characters into 32 bytes. `None` if any character is not
/// a hex digit (the check is done once, after the whole input has been processed).
#[inline]
fn decode_hex_32(src: &[u8; 64]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut bad: i16 = 0;
    for (o, pair) in out.iter_mut().zip(src.chunks_exact(2)) {
        let hi = hex_nibble(pair[0]);
        let lo = hex_nibble(pair[1]);
        bad |= hi | lo;
        // Valid nibbles are 0..=15, so the truncation keeps exactly their bits.
        *o = ((hi << 4) | lo) as u8;
    }
    (bad >= 0).then_some(out)
}

/// Decodes a signature by its length: 64 → hex (either case), 44 → standard base64 with
/// padding, 43 → base64url without padding.
///
/// Anything else is [`ProofError::Malformed`], with a message naming the accepted forms and,
/// for a hex string of the length of another hash, which hash it looks like.
///
/// ```
/// use vouch_core::encoding::decode_signature;
/// let mac = [0xabu8; 32];
/// assert_eq!(decode_signature(&"AB".repeat(32)), Ok(mac));
/// assert_eq!(decode_signature("q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="), Ok(mac));
/// assert_eq!(decode_signature("q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s"), Ok(mac));
/// let err = decode_signature(&"a".repeat(40)).unwrap_err();
/// assert!(err.to_string().contains("SHA-1"));
/// ```
pub fn decode_signature(s: &str) -> Result<[u8; 32], ProofError> {
    let bytes = s.as_bytes();
    let decoded = match bytes.len() {
        64 => bytes.first_chunk::<64>().and_then(decode_hex_32),
        44 => decode_base64::<Base64>(bytes),
        43 => decode_base64::<Base64UrlUnpadded>(bytes),
        _ => None,
    };
    decoded.ok_or_else(|| ProofError::Malformed(malformed_message(s)))
}

/// Constant-time base64 decoding (base64ct) of exactly 32 bytes.
#[inline]
fn decode_base64<E: Encoding>(src: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    match E::decode(src, &mut out) {
        Ok(d) if d.len() == 32 => Some(out),
        _ => None,
    }
}

/// The message of a [`ProofError::Malformed`] for `s`.
fn malformed_message(s: &str) -> String {
    let len = s.len();
    let all_hex = !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    let hint = match (all_hex, len) {
        (true, 40) => "; this looks like SHA-1 (40 hex characters): use HMAC-SHA256".to_owned(),
        (true, 32) => "; this looks like MD5 (32 hex characters): use HMAC-SHA256".to_owned(),
        (true, 128) => {
            "; this looks like SHA-512 (128 hex characters): use HMAC-SHA256, not HMAC-SHA512"
                .to_owned()
        }
        (true, 64) | (false, 43 | 44 | 64) => {
            "; the signature has the right length but contains characters outside its encoding"
                .to_owned()
        }
        (true, n) => format!("; got {n} hex characters"),
        (false, 0) => "; the signature is empty".to_owned(),
        (false, n) => format!("; got {n} characters"),
    };
    format!("{ACCEPTED}{hint}")
}

/// Writes a MAC in the given encoding (hex is lowercase).
///
/// ```
/// use vouch_core::{SignatureEncoding, encoding::encode_mac};
/// assert_eq!(encode_mac(&[0xff; 32], SignatureEncoding::Hex), "ff".repeat(32));
/// assert_eq!(encode_mac(&[0xff; 32], SignatureEncoding::Base64Url).len(), 43);
/// ```
pub fn encode_mac(mac: &[u8; 32], enc: SignatureEncoding) -> String {
    match enc {
        SignatureEncoding::Hex => base16ct::lower::encode_string(mac),
        SignatureEncoding::Base64 => Base64::encode_string(mac),
        SignatureEncoding::Base64Url => Base64UrlUnpadded::encode_string(mac),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibbles_match_a_table() {
        for c in 0u8..=255 {
            let want = match c {
                b'0'..=b'9' => i16::from(c - b'0'),
                b'a'..=b'f' => i16::from(c - b'a' + 10),
                b'A'..=b'F' => i16::from(c - b'A' + 10),
                _ => -1,
            };
            assert_eq!(hex_nibble(c), want, "char {c}");
        }
    }

    #[test]
    fn round_trips_every_encoding() {
        let mac: [u8; 32] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        for enc in [
            SignatureEncoding::Hex,
            SignatureEncoding::Base64,
            SignatureEncoding::Base64Url,
        ] {
            assert_eq!(decode_signature(&encode_mac(&mac, enc)), Ok(mac));
        }
        let upper = encode_mac(&mac, SignatureEncoding::Hex).to_uppercase();
        assert_eq!(decode_signature(&upper), Ok(mac));
    }
}
