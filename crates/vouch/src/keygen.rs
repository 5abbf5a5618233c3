//! `vouch keygen`: prints one freshly generated key on one line.

use base64ct::{Base64, Encoding};
use vouch_core::Mode;
use vouch_core::keys::{generate_admin_token, generate_identity_secret, generate_webhook_secret};

use crate::cli::KeygenArgs;

/// Length of a master key, in bytes.
const MASTER_KEY_BYTES: usize = 32;

/// Runs `vouch keygen` (clap guarantees exactly one kind is asked for).
pub fn run(args: &KeygenArgs) -> anyhow::Result<()> {
    let key = if args.master_key {
        master_key()?
    } else if args.secret {
        let mode = if args.live { Mode::Live } else { Mode::Test };
        generate_identity_secret(mode).expose().to_owned()
    } else if args.admin_token {
        generate_admin_token().expose().to_owned()
    } else {
        generate_webhook_secret().expose().to_owned()
    };
    println!("{key}");
    Ok(())
}

/// 32 random bytes in standard base64, the `VOUCH_MASTER_KEY` format.
fn master_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; MASTER_KEY_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the operating system's random generator failed: {e}"))?;
    Ok(Base64::encode_string(&bytes))
}
