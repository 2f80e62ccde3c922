/** Compatibility re-export for importers outside src/cis (src/agent, src/desired, src/evidence); new code imports from ./checks, ./gather, ./parse or ./output. */
export * from "./gather/safefs.js";
