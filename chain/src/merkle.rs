//! The ack Merkle root a dealer records with its commitment: a binary keccak256 tree
//! with sorted pairs (OpenZeppelin `MerkleProof` compatible), so a player can later
//! prove on-chain that its ack is or is not among the ones the dealer claims.

use alloy::primitives::{B256, keccak256};

/// A leaf: `keccak256(keccak256(ack_message_hash))`, double-hashed as OpenZeppelin
/// recommends so a leaf can never be mistaken for an inner node.
pub fn ack_leaf(ack_message_hash: &[u8; 32]) -> B256 {
    keccak256(keccak256(ack_message_hash))
}

fn hash_pair(a: B256, b: B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

/// The root over `leaves` (sorted first, so the order acks arrived in does not matter;
/// an odd node is carried up unchanged). Zero for no leaves.
pub fn merkle_root(leaves: &[B256]) -> B256 {
    let mut level: Vec<B256> = leaves.to_vec();
    level.sort();
    if level.is_empty() {
        return B256::ZERO;
    }
    while level.len() > 1 {
        level = parent_level(&level);
    }
    level[0]
}

/// The level above `level`: pairs hashed, an odd last node carried up unchanged.
fn parent_level(level: &[B256]) -> Vec<B256> {
    level
        .chunks(2)
        .map(|c| {
            if c.len() == 2 {
                hash_pair(c[0], c[1])
            } else {
                c[0]
            }
        })
        .collect()
}

/// The sibling path of `leaf` (for a contract-side `MerkleProof.verify`).
pub fn merkle_proof(leaves: &[B256], leaf: B256) -> Option<Vec<B256>> {
    let mut level: Vec<B256> = leaves.to_vec();
    level.sort();
    let mut at = level.iter().position(|l| *l == leaf)?;
    let mut proof = Vec::new();
    while level.len() > 1 {
        let sibling = at ^ 1;
        if sibling < level.len() {
            proof.push(level[sibling]);
        }
        level = parent_level(&level);
        at /= 2;
    }
    Some(proof)
}

/// Checks a path from [`merkle_proof`] against `root`.
pub fn verify_proof(root: B256, leaf: B256, proof: &[B256]) -> bool {
    proof.iter().fold(leaf, |acc, p| hash_pair(acc, *p)) == root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_proofs() {
        assert_eq!(merkle_root(&[]), B256::ZERO);
        let leaves: Vec<B256> = (0u8..7).map(|i| ack_leaf(&[i; 32])).collect();
        assert_eq!(merkle_root(&leaves[..1]), leaves[0]);
        let root = merkle_root(&leaves);
        let mut shuffled = leaves.clone();
        shuffled.reverse();
        assert_eq!(merkle_root(&shuffled), root, "order-independent");
        for l in &leaves {
            let p = merkle_proof(&leaves, *l).unwrap();
            assert!(verify_proof(root, *l, &p));
            assert!(!verify_proof(root, ack_leaf(&[9; 32]), &p));
        }
        assert!(merkle_proof(&leaves, ack_leaf(&[9; 32])).is_none());
        assert_ne!(merkle_root(&leaves[..6]), root);
    }
}
