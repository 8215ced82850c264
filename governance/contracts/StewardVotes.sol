// SPDX-License-Identifier: MIT
// The devnet's voting token: an ERC20Votes whose whole supply is minted to the deployer, who hands
// it to voters; votes count once delegated (block-number clock, OpenZeppelin's default).
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

contract StewardVotes is ERC20, ERC20Votes {
    constructor(uint256 supply) ERC20("Steward Votes", "STV") EIP712("Steward Votes", "1") {
        _mint(msg.sender, supply);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }
}
