// Compile Solidity with the npm `solc` package (solcjs, the compiler as WebAssembly): standard JSON
// in on stdin, standard JSON out on stdout. Imports are read from the node_modules folder given as
// the first argument ("@openzeppelin/contracts/...") or from the sources folder given as the second
// ("./StewardGovernor.sol"); nothing else is readable. governance/compile.py drives this script.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [nodeModules, sourcesDir] = process.argv.slice(2);
if (!nodeModules || !sourcesDir) {
  process.stderr.write("usage: node compile.mjs NODE_MODULES SOURCES_DIR < input.json\n");
  process.exit(64);
}
const require = createRequire(path.join(path.resolve(nodeModules), "noop.js"));
const solc = require("solc");

function findImports(name) {
  const roots = name.startsWith("@") ? [nodeModules] : [sourcesDir];
  for (const root of roots) {
    const full = path.resolve(root, name);
    if (!full.startsWith(path.resolve(root) + path.sep)) break;
    try {
      return { contents: readFileSync(full, "utf8") };
    } catch {
      // fall through: reported below
    }
  }
  return { error: `import not found: ${name}` };
}

const input = readFileSync(0, "utf8");
const output = solc.compile(input, { import: findImports });
process.stdout.write(JSON.stringify({ version: solc.version(), output: JSON.parse(output) }));
