import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';
import type { Client } from '@temporalio/client';
import type { Knex } from 'knex';
import type { Role } from '../../domain/access/roles';
import type { ChargingEngine } from '../../domain/charging/charging-engine';
import type { Config } from '../../platform/config';

export interface GraphQLContext {
  role: Role;
  /** Who acts, for audit trails: the API key's id. */
  actor: string;
  db: Knex;
  temporal: Client;
  config: Config;
  /** The process's charging engine (wallet movements through the hot path's locks); made on first use
   * when the composition root passed none. */
  chargingEngine: () => ChargingEngine;
}

/** Money and unit counts are 64-bit: serialised as strings of digits so no client loses precision. */
const BigIntScalar = new GraphQLScalarType<bigint, string>({
  name: 'BigInt',
  description: 'A 64-bit integer (money in minor or micro units, bytes, seconds), as a string of digits with an optional minus sign.',
  serialize: (value) => {
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
    if (typeof value === 'string' && /^-?\d+$/.test(value)) return value;
    throw new GraphQLError('BigInt cannot represent this value');
  },
  parseValue: (value) => {
    if (typeof value === 'string' && /^-?\d{1,19}$/.test(value)) return BigInt(value);
    if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
    throw new GraphQLError('BigInt must be an integer, or a string of digits');
  },
  parseLiteral: (ast) => {
    if ((ast.kind === Kind.STRING || ast.kind === Kind.INT) && /^-?\d{1,19}$/.test(ast.value)) return BigInt(ast.value);
    throw new GraphQLError('BigInt must be an integer, or a string of digits');
  },
});

const DateTimeScalar = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description: 'An instant, ISO 8601 with offset.',
  serialize: (value) => (value instanceof Date ? value : new Date(String(value))).toISOString(),
  parseValue: (value) => {
    const d = new Date(String(value));
    if (typeof value !== 'string' || Number.isNaN(d.getTime())) throw new GraphQLError('DateTime must be an ISO 8601 string');
    return d;
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING || Number.isNaN(new Date(ast.value).getTime())) throw new GraphQLError('DateTime must be an ISO 8601 string');
    return new Date(ast.value);
  },
});

const JSONScalar = new GraphQLScalarType<unknown, unknown>({
  name: 'JSON',
  description: 'A JSON document (tariffs, rating decisions).',
  serialize: (value) => value,
  parseValue: (value) => value,
});

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  AuthScopes: { roles: Role[] };
  Scalars: {
    BigInt: { Input: bigint; Output: bigint | string | number };
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
  };
  DefaultFieldNullability: false;
}>({
  plugins: [ScopeAuthPlugin, RelayPlugin],
  defaultFieldNullability: false,
  relay: { clientMutationId: 'omit', cursorType: 'String', nodeQueryOptions: false, nodesQueryOptions: false },
  scopeAuth: {
    authScopes: (context) => ({ roles: (allowed: Role[]) => allowed.includes(context.role) }),
    unauthorizedError: (_parent, context, info) =>
      new GraphQLError(`the ${context.role} role may not call ${info.parentType.name}.${info.fieldName}`, {
        extensions: { code: 'FORBIDDEN' },
      }),
  },
});

builder.addScalarType('BigInt', BigIntScalar);
builder.addScalarType('DateTime', DateTimeScalar);
builder.addScalarType('JSON', JSONScalar);
builder.queryType({});
builder.mutationType({});

/** Every root operation states who may call it; the role-matrix test reads it back from here. */
export const operationRoles = new Map<string, Role[]>();
export function allow(operation: string, roles: Role[]): { authScopes: { roles: Role[] } } {
  if (operationRoles.has(operation)) throw new Error(`roles for ${operation} declared twice`);
  operationRoles.set(operation, roles);
  return { authScopes: { roles } };
}
