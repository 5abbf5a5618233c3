//! RFC 8785 (JCS) through vouch-core's canonicaliser: the cyberphone and gowebpki
//! input/output files, RFC 8785 Appendix B numbers, §3.2.2.2 strings, and the ES6 number
//! table (the first 10,000 lines as published, then up to `--numbers` lines regenerated
//! and compared with the published SHA-256 of each table prefix).

use std::io::Read;

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use vouch_core::ProofError;
use vouch_core::jcs::{canonicalize, parse_attributes};

use crate::{Context, Suite, hex, str_field};

pub fn run(ctx: &Context) -> Vec<Suite> {
    let mut files = Suite::new("jcs: cyberphone + gowebpki input/output files");
    for set in ["cyberphone", "gowebpki"] {
        check_files(ctx, &mut files, set);
    }
    let mut appendix = Suite::new("jcs: RFC 8785 Appendix B numbers");
    check_appendix_b(ctx, &mut appendix);
    let mut strings = Suite::new("jcs: RFC 8785 string serialisation");
    check_strings(ctx, &mut strings);
    let mut table = Suite::new("jcs: ES6 number table, first 10,000 lines as published");
    let published = check_number_file(ctx, &mut table);
    let mut generated = Suite::new(&format!(
        "jcs: ES6 number table regenerated ({} lines) against the published prefix SHA-256s",
        ctx.numbers
    ));
    check_generated(ctx, &mut generated, published.as_deref());
    vec![files, appendix, strings, table, generated]
}

/// Canonicalises a JSON document with vouch-core. Signed attributes are an object, so any
/// other document is canonicalised as the value of `{"v": …}` and unwrapped.
fn canonical_document(text: &str) -> Result<String, ProofError> {
    let is_object = text.trim_start().starts_with('{');
    if is_object {
        return canonicalize(&parse_attributes(text)?);
    }
    let wrapped = canonicalize(&parse_attributes(&format!("{{\"v\":{text}}}"))?)?;
    Ok(wrapped
        .strip_prefix("{\"v\":")
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(&wrapped)
        .to_owned())
}

fn check_files(ctx: &Context, suite: &mut Suite, set: &str) {
    let dir = ctx.path(&format!("jcs/{set}/input"));
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect(),
        Err(e) => {
            suite.fail(format!("{}: {e}", dir.display()));
            return;
        }
    };
    names.sort();
    if names.is_empty() {
        suite.fail(format!("{}: no input files", dir.display()));
    }
    for name in names {
        let input = ctx.bytes(&format!("jcs/{set}/input/{name}"));
        let expected = ctx.bytes(&format!("jcs/{set}/output/{name}"));
        let (input, expected) = match (input, expected) {
            (Ok(i), Ok(e)) => (i, e),
            (Err(e), _) | (_, Err(e)) => {
                suite.fail(e);
                continue;
            }
        };
        let Ok(text) = String::from_utf8(input) else {
            suite.fail(format!("{set}/{name}: input is not UTF-8"));
            continue;
        };
        match canonical_document(&text) {
            Ok(got) => suite.check(got.as_bytes() == expected, || {
                format!(
                    "{set}/{name}: got {got}, expected {}",
                    String::from_utf8_lossy(&expected)
                )
            }),
            Err(e) => suite.fail(format!("{set}/{name}: refused: {e}")),
        }
    }
}

/// The canonical text of a number value, through vouch-core.
fn canonical_value(f: f64) -> Option<String> {
    let mut attributes = Map::new();
    attributes.insert("n".to_owned(), Value::Number(Number::from_f64(f)?));
    let canonical = canonicalize(&attributes).ok()?;
    Some(
        canonical
            .strip_prefix("{\"n\":")?
            .strip_suffix('}')?
            .to_owned(),
    )
}

/// The outcome of parsing a number's text as a signed attribute and canonicalising it.
enum TextPath {
    /// Parsed to the same double and canonicalised back to the same text.
    Same,
    /// Refused, as Vouch refuses every integer literal beyond ±2^53.
    BigIntegerRefused,
    Different(String),
}

fn text_path(text: &str, bits: u64) -> TextPath {
    let json = format!("{{\"n\":{text}}}");
    match parse_attributes(&json) {
        Ok(attributes) => {
            let parsed_bits = attributes["n"].as_f64().map(f64::to_bits);
            // -0 and 0 both print as 0, and parse back as 0.
            if parsed_bits != Some(bits) && !(text == "0" && f64::from_bits(bits) == 0.0) {
                return TextPath::Different(format!(
                    "{text} parsed to the double {:x?}, not {bits:x}",
                    parsed_bits
                ));
            }
            match canonicalize(&attributes) {
                Ok(c) if c == json => TextPath::Same,
                Ok(c) => TextPath::Different(format!("{text} canonicalised to {c}")),
                Err(e) => TextPath::Different(format!("{text}: {e}")),
            }
        }
        Err(ProofError::InvalidAttributes(m)) if is_integer_literal(text) && m.contains("2^53") => {
            TextPath::BigIntegerRefused
        }
        Err(e) => TextPath::Different(format!("{text} refused: {e}")),
    }
}

