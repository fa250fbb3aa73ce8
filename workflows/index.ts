/** Every workflow the worker runs. The bundler starts from this file. */
export { subscriberWorkflow } from './subscriber.workflow';
export { billingRunWorkflow, billingRunScheduledWorkflow } from './billing-run.workflow';
