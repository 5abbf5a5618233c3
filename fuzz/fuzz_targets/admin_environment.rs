//! Admin `PATCH /admin/v1/environments/{env}` (and create) bodies: parsed into
//! `EnvironmentIn` and applied to settings, for a new and for an existing environment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch_core::Mode;
use vouch_server::admin::environments::EnvironmentIn;
use vouch_server::model::EnvSettings;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if !value.is_object() {
        return;
    }
    for creating in [true, false] {
        let Ok(input) = serde_json::from_slice::<EnvironmentIn>(data) else {
            return;
        };
        let mut settings = EnvSettings::new("fuzz".to_string(), Mode::Test);
        if input.apply(&mut settings, creating).is_ok() {
            assert!(!settings.name.trim().is_empty());
            assert!(settings.name.chars().count() <= 100);
            assert!(settings.session_ttl_seconds >= 1);
            assert!(settings.rate_limit_per_user >= 1 && settings.rate_limit_per_address >= 1);
            assert!(settings.allowed_origins.len() <= 100);
            if !creating {
                assert_eq!(settings.mode, Mode::Test, "PATCH never changes the mode");
            }
        }
    }
});
