import {
  getNamedType, isEnumType, isInputObjectType, isListType, isNonNullType, isObjectType, isScalarType,
  type GraphQLField, type GraphQLInputType,
} from 'graphql';
import { buildSchema } from '../../api/graphql/schema';
import { operationRoles } from '../../api/graphql/builder';
import { ROLES } from '../../domain/access/roles';
import { useApiTestStack } from './support';

/** A value of the right shape for any input type, so every operation can be called by every role. */
function sampleValue(type: GraphQLInputType): unknown {
  if (isNonNullType(type)) return sampleValue(type.ofType);
  if (isListType(type)) return [sampleValue(type.ofType)];
  if (isEnumType(type)) return type.getValues()[0].value;
  if (isInputObjectType(type)) {
    return Object.fromEntries(Object.values(type.getFields()).filter((f) => isNonNullType(f.type)).map((f) => [f.name, sampleValue(f.type)]));
  }
  if (isScalarType(type)) {
    return ({ String: 'x', ID: '00000000-0000-4000-8000-000000000000', Int: 1, Boolean: true, BigInt: '1', DateTime: '2026-01-01T00:00:00Z', JSON: {} } as Record<string, unknown>)[type.name] ?? 'x';
  }
  throw new Error(`no sample for ${String(type)}`);
}

function operationDocument(kind: 'query' | 'mutation', field: GraphQLField<unknown, unknown>) {
  const required = field.args.filter((a) => isNonNullType(a.type));
  const variables = Object.fromEntries(required.map((a) => [a.name, sampleValue(a.type)]));
  const defs = required.map((a) => `$${a.name}: ${String(a.type)}`).join(', ');
  const args = required.map((a) => `${a.name}: $${a.name}`).join(', ');
  const selection = isObjectType(getNamedType(field.type)) ? '{ __typename }' : '';
  return { query: `${kind} Op${defs ? `(${defs})` : ''} { ${field.name}${args ? `(${args})` : ''} ${selection} }`, variables };
}

describe('role matrix: every operation declares its roles, and they are enforced', () => {
  const stack = useApiTestStack();

  const schema = buildSchema();
  const operations = [
    ...Object.values(schema.getQueryType()!.getFields()).map((f) => ({ kind: 'query' as const, field: f })),
    ...Object.values(schema.getMutationType()!.getFields()).map((f) => ({ kind: 'mutation' as const, field: f })),
  ];

  test('every root field declares the roles that may call it', () => {
    const undeclared = operations.map((o) => o.field.name).filter((name) => !operationRoles.has(name));
    expect(undeclared).toEqual([]);
    expect(operations.length).toBeGreaterThanOrEqual(10);
  });

  const cases = operations.flatMap((o) => ROLES.map((role) => [o.field.name, role, o] as const));
  test.each(cases)('%s as %s', async (name, role, o) => {
    const allowed = operationRoles.get(name)!.includes(role);
    const { query, variables } = operationDocument(o.kind, o.field);
    const res = await stack.api.gql(role, query, variables);
    const codes = (res.body.errors ?? []).map((e: { extensions?: { code?: string } }) => e.extensions?.code);
    if (allowed) {
      expect(codes).not.toContain('FORBIDDEN');
      expect(res.status).toBe(200);
    } else {
      expect(codes).toContain('FORBIDDEN');
      expect(res.body.data?.[name] ?? null).toBeNull();
    }
  });
});
