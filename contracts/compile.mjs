// Compiles contracts/src/*.sol with the pinned solc-js (no network, no native solc) and writes
// one JSON file per contract: { contractName, compiler, settings, abi, bytecode, deployedBytecode }.
//
// Usage: node contracts/compile.mjs [outDir]   (default: contracts/build)
// The Rust tests call this script, so a failure exits non-zero with solc's messages on stderr.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import solc from 'solc';

const here = path.dirname(fileURLToPath(import.meta.url));
const sourceDir = path.join(here, 'src');
const outDir = path.resolve(process.argv[2] ?? path.join(here, 'build'));

// Fixed settings: the bytecode (and so every gas figure) depends on them.
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
};

const sources = {};
for (const name of fs.readdirSync(sourceDir).filter((f) => f.endsWith('.sol')).sort()) {
  sources[name] = { content: fs.readFileSync(path.join(sourceDir, name), 'utf8') };
}

// Imports resolve only to the exact npm packages pinned in package-lock.json.
function findImports(importPath) {
  if (!importPath.startsWith('@openzeppelin/contracts/')) {
    return { error: `import outside @openzeppelin/contracts: ${importPath}` };
  }
  const file = path.join(here, 'node_modules', importPath);
  if (!fs.existsSync(file)) {
    return { error: `missing ${file}; run \`npm ci --prefix contracts\`` };
  }
  return { contents: fs.readFileSync(file, 'utf8') };
}

const input = { language: 'Solidity', sources, settings };
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const diagnostics = output.errors ?? [];
for (const diagnostic of diagnostics) {
  process.stderr.write(diagnostic.formattedMessage ?? diagnostic.message);
}
if (diagnostics.some((d) => d.severity === 'error')) {
  process.exit(1);
}

fs.mkdirSync(outDir, { recursive: true });
const written = [];
for (const [sourceName, contracts] of Object.entries(output.contracts ?? {})) {
  if (!(sourceName in sources)) continue; // Only our contracts, not the imported libraries.
  for (const [contractName, artifact] of Object.entries(contracts)) {
    const json = {
      contractName,
      sourceName,
      compiler: `solc-js ${solc.version()}`,
      settings: { optimizer: settings.optimizer, evmVersion: settings.evmVersion },
      abi: artifact.abi,
      bytecode: `0x${artifact.evm.bytecode.object}`,
      deployedBytecode: `0x${artifact.evm.deployedBytecode.object}`,
    };
    const target = path.join(outDir, `${contractName}.json`);
    // Write then rename, so a concurrent reader never sees half a file.
    const temporary = `${target}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, `${JSON.stringify(json, null, 2)}\n`);
    fs.renameSync(temporary, target);
    written.push(target);
  }
}
process.stdout.write(`${JSON.stringify({ compiler: solc.version(), written })}\n`);
