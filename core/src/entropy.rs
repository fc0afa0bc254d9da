//! Randomness as an input.
//!
//! The core never asks the operating system for randomness. Each connection
//! is given a 32-byte seed by the shim at accept time, and every random value
//! it needs (stream id, SCRAM nonce, generated resource) is drawn from that
//! seed by HMAC-SHA-256 in counter mode (the HMAC-DRBG idea of NIST SP
//! 800-90A, without reseeding: a connection draws a handful of values). Replaying the same seed
//! replays the same session, which is what tests and fuzzing need.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A seed the shim draws from the OS RNG for each accepted connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seed(pub [u8; 32]);

#[derive(Clone, Debug)]
pub(crate) struct Entropy {
    seed: [u8; 32],
    counter: u64,
}

impl Entropy {
    pub fn new(seed: Seed) -> Self {
        Entropy {
            seed: seed.0,
            counter: 0,
        }
    }

    /// Draw 32 fresh bytes.
    pub fn draw(&mut self) -> [u8; 32] {
        self.counter += 1;
        let mut mac =
            <Hmac<Sha256>>::new_from_slice(&self.seed).expect("HMAC takes any key length");
        mac.update(&self.counter.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A random token of `len` lowercase hex characters (at most 64).
    pub fn hex_token(&mut self, len: usize) -> String {
        let bytes = self.draw();
        let mut s = String::with_capacity(64);
        for b in bytes {
            s.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
            s.push(char::from_digit((b & 15) as u32, 16).unwrap_or('0'));
        }
        s.truncate(len.min(64));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_draws_the_same_sequence() {
        let mut a = Entropy::new(Seed([7; 32]));
        let mut b = Entropy::new(Seed([7; 32]));
        assert_eq!(a.hex_token(16), b.hex_token(16));
        assert_eq!(a.draw(), b.draw());
    }

    #[test]
    fn successive_draws_differ() {
        let mut a = Entropy::new(Seed([7; 32]));
        assert_ne!(a.draw(), a.draw());
    }
}
