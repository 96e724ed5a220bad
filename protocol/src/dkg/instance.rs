//! One agreement instance of a session, between the generic agreement module (which
//! knows only value ids and opaque evidence) and the engine (which knows what a value
//! means): the entries behind each value id, the proposal this node still owes, and
//! the decision with its certificate.

use std::collections::BTreeMap;

use kms_crypto::OperatorAddress;
use sha3::{Digest, Keccak256};

use super::ids::{MessageHash, SessionHash};
use super::phase::InstanceId;
use crate::agreement::{self, Agreement, Certificate, Output, Round, ValueId};
use crate::error::ProtocolError;
use crate::messages::SignedMessage;

/// `keccak256("EIGENKMS-V2-VALUE" ‖ sessionHash ‖ instance ‖ entries…)` (packed):
/// what votes name.
pub fn value_id(session: &SessionHash, instance: InstanceId, entries: &[MessageHash]) -> ValueId {
    let mut h = Keccak256::new();
    h.update(b"EIGENKMS-V2-VALUE");
    h.update(session.0);
    h.update([instance as u8]);
    for e in entries {
        h.update(e.0);
    }
    ValueId(h.finalize().into())
}

/// An agreement instance with the values it has seen.
pub struct Instance {
    /// Which instance.
    pub id: InstanceId,
    /// The agreement state machine.
    pub agreement: Agreement<SignedMessage>,
    /// Its configuration (round 0 starts when this node starts the instance).
    config: agreement::Config,
    /// The entries behind every value id seen in a proposal.
    pub values: BTreeMap<ValueId, Vec<MessageHash>>,
    /// Values whose validity is still to be told to the agreement.
    pub unjudged: Vec<ValueId>,
    /// A round whose proposal this node owes (it is the proposer and had no value).
    pub owed: Option<Round>,
    /// Whether the agreement was started.
    pub started: bool,
    /// Messages that arrived before the start.
    pub early: Vec<(OperatorAddress, SignedMessage)>,
    /// Signers of prevotes by (round, value): re-proposals' justifications.
    pub prevotes: BTreeMap<(u32, ValueId), std::collections::BTreeSet<OperatorAddress>>,
    /// Re-proposals waiting for the rest of their justification.
    pub waiting: Vec<(OperatorAddress, SignedMessage)>,
    /// The decision: value, entries and certificate.
    pub decided: Option<(ValueId, Certificate<SignedMessage>)>,
    /// Whether the decision was passed on to the peers.
    pub relayed: bool,
    /// Gave up (too many rounds).
    pub gave_up: bool,
}

impl Instance {
    /// A new instance over `config`.
    pub fn new(id: InstanceId, config: agreement::Config) -> Result<Self, ProtocolError> {
        Ok(Self {
            id,
            agreement: Agreement::new(config.clone())
                .map_err(|_| ProtocolError::InvalidSession("agreement configuration"))?,
            config,
            values: BTreeMap::new(),
            unjudged: Vec::new(),
            owed: None,
            started: false,
            early: Vec::new(),
            prevotes: BTreeMap::new(),
            waiting: Vec::new(),
            decided: None,
            relayed: false,
            gave_up: false,
        })
    }

    /// Starts round 0 now.
    pub fn start(&mut self, now: u64) {
        if self.started {
            return;
        }
        self.started = true;
        let mut config = self.config.clone();
        config.start_ms = now;
        if let Ok(a) = Agreement::new(config) {
            self.agreement = a;
        }
        self.agreement.start(now);
    }

    /// Collects the agreement's outputs: messages to sign and send are returned; the
    /// rest updates this instance.
    pub fn outputs(&mut self) -> Vec<Output<SignedMessage>> {
        let mut rest = Vec::new();
        for o in self.agreement.drain() {
            match o {
                Output::NeedProposal { round } => self.owed = Some(round),
                Output::NeedValidity(v) => self.unjudged.push(v),
                Output::Decided(c) => {
                    if self.decided.is_none() {
                        self.decided = Some((c.value, c));
                    }
                }
                Output::GaveUp => self.gave_up = true,
                other => rest.push(other),
            }
        }
        rest
    }

    /// The decided entries, if decided and known.
    pub fn decided_entries(&self) -> Option<&Vec<MessageHash>> {
        self.decided.as_ref().and_then(|(v, _)| self.values.get(v))
    }
}
