//! Iterator tokens: a cursor plus mode and stamp, sealed into six 64-bit words
//! that the caller owns, and a text form for handing to other processes.
//!
//! In-memory words: `[source, meta, stamp, a, b, mac]`, where `(a, b)` is the
//! place: a position `(h1, h2)`, or for strict tokens `(shard, slot)` (a
//! meta flag tells which). The MAC (SipHash-1-3
//! under a process-wide random key) catches corruption and forgery before any
//! field is trusted; `source` then tells whether the token belongs to the map.
//! The text form hides the place and the stamp: `(a, b)` and
//! `(meta, stamp)` are enciphered with a 4-round Feistel network keyed by
//! the map's secret (only the map id stays in clear), and a separate MAC (SipHash-2-4,
//! process key) covers the whole text, so holders learn no hash values and
//! cannot tamper. Texts are valid within the process that made them, like the
//! map handles they name.
#![forbid(unsafe_code)]

use std::hash::Hasher;
use std::sync::OnceLock;

use siphasher::sip::{SipHasher13, SipHasher24};

use super::hash::{random_seed, Pos};
use super::map::{At, Cursor};
use super::table::SHARDS;
use crate::status::{Error, McStatus, Result};

pub(crate) const TOKEN_WORDS: usize = 6;
/// Length of the text form: "mc1" + 64 base64url characters.
pub(crate) const TEXT_LEN: usize = 67;

const MAGIC: u64 = 0x4D43_544B; // "MCTK"
const VERSION: u64 = 1;
const FLAG_STARTED: u64 = 1;
const FLAG_DONE: u64 = 2;
const FLAG_CURRENT: u64 = 4;
/// The place words hold a shard and a slot (`At::Slot`), not a position.
const FLAG_SLOT: u64 = 8;
const FLAG_MASK: u64 = 15;
const TEXT_PREFIX: &[u8] = b"mc1";
/// Separates the Feistel block hiding (meta, stamp) from the one hiding the position.
const STAMP_TWEAK: u64 = 0x5354_414D_505F_5457;

/// Iteration mode, as numbered in the C ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Strict = 1,
    Cursor = 2,
}

impl Mode {
    pub fn from_u32(v: u32) -> Option<Mode> {
        match v {
            1 => Some(Mode::Strict),
            2 => Some(Mode::Cursor),
            _ => None,
        }
    }
}

/// A decoded, verified token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// Handle id of the map or snapshot it iterates.
    pub source: u64,
    pub mode: Mode,
    pub cursor: Cursor,
    /// Structural generation the token is valid for (strict mode).
    pub stamp: u64,
}

fn process_key() -> &'static (u64, u64) {
    static KEY: OnceLock<(u64, u64)> = OnceLock::new();
    KEY.get_or_init(|| (random_seed(), random_seed()))
}

fn bad(detail: &'static str) -> Error {
    Error::new(McStatus::MC_ERR_BAD_TOKEN, detail)
}

fn wrong_source() -> Error {
    Error::new(
        McStatus::MC_ERR_WRONG_MAP,
        "the iterator token belongs to another (or a freed) map or snapshot",
    )
}

fn mac13(words: &[u64]) -> u64 {
    let (k0, k1) = *process_key();
    let mut h = SipHasher13::new_with_keys(k0, k1);
    for w in words {
        h.write_u64(*w);
    }
    h.finish()
}

fn flags_of(c: &Cursor) -> u64 {
    ((c.started as u64) * FLAG_STARTED)
        | ((c.done as u64) * FLAG_DONE)
        | ((c.current as u64) * FLAG_CURRENT)
        | (matches!(c.at, At::Slot { .. }) as u64 * FLAG_SLOT)
}

/// The two words that hold where a cursor stands.
fn place_words(at: At) -> (u64, u64) {
    match at {
        At::Pos(p) => (p.h1, p.h2),
        At::Slot { shard, next } => (shard as u64, next as u64),
    }
}

