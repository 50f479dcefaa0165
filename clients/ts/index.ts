// The TypeScript client of the tensorgrid program: generated from the committed IDL with
// Codama (`npm run generate-client`; instructions with their account lists, account and type
// codecs, the worker and poster-account PDAs, typed errors), and the helpers the IDL cannot
// express (PDAs with argument seeds, events from inner instructions, sending).
export * from "./generated";
export * from "./pdas";
export * from "./events";
export * from "./send";
export * from "./post";
