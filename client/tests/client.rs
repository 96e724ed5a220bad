//! The client library against fake nodes: agreement on the master key, app keys from
//! partial signatures, IBE round trips, and every way up to `n − t` nodes can fail.

mod common;

use std::time::{Duration, Instant};

use common::{Behaviour, FakeCluster, VERSION, bounded};
use kms_client::{ClientError, Dissent, NodeError};
use kms_crypto::tbls::verify_app_key;

use Behaviour::*;

const TIMEOUT: Duration = Duration::from_secs(3);

async fn happy_path(n: usize, seed: u64) {
    let c = FakeCluster::start(&vec![Honest; n], seed).await;
    let client = c.client(TIMEOUT);
    let mk = client.master_public_key().await.unwrap();
    assert_eq!(mk.version, VERSION);
    assert_eq!(mk.public_key(), c.master_public_key());
    assert_eq!(mk.threshold, kms_crypto::threshold(n));
    assert_eq!(mk.operators, c.operators);
    assert_eq!(mk.agreeing.len(), n);
    assert!(mk.dissenting.is_empty() && mk.failures.is_empty());

    let key = client.app_key("app-1", &c.owner()).await.unwrap();
    assert_eq!(key.point(), &c.expected_app_key("app-1"));
    assert!(verify_app_key(&mk.public_key(), b"app-1", &key));

    let ct = client.encrypt("app-1", b"attack at dawn").await.unwrap();
    let pt = client.decrypt("app-1", &ct, &c.owner()).await.unwrap();
    assert_eq!(&pt[..], b"attack at dawn");
    // Another app's key does not open it.
    let e = client.decrypt("app-2", &ct, &c.owner()).await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Crypto(kms_crypto::CryptoError::DecryptionFailed)
        ),
        "{e}"
    );
}

#[tokio::test]
async fn four_honest_nodes() {
    bounded(happy_path(4, 1)).await;
}

#[tokio::test]
async fn seven_honest_nodes() {
    bounded(happy_path(7, 2)).await;
}

#[tokio::test]
async fn n_minus_t_nodes_down_or_slow_are_tolerated_within_the_timeout() {
    bounded(async {
        // n = 7, t = 5: one port with nothing listening, one node slower than the timeout.
        let mut nodes = vec![Honest; 7];
        nodes[1] = Down;
        nodes[5] = Slow(Duration::from_secs(30));
        let c = FakeCluster::start(&nodes, 3).await;
        let client = c.client(Duration::from_millis(800));
        let start = Instant::now();
        let mk = client.master_public_key().await.unwrap();
        assert_eq!(mk.public_key(), c.master_public_key());
        let failed: Vec<_> = mk.failures.iter().map(|f| (&f.node, &f.error)).collect();
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert!(matches!(failed[0], (u, NodeError::Unreachable(_)) if *u == c.urls[1]));
        assert_eq!(failed[1], (&c.urls[5], &NodeError::Timeout));

        let ct = client.encrypt("app", b"hello").await.unwrap();
        assert_eq!(
            &client.decrypt("app", &ct, &c.owner()).await.unwrap()[..],
            b"hello"
        );
        // Three rounds of requests, each bounded by the timeout, not by the slow node.
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );

        // The 4-node case: one down.
        let c = FakeCluster::start(&[Honest, Honest, Down, Honest], 4).await;
        let key = c.client(TIMEOUT).app_key("app", &c.owner()).await.unwrap();
        assert_eq!(key.point(), &c.expected_app_key("app"));
    })
    .await;
}

#[tokio::test]
async fn an_invalid_partial_is_skipped() {
    bounded(async {
        let c = FakeCluster::start(&[Honest, InvalidPartial, Honest, Honest], 5).await;
        let key = c.client(TIMEOUT).app_key("app", &c.owner()).await.unwrap();
        assert_eq!(key.point(), &c.expected_app_key("app"));

        // n = 7: two liars (n − t) among five honest.
        let nodes = [
            InvalidPartial,
            Honest,
            Honest,
            Honest,
            InvalidPartial,
            Honest,
            Honest,
        ];
        let c = FakeCluster::start(&nodes, 6).await;
        let key = c.client(TIMEOUT).app_key("app", &c.owner()).await.unwrap();
        assert_eq!(key.point(), &c.expected_app_key("app"));
    })
    .await;
}

#[tokio::test]
async fn a_node_claiming_another_key_is_outvoted_and_reported() {
    bounded(async {
        let c = FakeCluster::start(&[Honest, Honest, OtherKey, Honest], 7).await;
        let client = c.client(TIMEOUT);
        let mk = client.master_public_key().await.unwrap();
        assert_eq!(
            mk.version, VERSION,
            "the newer version from one node is not agreed"
        );
        assert_eq!(mk.public_key(), c.master_public_key());
        assert_eq!(
            mk.dissenting,
            vec![Dissent {
                node: c.urls[2].clone(),
                operator: c.operators[2],
                version: VERSION + 1_000,
            }]
        );
        assert_eq!(mk.agreeing.len(), 3);
        // Its partial (of the other version) is left out; the rest suffice.
        let ct = client.encrypt("app", b"x").await.unwrap();
        assert_eq!(
            &client.decrypt("app", &ct, &c.owner()).await.unwrap()[..],
            b"x"
        );
    })
    .await;
}