fn meta_of(t: &Token) -> u64 {
    MAGIC << 32 | VERSION << 24 | (t.mode as u64) << 8 | flags_of(&t.cursor)
}

/// Checks magic, version, mode and flags of a meta word, and the place
/// words `(a, b)` the flags say how to read.
fn parse_meta(meta: u64, a: u64, b: u64) -> Result<(Mode, Cursor)> {
    if meta >> 32 != MAGIC || (meta >> 24) & 0xFF != VERSION || (meta >> 16) & 0xFF != 0 {
        return Err(bad("not an initialised mapcore iterator token"));
    }
    let mode =
        Mode::from_u32(((meta >> 8) & 0xFF) as u32).ok_or_else(|| bad("unknown mode in token"))?;
    let flags = meta & 0xFF;
    if flags & !FLAG_MASK != 0 {
        return Err(bad("unknown flags in token"));
    }
    let at = if flags & FLAG_SLOT == 0 {
        At::Pos(Pos { h1: a, h2: b })
    } else {
        // Sealed tokens never break these rules; checked all the same, so
        // that no token leads a scan outside the shards or to a slot number
        // without a stamp to vouch for it.
        match (mode, usize::try_from(a), usize::try_from(b)) {
            (Mode::Strict, Ok(shard), Ok(next)) if shard < SHARDS => At::Slot { shard, next },
            _ => return Err(bad("inconsistent place in token")),
        }
    };
    let cursor = Cursor {
        started: flags & FLAG_STARTED != 0,
        done: flags & FLAG_DONE != 0,
        current: flags & FLAG_CURRENT != 0,
        at,
    };
    Ok((mode, cursor))
}

impl Token {
    pub fn new(source: u64, mode: Mode, stamp: u64) -> Token {
        Token {
            source,
            mode,
            cursor: Cursor::default(),
            stamp,
        }
    }

    /// The caller-owned words, with a MAC over the rest.
    pub fn seal(&self) -> [u64; TOKEN_WORDS] {
        let (a, b) = place_words(self.cursor.at);
        let mut w = [self.source, meta_of(self), self.stamp, a, b, 0];
        w[5] = mac13(&w[..5]);
        w
    }

    /// Verifies words that claim to iterate `source`.
    pub fn open(words: &[u64; TOKEN_WORDS], source: u64) -> Result<Token> {
        if mac13(&words[..5]) != words[5] {
            return Err(bad(
                "iterator token failed its integrity check (corrupted, forged or uninitialised)",
            ));
        }
        let (mode, cursor) = parse_meta(words[1], words[3], words[4])?;
        if words[0] != source {
            return Err(wrong_source());
        }
        Ok(Token {
            source,
            mode,
            cursor,
            stamp: words[2],
        })
    }

    /// Text form for untrusted holders. `secret` is the map's own secret.
    /// Built in place: encoding allocates nothing.
    pub fn encode(&self, secret: [u64; 2]) -> TokenText {
        let (a, b) = place_words(self.cursor.at);
        let (l, r) = feistel(secret, self.source, a, b, false);
        // The stamp counts structural changes: hide it (and the flags) too.
        let (m, st) = feistel(
            secret,
            self.source ^ STAMP_TWEAK,
            meta_of(self),
            self.stamp,
            false,
        );
        let mut words = [self.source, m, st, l, r, 0];
        words[5] = mac24(&words[..5]);
        let mut bytes = [0u8; 48];
        for (b, w) in bytes.chunks_exact_mut(8).zip(words) {
            b.copy_from_slice(&w.to_le_bytes());
        }
        let mut out = TokenText([0; TEXT_LEN]);
        out.0[..TEXT_PREFIX.len()].copy_from_slice(TEXT_PREFIX);
        base64url_encode(&bytes, &mut out.0[TEXT_PREFIX.len()..]);
        out
    }

