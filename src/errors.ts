/**
 * Typed failures. Every error a user can see is one of these: a one-line
 * message that says what is wrong and what to do, and the exit code the face
 * should use (125 for docker refusals, as the docker CLI does for its own).
 */
export class GpuguardError extends Error {
  override name = 'GpuguardError';
  constructor(
    message: string,
    readonly exitCode: number = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The policy file is missing, unreadable, not YAML, or not a valid policy. */
export class PolicyError extends GpuguardError {
  override name = 'PolicyError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 2, options);
  }
}

/** A request the policy refuses (docker exit code 125: nothing was created). */
export class PolicyDenied extends GpuguardError {
  override name = 'PolicyDenied';
  constructor(
    message: string,
    readonly rule: string,
  ) {
    super(message, 125);
  }
}

/** A real binary (docker CLI, runc, nvidia-smi) that cannot be found or would be ourselves. */
export class RealBinaryError extends GpuguardError {
  override name = 'RealBinaryError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 127, options);
  }
}

/** Malformed command-line input to one of our faces. */
export class UsageError extends GpuguardError {
  override name = 'UsageError';
  constructor(message: string, exitCode = 2) {
    super(message, exitCode);
  }
}

export function errorLine(err: unknown): string {
  if (err instanceof GpuguardError) return err.message;
  if (err instanceof Error) return `internal error: ${err.message}`;
  return `internal error: ${String(err)}`;
}
