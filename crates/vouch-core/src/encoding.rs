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

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Per byte of `x` (each < 0x80): 0x80 where the byte is `>= lo`, else 0. Adding
/// `0x80 - lo` to a byte below 0x80 never carries into the next byte.
#[inline(always)]
fn bytes_at_least(x: u64, lo: u8) -> u64 {
    x.wrapping_add(LOW_BITS * u64::from(0x80 - lo)) & HIGH_BITS
}

/// Branch-free decoding of 64 hex characters (either case) into 32 bytes, eight characters
/// at a time in a `u64` (SWAR). `None` if any character is not a hex digit; validity is
/// accumulated over the whole input and tested once at the end.
#[inline]
fn decode_hex_32(src: &[u8; 64]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut bad = 0u64;
    for (o, chunk) in out
        .as_chunks_mut::<4>()
        .0
        .iter_mut()
        .zip(src.as_chunks::<8>().0)
    {
        let x = u64::from_le_bytes(*chunk);
        let ascii = x & !HIGH_BITS;
        let digit = bytes_at_least(ascii, b'0') & !bytes_at_least(ascii, b'9' + 1);
        let folded = ascii | (LOW_BITS * 0x20); // 'A'..='F' -> 'a'..='f'
        let letter = bytes_at_least(folded, b'a') & !bytes_at_least(folded, b'f' + 1);
        // Non-ASCII bytes, and bytes that are neither a digit nor a letter, are errors.
        bad |= (x & HIGH_BITS) | (HIGH_BITS & !(digit | letter));
        // '0'..='9' & 0xf is the value; 'a'/'A' & 0xf is 1, so letters get 9 more.
        let nibbles = (x & (LOW_BITS * 0x0f)) + (letter >> 7) * 9;
        // Little-endian: even bytes hold high nibbles, odd bytes low nibbles.
        let pairs =
            ((nibbles & 0x00ff_00ff_00ff_00ff) << 4) | ((nibbles >> 8) & 0x00ff_00ff_00ff_00ff);
        let packed = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
        let packed = (packed | (packed >> 16)) & 0xffff_ffff;
        *o = (packed as u32).to_le_bytes();
    }
    (bad == 0).then_some(out)
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
    fn hex_decoding_matches_a_table_for_every_byte_at_every_position() {
        let table = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        let base: [u8; 64] = core::array::from_fn(|i| b"0123456789abcdefABCDEF"[i % 22]);
        for pos in 0..64 {
            for c in 0u8..=255 {
                let mut src = base;
                src[pos] = c;
                let want: Option<Vec<u8>> = src
                    .chunks_exact(2)
                    .map(|p| Some(table(p[0])? << 4 | table(p[1])?))
                    .collect();
                assert_eq!(
                    decode_hex_32(&src).map(|o| o.to_vec()),
                    want,
                    "{c} at {pos}"
                );
            }
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