    /// Parses and verifies the text form for `source`.
    pub fn decode(text: &[u8], source: u64, secret: [u64; 2]) -> Result<Token> {
        if text.len() != TEXT_LEN || !text.starts_with(TEXT_PREFIX) {
            return Err(bad(
                "not a mapcore iterator token text (wrong length or prefix)",
            ));
        }
        let bytes = base64url_decode(&text[TEXT_PREFIX.len()..])
            .ok_or_else(|| bad("iterator token text is not base64url"))?;
        let mut words = [0u64; TOKEN_WORDS];
        for (i, w) in words.iter_mut().enumerate() {
            *w = u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        }
        // The MAC is keyed per process, so any altered text is BAD_TOKEN and an
        // intact text of another map is recognised as such (WRONG_MAP).
        if mac24(&words[..5]) != words[5] {
            return Err(bad(
                "iterator token text failed its integrity check (tampered or forged)",
            ));
        }
        if words[0] != source {
            return Err(wrong_source());
        }
        let (meta, stamp) = feistel(secret, source ^ STAMP_TWEAK, words[1], words[2], true);
        let (a, b) = feistel(secret, source, words[3], words[4], true);
        let (mode, cursor) = parse_meta(meta, a, b)?;
        Ok(Token {
            source,
            mode,
            cursor,
            stamp,
        })
    }
}

/// MAC of the text form: SipHash-2-4 under the process key, separated from
/// the in-memory MAC by a different hash and key tweak.
fn mac24(words: &[u64]) -> u64 {
    let (k0, k1) = *process_key();
    let mut h = SipHasher24::new_with_keys(k0 ^ 0x6d61_6374_6578_7400, k1);
    for w in words {
        h.write_u64(*w);
    }
    h.finish()
}

/// 4-round Feistel permutation of a 128-bit block, round function SipHash-2-4.
fn feistel(secret: [u64; 2], tweak: u64, a: u64, b: u64, decrypt: bool) -> (u64, u64) {
    let f = |round: u64, x: u64| {
        let mut h = SipHasher24::new_with_keys(secret[0], secret[1]);
        h.write_u64(round);
        h.write_u64(tweak);
        h.write_u64(x);
        h.finish()
    };
    let (mut l, mut r) = (a, b);
    if !decrypt {
        for round in 0..4 {
            let t = l ^ f(round, r);
            l = r;
            r = t;
        }
    } else {
        for round in (0..4).rev() {
            let t = r ^ f(round, l);
            r = l;
            l = t;
        }
    }
    (l, r)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes `bytes` into `out`, which has room for exactly their text
/// (four characters per three bytes, no padding).
fn base64url_encode(bytes: &[u8], out: &mut [u8]) {
    let mut at = 0;
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out[at] = B64[((n >> (18 - 6 * i)) & 63) as usize];
            at += 1;
        }
    }
}

/// A token's text form (`Token::encode`): `TEXT_LEN` ASCII characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenText([u8; TEXT_LEN]);