fn is_integer_literal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

const BIG_INTEGER: &str = "parsing the number as a signed attribute: integer literals beyond \
                           ±2^53 are refused (their canonical form would be ambiguous)";

/// Both paths for one (bits, expected text) pair.
fn check_number(suite: &mut Suite, bits: u64, expected: &str) {
    let f = f64::from_bits(bits);
    match canonical_value(f) {
        Some(got) => suite.check(got == expected, || {
            format!("{bits:x}: canonical {got}, expected {expected}")
        }),
        None => suite.fail(format!("{bits:x}: vouch-core could not canonicalise {f:e}")),
    }
    match text_path(expected, bits) {
        TextPath::Same => suite.pass(),
        TextPath::BigIntegerRefused => suite.not_applicable(BIG_INTEGER),
        TextPath::Different(what) => suite.fail(what),
    }
}

fn check_appendix_b(ctx: &Context, suite: &mut Suite) {
    let v = match ctx.json("jcs/rfc8785_appendix_b.json") {
        Ok(v) => v,
        Err(e) => return suite.fail(e),
    };
    for case in v["cases"].as_array().into_iter().flatten() {
        let Some(bits) = case["ieee_hex"]
            .as_str()
            .and_then(|h| u64::from_str_radix(h, 16).ok())
        else {
            suite.fail(format!("bad case {case}"));
            continue;
        };
        match case["expected"].as_str() {
            Some(expected) => check_number(suite, bits, expected),
            None => {
                // NaN and ±Infinity: JCS requires an error; a JSON value cannot even hold them.
                if Number::from_f64(f64::from_bits(bits)).is_some() {
                    suite.fail(format!(
                        "{bits:x}: a non-finite double became a JSON number"
                    ));
                } else {
                    suite.not_applicable(
                        "NaN / Infinity: no JSON form, so no attribute can carry one to canonicalise",
                    );
                }
            }
        }
    }
}

fn check_strings(ctx: &Context, suite: &mut Suite) {
    let v = match ctx.json("jcs/rfc8785_strings.json") {
        Ok(v) => v,
        Err(e) => return suite.fail(e),
    };
    for case in v["cases"].as_array().into_iter().flatten() {
        let (Ok(name), Ok(input), Ok(expected)) = (
            str_field(case, "name"),
            str_field(case, "input"),
            str_field(case, "expected"),
        ) else {
            suite.fail(format!("bad case {case}"));
            continue;
        };
        match canonical_document(input) {
            Ok(got) => suite.check(got == expected, || {
                format!("{name}: got {got:?}, expected {expected:?}")
            }),
            Err(e) => suite.fail(format!("{name}: refused: {e}")),
        }
    }
}

/// The published SHA-256 of the table's first `lines` lines, from the generator file.
fn published_hash(generator: &Value, lines: usize) -> Option<String> {
    generator["prefix_sha256"]
        .as_array()?
        .iter()
        .find(|p| p["lines"].as_u64() == Some(lines as u64))?["sha256"]
        .as_str()
        .map(str::to_owned)
}

/// Checks the published first 10,000 lines; returns them for the regeneration to compare.
fn check_number_file(ctx: &Context, suite: &mut Suite) -> Option<String> {
    let gz = match ctx.bytes("jcs/es6testfile100m_first10000.txt.gz") {
        Ok(gz) => gz,
        Err(e) => {
            suite.fail(e);
            return None;
        }
    };
    let mut text = String::new();
    if let Err(e) = flate2::read::GzDecoder::new(gz.as_slice()).read_to_string(&mut text) {
        suite.fail(format!("es6testfile100m_first10000.txt.gz: {e}"));
        return None;
    }
    match ctx
        .json("jcs/es6testfile_generator.json")
        .map(|g| published_hash(&g, 10_000))
    {
        Ok(Some(want)) => {
            let got = hex(&Sha256::digest(text.as_bytes()));
            suite.check(got == want, || {
                format!("the file's SHA-256 is {got}, the published one {want}")
            });
        }
        Ok(None) => suite.fail("no published SHA-256 for 10,000 lines"),
        Err(e) => suite.fail(e),
    }
    let mut lines = 0;
    for line in text.lines() {
        lines += 1;
        let Some((bits, expected)) = line
            .split_once(',')
            .and_then(|(h, e)| Some((u64::from_str_radix(h, 16).ok()?, e)))
        else {
            suite.fail(format!("line {lines} is not hex,number: {line:?}"));
            continue;
        };
        check_number(suite, bits, expected);
    }
    suite.check(lines == 10_000, || {
        format!("the file has {lines} lines, not 10,000")
    });
    Some(text)
}