#[tokio::test]
async fn an_impersonator_does_not_crowd_out_the_operator_it_claims_to_be() {
    bounded(async {
        // Node 0 claims to be operator 1 and is asked first. Operators 1, 2 and 3 are
        // exactly t = 3: dropping operator 1's real partial as a "duplicate" would fail.
        let nodes = [Impersonate(1), Honest, Honest, Honest];
        let c = FakeCluster::start(&nodes, 8).await;
        let key = c.client(TIMEOUT).app_key("app", &c.owner()).await.unwrap();
        assert_eq!(key.point(), &c.expected_app_key("app"));
    })
    .await;
}

#[tokio::test]
async fn nodes_that_moved_to_a_newer_version_are_asked_for_the_agreed_one() {
    bounded(async {
        // One down, one already on the next version for unnamed requests: only two
        // partials of the agreed version in the first round, t = 3.
        let c = FakeCluster::start(&[Honest, MovedOn, Down, Honest], 9).await;
        let key = c.client(TIMEOUT).app_key("app", &c.owner()).await.unwrap();
        assert_eq!(key.point(), &c.expected_app_key("app"));
    })
    .await;
}

#[tokio::test]
async fn fewer_than_t_good_partials_is_a_clear_error() {
    bounded(async {
        let c = FakeCluster::start(&[Honest, InvalidPartial, Honest, Down], 10).await;
        let e = c
            .client(TIMEOUT)
            .app_key("app", &c.owner())
            .await
            .unwrap_err();
        let msg = e.to_string();
        let ClientError::NotEnoughPartials {
            version,
            valid,
            needed,
            failures,
        } = e
        else {
            panic!("{msg}")
        };
        assert_eq!((version, valid, needed), (VERSION, 2, 3), "{msg}");
        assert!(msg.starts_with(&format!(
            "only 2 valid partial signatures for version {VERSION}, 3 needed"
        )));
        assert!(
            failures.iter().any(
                |f| f.node == c.urls[1] && f.error == NodeError::InvalidPartial(c.operators[1])
            ),
            "{msg}"
        );
        assert!(
            failures
                .iter()
                .any(|f| f.node == c.urls[3] && matches!(f.error, NodeError::Unreachable(_))),
            "{msg}"
        );
        // The error names nodes and reasons, never key material.
        assert!(
            msg.contains(c.urls[1].as_str()) && msg.contains("invalid partial"),
            "{msg}"
        );
    })
    .await;
}

#[tokio::test]
async fn fewer_than_t_answers_is_no_agreement() {
    bounded(async {
        let c = FakeCluster::start(&[Honest, NoKey, Down, Honest], 11).await;
        let client = c.client(TIMEOUT);
        let e = client.master_public_key().await.unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(
                e,
                ClientError::NoAgreement {
                    nodes: 4,
                    answered: 2,
                    agreeing: 2,
                    needed: 3,
                    ..
                }
            ),
            "{msg}"
        );
        assert!(msg.contains("2 of 4 nodes answered"), "{msg}");
        assert!(msg.contains("best agreement 2 of 3 needed"), "{msg}");
        // The node's error answer is decoded and surfaced with its URL.
        assert!(
            msg.contains(&format!(
                "{}: HTTP 404 not_found: no key version yet",
                c.urls[1]
            )),
            "{msg}"
        );
        // Encrypting and decrypting need the agreed key too.
        assert!(matches!(
            client.encrypt("app", b"x").await,
            Err(ClientError::NoAgreement { .. })
        ));

        let c = FakeCluster::start(&[Down, Down, Down, Down], 12).await;
        let e = c.client(TIMEOUT).master_public_key().await.unwrap_err();
        assert!(e.to_string().contains("0 of 4 nodes answered"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn oversized_responses_are_refused() {
    bounded(async {
        // n = 7, t = 5: one node declares a large body, one streams it without a length.
        let mut nodes = vec![Honest; 7];
        nodes[0] = Oversized;
        nodes[4] = OversizedChunked;
        let c = FakeCluster::start(&nodes, 13).await;
        let client = c.client(TIMEOUT);
        let mk = client.master_public_key().await.unwrap();
        let too_large = NodeError::TooLarge {
            limit: kms_client::MAX_RESPONSE_BYTES,
        };
        let failed: Vec<_> = mk.failures.iter().map(|f| (&f.node, &f.error)).collect();
        assert_eq!(
            failed,
            vec![(&c.urls[0], &too_large), (&c.urls[4], &too_large)]
        );
        let key = client.app_key("app", &c.owner()).await.unwrap();
        assert_eq!(key.point(), &c.expected_app_key("app"));

        // With a third such node, fewer than t are left.
        nodes[6] = Oversized;
        let c = FakeCluster::start(&nodes, 14).await;
        let e = c.client(TIMEOUT).master_public_key().await.unwrap_err();
        assert!(
            e.to_string()
                .contains("response larger than 1048576 bytes refused"),
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn bad_app_ids_are_refused_before_any_request() {
    bounded(async {
        let c = FakeCluster::start(&[Down], 15).await;
        let client = c.client(TIMEOUT);
        let long = "a".repeat(kms_protocol::api::MAX_APP_ID_BYTES + 1);
        for id in ["", long.as_str()] {
            assert!(matches!(
                client.app_key(id, &c.owner()).await,
                Err(ClientError::InvalidAppId { .. })
            ));
            assert!(matches!(
                client.encrypt(id, b"x").await,
                Err(ClientError::InvalidAppId { .. })
            ));
        }
    })
    .await;
}