impl std::ops::Deref for TokenText {
    type Target = str;
    fn deref(&self) -> &str {
        // Only ASCII is written (the prefix and base64url characters).
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Debug for TokenText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// Decodes exactly 48 bytes (64 characters, no padding).
fn base64url_decode(text: &[u8]) -> Option<[u8; 48]> {
    if text.len() != 64 {
        return None;
    }
    let val = |c: u8| B64.iter().position(|&x| x == c).map(|p| p as u32);
    let mut out = [0u8; 48];
    for (i, quad) in text.chunks(4).enumerate() {
        let mut n = 0u32;
        for &c in quad {
            n = n << 6 | val(c)?;
        }
        out[i * 3] = (n >> 16) as u8;
        out[i * 3 + 1] = (n >> 8) as u8;
        out[i * 3 + 2] = n as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Token {
        let mut t = Token::new(0x1234_0000_0001, Mode::Strict, 42);
        t.cursor = Cursor {
            started: true,
            done: false,
            current: true,
            at: At::Pos(Pos {
                h1: 0xDEAD_BEEF,
                h2: 77,
            }),
        };
        t
    }

    #[test]
    fn seal_open_round_trip() {
        let t = sample();
        assert_eq!(Token::open(&t.seal(), t.source).unwrap(), t);
    }

    #[test]
    fn any_flipped_bit_is_rejected() {
        let t = sample();
        let w = t.seal();
        for word in 0..TOKEN_WORDS {
            for bit in 0..64 {
                let mut x = w;
                x[word] ^= 1 << bit;
                let e = Token::open(&x, t.source).unwrap_err();
                assert_eq!(
                    e.status,
                    McStatus::MC_ERR_BAD_TOKEN,
                    "word {word} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn zeroed_token_is_bad_and_foreign_token_is_wrong_map() {
        assert_eq!(
            Token::open(&[0; 6], 5).unwrap_err().status,
            McStatus::MC_ERR_BAD_TOKEN
        );
        let t = sample();
        assert_eq!(
            Token::open(&t.seal(), t.source + 1).unwrap_err().status,
            McStatus::MC_ERR_WRONG_MAP
        );
    }

    #[test]
    fn text_round_trip_hides_position_and_detects_tampering() {
        let t = sample();
        let secret = [9, 10];
        let s = t.encode(secret);
        assert_eq!(s.len(), TEXT_LEN);
        assert_eq!(Token::decode(s.as_bytes(), t.source, secret).unwrap(), t);
        let raw = base64url_decode(&s.as_bytes()[3..]).unwrap();
        let h1_bytes = 0xDEAD_BEEFu64.to_le_bytes();
        assert!(
            !raw.windows(4).any(|w| w == &h1_bytes[..4]),
            "position must not appear in clear"
        );
        let stamp_word = u64::from_le_bytes(raw[16..24].try_into().unwrap());
        assert_ne!(stamp_word, t.stamp, "the stamp must not appear in clear");
        for i in 3..s.len() {
            let mut b = s.as_bytes().to_vec();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let e = Token::decode(&b, t.source, secret).unwrap_err();
            assert_eq!(e.status, McStatus::MC_ERR_BAD_TOKEN, "char {i}");
        }
        assert_eq!(
            Token::decode(s.as_bytes(), t.source + 1, secret)
                .unwrap_err()
                .status,
            McStatus::MC_ERR_WRONG_MAP,
            "an intact text of another map"
        );
        assert_eq!(
            Token::decode(b"garbage", t.source, secret)
                .unwrap_err()
                .status,
            McStatus::MC_ERR_BAD_TOKEN
        );
    }

    #[test]
    fn slot_places_round_trip_and_must_be_consistent() {
        let mut t = sample();
        t.cursor.at = At::Slot {
            shard: SHARDS - 1,
            next: 12_345,
        };
        assert_eq!(Token::open(&t.seal(), t.source).unwrap(), t);
        let secret = [3, 4];
        assert_eq!(
            Token::decode(t.encode(secret).as_bytes(), t.source, secret).unwrap(),
            t
        );
        // Sealed with a valid MAC, yet a slot outside the shards, or a slot
        // in a cursor-mode token (no stamp vouches for it), is refused.
        let mut far = t;
        far.cursor.at = At::Slot {
            shard: SHARDS,
            next: 0,
        };
        let mut cursor_mode = t;
        cursor_mode.mode = Mode::Cursor;
        for bad_token in [far, cursor_mode] {
            let e = Token::open(&bad_token.seal(), t.source).unwrap_err();
            assert_eq!(e.status, McStatus::MC_ERR_BAD_TOKEN, "{bad_token:?}");
            let e = Token::decode(bad_token.encode(secret).as_bytes(), t.source, secret);
            assert_eq!(e.unwrap_err().status, McStatus::MC_ERR_BAD_TOKEN);
        }
    }

    #[test]
    fn feistel_is_a_permutation() {
        for (a, b) in [(0, 0), (1, 2), (u64::MAX, 7)] {
            let (x, y) = feistel([1, 2], 3, a, b, false);
            assert_eq!(feistel([1, 2], 3, x, y, true), (a, b));
        }
    }
}
