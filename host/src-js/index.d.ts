// Types of the embedding entry (index.js). The client's types are generated
// from the Rust crate by wasm-pack into host.d.ts beside this file.
import type { PlaygroundClient, StartOptions } from './host';
export type * from './host';

/** Boots a playground and resolves with its client. */
export function startPlayground(options?: StartOptions): Promise<PlaygroundClient>;
