#!/usr/bin/env bash
# Compiles contracts/ with solc (solcjs from the npm registry, pinned by
# scripts/install-chain-tools.sh) into one artifact per deployable contract:
#   <out>/<Name>.json = {"contractName", "abi", "bytecode", "deployedBytecode"}
# Default <out> is contracts/out/, which is committed; scripts/check-contracts.sh
# rebuilds into a temporary directory and compares. The settings (optimizer, EVM
# version, no metadata hash) make the output a function of the sources alone.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/contracts/out}"
eval "$("$root/scripts/install-chain-tools.sh" --env)"

mkdir -p "$out"
cd "$root/contracts"
SOLCJS_MODULE="$(dirname "$KMS_SOLCJS")" OUT="$out" node - <<'JS'
const fs = require("fs");
const path = require("path");
const solc = require(process.env.SOLCJS_MODULE);

// Sources by their path under contracts/ (the import base), sorted for a stable input.
const sources = {};
for (const dir of ["src", "mocks"]) {
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".sol")) sources[p] = { content: fs.readFileSync(p, "utf8") };
    }
  };
  walk(dir);
}

// The deployable contracts; libraries are internal and interfaces have no code.
const deployable = {
  "src/EigenKMSRegistrar.sol": "EigenKMSRegistrar",
  "src/EigenKMSCommitmentRegistry.sol": "EigenKMSCommitmentRegistry",
  "src/EigenKMSSlashing.sol": "EigenKMSSlashing",
  "src/EigenKMSEvidenceV2.sol": "EigenKMSEvidenceV2",
  "mocks/MockAllocationManager.sol": "MockAllocationManager",
  "mocks/MockKeyRegistrar.sol": "MockKeyRegistrar",
};

const input = {
  language: "Solidity",
  sources,
  settings: {
    evmVersion: "prague",
    optimizer: { enabled: true, runs: 200 },
    metadata: { bytecodeHash: "none", appendCBOR: false },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
let failed = false;
for (const e of output.errors || []) {
  process.stderr.write(e.formattedMessage || e.message);
  if (e.severity === "error") failed = true;
}
if (failed) process.exit(1);

for (const [file, name] of Object.entries(deployable)) {
  const c = output.contracts[file] && output.contracts[file][name];
  if (!c) { process.stderr.write(`missing ${name} in ${file}\n`); process.exit(1); }
  const artifact = {
    contractName: name,
    sourceName: file,
    compiler: `solc ${solc.version()}`,
    abi: c.abi,
    bytecode: "0x" + c.evm.bytecode.object,
    deployedBytecode: "0x" + c.evm.deployedBytecode.object,
  };
  const size = c.evm.deployedBytecode.object.length / 2;
  if (size > 24576) { process.stderr.write(`${name}: ${size} bytes of code exceed EIP-170\n`); process.exit(1); }
  fs.writeFileSync(path.join(process.env.OUT, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
  process.stderr.write(`[contracts] ${name}: ${size} bytes of code\n`);
}
JS
