// Builds an @openzeppelin/merkle-tree StandardMerkleTree from a JSON fixture on stdin and prints
// what the Rust tests compare against: the root, each value's leaf hash and proof, and one
// multiproof. The Rust side never sees this package's code, only its answers.
//
// stdin:  { "types": ["bytes32", ...], "values": [[...], ...], "multiproof": [valueIndex, ...] }
//         Integers are decimal strings (JSON numbers lose precision); they become BigInts here.
// stdout: { "root", "leaves": [{ "hash", "proof" }] (in value order), "multiproof":
//           { "leafHashes", "proof", "proofFlags" } }

import { StandardMerkleTree } from '@openzeppelin/merkle-tree';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const fixture = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const isInteger = (type) => /^u?int\d*$/.test(type);
const values = fixture.values.map((row) =>
  row.map((value, column) => (isInteger(fixture.types[column]) ? BigInt(value) : value)),
);

const tree = StandardMerkleTree.of(values, fixture.types);
const leaves = values.map((value, index) => ({
  hash: tree.leafHash(value),
  proof: tree.getProof(index),
}));
const result = { root: tree.root, leaves };
if (Array.isArray(fixture.multiproof)) {
  const multi = tree.getMultiProof(fixture.multiproof);
  result.multiproof = {
    leafHashes: multi.leaves.map((value) => tree.leafHash(value)),
    proof: multi.proof,
    proofFlags: multi.proofFlags,
  };
}
process.stdout.write(`${JSON.stringify(result)}\n`);
