// Types of the embedding entry (index.js). The client's types are generated
// from the Rust crate by wasm-pack into host.d.ts beside this file.
import type { PlaygroundClient, StartOptions } from './host';
export type * from './host';

/** Boots a playground (and runs `blueprint` / `blueprintUrl`, if given) and resolves with its client. */
export function startPlayground(options?: StartOptions): Promise<PlaygroundClient>;

/** A site saved in this browser; `open` when a tab (this one included) has it open. */
export interface SavedSite {
	slug: string;
	/** Bytes its stored files take. */
	bytes: number;
	open: boolean;
}

/** Every site saved in this browser, by name. */
export function listSavedSites(): Promise<SavedSite[]>;
/** Renames a saved site; refused while it is open in a tab or when `to` exists. */
export function renameSavedSite(from: string, to: string): Promise<void>;
/** Deletes a saved site and its files; refused while it is open in a tab. */
export function deleteSavedSite(slug: string): Promise<void>;
/** A name no saved site has, made from an imported file's name. */
export function slugForImport(fileName: string): Promise<string>;
