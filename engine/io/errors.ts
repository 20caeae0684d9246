// Typed errors of checkpoint I/O (safetensors, ZIP, pickle, torch checkpoints). Every reader in
// engine/io/ throws only these for bad input, so callers can tell a corrupt or hostile file
// (`instanceof CheckpointError`) from a bug in the program (any other error).
//
//   CheckpointError                 base class
//   ├─ CheckpointFormatError        truncated / malformed / inconsistent bytes (names the part)
//   │   └─ CrcError                 a ZIP entry's CRC-32 does not match (names the entry)
//   ├─ UnsafePickleError            a pickle names a global outside the allow-list (names it)
//   └─ UnsupportedCheckpointError   well-formed but uses a feature we do not read (encryption,
//                                   a compression method without an inflater, an unknown dtype)

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class CheckpointFormatError extends CheckpointError {}

export class CrcError extends CheckpointFormatError {
  readonly entry: string;
  constructor(entry: string, expected: number, actual: number) {
    const hex = (v: number) => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
    super(`zip entry "${entry}": CRC-32 mismatch (stored ${hex(expected)}, computed ${hex(actual)}): the file is corrupt`);
    this.entry = entry;
  }
}

export class UnsafePickleError extends CheckpointError {
  /** `module.name` as the pickle spelled it. */
  readonly global: string;
  constructor(global: string, detail = 'is not on the allow-list of globals a checkpoint may name') {
    super(`pickle: refusing global "${global}": ${detail}; nothing was executed`);
    this.global = global;
  }
}

export class UnsupportedCheckpointError extends CheckpointError {}
