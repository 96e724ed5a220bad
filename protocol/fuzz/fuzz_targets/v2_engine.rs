//! One honest v2 engine driven by arbitrary operations: deliveries from a pool of
//! the genuine messages of a recorded honest run of the same session (n = 4) —
//! as recorded, with flipped bytes, truncated, or with an ABI word changed and
//! re-signed by the claimed author — and clock ticks. The engine must never panic,
//! and the messages it holds stay within what `MESSAGES_PER_AUTHOR` allows.
//!
//! Input: byte 0 picks the mode (bit 0: Feldman or Pedersen) and the driven node
//! (bits 1–2); then operations, each a tag byte and its arguments.
#![no_main]

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use kms_crypto::OperatorAddress;
use kms_protocol::SignedMessage;
use kms_protocol::dkg::engine::{Engine, MESSAGES_PER_AUTHOR};
use kms_protocol::dkg::sim::{Net, Scenario, SimMember, engine_seeds, setup};
use kms_protocol::dkg::wire::Body;
use kms_protocol::dkg::{MessageHash, Setup};
use kms_protocol::session::{Schedule, SessionParams, SessionTimestamp, VssMode};
use libfuzzer_sys::fuzz_target;
use sha3::{Digest, Keccak256};

const N: usize = 4;
const PHASE_MS: u64 = 1_000;
const NET_SEED: u64 = 5;

/// A session and a recorded honest run of it.
struct Recorded {
    members: Vec<SimMember>,
    setup: Setup,
    seeds: Vec<[u8; 32]>,
    /// Every distinct message of the run, in the order first sent.
    messages: Vec<SignedMessage>,
    /// `(to, index into messages)` in delivery order, per recipient.
    inbound: Vec<(OperatorAddress, usize)>,
}

fn record(mode: VssMode) -> Recorded {
    let members = SimMember::generate(N, 40 + mode as u64);
    let params = SessionParams::dkg(
        SessionTimestamp(600),
        mode,
        members.iter().map(SimMember::participant).collect(),
        Schedule {
            start_ms: 0,
            phase_ms: PHASE_MS,
        },
    )
    .expect("a valid session");
    let setup = setup(params.clone());
    let run = Scenario {
        params,
        members: members.clone(),
        shares: Default::default(),
        net: Net {
            seed: NET_SEED,
            record: true,
            ..Net::default()
        },
        byzantine: Vec::new(),
        until_ms: 60 * PHASE_MS,
    }
    .run();
    let mut seen = std::collections::BTreeMap::new();
    let mut messages = Vec::new();
    let mut inbound = Vec::new();
    for (_, to, m) in run.network.transcript() {
        let i = *seen.entry(m.hash).or_insert_with(|| {
            messages.push(m.clone());
            messages.len() - 1
        });
        inbound.push((*to, i));
    }
    Recorded {
        members,
        setup,
        seeds: engine_seeds(NET_SEED, N),
        messages,
        inbound,
    }
}

fn recorded(mode: VssMode) -> &'static Recorded {
    static FELDMAN: OnceLock<Recorded> = OnceLock::new();
    static PEDERSEN: OnceLock<Recorded> = OnceLock::new();
    match mode {
        VssMode::Feldman => FELDMAN.get_or_init(|| record(VssMode::Feldman)),
        VssMode::Pedersen => PEDERSEN.get_or_init(|| record(VssMode::Pedersen)),
    }
}

/// The fuzz input as a stream of arguments (zero once exhausted).
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

fn rehash(mut m: SignedMessage) -> SignedMessage {
    m.hash = Keccak256::digest(&m.payload).into();
    m
}

/// The driver: the engine, the pool it draws from and its clock.
struct Driver<'a> {
    rec: &'a Recorded,
    me: OperatorAddress,
    engine: Engine,
    /// Messages it may be fed: not its own (nobody else can sign those).
    pool: Vec<&'a SignedMessage>,
    /// Its genuine inbound messages, in the recorded order.
    inbound: Vec<&'a SignedMessage>,
    cursor: usize,
    now: u64,
    bound: usize,
}

