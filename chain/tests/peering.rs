//! Deployment, operator registration and the operator set as read from the chain,
//! the commitment registry, and both transaction signers — against a real anvil.

mod common;

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use common::{Fixture, connect};
use kms_chain::{
    ChainConnection, ChainError, CommitmentOutcome, ConnectionOptions, KeyCurve, KmsContracts,
    RemoteTxSigner,
};
use kms_crypto::signer::OperatorPublicKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_register_and_the_set_is_read_at_a_block() {
    let Some(mut f) = Fixture::new(5, KeyCurve::Bn254, 1).await else {
        return;
    };
    let reader = f.avs.operator_set();
    let before = f.avs.connection().block(None).await.unwrap();
    let set = reader.at_block(before.number).await.unwrap();
    assert_eq!(set.curve, KeyCurve::Bn254);
    assert_eq!(set.block, before);
    assert!(set.excluded.is_empty(), "{:?}", set.excluded);
    assert_eq!(set.operators.len(), 5);
    for (read, op) in set.operators.iter().zip(&f.operators) {
        assert_eq!(read.address, op.address);
        assert_eq!(read.public_key, op.signer.public_key());
        assert_eq!(read.socket, op.socket);
        assert_eq!(read.participant(), op.participant());
    }
    assert!(reader.is_cached(before.number));

    // A sixth operator, a moved socket and a departure change later blocks only.
    let newcomer = f.new_operator("https://newcomer.invalid").await;
    newcomer
        .kms
        .register_operator(&newcomer.signer.public_key(), &newcomer.socket)
        .await
        .unwrap();
    // Registering again is a no-op.
    newcomer
        .kms
        .register_operator(&newcomer.signer.public_key(), &newcomer.socket)
        .await
        .unwrap();
    f.operators[0]
        .kms
        .update_socket("https://moved.invalid")
        .await
        .unwrap();
    f.operators[1].kms.deregister().await.unwrap();
    let after = reader.latest().await.unwrap();
    assert!(after.block.number > before.number);
    let addrs: Vec<_> = after.operators.iter().map(|o| o.address).collect();
    assert_eq!(addrs.len(), 5);
    assert!(addrs.contains(&newcomer.address));
    assert!(!addrs.contains(&f.operators[1].address));
    let moved = after
        .operators
        .iter()
        .find(|o| o.address == f.operators[0].address)
        .unwrap();
    assert_eq!(moved.socket, "https://moved.invalid");
    // The earlier block still reads as it was (from the cache and from the chain).
    assert_eq!(
        reader.at_block(before.number).await.unwrap().operators,
        set.operators
    );
    let fresh = f.avs.operator_set();
    assert_eq!(
        fresh.at_block(before.number).await.unwrap().operators,
        set.operators
    );

    // Block info.
    let b = f.avs.connection().block(Some(before.number)).await.unwrap();
    assert_eq!(b, before);
    assert!(b.timestamp > 1_600_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_operator_sets_read_the_signing_address() {
    let Some(f) = Fixture::new(3, KeyCurve::Ecdsa, 2).await else {
        return;
    };
    let set = f.avs.operator_set().latest().await.unwrap();
    assert_eq!(set.curve, KeyCurve::Ecdsa);
    assert_eq!(set.operators.len(), 3);
    for (read, op) in set.operators.iter().zip(&f.operators) {
        let OperatorPublicKey::Ecdsa(key) = read.public_key else {
            panic!("expected an ECDSA key")
        };
        assert_eq!(read.public_key, op.signer.public_key());
        assert_ne!(
            key, op.address,
            "the protocol key is not the transaction key here"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_rules_are_enforced() {
    let Some(mut f) = Fixture::new(1, KeyCurve::Bn254, 3).await else {
        return;
    };
    // Membership without a key is refused by the registrar (inside AllocationManager).
    let keyless = f.new_operator("https://keyless.invalid").await;
    let err = keyless
        .kms
        .register_for_operator_set(&keyless.socket)
        .await
        .unwrap_err();
    assert_eq!(err.revert_name(), Some("KeyNotRegistered"), "{err}");
    // An empty socket is refused. (The refused transaction above was never sent: the
    // next one must not wait behind a nonce gap.)
    keyless
        .kms
        .register_key(&keyless.signer.public_key(), Default::default())
        .await
        .unwrap();
    let err = keyless.kms.register_for_operator_set("").await.unwrap_err();
    assert_eq!(err.revert_name(), Some("InvalidSocket"), "{err}");
    // Only the AllocationManager may call the registration hook.
    let registrar = kms_chain::bindings::MockAllocationManager::new(
        f.deployment.allocation_manager,
        f.avs.connection().provider().clone(),
    )
    .getAVSRegistrar(f.deployment.avs)
    .call()
    .await
    .unwrap();
    let r = kms_chain::bindings::EigenKMSRegistrar::new(
        registrar,
        f.operators[0].kms.connection().provider().clone(),
    );
    let err = r
        .registerOperator(
            f.operators[0].eth(),
            f.deployment.avs,
            vec![common::SET_ID],
            Default::default(),
        )
        .send()
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("revert"), "{err}");
    // A non-member cannot move a socket.
    let err = keyless
        .kms
        .update_socket("https://x.invalid")
        .await
        .unwrap_err();
    assert_eq!(err.revert_name(), Some("NotRegistered"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commitment_registry_records_once_per_session() {
    let Some(mut f) = Fixture::new(2, KeyCurve::Bn254, 4).await else {
        return;
    };
    let op = &f.operators[0];
    let (h, root) = (B256::repeat_byte(0xaa), B256::repeat_byte(0xbb));
    let first = op
        .kms
        .submit_commitment(1_700_000_000, h, root)
        .await
        .unwrap();
    let CommitmentOutcome::Submitted(tx) = first else {
        panic!("expected a transaction")
    };
    assert!(tx.gas_used > 21_000);
    assert_eq!(
        op.kms
            .submit_commitment(1_700_000_000, h, root)
            .await
            .unwrap(),
        CommitmentOutcome::AlreadyRecorded
    );
    let err = op
        .kms
        .submit_commitment(1_700_000_000, B256::repeat_byte(0xcc), root)
        .await
        .unwrap_err();
    assert!(matches!(err, ChainError::Conflict(_)), "{err}");
    let rec = f
        .avs
        .recorded_commitment(1_700_000_000, op.eth())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (rec.commitment_hash, rec.ack_merkle_root, rec.block),
        (h, root, tx.block)
    );
    assert!(
        f.avs
            .recorded_commitment(1_700_000_001, op.eth())
            .await
            .unwrap()
            .is_none()
    );
    // Zero hash and non-members are refused.
    let err = f.operators[1]
        .kms
        .submit_commitment(1, B256::ZERO, root)
        .await
        .unwrap_err();
    assert_eq!(err.revert_name(), Some("ZeroCommitmentHash"), "{err}");
    let outsider = f.new_operator("https://outsider.invalid").await;
    let err = outsider
        .kms
        .submit_commitment(1, h, root)
        .await
        .unwrap_err();
    assert_eq!(err.revert_name(), Some("NotMember"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_signer_signs_through_eth_sign_transaction() {
    let Some(anvil) = common::Anvil::start() else {
        return;
    };
    let reader = ChainConnection::read_only(&anvil.url, ConnectionOptions::default()).unwrap();
    // anvil holds its dev accounts' keys and answers `eth_signTransaction` as
    // web3signer does: it stands in for the remote signer.
    let accounts: Vec<Address> = reader.provider().get_accounts().await.unwrap();
    let remote =
        RemoteTxSigner::new(anvil.url.clone(), accounts[0], Duration::from_secs(10)).unwrap();
    let conn = connect(&anvil, Arc::new(remote));
    let deployment =
        kms_chain::deployment::deploy_with_mocks(&conn, KeyCurve::Bn254, 1, Default::default())
            .await
            .expect("deploy with a remote signer");
    let kms = KmsContracts::new(conn, deployment);
    assert!(!kms.is_member(accounts[0]).await.unwrap());

    // A signer that does not hold the key: refused before anything is broadcast.
    let stranger = Address::repeat_byte(0x42);
    let _: () = reader
        .provider()
        .raw_request(
            "anvil_setBalance".into(),
            (
                stranger,
                alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(20)),
            ),
        )
        .await
        .unwrap();
    let wrong = RemoteTxSigner::new(anvil.url.clone(), stranger, Duration::from_secs(10)).unwrap();
    let conn = connect(&anvil, Arc::new(wrong));
    let err =
        kms_chain::deployment::deploy_with_mocks(&conn, KeyCurve::Bn254, 1, Default::default())
            .await
            .unwrap_err();
    assert!(err.to_string().contains("signer"), "{err}");
}

#[test]
fn local_signer_reads_key_files_and_redacts() {
    let dir = std::env::temp_dir().join(format!("kms-chain-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("key");
    std::fs::write(
        &path,
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n",
    )
    .unwrap();
    let s = kms_chain::LocalTxSigner::from_key_file(&path).unwrap();
    use kms_chain::TxSigner;
    assert_eq!(
        s.address(),
        "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
            .parse::<Address>()
            .unwrap()
    );
    assert!(!format!("{s:?}").contains("4c0883"));
    std::fs::write(&path, "nonsense").unwrap();
    assert!(kms_chain::LocalTxSigner::from_key_file(&path).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
