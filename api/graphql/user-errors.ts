import type { z } from 'zod';
import { GraphQLError } from 'graphql';
import { InvalidCursorError, type Page } from '../../platform/pagination';
import { DomainError, userErrorsFromZod, type UserErrorDetail } from '../../domain/shared/domain-error';
import { builder } from './builder';

/** Domain refusals travel in `userErrors`; only auth failures and faults are top-level errors. */
export const UserErrorType = builder.objectRef<UserErrorDetail>('UserError').implement({
  description: 'A refusal the caller can fix: which input field, what is wrong, and a stable code.',
  fields: (t) => ({
    field: t.exposeStringList('field', { nullable: true, description: 'Path to the input field, e.g. ["input", "account", "currency"].' }),
    message: t.exposeString('message'),
    code: t.exposeString('code'),
  }),
});

export type Payload<K extends string, T> = { [key in K]: T | null } & { userErrors: UserErrorDetail[] };

/** Validates `input` with a schema, runs the action, and turns refusals into `userErrors`. */
export async function runMutation<S extends z.ZodType, K extends string, T>(
  key: K,
  schema: S,
  input: unknown,
  action: (value: z.infer<S>) => Promise<T>,
): Promise<Payload<K, T>> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) return { [key]: null, userErrors: userErrorsFromZod(parsed.error) } as Payload<K, T>;
  try {
    return { [key]: await action(parsed.data), userErrors: [] } as Payload<K, T>;
  } catch (err) {
    if (err instanceof DomainError) return { [key]: null, userErrors: [err.toUserError()] } as Payload<K, T>;
    throw err;
  }
}

/** Page<T> from a repository → a Relay connection. */
export function toConnection<T>(page: { items: T[]; cursors: string[]; hasNextPage: boolean; hasPreviousPage: boolean }) {
  return {
    edges: page.items.map((node, i) => ({ node, cursor: page.cursors[i] })),
    pageInfo: {
      hasNextPage: page.hasNextPage,
      hasPreviousPage: page.hasPreviousPage,
      startCursor: page.cursors[0] ?? null,
      endCursor: page.cursors[page.cursors.length - 1] ?? null,
    },
  };
}

/** Loads a page and shapes it as a connection; a cursor the API never issued is the caller's error. */
export async function connection<T>(load: () => Promise<Page<T>>) {
  try {
    return toConnection(await load());
  } catch (err) {
    if (err instanceof InvalidCursorError) throw new GraphQLError('invalid cursor: pass a cursor from a previous page', { extensions: { code: 'BAD_USER_INPUT' } });
    throw err;
  }
}
