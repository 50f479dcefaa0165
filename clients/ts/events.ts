// The program's events. It emits them with `emit_cpi!`: each is the data of an inner
// instruction to the program itself (Anchor's listener, which reads logs, never sees them):
// 8 bytes of Anchor's event-instruction tag, the event's 8-byte discriminator, then its Borsh
// fields. Decoded here with the committed IDL's types.
import { BorshEventCoder } from "@anchor-lang/core";
import { getBase58Encoder, type Address } from "@solana/kit";
import idl from "../../idl/tensorgrid.json";
import { TENSORGRID_PROGRAM_ADDRESS } from "./generated";

/** `sha256("anchor:event")[..8]`, little-endian: the prefix of every `emit_cpi!` payload. */
export const EVENT_IX_TAG = Uint8Array.from([0xe4, 0x45, 0xa5, 0x2e, 0x51, 0xcb, 0x9a, 0x1d]);

export type ProgramEvent = { name: string; data: Record<string, unknown> };

const coder = new BorshEventCoder(idl as never);

/** One inner instruction's data (bytes), if it is one of the program's events. */
export function decodeEventData(data: Uint8Array): ProgramEvent | null {
  if (data.length < 16 || !EVENT_IX_TAG.every((b, i) => data[i] === b)) return null;
  const decoded = coder.decode(Buffer.from(data.subarray(8)).toString("base64"));
  return decoded ? { name: decoded.name, data: decoded.data as Record<string, unknown> } : null;
}

/** The shape `getTransaction` returns with `encoding: "json"` (what is read here). */
export type TransactionWithMeta = {
  transaction: { message: { accountKeys: readonly string[] } };
  meta: {
    innerInstructions?: readonly {
      instructions: readonly { programIdIndex: number; data: string }[];
    }[] | null;
  } | null;
};

/** Every event of the program in an executed transaction, in order. */
export function eventsOf(
  tx: TransactionWithMeta,
  programAddress: Address = TENSORGRID_PROGRAM_ADDRESS,
): ProgramEvent[] {
  const keys = tx.transaction.message.accountKeys;
  const base58 = getBase58Encoder();
  const out: ProgramEvent[] = [];
  for (const group of tx.meta?.innerInstructions ?? []) {
    for (const ix of group.instructions) {
      if (keys[ix.programIdIndex] !== programAddress) continue;
      const event = decodeEventData(new Uint8Array(base58.encode(ix.data)));
      if (event) out.push(event);
    }
  }
  return out;
}
