// SPDX-License-Identifier: MIT
pragma solidity ^0.8.10;

/// A Chainlink-style price feed whose owner pushes answers: every push opens a new round, emits
/// NewRound and AnswerUpdated (as Chainlink's OffchainAggregator does) and is readable through
/// latestRoundData / getRoundData, so a monitor can follow it by events or by polling and fetch any
/// round it missed. For the devnet and tests only: no access control beyond the single pusher.
contract PushAggregator {
  event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
  event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);

  uint8 public immutable decimals;
  address public immutable pusher;
  string public description;
  uint256 public constant version = 4;
  uint80 public latestRound;

  mapping(uint80 => int256) private _answers;
  mapping(uint80 => uint256) private _updatedAt;

  constructor(uint8 decimals_, string memory description_, int256 initialAnswer) {
    decimals = decimals_;
    description = description_;
    pusher = msg.sender;
    _push(initialAnswer);
  }

  function push(int256 answer) external {
    require(msg.sender == pusher, "only the pusher");
    _push(answer);
  }

  function _push(int256 answer) private {
    require(answer > 0, "answer must be positive");
    uint80 round = latestRound + 1;
    latestRound = round;
    _answers[round] = answer;
    _updatedAt[round] = block.timestamp;
    emit NewRound(round, msg.sender, block.timestamp);
    emit AnswerUpdated(answer, round, block.timestamp);
  }

  function latestAnswer() external view returns (int256) {
    return _answers[latestRound];
  }

  function latestTimestamp() external view returns (uint256) {
    return _updatedAt[latestRound];
  }

  function getAnswer(uint256 roundId) external view returns (int256) {
    return _answers[uint80(roundId)];
  }

  function getTimestamp(uint256 roundId) external view returns (uint256) {
    return _updatedAt[uint80(roundId)];
  }

  function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
    return getRoundData(latestRound);
  }

  function getRoundData(uint80 roundId) public view returns (uint80, int256, uint256, uint256, uint80) {
    require(roundId != 0 && roundId <= latestRound, "No data present");
    uint256 at = _updatedAt[roundId];
    return (roundId, _answers[roundId], at, at, roundId);
  }
}
