import type { ZodError } from 'zod';

/** A refusal the caller can act on (maps to GraphQL `userErrors`), as opposed to a fault. */
export interface UserErrorDetail {
  field: string[] | null;
  message: string;
  code: string;
}

export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly field: string[] | null = null,
  ) {
    super(message);
    this.name = 'DomainError';
  }

  toUserError(): UserErrorDetail {
    return { field: this.field, message: this.message, code: this.code };
  }
}

export class ValidationFailed extends Error {
  constructor(readonly errors: UserErrorDetail[]) {
    super(errors.map((e) => `${e.field?.join('.') ?? 'input'}: ${e.message}`).join('; '));
    this.name = 'ValidationFailed';
  }
}

export function userErrorsFromZod(error: ZodError, prefix: string[] = ['input']): UserErrorDetail[] {
  return error.issues.map((issue) => ({
    field: [...prefix, ...issue.path.map(String)],
    message: issue.message,
    code: 'INVALID',
  }));
}

/** PostgreSQL error codes the repositories translate into domain refusals. */
export const PG_UNIQUE_VIOLATION = '23505';
export const PG_FOREIGN_KEY_VIOLATION = '23503';
export const PG_CHECK_VIOLATION = '23514';

export function pgErrorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

export function pgConstraint(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'constraint' in err ? String((err as { constraint: unknown }).constraint) : undefined;
}