impl Driver<'_> {
    fn pick(&self, i: u16) -> SignedMessage {
        self.pool[i as usize % self.pool.len()].clone()
    }

    fn deliver(&mut self, m: SignedMessage) {
        let _ = self.engine.handle(self.now, m);
        self.settle();
    }

    fn settle(&mut self) {
        let _ = self.engine.drain();
        let held = self.engine.held_messages();
        assert!(held <= self.bound, "{held} messages held, bound {}", self.bound);
    }

    /// An ABI word of the payload replaced; re-signed by the claimed author if the
    /// result decodes and the author is a member other than the driven node.
    fn rewrite_word(&mut self, input: &mut Input<'_>) -> SignedMessage {
        let mut m = self.pick(input.u16());
        let words = (m.payload.len().saturating_sub(1)) / 32;
        if words == 0 {
            return m;
        }
        let w = 1 + 32 * (input.u8() as usize % words);
        let class = input.u8();
        let arg = input.u8();
        let word: [u8; 32] = match class % 6 {
            0 => {
                let mut x = [0; 32];
                x[31] = arg;
                x
            }
            1 => self.pool[arg as usize % self.pool.len()].hash,
            2 => {
                let mut x = [0; 32];
                x[12..].copy_from_slice(self.rec.members[arg as usize % N].address().as_bytes());
                x
            }
            3 => {
                let mut x: [u8; 32] = m.payload[w..w + 32].try_into().expect("a word");
                x[arg as usize % 32] ^= input.u8() | 1;
                x
            }
            4 => [0xff; 32],
            _ => {
                let mut x: [u8; 32] = m.payload[w..w + 32].try_into().expect("a word");
                x[31] = x[31].wrapping_add(arg);
                x
            }
        };
        m.payload[w..w + 32].copy_from_slice(&word);
        match Body::decode(&m.payload) {
            Ok(b) if b.author() != self.me => {
                match self.rec.members.iter().find(|x| x.address() == b.author()) {
                    Some(author) => b.sign(author.operator.signer.as_ref()),
                    None => rehash(m),
                }
            }
            _ => rehash(m),
        }
    }

    fn op(&mut self, input: &mut Input<'_>) {
        match input.u8() % 8 {
            // A genuine message from the pool.
            0 | 1 => {
                let m = self.pick(input.u16());
                self.deliver(m);
            }
            // The next genuine inbound messages, in order.
            2 => {
                for _ in 0..1 + input.u8() % 16 {
                    if let Some(m) = self.inbound.get(self.cursor) {
                        self.cursor += 1;
                        let m = (*m).clone();
                        self.deliver(m);
                    }
                }
            }
            // A flipped byte, with the stale hash or a fresh one.
            3 => {
                let mut m = self.pick(input.u16());
                let at = input.u16() as usize % m.payload.len().max(1);
                let x = input.u8() | 1;
                let fresh = input.u8() & 1 == 1;
                if let Some(b) = m.payload.get_mut(at) {
                    *b ^= x;
                }
                self.deliver(if fresh { rehash(m) } else { m });
            }
            // Truncated.
            4 => {
                let mut m = self.pick(input.u16());
                let len = input.u16() as usize % (m.payload.len() + 1);
                m.payload.truncate(len);
                self.deliver(rehash(m));
            }
            // A field changed and re-signed.
            5 | 6 => {
                let m = self.rewrite_word(input);
                self.deliver(m);
            }
            // The clock moves.
            _ => {
                let step = match input.u8() % 4 {
                    0 => 1,
                    1 => 10,
                    2 => 100,
                    _ => PHASE_MS,
                };
                self.now += u64::from(input.u8()) * step;
                self.engine.tick(self.now);
                self.settle();
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let head = input.u8();
    let mode = if head & 1 == 0 {
        VssMode::Feldman
    } else {
        VssMode::Pedersen
    };
    let rec = recorded(mode);
    let index = (head as usize >> 1) % N;
    let member = &rec.members[index];
    let me = member.address();
    let engine = Engine::new(
        rec.setup.clone(),
        me,
        member.operator.signer.clone(),
        Arc::clone(&member.encryption),
        None,
        rec.seeds[index],
    )
    .expect("a member's engine starts");
    let own: BTreeSet<MessageHash> = rec
        .messages
        .iter()
        .filter(|m| m.signer == me)
        .map(|m| MessageHash(m.hash))
        .collect();
    let pool: Vec<&SignedMessage> = rec
        .messages
        .iter()
        .filter(|m| !own.contains(&MessageHash(m.hash)))
        .collect();
    let inbound = rec
        .inbound
        .iter()
        .filter(|(to, i)| *to == me && !own.contains(&MessageHash(rec.messages[*i].hash)))
        .map(|(_, i)| &rec.messages[*i])
        .collect();
    // Every participant may have MESSAGES_PER_AUTHOR messages accepted, each held in
    // the store and at most one queue.
    let participants = rec.setup.params.players.len();
    let mut driver = Driver {
        rec,
        me,
        engine,
        pool,
        inbound,
        cursor: 0,
        now: 0,
        bound: 2 * MESSAGES_PER_AUTHOR * participants,
    };
    driver.engine.start(0);
    driver.settle();
    let mut ops = 0;
    while !input.done() && ops < 512 {
        driver.op(&mut input);
        ops += 1;
    }
});
