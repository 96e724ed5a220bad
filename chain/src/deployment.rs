//! Where the contracts live, and deploying them (with test-only EigenLayer mocks on a
//! local chain).

use alloy::primitives::{Address, U256, address};
use serde::{Deserialize, Serialize};

use crate::bindings::{
    EigenKMSCommitmentRegistry, EigenKMSRegistrar, EigenKMSSlashing, MockAllocationManager,
    MockKeyRegistrar,
};
use crate::connection::ChainConnection;
use crate::error::ChainError;

/// The addresses EigenKMS works with. The AVS registrar (socket URLs) is not listed:
/// it is read from the AllocationManager (`getAVSRegistrar(avs)`) as EigenLayer
/// resolves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployment {
    /// EigenLayer's AllocationManager.
    pub allocation_manager: Address,
    /// EigenLayer's KeyRegistrar.
    pub key_registrar: Address,
    /// `EigenKMSCommitmentRegistry`.
    pub commitment_registry: Address,
    /// `EigenKMSSlashing`.
    pub slashing: Address,
    /// The AVS address (owner of the operator set).
    pub avs: Address,
    /// The EigenKMS operator set.
    pub operator_set_id: u32,
}

/// The key type an operator set uses (EigenLayer's `IKeyRegistrar.CurveType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum KeyCurve {
    /// ECDSA secp256k1 keys (the key's address).
    Ecdsa = 1,
    /// BN254 BLS keys.
    Bn254 = 2,
}

/// How much an operator loses per punished fraud, in EigenLayer wads (1e18 = all of
/// its allocation to the operator set). Fraud in three sessions always costs 1e18.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlashingPolicy {
    /// Invalid shares, after three complaints.
    pub invalid_share_wad: U256,
    /// Equivocation.
    pub equivocation_wad: U256,
    /// Commitment inconsistency.
    pub inconsistency_wad: U256,
}

impl Default for SlashingPolicy {
    /// 1 % for invalid shares, 10 % for equivocation and inconsistency: the seed's
    /// 0.1 ETH versus 1 ETH, as proportions.
    fn default() -> Self {
        let wad = |per_mille: u64| U256::from(per_mille) * U256::from(10u64).pow(U256::from(15));
        Self {
            invalid_share_wad: wad(10),
            equivocation_wad: wad(100),
            inconsistency_wad: wad(100),
        }
    }
}

/// The strategy the mocks put in the operator set (an address without code).
pub const MOCK_STRATEGY: Address = address!("0x00000000000000000000000000000000000057a7");

/// Deploys the EigenKMS contracts for an existing EigenLayer deployment. The AVS
/// (`conn`'s sender) must still point AllocationManager at the registrar
/// (`setAVSRegistrar`), create the operator set with the slashing contract as its
/// slasher, configure the KeyRegistrar curve, and appoint the slashing contract for
/// `deregisterFromOperatorSets` in the PermissionController (ejection).
pub async fn deploy_contracts(
    conn: &ChainConnection,
    allocation_manager: Address,
    key_registrar: Address,
    operator_set_id: u32,
    policy: SlashingPolicy,
) -> Result<(Deployment, Address), ChainError> {
    let avs = conn.sender()?;
    let p = conn.provider().clone();
    let map = |c: &'static str| move |e| crate::connection::decode_revert(c, e);
    let registrar = conn
        .bounded("deployment", async {
            EigenKMSRegistrar::deploy_builder(
                p.clone(),
                allocation_manager,
                key_registrar,
                avs,
                operator_set_id,
            )
            .deploy()
            .await
            .map_err(map("EigenKMSRegistrar"))
        })
        .await?;
    let registry = conn
        .bounded("deployment", async {
            EigenKMSCommitmentRegistry::deploy_builder(
                p.clone(),
                allocation_manager,
                avs,
                operator_set_id,
            )
            .deploy()
            .await
            .map_err(map("EigenKMSCommitmentRegistry"))
        })
        .await?;
    let slashing = conn
        .bounded("deployment", async {
            EigenKMSSlashing::deploy_builder(
                p.clone(),
                allocation_manager,
                key_registrar,
                registry,
                avs,
                operator_set_id,
                policy.invalid_share_wad,
                policy.equivocation_wad,
                policy.inconsistency_wad,
            )
            .deploy()
            .await
            .map_err(map("EigenKMSSlashing"))
        })
        .await?;
    let deployment = Deployment {
        allocation_manager,
        key_registrar,
        commitment_registry: registry,
        slashing,
        avs,
        operator_set_id,
    };
    Ok((deployment, registrar))
}

/// A complete local deployment for tests and devnets: the TEST-ONLY EigenLayer mocks,
/// the EigenKMS contracts, and the AVS set-up (registrar, operator set with the
/// slashing contract as slasher, key curve). `conn`'s sender becomes the AVS.
pub async fn deploy_with_mocks(
    conn: &ChainConnection,
    curve: KeyCurve,
    operator_set_id: u32,
    policy: SlashingPolicy,
) -> Result<Deployment, ChainError> {
    let avs = conn.sender()?;
    let p = conn.provider().clone();
    let map = |c: &'static str| move |e| crate::connection::decode_revert(c, e);
    let am = conn
        .bounded("deployment", async {
            MockAllocationManager::deploy_builder(p.clone())
                .deploy()
                .await
                .map_err(map("MockAllocationManager"))
        })
        .await?;
    let kr = conn
        .bounded("deployment", async {
            MockKeyRegistrar::deploy_builder(p.clone())
                .deploy()
                .await
                .map_err(map("MockKeyRegistrar"))
        })
        .await?;
    let (deployment, registrar) = deploy_contracts(conn, am, kr, operator_set_id, policy).await?;
    let am = MockAllocationManager::new(am, p.clone());
    conn.send("MockAllocationManager", am.setAVSRegistrar(avs, registrar))
        .await?;
    conn.send(
        "MockAllocationManager",
        am.createOperatorSets(
            avs,
            vec![crate::bindings::IAllocationManager::CreateSetParamsV2 {
                operatorSetId: operator_set_id,
                strategies: vec![MOCK_STRATEGY],
                slasher: deployment.slashing,
            }],
        ),
    )
    .await?;
    let kr = MockKeyRegistrar::new(kr, p);
    conn.send(
        "MockKeyRegistrar",
        kr.configureOperatorSet(
            MockKeyRegistrar::OperatorSet {
                avs,
                id: operator_set_id,
            },
            curve as u8,
        ),
    )
    .await?;
    Ok(deployment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_config_roundtrip_and_default_policy() {
        let d = Deployment {
            allocation_manager: Address::repeat_byte(1),
            key_registrar: Address::repeat_byte(2),
            commitment_registry: Address::repeat_byte(3),
            slashing: Address::repeat_byte(4),
            avs: Address::repeat_byte(5),
            operator_set_id: 9,
        };
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains("\"operatorSetId\":9"));
        assert_eq!(serde_json::from_str::<Deployment>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Deployment>(&json.replace('}', ",\"x\":1}")).is_err());
        let p = SlashingPolicy::default();
        let e18 = U256::from(10u64).pow(U256::from(18));
        assert_eq!(p.invalid_share_wad * U256::from(100), e18);
        assert_eq!(p.equivocation_wad * U256::from(10), e18);
    }
}
