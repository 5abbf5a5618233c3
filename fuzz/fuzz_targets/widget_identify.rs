//! `POST /v1/identify` bodies, parsed as the server does (JSON value, then the typed
//! `IdentifyIn`, then the attributes: strictly when an attributes signature is sent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch_server::api::IdentifyIn;
use vouch_server::extract::JsonBody;

fuzz_target!(|data: &[u8]| {
    // Exactly the server's path: `JsonBody` (JSON value, must be an object) then the type.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let body = JsonBody {
        raw: bytes::Bytes::copy_from_slice(data),
        value,
    };
    let input: IdentifyIn = match body.parse() {
        Ok(input) => input,
        Err(e) => {
            assert_eq!((e.status.as_u16(), e.code.as_str()), (400, "invalid_request"));
            return;
        }
    };
    let value = &body.value;
    assert!(value.is_object(), "a typed identify body is a JSON object");
    let _ = vouch_core::keys::find_embedded_secrets(&String::from_utf8_lossy(data));
    if let Some(raw) = &input.attributes {
        if let Ok(strict) = vouch_core::jcs::parse_attributes(raw.get()) {
            let loose: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(raw.get()).expect("strict attributes parse loosely too");
            assert_eq!(strict, loose);
            let _ = vouch_core::jcs::canonicalize(&strict);
        }
    }
    if let Some(sig) = &input.signature {
        let _ = vouch_core::encoding::decode_signature(sig);
    }
});
