"""A local chain with a real Aave v3 market, a Safe and a borrower book (`steward devnet up|down`).

`up` starts anvil (npm `@foundry-rs/anvil`, chain id 1337, loopback, a free port) and deploys, from
anvil's default mnemonic accounts:

* account 0 — deployer: ACL admin, pool admin, emergency admin, treasury, token minter;
* accounts 1–3 — the Safe's owners (threshold 2); the Safe holds the pool's RISK_ADMIN role;
  they are also the voters of the devnet DAO (`devnet_governor`: ERC20Votes, Governor, Timelock —
  the timelock holds RISK_ADMIN too);
* accounts 4–7 — suppliers; 8–19 — borrowers (see `devnet_book`); 20 — a funded liquidator.

The market is the demo venue's (`risk/demo/snapshot.json`). Everything is written to `devnet.json`
in the state dir (addresses, owners and their keys — anvil's public test keys, still never printed —,
markets, the book, the block). `up` is idempotent: a running, deployed devnet is returned as is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from governance import devnet_anvil
from governance.artifacts import load_artifact
from governance.devnet_aave import AAVE, deploy_aave, load_reserve_specs, price_answer
from governance.devnet_anvil import ANVIL_MNEMONIC, HOST
from governance.devnet_book import BORROWERS, SUPPLIER_USD, open_book
from governance.devnet_chain import Chain, DevnetError
from governance.devnet_governor import deploy_governor
from governance.devnet_safe import deploy_safe

__all__ = ["Devnet", "DevnetError", "current", "down", "set_price", "up"]

STATE_FILE = "devnet.json"
DEPLOYER = 0
OWNERS = (1, 2, 3)
THRESHOLD = 2
SUPPLIERS = tuple(range(4, 4 + len(SUPPLIER_USD)))
BORROWER_ACCOUNTS = tuple(range(SUPPLIERS[-1] + 1, SUPPLIERS[-1] + 1 + len(BORROWERS)))
LIQUIDATOR = BORROWER_ACCOUNTS[-1] + 1
ACCOUNTS = LIQUIDATOR + 1


@dataclass(frozen=True)
class Devnet:
    """A running devnet. `owner_keys` are the Safe owners' keys, in `owners` order (not in repr)."""

    rpc_url: str
    chain_id: int
    block: int
    addresses: dict[str, str]
    owners: tuple[str, ...]
    owner_keys: tuple[str, ...] = field(repr=False)
    markets: dict[str, dict[str, Any]]
    book: dict[str, Any] = field(repr=False)
    safe_canonical: dict[str, bool]
    pid: int

    def to_json(self) -> dict[str, Any]:
        return {
            "rpc_url": self.rpc_url,
            "chain_id": self.chain_id,
            "block": self.block,
            "addresses": self.addresses,
            "owners": list(self.owners),
            "owner_keys": list(self.owner_keys),
            "markets": self.markets,
            "book": self.book,
            "safe_canonical": self.safe_canonical,
            "pid": self.pid,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], where: Path) -> Devnet:
        try:
            return cls(
                rpc_url=str(raw["rpc_url"]),
                chain_id=int(raw["chain_id"]),
                block=int(raw["block"]),
                addresses=dict(raw["addresses"]),
                owners=tuple(raw["owners"]),
                owner_keys=tuple(raw["owner_keys"]),
                markets=dict(raw["markets"]),
                book=dict(raw["book"]),
                safe_canonical=dict(raw["safe_canonical"]),
                pid=int(raw["pid"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DevnetError(
                f"{where}: malformed devnet state ({e!r})", "run `steward devnet down` then `up`"
            ) from None


def _state_file(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def _read_state(state_dir: Path) -> Devnet | None:
    path = _state_file(state_dir)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise DevnetError(f"{path}: cannot read devnet state ({e})", "run `steward devnet down` then `up`") from None
    return Devnet.from_json(raw, path)


def _write_state(state_dir: Path, devnet: Devnet) -> None:
    path = _state_file(state_dir)
    tmp = path.with_suffix(".json.tmp")
    # The file holds (public, test-only) private keys: readable by its owner only.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(devnet.to_json(), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _is_live(devnet: Devnet, state_dir: Path) -> bool:
    """The recorded anvil still runs, answers as the devnet and holds the deployment."""
    if devnet_anvil.read_pid(state_dir) != devnet.pid or not devnet_anvil.is_running_anvil(devnet.pid):
        return False
    chain = Chain(devnet.rpc_url, timeout_s=5)
    try:
        return (
            chain.chain_id() == devnet.chain_id
            and chain.block_number() >= devnet.block
            and chain.has_code(devnet.addresses["pool"])
            and chain.has_code(devnet.addresses["safe"])
        )
    except DevnetError:
        return False


def current(state_dir: Path = Path(".devnet")) -> Devnet:
    """The running devnet in `state_dir`, without starting anything."""
    devnet = _read_state(Path(state_dir))
    if devnet is None or not _is_live(devnet, Path(state_dir)):
        raise DevnetError(f"no running devnet in {state_dir}", "start one with `steward devnet up`")
    return devnet


def up(state_dir: Path = Path(".devnet"), *, port: int | None = None) -> Devnet:
    """Start anvil and deploy the market, the Safe and the book; return the running devnet if any."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    existing = _read_state(state_dir)
    if existing is not None and _is_live(existing, state_dir):
        if port is not None and existing.rpc_url != f"http://{HOST}:{port}":
            raise DevnetError(
                f"a devnet already runs from {state_dir} at {existing.rpc_url}, not on port {port}",
                "run `steward devnet down` first to move it",
            )
        return existing
    # Whatever is left (a dead anvil's state, or an anvil whose deployment never finished) goes.
    _clear(state_dir)
    chosen = port if port is not None else devnet_anvil.free_port()
    pid = devnet_anvil.start(state_dir, chosen, ACCOUNTS)
    rpc_url = f"http://{HOST}:{chosen}"
    try:
        devnet = _deploy(Chain(rpc_url), pid)
    except BaseException:
        devnet_anvil.stop_pid(pid)
        (state_dir / devnet_anvil.PID_FILE).unlink(missing_ok=True)
        raise
    _write_state(state_dir, devnet)
    return devnet


def _clear(state_dir: Path) -> bool:
    pid = devnet_anvil.read_pid(state_dir)
    stopped = devnet_anvil.stop_pid(pid) if pid is not None else False
    (state_dir / devnet_anvil.PID_FILE).unlink(missing_ok=True)
    _state_file(state_dir).unlink(missing_ok=True)
    return stopped


def down(state_dir: Path = Path(".devnet")) -> bool:
    """Stop the devnet's anvil and forget its state; True if an anvil was running."""
    state_dir = Path(state_dir)
    if not state_dir.is_dir():
        return False
    return _clear(state_dir)


def _local_account(index: int) -> LocalAccount:
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def _deploy(chain: Chain, pid: int) -> Devnet:
    accounts = [to_checksum_address(a) for a in chain.rpc("eth_accounts", [])]
    if len(accounts) < ACCOUNTS:
        raise DevnetError(f"anvil offers {len(accounts)} accounts, the devnet needs {ACCOUNTS}", "")
    deployer = _local_account(DEPLOYER)
    owners = [_local_account(i) for i in OWNERS]
    if deployer.address != accounts[DEPLOYER] or [o.address for o in owners] != [accounts[i] for i in OWNERS]:
        raise DevnetError("anvil's accounts are not the default mnemonic's", "start anvil with its default mnemonic")

    specs = load_reserve_specs()
    market = deploy_aave(chain, accounts[DEPLOYER], accounts[DEPLOYER], specs)
    safe = deploy_safe(chain.rpc_url, deployer, [o.address for o in owners], THRESHOLD)
    addresses = dict(market.addresses)
    addresses.update(
        safe=safe.safe,
        safe_singleton=safe.singleton,
        safe_proxy_factory=safe.proxy_factory,
        safe_fallback_handler=safe.fallback_handler,
        safe_simulate_tx_accessor=safe.simulate_tx_accessor,
        multisend_call_only=safe.multisend_call_only,
    )
    acl = chain.contract(addresses["acl_manager"], load_artifact(AAVE, "ACLManager"))
    chain.transact("ACLManager.addRiskAdmin(Safe)", accounts[DEPLOYER], acl, "addRiskAdmin", safe.safe)
    dao = deploy_governor(chain, deployer=accounts[DEPLOYER], voters=[accounts[i] for i in OWNERS],
                          acl_manager=addresses["acl_manager"])
    addresses.update(dao.addresses())

    book = open_book(
        chain,
        minter=accounts[DEPLOYER],
        pool=addresses["pool"],
        tokens={s: m["asset"] for s, m in market.markets.items()},
        specs=specs,
        suppliers=[accounts[i] for i in SUPPLIERS],
        borrowers=[accounts[i] for i in BORROWER_ACCOUNTS],
        liquidator=accounts[LIQUIDATOR],
    )
    return Devnet(
        rpc_url=chain.rpc_url,
        chain_id=chain.chain_id(),
        block=chain.block_number(),
        addresses=addresses,
        owners=tuple(o.address for o in owners),
        owner_keys=tuple("0x" + bytes(o.key).hex() for o in owners),
        markets=market.markets,
        book=book,
        safe_canonical=safe.canonical,
        pid=pid,
    )


def set_price(devnet: Devnet, symbol: str, price_usd: Decimal) -> None:
    """Move `symbol`'s oracle price to `price_usd` (USD, rounded to Chainlink's 8 decimals)."""
    market = devnet.markets.get(symbol)
    if market is None:
        raise DevnetError(f"the devnet has no market {symbol!r}", f"markets: {', '.join(sorted(devnet.markets))}")
    answer = price_answer(price_usd)
    chain = Chain(devnet.rpc_url)
    # MockAggregator has no setter; its one storage slot (0) holds the answer. The read-back below
    # catches a layout that is not what this assumes.
    step = f"set {symbol} price"
    chain.rpc("anvil_setStorageAt", [market["aggregator"], "0x0", "0x" + answer.to_bytes(32, "big").hex()], step=step)
    chain.rpc("evm_mine", [], step=step)
    feed = chain.contract(market["aggregator"], load_artifact(AAVE, "MockAggregator"))
    oracle = chain.contract(devnet.addresses["oracle"], load_artifact(AAVE, "AaveOracle"))
    got_feed = feed.functions.latestAnswer().call()
    got_oracle = oracle.functions.getAssetPrice(market["asset"]).call()
    if got_feed != answer or got_oracle != answer:
        raise DevnetError(
            f"set {symbol} price: feed reads {got_feed}, oracle {got_oracle}, wanted {answer}",
            "the price feed's storage layout is not MockAggregator's",
        )

