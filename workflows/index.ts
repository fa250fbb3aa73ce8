/** Every workflow the worker runs. The bundler starts from this file. */
export { subscriberWorkflow } from './subscriber.workflow';
export { reconciliationWorkflow, reconciliationMonthlyWorkflow } from './reconciliation.workflow';
export { esimOrderWorkflow } from './esim-order.workflow';
export { billingRunWorkflow, billingRunScheduledWorkflow } from './billing-run.workflow';
export { topUpWorkflow } from './top-up.workflow';
export { autoTopUpWorkflow } from './auto-top-up.workflow';
export { invoiceWorkflow } from './invoice.workflow';
