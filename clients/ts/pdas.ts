// The program's addresses whose seeds include an instruction argument (a market's id, a job's
// id), which Codama cannot derive from the IDL alone, and the event authority `emit_cpi!`
// signs with. The worker and poster-account PDAs are generated (generated/pdas).
import {
  getAddressEncoder,
  getProgramDerivedAddress,
  getU64Encoder,
  type Address,
  type ProgramDerivedAddress,
} from "@solana/kit";
import { TENSORGRID_PROGRAM_ADDRESS } from "./generated";

const text = (s: string) => new TextEncoder().encode(s);

type Config = { programAddress?: Address };

/** `["market", authority, market_id LE]`. */
export function findMarketPda(
  seeds: { authority: Address; marketId: bigint | number },
  config: Config = {},
): Promise<ProgramDerivedAddress> {
  return getProgramDerivedAddress({
    programAddress: config.programAddress ?? TENSORGRID_PROGRAM_ADDRESS,
    seeds: [text("market"), getAddressEncoder().encode(seeds.authority), getU64Encoder().encode(seeds.marketId)],
  });
}

/** `["job", market, poster, job_id LE]`: a poster's job ids only grow, so an address is used once. */
export function findJobPda(
  seeds: { market: Address; poster: Address; jobId: bigint | number },
  config: Config = {},
): Promise<ProgramDerivedAddress> {
  return getProgramDerivedAddress({
    programAddress: config.programAddress ?? TENSORGRID_PROGRAM_ADDRESS,
    seeds: [
      text("job"),
      getAddressEncoder().encode(seeds.market),
      getAddressEncoder().encode(seeds.poster),
      getU64Encoder().encode(seeds.jobId),
    ],
  });
}

/** `["__event_authority"]`: the signer of the program's self-invocations that carry events. */
export function findEventAuthorityPda(config: Config = {}): Promise<ProgramDerivedAddress> {
  return getProgramDerivedAddress({
    programAddress: config.programAddress ?? TENSORGRID_PROGRAM_ADDRESS,
    seeds: [text("__event_authority")],
  });
}

/** The associated token account program: its addresses are the default token accounts. */
export const ASSOCIATED_TOKEN_PROGRAM_ADDRESS =
  "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL" as Address;

/** `owner`'s associated token account for `mint` under `tokenProgram` (SPL Token or Token-2022). */
export function findAssociatedTokenPda(seeds: {
  owner: Address;
  mint: Address;
  tokenProgram: Address;
}): Promise<ProgramDerivedAddress> {
  const a = getAddressEncoder();
  return getProgramDerivedAddress({
    programAddress: ASSOCIATED_TOKEN_PROGRAM_ADDRESS,
    seeds: [a.encode(seeds.owner), a.encode(seeds.tokenProgram), a.encode(seeds.mint)],
  });
}

