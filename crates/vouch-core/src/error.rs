//! [`ProofError`]: why a proof of identity was refused.

/// Why a signature, attributes signature or identity token was refused.
///
/// Each message tells an integrator what to fix and never contains a secret. [`code`]
/// gives the stable error code of the public API (the `error.code` of its JSON answers).
///
/// [`code`]: ProofError::code
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The signature is not HMAC-SHA256 in one of the accepted encodings.
    #[error("{0}")]
    Malformed(String),
    /// The signature is well formed but matches no active secret.
    #[error("Incorrect user identity verification signature")]
    InvalidSignature,
    /// The environment has no active identity secret, so nothing can verify.
    #[error(
        "Incorrect user identity verification signature: this environment has no active identity secret; create or rotate one in the admin API"
    )]
    NoActiveKey,
    /// The attributes cannot be canonicalised unambiguously.
    #[error("invalid attributes: {0}")]
    InvalidAttributes(String),
    /// The identity token is not a well-formed compact JWT with the expected claims.
    #[error("malformed identity token: {0}")]
    TokenMalformed(String),
    /// The identity token uses an algorithm other than HS256 (the refused `alg` is named).
    #[error(
        "identity token algorithm {0:?} is not accepted; sign identity tokens with HS256 and the environment's identity secret"
    )]
    TokenAlgorithm(String),
    /// The identity token's signature does not verify.
    #[error(
        "identity token signature does not verify; sign it with HS256 using an active identity secret of this environment"
    )]
    TokenBadSignature,
    /// The token's `exp` is more than the leeway in the past.
    #[error(
        "identity token has expired (its exp is more than 60 seconds in the past); issue a fresh token for each page load"
    )]
    TokenExpired,
    /// The token's `nbf` is more than the leeway in the future.
    #[error(
        "identity token is not valid yet (its nbf is more than 60 seconds in the future); check the clock of the server that issues it"
    )]
    TokenNotYetValid,
    /// The token's `sub` is not the user id of the call.
    #[error(
        "identity token sub does not match the user id sent with it; sign a token for this user id"
    )]
    TokenWrongSubject,
    /// The token's `kid` header names no secret of the environment.
    #[error(
        "identity token kid header names no identity secret of this environment; use the key id of an active secret, or leave kid out"
    )]
    TokenUnknownKey,
}

impl ProofError {
    /// The stable public error code: `malformed_signature`,
    /// `invalid_signature`, `invalid_request`, `token_expired` or `invalid_token`.
    ///
    /// ```
    /// use vouch_core::ProofError;
    /// assert_eq!(ProofError::InvalidSignature.code(), "invalid_signature");
    /// assert_eq!(ProofError::TokenExpired.code(), "token_expired");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_signature",
            Self::InvalidSignature | Self::NoActiveKey => "invalid_signature",
            Self::InvalidAttributes(_) => "invalid_request",
            Self::TokenExpired => "token_expired",
            Self::TokenMalformed(_)
            | Self::TokenAlgorithm(_)
            | Self::TokenBadSignature
            | Self::TokenNotYetValid
            | Self::TokenWrongSubject
            | Self::TokenUnknownKey => "invalid_token",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_design() {
        assert_eq!(
            ProofError::Malformed("x".into()).code(),
            "malformed_signature"
        );
        assert_eq!(ProofError::NoActiveKey.code(), "invalid_signature");
        assert_eq!(
            ProofError::InvalidAttributes("x".into()).code(),
            "invalid_request"
        );
        assert_eq!(ProofError::TokenWrongSubject.code(), "invalid_token");
        assert_eq!(
            ProofError::TokenAlgorithm("none".into()).code(),
            "invalid_token"
        );
        assert_eq!(
            ProofError::InvalidSignature.to_string(),
            "Incorrect user identity verification signature"
        );
    }
}
