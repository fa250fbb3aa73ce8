/** API keys carry exactly one role; every GraphQL operation declares the roles that may call it. */
export const ROLES = ['admin', 'storefront', 'integrator', 'support', 'finance', 'network'] as const;
export type Role = (typeof ROLES)[number];

/** Named groups used by operation declarations, so the matrix stays readable. */
export const ROLE_GROUPS = {
  everyone: ['admin', 'storefront', 'integrator', 'support', 'finance'] as Role[],
  /** Read access to customer data: everything except the storefront and the network. */
  staffReaders: ['admin', 'integrator', 'support', 'finance'] as Role[],
  lifecycle: ['admin', 'integrator'] as Role[],
  adminOnly: ['admin'] as Role[],
};
