//! The `kms-client` command line, driven in-process through `cli::run`.

mod common;

use common::{Behaviour, FakeCluster, TempDir, VERSION, bounded};

async fn cli(c: &FakeCluster, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let nodes: Vec<String> = c.urls.iter().map(|u| u.to_string()).collect();
    let mut argv = vec![
        "kms-client".to_string(),
        "--nodes".to_string(),
        nodes.join(","),
        "--timeout-ms".to_string(),
        "3000".to_string(),
    ];
    argv.extend(args.iter().map(|s| s.to_string()));
    if matches!(args.first(), Some(&"app-key") | Some(&"decrypt")) {
        argv.extend(["--owner-key".to_string(), c.owner_key_file()]);
    }
    let mut out = Vec::new();
    kms_client::cli::run(argv, &mut out).await?;
    Ok(out)
}

async fn commands(behaviours: &[Behaviour], seed: u64) {
    let c = FakeCluster::start(behaviours, seed).await;

    let pk: serde_json::Value =
        serde_json::from_slice(&cli(&c, &["pubkey"]).await.unwrap()).unwrap();
    assert_eq!(
        pk["masterPublicKey"],
        serde_json::to_value(c.master_public_key()).unwrap()
    );
    assert_eq!(pk["version"], VERSION);
    assert_eq!(pk["threshold"], c.threshold());
    assert_eq!(pk["operators"], serde_json::to_value(&c.operators).unwrap());

    let out = String::from_utf8(cli(&c, &["app-key", "--app-id", "svc"]).await.unwrap()).unwrap();
    let expected = format!(
        "0x{}\n",
        hex::encode(c.expected_app_key("svc").to_compressed())
    );
    assert_eq!(out, expected);
    assert_eq!(out.len(), 2 + 96 + 1, "48 bytes as 0x-hex");

    // encrypt → decrypt through files, with binary content.
    let dir = TempDir::new();
    let (pt, ct, back) = (dir.file("pt"), dir.file("ct"), dir.file("back"));
    let plaintext: Vec<u8> = (0..=255u8).cycle().take(5_000).collect();
    std::fs::write(&pt, &plaintext).unwrap();
    let out = cli(
        &c,
        &["encrypt", "--app-id", "svc", "--in", &pt, "--out", &ct],
    )
    .await
    .unwrap();
    assert!(out.is_empty(), "nothing on stdout with --out");
    assert_eq!(
        std::fs::read(&ct).unwrap().len(),
        plaintext.len() + kms_crypto::ibe::OVERHEAD
    );
    cli(
        &c,
        &["decrypt", "--app-id", "svc", "--in", &ct, "--out", &back],
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), plaintext);

    // Without --out the ciphertext goes to stdout; decrypt reads it back from a file.
    let ct_bytes = cli(&c, &["encrypt", "--app-id", "svc", "--in", &pt])
        .await
        .unwrap();
    std::fs::write(&ct, &ct_bytes).unwrap();
    let pt_bytes = cli(&c, &["decrypt", "--app-id", "svc", "--in", &ct])
        .await
        .unwrap();
    assert_eq!(pt_bytes, plaintext);

    // The wrong app cannot decrypt.
    let e = cli(&c, &["decrypt", "--app-id", "other", "--in", &ct])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("decryption failed"), "{e:#}");
}

#[tokio::test]
async fn commands_with_four_nodes() {
    bounded(commands(&[Behaviour::Honest; 4], 21)).await;
}

#[tokio::test]
async fn commands_with_seven_nodes_two_of_them_faulty() {
    let mut nodes = vec![Behaviour::Honest; 7];
    nodes[2] = Behaviour::Down;
    nodes[6] = Behaviour::InvalidPartial;
    bounded(commands(&nodes, 22)).await;
}

#[tokio::test]
async fn pubkey_reports_dissenting_nodes() {
    bounded(async {
        use Behaviour::*;
        let c = FakeCluster::start(&[Honest, OtherKey, Honest, Honest], 23).await;
        let pk: serde_json::Value =
            serde_json::from_slice(&cli(&c, &["pubkey"]).await.unwrap()).unwrap();
        assert_eq!(pk["version"], VERSION);
        let d = &pk["dissenting"][0];
        assert_eq!(d["node"], c.urls[1].as_str());
        assert_eq!(d["operator"], serde_json::to_value(c.operators[1]).unwrap());
        assert_eq!(d["version"], VERSION + 1_000);
    })
    .await;
}

#[tokio::test]
async fn errors_are_reported() {
    bounded(async {
        use Behaviour::*;
        let c = FakeCluster::start(&[Honest, InvalidPartial, Down, Honest], 24).await;
        let e = cli(&c, &["app-key", "--app-id", "svc"]).await.unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "only 2 valid partial signatures for version {VERSION}, 3 needed"
            )),
            "{e:#}"
        );
        let e = cli(&c, &["app-key", "--app-id", ""]).await.unwrap_err();
        assert!(
            e.to_string().contains("app ID must be 1 to 256 bytes"),
            "{e:#}"
        );
        let dir = TempDir::new();
        let e = cli(
            &c,
            &["decrypt", "--app-id", "svc", "--in", &dir.file("missing")],
        )
        .await
        .unwrap_err();
        assert!(format!("{e:#}").contains("missing"), "{e:#}");
        // Argument errors come from clap.
        let e = kms_client::cli::run(["kms-client".to_string(), "pubkey".into()], &mut Vec::new())
            .await;
        if std::env::var_os("KMS_NODES").is_none() {
            assert!(e.unwrap_err().downcast_ref::<clap::Error>().is_some());
        }
        let argv = [
            "kms-client",
            "--nodes",
            c.urls[0].as_str(),
            "--timeout-ms",
            "0",
            "pubkey",
        ];
        let e = kms_client::cli::run(argv.map(String::from), &mut Vec::new())
            .await
            .unwrap_err();
        assert!(e.downcast_ref::<clap::Error>().is_some(), "{e:#}");
    })
    .await;
}