/// The ES6 number table's sequence (cyberphone's numgen.js, as its testdata README and the
/// generator file describe it): the static values, then `serial_count` doubles counting up
/// from `serial_base`, then the doubles of a SHA-256 chain started from 32 zero bytes (each
/// digest read as four little-endian u64), skipping zeros, NaNs and infinities.
struct Es6Numbers {
    statics: Vec<u64>,
    serial_base: u64,
    serial_count: u64,
    index: u64,
    block: [u8; 32],
    pending: std::vec::IntoIter<u64>,
}

impl Es6Numbers {
    fn new(generator: &Value) -> Result<Self, String> {
        let statics = generator["static_u64_hex"]
            .as_array()
            .ok_or("no static_u64_hex")?
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad static value {h}"))
            })
            .collect::<Result<Vec<u64>, String>>()?;
        let serial_base = generator["serial_base_hex"]
            .as_str()
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .ok_or("no serial_base_hex")?;
        let serial_count = generator["serial_count"]
            .as_u64()
            .ok_or("no serial_count")?;
        Ok(Self {
            statics,
            serial_base,
            serial_count,
            index: 0,
            block: [0; 32],
            pending: Vec::new().into_iter(),
        })
    }

    fn next_bits(&mut self) -> u64 {
        let i = self.index;
        self.index += 1;
        let statics = self.statics.len() as u64;
        if i < statics {
            return self.statics[i as usize];
        }
        if i < statics + self.serial_count {
            return self.serial_base + (i - statics);
        }
        loop {
            let bits = match self.pending.next() {
                Some(bits) => bits,
                None => {
                    self.block = Sha256::digest(self.block).into();
                    let words: Vec<u64> = self
                        .block
                        .chunks_exact(8)
                        .filter_map(|c| Some(u64::from_le_bytes(c.try_into().ok()?)))
                        .collect();
                    self.pending = words.into_iter();
                    continue;
                }
            };
            let f = f64::from_bits(bits);
            if f != 0.0 && f.is_finite() {
                return bits;
            }
        }
    }
}

fn check_generated(ctx: &Context, suite: &mut Suite, published: Option<&str>) {
    let generator = match ctx.json("jcs/es6testfile_generator.json") {
        Ok(g) => g,
        Err(e) => return suite.fail(e),
    };
    let mut numbers = match Es6Numbers::new(&generator) {
        Ok(n) => n,
        Err(e) => return suite.fail(e),
    };
    let mut prefixes: Vec<(usize, String)> = generator["prefix_sha256"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p["lines"].as_u64()? as usize,
                p["sha256"].as_str()?.to_owned(),
            ))
        })
        .collect();
    prefixes.sort();
    if prefixes.is_empty() {
        return suite.fail("no published prefix SHA-256s");
    }
    let mut published_lines = published.map(str::lines);
    let mut first_difference = None;
    let mut hash = Sha256::new();
    let mut line = String::with_capacity(40);
    let mut next_prefix = prefixes.iter().peekable();
    for n in 1..=ctx.numbers {
        let bits = numbers.next_bits();
        line.clear();
        line.push_str(&format!("{bits:x},"));
        match canonical_value(f64::from_bits(bits)) {
            Some(text) => line.push_str(&text),
            None => {
                suite.fail(format!(
                    "line {n}: vouch-core could not canonicalise {bits:x}"
                ));
                return;
            }
        }
        if first_difference.is_none()
            && let Some(want) = published_lines.as_mut().and_then(Iterator::next)
            && want != line
        {
            first_difference = Some(format!("line {n}: generated {line}, published {want}"));
        }
        line.push('\n');
        hash.update(line.as_bytes());
        while let Some((lines, want)) = next_prefix.peek() {
            if *lines != n {
                break;
            }
            let got = hex(&hash.clone().finalize());
            suite.check(&got == want, || {
                format!(
                    "the first {lines} lines hash to {got}, published {want}{}",
                    first_difference
                        .as_deref()
                        .map(|d| format!(" (first difference: {d})"))
                        .unwrap_or_default()
                )
            });
            next_prefix.next();
        }
    }
    for (lines, _) in next_prefix {
        suite.not_applicable(format!(
            "the published hash of {lines} lines: beyond the {} lines regenerated (--numbers)",
            ctx.numbers
        ));
    }
    // The generator must agree with the published file line by line too.
    if let Some(d) = first_difference {
        suite.fail(d);
    }
}
