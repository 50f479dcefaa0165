// Creates the first tensorgrid market after the program is deployed: run by `anchor migrate`
// (the exported function), or on its own against any deployment with Anchor's variables:
//   ANCHOR_PROVIDER_URL=https://api.devnet.solana.com ANCHOR_WALLET=~/.config/solana/id.json \
//   TENSORGRID_PROGRAM_ID=<your program's address> node .tsbuild/migrations/deploy.js
// ANCHOR_WS_URL names the websocket when it is not the RPC port + 1 (`tensorgrid localnet`
// prints both).
// TENSORGRID_PROGRAM_ID (default: the committed IDL's address; the CLI reads the same
// variable) is where the program was deployed, e.g. a build of
// `scripts/build-sbf.sh --program-id ADDRESS`.
//
// MARKET_MINT=<mint address> prices the market in an SPL Token or Token-2022 mint (e.g. USDC)
// instead of SOL: every amount is then in the mint's base units, and MIN_STAKE (base units)
// replaces MIN_STAKE_SOL. The program creates the market's vault and refuses mints whose
// amounts might not arrive whole (transfer fee, hook, permanent delegate, ...).
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

const programId = (): anchor.web3.PublicKey => {
  const value = process.env.TENSORGRID_PROGRAM_ID;
  if (value === undefined) return new anchor.web3.PublicKey(idl.address);
  try {
    return new anchor.web3.PublicKey(value);
  } catch {
    throw new Error(`TENSORGRID_PROGRAM_ID must be a base58 address, got '${value}'`);
  }
};

async function createMarket(provider: anchor.AnchorProvider): Promise<void> {
  anchor.setProvider(provider);
  const address = programId();
  const deployed = await provider.connection.getAccountInfo(address, "confirmed");
  if (deployed === null || !deployed.executable) {
    throw new Error(`no program deployed at ${address.toBase58()} on ${provider.connection.rpcEndpoint}`);
  }
  const program = new anchor.Program({ ...idl, address: address.toBase58() } as anchor.Idl, provider);
  const authority = provider.wallet.publicKey;
  const marketId = new anchor.BN(int("MARKET_ID", 0));
  const mint = mintFromEnv();
  let minStake = new anchor.BN(Math.round(Number(env("MIN_STAKE_SOL", "1")) * anchor.web3.LAMPORTS_PER_SOL));
  let mintInfo: anchor.web3.AccountInfo<Buffer> | null = null;
  if (mint !== null) {
    if (process.env.MIN_STAKE_SOL !== undefined) {
      throw new Error("MIN_STAKE_SOL is for a SOL market: with MARKET_MINT give MIN_STAKE in the mint's base units");
    }
    mintInfo = await provider.connection.getAccountInfo(mint, "confirmed");
    if (mintInfo === null || mintInfo.data.length < 82) {
      throw new Error(`MARKET_MINT ${mint.toBase58()} is not a mint on this cluster`);
    }
    // Default: one whole token (a mint's decimals are byte 44 of its base state).
    const decimals = mintInfo.data[44];
    minStake = new anchor.BN(env("MIN_STAKE", new anchor.BN(10).pow(new anchor.BN(decimals)).toString()));
  }
  const params = {
    feeBps: int("FEE_BPS", 250),
    minStake,
    collateralBps: int("COLLATERAL_BPS", 10_000),
    slashBps: int("SLASH_BPS", 5_000),
    abandonPenaltyBps: int("ABANDON_PENALTY_BPS", 500),
    crankBountyBps: int("CRANK_BOUNTY_BPS", 1_000),
    challengeWindowS: new anchor.BN(int("CHALLENGE_WINDOW_S", 3_600)),
    resolveWindowS: new anchor.BN(int("RESOLVE_WINDOW_S", 86_400)),
    maxClaimS: new anchor.BN(int("MAX_CLAIM_S", 86_400)),
    dispute: {
      bondBps: int("DISPUTE_BOND_BPS", 1_000),
      verifierFeeBps: int("VERIFIER_FEE_BPS", 300),
      fraudSlashBps: int("FRAUD_SLASH_BPS", 10_000),
      verifyWindowS: new anchor.BN(int("VERIFY_WINDOW_S", 3_600)),
    },
  };
  const [market] = anchor.web3.PublicKey.findProgramAddressSync(
    [Buffer.from("market"), authority.toBuffer(), marketId.toArrayLike(Buffer, "le", 8)],
    program.programId,
  );
  // Said before signing: the wallet is about to sign for this program on this cluster.
  console.log(
    `creating market ${marketId.toString()} of program ${address.toBase58()} on ${provider.connection.rpcEndpoint}`,
  );
  // A SOL market names no token accounts; a token market its mint, its vault (created here)
  // and the mint's token program.
  let tokens: Record<string, anchor.web3.PublicKey | null> = { mint: null, vault: null, tokenProgram: null };
  if (mint !== null && mintInfo !== null) {
    const info = mintInfo;
    const [vault] = anchor.web3.PublicKey.findProgramAddressSync(
      [Buffer.from("vault"), market.toBuffer()],
      program.programId,
    );
    tokens = { mint, vault, tokenProgram: info.owner };
  }
  const signature = await program.methods
    .marketInit({ marketId, params })
    .accounts({ authority, ...tokens })
    .rpc();
  console.log(`market ${market.toBase58()} created by ${authority.toBase58()} (tx ${signature})`);
}

const mintFromEnv = (): anchor.web3.PublicKey | null => {
  const value = process.env.MARKET_MINT;
  if (value === undefined || value === "") return null;
  try {
    return new anchor.web3.PublicKey(value);
  } catch {
    throw new Error(`MARKET_MINT must be a base58 address, got '${value}'`);
  }
};

module.exports = createMarket;

// AnchorProvider.env(), plus a websocket endpoint of its own when one is named.
function providerFromEnv(): anchor.AnchorProvider {
  const url = process.env.ANCHOR_PROVIDER_URL;
  if (!url) throw new Error("ANCHOR_PROVIDER_URL is not set (the cluster's JSON-RPC URL)");
  if (!process.env.ANCHOR_WALLET) throw new Error("ANCHOR_WALLET is not set (the authority's keypair file)");
  const options = anchor.AnchorProvider.defaultOptions();
  const connection = new anchor.web3.Connection(url, {
    commitment: options.commitment,
    wsEndpoint: process.env.ANCHOR_WS_URL || undefined,
  });
  return new anchor.AnchorProvider(connection, anchor.Wallet.local(), options);
}

if (require.main === module) {
  Promise.resolve()
    .then(() => createMarket(providerFromEnv()))
    .catch((e: unknown) => {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
