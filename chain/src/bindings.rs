//! Contract bindings, generated at compile time from the committed artifacts in
//! `contracts/out/` (ABI and bytecode), so Rust and the deployed code cannot drift.
#![allow(missing_docs, clippy::too_many_arguments)]

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    EigenKMSRegistrar,
    "../contracts/out/EigenKMSRegistrar.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    EigenKMSCommitmentRegistry,
    "../contracts/out/EigenKMSCommitmentRegistry.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    EigenKMSSlashing,
    "../contracts/out/EigenKMSSlashing.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    EigenKMSEvidenceV2,
    "../contracts/out/EigenKMSEvidenceV2.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    MockAllocationManager,
    "../contracts/out/MockAllocationManager.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    MockKeyRegistrar,
    "../contracts/out/MockKeyRegistrar.json"
);
