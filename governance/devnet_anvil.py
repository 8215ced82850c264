"""The devnet's anvil process: find the npm binary, start it on loopback, wait for it, stop it.

Anvil comes from the npm package `@foundry-rs/anvil` (its platform package holds the binary; running
the binary directly, not the node wrapper, leaves one process to stop). It runs in its own session
so it outlives `steward devnet up`; its pid is kept in the state dir and checked to still be an
anvil before anything is sent a signal.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from web3 import Web3

from governance.artifacts import INSTALL_HINT, node_modules
from governance.devnet_chain import DevnetError

CHAIN_ID = 1337  # safe-eth-py's singleton-factory transaction is pre-signed for this chain id
HOST = "127.0.0.1"
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"  # anvil's default
PID_FILE = "anvil.pid"
LOG_FILE = "anvil.log"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "arm64": "arm64", "aarch64": "arm64"}
# Popen objects of anvils this process started, kept so they can be reaped (no zombies, no
# "still running" warnings when the object would be collected).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def find_anvil() -> Path:
    """The anvil binary: `$STEWARD_ANVIL`, else the npm platform package under node_modules."""
    override = os.environ.get("STEWARD_ANVIL")
    if override:
        path = Path(override)
    else:
        system = {"linux": "linux", "darwin": "darwin", "win32": "win32"}.get(sys.platform, sys.platform)
        arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
        exe = "anvil.exe" if system == "win32" else "anvil"
        path = node_modules() / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / exe
    if not path.is_file() or not os.access(path, os.X_OK):
        raise DevnetError(f"anvil not found (looked for an executable at {path})", INSTALL_HINT)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _log_tail(state_dir: Path, lines: int = 5) -> str:
    try:
        text = (state_dir / LOG_FILE).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def start(state_dir: Path, port: int, accounts: int) -> int:
    """Start anvil on HOST:port, wait until it answers with chain id 1337; return its pid."""
    binary = find_anvil()
    if not port_is_free(port):
        raise DevnetError(f"port {port} on {HOST} is busy", "pick another with --port, or omit it to use a free one")
    cmd = [
        str(binary),
        "--chain-id", str(CHAIN_ID),
        "--host", HOST,
        "--port", str(port),
        "--accounts", str(accounts),
        "--mnemonic", ANVIL_MNEMONIC,
        "--silent",  # errors still reach the log; no banner listing the test keys
    ]  # fmt: skip
    with open(state_dir / LOG_FILE, "ab") as log:
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=state_dir,
                start_new_session=True,  # outlives `steward devnet up`; Ctrl-C there does not reach it
            )
        except OSError as e:
            raise DevnetError(f"anvil at {binary} cannot be started ({e})", INSTALL_HINT) from None
    _CHILDREN[proc.pid] = proc
    (state_dir / PID_FILE).write_text(f"{proc.pid}\n")
    url = f"http://{HOST}:{port}"
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 2}))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            _forget(state_dir, proc.pid)
            raise DevnetError(
                f"anvil exited with code {proc.returncode} while starting: {_log_tail(state_dir) or 'no output'}",
                f"see {state_dir / LOG_FILE}; if anvil is missing or broken, {INSTALL_HINT}",
            )
        try:
            answer = w3.provider.make_request("eth_chainId", [])  # type: ignore[arg-type]
            if int(answer["result"], 16) != CHAIN_ID:
                stop_pid(proc.pid)
                _forget(state_dir, proc.pid)
                raise DevnetError(f"the node at {url} is not the devnet (chain id {answer['result']})", "")
            return proc.pid
        except (OSError, KeyError, ValueError):
            pass
        if time.monotonic() > deadline:
            stop_pid(proc.pid)
            _forget(state_dir, proc.pid)
            raise DevnetError(
                f"anvil did not answer on {url} within {READY_TIMEOUT_S:.0f} s: {_log_tail(state_dir) or 'no output'}",
                f"see {state_dir / LOG_FILE}",
            )
        time.sleep(0.05)


def _forget(state_dir: Path, pid: int) -> None:
    if read_pid(state_dir) == pid:
        (state_dir / PID_FILE).unlink(missing_ok=True)


def read_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def is_running_anvil(pid: int) -> bool:
    """Whether `pid` is alive and (where /proc tells) an anvil, not a recycled pid."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: never ours to signal
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            raw = cmdline.read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        # a zombie (state Z) is no longer running
        return b"anvil" in raw and stat.rsplit(")", 1)[-1].split()[0] != "Z"
    return True


def stop_pid(pid: int) -> bool:
    """Stop anvil `pid` (SIGTERM, then SIGKILL after a grace period); True if it was running."""
    if not is_running_anvil(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not is_running_anvil(pid):
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait(timeout=STOP_TIMEOUT_S)
    return True
