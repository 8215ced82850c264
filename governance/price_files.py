"""Price files read once per run and shared by every policy that names them.

A steward firm's venues often price their markets from the same long files (one CoinGecko export
holds every Aave asset). `steward epoch POLICY...` gives every policy's `gather_inputs` one
`PriceFiles`: each file is parsed and hashed on first use and served from memory afterwards. The
parsed table is the one `risk.data_files.load_prices_file` returns, so a policy's inputs are the same
bytes whether it ran alone or with others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from governance.bundle import sha256
from risk.data_files import PriceTable, load_prices_file


@dataclass
class PriceFiles:
    """Parsed price files by resolved path, with their SHA-256 (what the manifest pins).

    `loads` counts files actually read from disk, `hits` requests served from memory.
    """

    tables: dict[Path, tuple[PriceTable, str]] = field(default_factory=dict)
    loads: int = 0
    hits: int = 0

    def load(self, path: Path, name: str) -> tuple[PriceTable, str]:
        """The file's table (messages name it `name`, relative to the data folder) and its hash."""
        key = Path(path).resolve()
        found = self.tables.get(key)
        if found is not None and found[0].name == name:
            self.hits += 1
            return found
        table = load_prices_file(key, name=name)
        digest = sha256(key.read_bytes())
        self.loads += 1
        self.tables[key] = (table, digest)
        return table, digest
