import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder';
import './catalog.schema';
import './customers.schema';
import './subscribers.schema';
import './reconciliation.schema';
import './payments.schema';
import './billing.schema';
import './sims.schema';
import './charging.schema';

/** Code-first: types are declared once (Pothos) and the SDL is derived from them. */
let schema: GraphQLSchema | undefined;
export function buildSchema(): GraphQLSchema {
  schema ??= builder.toSchema();
  return schema;
}

export function printSdl(): string {
  return printSchema(lexicographicSortSchema(buildSchema()));
}
