//! The ids a router hands out (WAMP spec, "Identifiers"): global-scope ids (sessions,
//! publications) are random in `[1, 2^53]`, router-scope ids (subscriptions, registrations)
//! count up, session-scope ids (requests) count up per session.

use crate::message::MAX_ID;

/// SplitMix64: ids need to be unpredictable enough not to be guessed by other sessions, not
/// cryptographic; a seed makes tests deterministic. Authentication challenges come from the
/// operating system unless the generator was seeded (tests).
#[derive(Debug)]
pub struct IdGenerator {
    state: u64,
    seeded: bool,
}

impl IdGenerator {
    /// A generator seeded from the operating system's randomness.
    pub fn random() -> Self {
        let mut seed = [0u8; 8];
        // Falling back to a fixed seed only makes ids guessable, never wrong.
        let _ = getrandom::fill(&mut seed);
        IdGenerator {
            state: u64::from_le_bytes(seed),
            seeded: false,
        }
    }

    /// A generator whose ids and challenges repeat from run to run, for tests.
    pub fn seeded(seed: u64) -> Self {
        IdGenerator {
            state: seed,
            seeded: true,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A global-scope id: random in `[1, 2^53]`.
    pub fn global_id(&mut self) -> u64 {
        (self.next_u64() % MAX_ID) + 1
    }

    /// A session id: [`IdGenerator::global_id`] on a router without a node number; with one,
    /// the node number in the high 16 of the 53 bits and random low 37 bits (not all zero),
    /// so that routers with different node numbers never hand out the same id. 2^37 - 1 ids
    /// (137 billion) per node leave a router's collision loop nothing to worry about.
    pub fn session_id(&mut self, node: Option<u16>) -> u64 {
        match node {
            None => self.global_id(),
            Some(node) => (u64::from(node) << NODE_SHIFT) | (self.next_u64() % NODE_IDS + 1),
        }
    }

    /// 32 bytes for an authentication challenge: from the operating system, unless seeded.
    pub fn challenge(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        if self.seeded {
            for chunk in out.chunks_mut(8) {
                chunk.copy_from_slice(&self.next_u64().to_le_bytes());
            }
        } else {
            getrandom::fill(&mut out).expect("the operating system's randomness");
        }
        out
    }
}

/// Bits of a session id below the node number.
const NODE_SHIFT: u32 = 37;
/// Session ids one node can hand out: the low 37 bits, not all zero.
const NODE_IDS: u64 = (1 << NODE_SHIFT) - 1;

/// The next session-scope or router-scope id after `last`: counting up, back to 1 after 2^53
/// (which nothing will reach).
pub fn next_scoped(last: u64) -> u64 {
    last % MAX_ID + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_ids_stay_in_the_range_the_spec_allows() {
        let mut ids = IdGenerator::seeded(7);
        for _ in 0..10_000 {
            assert!((1..=MAX_ID).contains(&ids.global_id()));
        }
    }

    #[test]
    fn scoped_ids_count_up_and_wrap_to_one() {
        assert_eq!(next_scoped(0), 1);
        assert_eq!(next_scoped(41), 42);
        assert_eq!(next_scoped(MAX_ID), 1);
    }

    #[test]
    fn session_ids_of_different_nodes_never_collide_and_stay_in_range() {
        // Same seed, so the random parts are the same: only the node number tells them apart.
        for node in [0u16, 1, 2, 0x7fff, u16::MAX] {
            let mut ids = IdGenerator::seeded(5);
            for _ in 0..1000 {
                let id = ids.session_id(Some(node));
                assert!((1..=MAX_ID).contains(&id));
                assert_eq!(id >> NODE_SHIFT, u64::from(node));
            }
        }
    }

    #[test]
    fn a_seeded_generator_repeats_itself() {
        let (mut a, mut b) = (IdGenerator::seeded(3), IdGenerator::seeded(3));
        assert_eq!(a.challenge(), b.challenge());
        assert_eq!(a.global_id(), b.global_id());
    }
}
