// Creates the first tensorgrid market after `anchor deploy` (run by `anchor migrate`).
//
// Every parameter can be set from the environment; defaults suit devnet experiments:
//   MARKET_ID=0 FEE_BPS=250 MIN_STAKE_SOL=1 COLLATERAL_BPS=10000 SLASH_BPS=5000
//   ABANDON_PENALTY_BPS=500 CRANK_BOUNTY_BPS=1000 CHALLENGE_WINDOW_S=3600
//   RESOLVE_WINDOW_S=86400 MAX_CLAIM_S=86400
// The program refuses parameters outside its bounds (fee <= 2000 bps, collateral <= 50000 bps,
// bounty <= 5000 bps, windows <= 30 days, abandon penalty below slash minus bounty).
// The market authority is the provider wallet (Anchor.toml [provider] wallet); fees accrue in
// the market account and the authority withdraws them with market_withdraw_fees.
// Re-running with an existing MARKET_ID fails without changing anything.

import * as anchor from "@anchor-lang/core";
import idl from "../idl/tensorgrid.json";

const env = (name: string, fallback: string): string => process.env[name] ?? fallback;
const int = (name: string, fallback: number): number => {
  const value = Number(env(name, String(fallback)));
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${process.env[name]}`);
  }
  return value;
};

module.exports = async function (provider: anchor.AnchorProvider): Promise<void> {
  anchor.setProvider(provider);
  const program = new anchor.Program(idl as anchor.Idl, provider);
  const authority = provider.wallet.publicKey;
  const marketId = new anchor.BN(int("MARKET_ID", 0));
  const params = {
    feeBps: int("FEE_BPS", 250),
    minStake: new anchor.BN(Math.round(Number(env("MIN_STAKE_SOL", "1")) * anchor.web3.LAMPORTS_PER_SOL)),
    collateralBps: int("COLLATERAL_BPS", 10_000),
    slashBps: int("SLASH_BPS", 5_000),
    abandonPenaltyBps: int("ABANDON_PENALTY_BPS", 500),
    crankBountyBps: int("CRANK_BOUNTY_BPS", 1_000),
    challengeWindowS: new anchor.BN(int("CHALLENGE_WINDOW_S", 3_600)),
    resolveWindowS: new anchor.BN(int("RESOLVE_WINDOW_S", 86_400)),
    maxClaimS: new anchor.BN(int("MAX_CLAIM_S", 86_400)),
  };
  const [market] = anchor.web3.PublicKey.findProgramAddressSync(
    [Buffer.from("market"), authority.toBuffer(), marketId.toArrayLike(Buffer, "le", 8)],
    program.programId,
  );
  const signature = await program.methods
    .marketInit({ marketId, params })
    .accounts({ authority })
    .rpc();
  console.log(`market ${market.toBase58()} created by ${authority.toBase58()} (tx ${signature})`);
};
