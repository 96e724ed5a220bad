//! Shared fixtures of the chain tests: a real anvil, the contracts with the EigenLayer
//! mocks deployed, registered operators, and protocol messages and evidence made with
//! kms-protocol (signed by the operators' real protocol keys).
#![allow(dead_code)]

pub mod evidence;
pub mod v2;

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use kms_chain::{
    ChainConnection, ConnectionOptions, Deployment, KeyCurve, KmsContracts, LocalTxSigner,
    SlashingPolicy, TxSigner,
};
use kms_crypto::OperatorAddress;
use kms_crypto::signer::{Bn254SecretKey, Bn254Signer, EcdsaSigner, OperatorSigner};
use kms_protocol::Participant;
use kms_protocol::sim::SimOperator;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

pub use kms_chain::anvil::Anvil;

/// The operator set id the tests use.
pub const SET_ID: u32 = 7;

/// One registered operator: its transaction key (= its operator address) and its
/// protocol key (registered in the KeyRegistrar).
pub struct TestOperator {
    pub address: OperatorAddress,
    pub signer: Arc<dyn OperatorSigner>,
    pub kms: KmsContracts,
    pub socket: String,
}

impl TestOperator {
    pub fn sim(&self) -> SimOperator {
        SimOperator {
            address: self.address,
            signer: self.signer.clone(),
            certificates: Default::default(),
        }
    }

    pub fn participant(&self) -> Participant {
        self.sim().participant()
    }

    pub fn eth(&self) -> Address {
        Address::from(*self.address.as_bytes())
    }
}

/// A deployed chain with registered operators.
pub struct Fixture {
    pub anvil: Anvil,
    pub avs: KmsContracts,
    pub deployment: Deployment,
    pub curve: KeyCurve,
    pub operators: Vec<TestOperator>,
    rng: ChaCha20Rng,
}

pub fn eth(a: &OperatorAddress) -> Address {
    Address::from(*a.as_bytes())
}

async fn funded_signer(conn: &ChainConnection, rng: &mut ChaCha20Rng) -> Arc<LocalTxSigner> {
    loop {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        if let Ok(s) = LocalTxSigner::from_bytes(&key) {
            kms_chain::anvil::fund(conn, s.address())
                .await
                .expect("anvil_setBalance");
            return Arc::new(s);
        }
    }
}

pub fn connect(anvil: &Anvil, signer: Arc<dyn TxSigner>) -> ChainConnection {
    ChainConnection::with_signer(&anvil.url, signer, ConnectionOptions::default())
        .expect("connection")
}

impl Fixture {
    /// Anvil, the contracts, and `n` registered operators (`None` if anvil cannot be
    /// installed). Operators are sorted by address.
    pub async fn new(n: usize, curve: KeyCurve, seed: u64) -> Option<Fixture> {
        Self::with_policy(n, curve, seed, SlashingPolicy::default()).await
    }

    pub async fn with_policy(
        n: usize,
        curve: KeyCurve,
        seed: u64,
        policy: SlashingPolicy,
    ) -> Option<Fixture> {
        let anvil = Anvil::start()?;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let bootstrap =
            ChainConnection::read_only(&anvil.url, ConnectionOptions::default()).expect("conn");
        let avs_key = funded_signer(&bootstrap, &mut rng).await;
        let avs_conn = connect(&anvil, avs_key);
        let deployment = kms_chain::deployment::deploy_with_mocks(&avs_conn, curve, SET_ID, policy)
            .await
            .expect("deploy");
        let avs = KmsContracts::new(avs_conn, deployment);
        let mut f = Fixture {
            anvil,
            avs,
            deployment,
            curve,
            operators: Vec::new(),
            rng,
        };
        for i in 0..n {
            let op = f
                .new_operator(&format!("https://operator-{i}.invalid:8443"))
                .await;
            op.kms
                .register_operator(&op.signer.public_key(), &op.socket)
                .await
                .expect("register operator");
            f.operators.push(op);
        }
        f.operators.sort_by_key(|o| o.address);
        Some(f)
    }

    /// A funded operator identity that is not registered.
    pub async fn new_operator(&mut self, socket: &str) -> TestOperator {
        let bootstrap = ChainConnection::read_only(&self.anvil.url, ConnectionOptions::default())
            .expect("conn");
        let tx = funded_signer(&bootstrap, &mut self.rng).await;
        let signer: Arc<dyn OperatorSigner> = match self.curve {
            KeyCurve::Bn254 => Arc::new(Bn254Signer::new(Bn254SecretKey::random(&mut self.rng))),
            // ECDSA operator sets: a protocol key distinct from the transaction key, as
            // EigenLayer allows.
            KeyCurve::Ecdsa => Arc::new(EcdsaSigner::random(&mut self.rng)),
        };
        let address = OperatorAddress::from_bytes(tx.address().0.0);
        TestOperator {
            address,
            signer,
            kms: KmsContracts::new(connect(&self.anvil, tx), self.deployment),
            socket: socket.to_string(),
        }
    }

    pub fn participants(&self) -> Vec<Participant> {
        self.operators
            .iter()
            .map(TestOperator::participant)
            .collect()
    }

    pub fn sims(&self) -> Vec<SimOperator> {
        self.operators.iter().map(TestOperator::sim).collect()
    }

    pub fn operator(&self, a: &OperatorAddress) -> &TestOperator {
        self.operators
            .iter()
            .find(|o| o.address == *a)
            .expect("known operator")
    }

    /// The mock AllocationManager's slash count of `a` (test inspection).
    pub async fn slashes_of(&self, a: &OperatorAddress) -> (u64, U256) {
        let am = kms_chain::bindings::MockAllocationManager::new(
            self.deployment.allocation_manager,
            self.avs.connection().provider().clone(),
        );
        let n = am.slashesOf(eth(a)).call().await.expect("slashesOf");
        let w = am.wadSlashedOf(eth(a)).call().await.expect("wadSlashedOf");
        (n.to::<u64>(), w)
    }
}
